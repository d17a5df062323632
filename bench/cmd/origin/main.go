// Command origin is the benchmarks' local origin: a small, fast HTTP
// server with a fixed 1 KiB page and a 1 MiB download (keep-alive,
// Content-Length), the same pages over HTTPS (-https: a certificate from
// the origin's own CA, written to -tls-dir for the proxies to trust), and
// two raw TCP services for CONNECT tunnels: one that sends a single byte
// as soon as a connection opens (tunnel set-up rate) and one that streams
// without end (tunnel throughput). Every proxy under test fetches the same
// bytes from it.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	httpAddr := flag.String("http", "127.0.0.1:18000", "HTTP listen address (/1k, /1m)")
	firstAddr := flag.String("first", "", "TCP address that writes one byte on accept, then waits for EOF (empty: off)")
	streamAddr := flag.String("stream", "", "TCP address that streams bytes until the peer goes (empty: off)")
	httpsAddr := flag.String("https", "", "HTTPS listen address, same pages (empty: off)")
	tlsDir := flag.String("tls-dir", "", "directory for the origin CA's certificate ca.crt (with -https)")
	tlsNames := flag.String("tls-names", "localhost", "comma-separated names (and *.wildcards) the HTTPS certificate is for")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var tlsConf *tls.Config
	if *httpsAddr != "" {
		var err error
		if tlsConf, err = originTLS(*tlsDir, strings.Split(*tlsNames, ","), time.Now()); err != nil {
			log.Error("origin", "err", err)
			os.Exit(1)
		}
	}
	if err := run(ctx, *httpAddr, *firstAddr, *streamAddr, *httpsAddr, tlsConf, log); err != nil {
		log.Error("origin", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, httpAddr, firstAddr, streamAddr, httpsAddr string, tlsConf *tls.Config, log *slog.Logger) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", httpAddr)
	if err != nil {
		return fmt.Errorf("http listen: %w", err)
	}
	srv := &http.Server{
		Handler:           newHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// The origin's own log would only report peers hanging up at the
		// end of a run.
		ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
	}
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	})
	fmt.Printf("http %s\n", ln.Addr())
	var tlsSrv *http.Server
	if httpsAddr != "" {
		tln, err := lc.Listen(ctx, "tcp", httpsAddr)
		if err != nil {
			_ = srv.Close()
			return fmt.Errorf("https listen: %w", err)
		}
		tlsSrv = &http.Server{
			Handler:           srv.Handler,
			ReadHeaderTimeout: srv.ReadHeaderTimeout,
			IdleTimeout:       srv.IdleTimeout,
			ErrorLog:          srv.ErrorLog,
			TLSConfig:         tlsConf,
			// HTTP/1.1 only, as every proxy under test speaks to origins:
			// a non-nil empty map turns off the server's HTTP/2.
			TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		}
		wg.Go(func() {
			if err := tlsSrv.Serve(tls.NewListener(tln, tlsConf)); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("https: %w", err)
			}
		})
		fmt.Printf("https %s\n", tln.Addr())
	}
	var tcp []*tcpService
	for _, s := range []struct {
		addr  string
		name  string
		serve func(net.Conn)
	}{{firstAddr, "first", serveFirstByte}, {streamAddr, "stream", serveStream}} {
		if s.addr == "" {
			continue
		}
		t, err := listenTCP(ctx, s.addr, s.serve)
		if err != nil {
			_ = srv.Close()
			return fmt.Errorf("%s listen: %w", s.name, err)
		}
		tcp = append(tcp, t)
		fmt.Printf("%s %s\n", s.name, t.ln.Addr())
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		log.Error("serving", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	_ = srv.Close()
	if tlsSrv != nil {
		_ = tlsSrv.Shutdown(sctx)
		_ = tlsSrv.Close()
	}
	for _, t := range tcp {
		t.close()
	}
	wg.Wait()
	return nil
}

// newHandler serves the fixed pages. The bodies are built once, so the
// origin spends its time on the network, not on making bytes.
func newHandler() http.Handler {
	// /1k is a small web page; /1m is a download (a file, media): the
	// kind of large response that content filters pass without scanning
	// its words.
	type resource struct {
		body  []byte
		ctype []string
	}
	res := map[string]resource{
		"/1k": {page(1 << 10), []string{"text/html; charset=utf-8"}},
		"/1m": {page(1 << 20), []string{"application/octet-stream"}},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs, ok := res[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h["Content-Type"] = rs.ctype
		h["Content-Length"] = []string{strconv.Itoa(len(rs.body))}
		_, _ = w.Write(rs.body)
	})
}

// page is an innocuous HTML document of exactly n bytes: content filters
// that scan text (e2guardian) have real words to scan and nothing to block.
func page(n int) []byte {
	const head = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Lesson notes</title></head><body>\n"
	const tail = "</body></html>\n"
	const para = "<p>Week three covers spreadsheets: formulas, relative and absolute references, charts, and how to check a budget for mistakes before it is shared with the team.</p>\n"
	var b strings.Builder
	b.WriteString(head)
	for b.Len() < n-len(tail) {
		b.WriteString(para)
	}
	s := b.String()[:n-len(tail)]
	return []byte(s + tail)
}

type tcpService struct {
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func listenTCP(ctx context.Context, addr string, serve func(net.Conn)) (*tcpService, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	t := &tcpService{ln: ln, conns: map[net.Conn]struct{}{}}
	t.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				// Out of descriptors under a burst: back off and go on.
				time.Sleep(10 * time.Millisecond)
				continue
			}
			t.mu.Lock()
			if t.closed {
				t.mu.Unlock()
				_ = c.Close()
				return
			}
			t.conns[c] = struct{}{}
			t.mu.Unlock()
			t.wg.Go(func() {
				defer func() {
					t.mu.Lock()
					delete(t.conns, c)
					t.mu.Unlock()
					_ = c.Close()
				}()
				serve(c)
			})
		}
	})
	return t, nil
}

// close stops accepting and cuts the connections still open, so the
// stream service's endless writers end too.
func (t *tcpService) close() {
	_ = t.ln.Close()
	t.mu.Lock()
	t.closed = true
	for c := range t.conns {
		_ = c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
}

// serveFirstByte answers a new connection with one byte, which is what a
// tunnel client waits for to know the path works end to end, then waits
// for the client to hang up.
func serveFirstByte(c net.Conn) {
	if _, err := c.Write([]byte{'+'}); err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	_, _ = io.Copy(io.Discard, c)
}

// serveStream writes 64 KiB blocks until the peer goes away.
func serveStream(c net.Conn) {
	buf := make([]byte, 64<<10)
	for i := range buf {
		buf[i] = byte('a' + i%26)
	}
	for {
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}
