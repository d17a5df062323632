// Command bareproxy is the ceiling of aupguard's proxy stack: an
// elazarl/goproxy forward proxy with a tuned transport (idle connections
// per host above the benchmark's concurrency) and the same pooled body
// copy as aupguard, and nothing else — no identity, no policy, no events,
// no destination checks. aupguard's proxy is measured against it to see
// what the filtering costs.
//
// With -mitm-cert and -mitm-key it intercepts every CONNECT with goproxy's
// own MITM (goproxy.MitmConnect over the given CA, leaves cached per host),
// verifying origins against the system roots plus -upstream-ca: the
// ceiling of TLS interception on the same stack.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/elazarl/goproxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:13129", "listen address")
	hosts := flag.String("hosts", "", "static names, name=ip[,name=ip...], looked up before DNS (as aupguard's hosts map); *.domain=ip covers every name under domain")
	idle := flag.Int("idle-per-host", 256, "idle origin connections kept per host")
	var mc mitmConfig
	flag.StringVar(&mc.certFile, "mitm-cert", "", "PEM CA certificate: intercept every CONNECT, leaves signed by this CA (with -mitm-key)")
	flag.StringVar(&mc.keyFile, "mitm-key", "", "PEM CA key (with -mitm-cert)")
	flag.StringVar(&mc.upstreamCA, "upstream-ca", "", "PEM file of extra CAs trusted for origins (with -mitm-cert)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m, err := parseHosts(*hosts)
	if err != nil {
		log.Error("bareproxy: -hosts", "err", err)
		os.Exit(2)
	}
	if err := run(ctx, *listen, m, *idle, mc); err != nil {
		log.Error("bareproxy", "err", err)
		os.Exit(1)
	}
}

func parseHosts(s string) (map[string]string, error) {
	m := map[string]string{}
	if s == "" {
		return m, nil
	}
	for _, kv := range strings.Split(s, ",") {
		name, ip, ok := strings.Cut(kv, "=")
		if !ok || net.ParseIP(ip) == nil {
			return nil, fmt.Errorf("%q: want name=ip", kv)
		}
		m[strings.ToLower(name)] = ip
	}
	return m, nil
}

// staticDialer maps names through a fixed table first, like aupguard's
// hosts option, so both proxies reach the origin the same way.
type staticDialer struct {
	hosts map[string]string
	nd    net.Dialer
}

func (d *staticDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip, ok := d.lookup(strings.ToLower(host)); ok {
		addr = net.JoinHostPort(ip, port)
	}
	return d.nd.DialContext(ctx, network, addr)
}

// lookup finds host in the table: the name itself, then "*." and each
// parent domain (the first-visit test's many names).
func (d *staticDialer) lookup(host string) (string, bool) {
	if ip, ok := d.hosts[host]; ok {
		return ip, true
	}
	for h := host; ; {
		_, parent, ok := strings.Cut(h, ".")
		if !ok {
			return "", false
		}
		if ip, ok := d.hosts["*."+parent]; ok {
			return ip, true
		}
		h = parent
	}
}

// copyPooled gives goproxy's io.Copy of each response body the same path
// aupguard's proxy uses: a pooled 64 KiB buffer through the
// ResponseWriter. Without it the server's own ReadFrom sends a small
// response in two writes and allocates a buffer per response, and the
// ceiling would be lower than the stack allows.
func copyPooled(h http.Handler) http.Handler {
	pool := &sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&pooledWriter{ResponseWriter: w, pool: pool}, r)
	})
}

type pooledWriter struct {
	http.ResponseWriter
	pool *sync.Pool
}

func (w *pooledWriter) ReadFrom(src io.Reader) (int64, error) {
	bp := w.pool.Get().(*[]byte)
	defer w.pool.Put(bp)
	return io.CopyBuffer(struct{ io.Writer }{w.ResponseWriter}, struct{ io.Reader }{src}, *bp)
}

// Hijack passes CONNECT's hijack through to the server's writer.
func (w *pooledWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("bareproxy: connection cannot be hijacked")
	}
	return hj.Hijack()
}

// Flush passes flushes (streamed responses) through.
func (w *pooledWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

func run(ctx context.Context, listen string, hosts map[string]string, idlePerHost int, mc mitmConfig) error {
	d := &staticDialer{hosts: hosts, nd: net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          4 * idlePerHost,
		MaxIdleConnsPerHost:   idlePerHost,
		DisableCompression:    true,
		ForceAttemptHTTP2:     true,
	}
	gp := goproxy.NewProxyHttpServer()
	gp.Logger = quietLogger{}
	gp.Tr = tr
	gp.KeepAcceptEncoding = true
	gp.ConnectDial = func(network, addr string) (net.Conn, error) {
		return d.DialContext(context.Background(), network, addr)
	}
	if mc.certFile != "" {
		if err := mc.apply(gp, tr); err != nil {
			return err
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           copyPooled(gp),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("proxy %s\n", ln.Addr())
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	// Hijacked CONNECT tunnels are not tracked by Shutdown: Close ends the
	// listener's side; the process exit ends the rest.
	_ = srv.Close()
	tr.CloseIdleConnections()
	return nil
}
