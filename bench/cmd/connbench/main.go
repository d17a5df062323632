// Command connbench measures CONNECT tunnels through a forward proxy:
// how many tunnels per second can be set up end to end (mode connect:
// CONNECT, the proxy's 200, then the first byte the origin sends), and how
// fast one tunnel carries a download (mode stream). It prints one JSON
// object (see bench/internal/loadgen.Result).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/aupguard/aupguard/bench/internal/loadgen"
)

func main() {
	mode := flag.String("mode", "connect", "connect (tunnels set up per second) or stream (MB/s through one tunnel)")
	proxy := flag.String("proxy", "127.0.0.1:3128", "proxy address")
	target := flag.String("target", "", "CONNECT target host:port (the origin's first-byte or stream service)")
	workers := flag.Int("c", 50, "concurrent clients (mode connect)")
	warmup := flag.Duration("warmup", 3*time.Second, "warm-up, not measured")
	window := flag.Duration("d", 10*time.Second, "measured window")
	flag.Parse()
	if *target == "" {
		fmt.Fprintln(os.Stderr, "connbench: -target is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var r loadgen.Result
	switch *mode {
	case "connect":
		r = loadgen.Run(ctx, *workers, *warmup, *window, func() loadgen.Op {
			return func(ctx context.Context) (int64, error) { return connectOnce(ctx, *proxy, *target) }
		})
	case "stream":
		var err error
		if r, err = stream(ctx, *proxy, *target, *warmup, *window); err != nil {
			fmt.Fprintln(os.Stderr, "connbench:", err)
			os.Exit(1)
		}
	default:
		fmt.Fprintf(os.Stderr, "connbench: unknown -mode %q\n", *mode)
		os.Exit(2)
	}
	if err := loadgen.Print(os.Stdout, r); err != nil {
		os.Exit(1)
	}
}

// tunnel dials the proxy, asks for target and reads the proxy's answer
// head; the reader holds whatever the origin sent after it.
func tunnel(ctx context.Context, proxy, target string) (net.Conn, *bufio.Reader, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", proxy)
	if err != nil {
		return nil, nil, err
	}
	if _, err := fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: connbench\r\n\r\n", target, target); err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil {
		_ = c.Close()
		return nil, nil, fmt.Errorf("reading CONNECT answer: %w", err)
	}
	// Squid and aupguard say HTTP/1.1 200, goproxy HTTP/1.0 200.
	if f := strings.Fields(status); len(f) < 2 || f[1] != "200" {
		_ = c.Close()
		return nil, nil, fmt.Errorf("CONNECT refused: %q", strings.TrimSpace(status))
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			_ = c.Close()
			return nil, nil, fmt.Errorf("reading CONNECT answer: %w", err)
		}
		if line == "\r\n" || line == "\n" {
			return c, br, nil
		}
	}
}

// connectOnce is one tunnel set-up, timed until the origin's first byte
// arrives, so the proxy's dial to the origin is part of it.
func connectOnce(ctx context.Context, proxy, target string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, br, err := tunnel(ctx, proxy, target)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	b, err := br.ReadByte()
	if err != nil {
		return 0, fmt.Errorf("first byte: %w", err)
	}
	if b != '+' {
		return 0, fmt.Errorf("first byte %q, want '+'", b)
	}
	// Tunnel set-up is judged on its rate; the byte is not payload.
	return 0, nil
}

// stream reads through one tunnel for warmup+window and reports the
// throughput of the window.
func stream(ctx context.Context, proxy, target string, warmup, window time.Duration) (loadgen.Result, error) {
	c, br, err := tunnel(ctx, proxy, target)
	if err != nil {
		return loadgen.Result{}, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, 256<<10)
	// Whatever arrived with the proxy's answer is warm-up.
	_, _ = br.Discard(br.Buffered())
	if _, err := readUntil(c, buf, time.Now().Add(warmup)); err != nil {
		return loadgen.Result{}, fmt.Errorf("warm-up: %w", err)
	}
	start := time.Now()
	n, err := readUntil(c, buf, start.Add(window))
	took := time.Since(start)
	if err != nil {
		return loadgen.Result{}, fmt.Errorf("stream: %w", err)
	}
	return loadgen.Result{Ops: 1, Rate: 1, MBps: float64(n) / 1e6 / took.Seconds(), Seconds: took.Seconds()}, nil
}

// readUntil reads with large reads (so the client's own system calls
// weigh little) until the deadline, and returns the byte count.
func readUntil(c net.Conn, buf []byte, deadline time.Time) (int64, error) {
	_ = c.SetReadDeadline(deadline)
	var n int64
	for {
		k, err := c.Read(buf)
		n += int64(k)
		if err != nil {
			if isTimeout(err) {
				return n, nil
			}
			return n, err
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
