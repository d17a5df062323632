// Command httpload is a small HTTP load generator for forward proxies,
// used by the smoke run when wrk is not installed: each client keeps one
// connection to the proxy and sends the same absolute-form request wrk's
// script sends (GET http://host:port/path HTTP/1.1 with Host), reading each
// response to the end before the next. It prints one JSON object (see
// bench/internal/loadgen.Result); non-2xx answers count as errors.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aupguard/aupguard/bench/internal/loadgen"
)

func main() {
	proxy := flag.String("proxy", "127.0.0.1:3128", "proxy address")
	target := flag.String("url", "", "absolute http:// URL to request through the proxy")
	workers := flag.Int("c", 50, "concurrent connections")
	warmup := flag.Duration("warmup", 3*time.Second, "warm-up, not measured")
	window := flag.Duration("d", 10*time.Second, "measured window")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		fmt.Fprintf(os.Stderr, "httpload: -url must be an absolute http:// URL, got %q\n", *target)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	head := []byte(fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: httpload\r\nAccept: */*\r\n\r\n", u.String(), u.Host))
	r := loadgen.Run(ctx, *workers, *warmup, *window, func() loadgen.Op {
		c := &client{proxy: *proxy, head: head, buf: make([]byte, 64<<10)}
		return c.do
	})
	if err := loadgen.Print(os.Stdout, r); err != nil {
		os.Exit(1)
	}
}

// client is one kept-alive connection to the proxy, reopened when the
// proxy closes it.
type client struct {
	proxy string
	head  []byte
	conn  net.Conn
	br    *bufio.Reader
	buf   []byte
}

func (c *client) do(ctx context.Context) (int64, error) {
	if c.conn == nil {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", c.proxy)
		if err != nil {
			return 0, err
		}
		c.conn = conn
		c.br = bufio.NewReaderSize(conn, 64<<10)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	_ = c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	n, err := c.roundTrip()
	if err != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
	return n, err
}

func (c *client) roundTrip() (int64, error) {
	if _, err := c.conn.Write(c.head); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return 0, err
	}
	n, err := io.CopyBuffer(io.Discard, resp.Body, c.buf)
	_ = resp.Body.Close()
	if err != nil {
		return n, err
	}
	if resp.StatusCode/100 != 2 {
		return n, fmt.Errorf("status %s", resp.Status)
	}
	if resp.Close {
		_ = c.conn.Close()
		c.conn = nil
	}
	return n, nil
}
