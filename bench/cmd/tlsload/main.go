// Command tlsload measures HTTPS through a forward proxy, as a browser
// uses it: CONNECT, a TLS handshake inside the tunnel verified against the
// CA the client is told to trust (the proxy's for an intercepting proxy,
// the origin's for a spliced tunnel), then HTTP/1.1 requests. wrk cannot
// do this (it has no CONNECT), so the TLS benchmarks use this client.
//
// Modes:
//   - keepalive: each client keeps one tunnel and sends request after
//     request on it (intercepted requests per second).
//   - newconn: each operation is a new tunnel, a full TLS handshake (no
//     session resumption) and one request (TLS connections per second;
//     the proxy has seen the host before, so its leaf is cached).
//   - mint: each operation takes a host name never used before (from
//     -names), visits it on a new connection, then visits it again on
//     another new connection; the first visit's latency includes the
//     proxy minting a certificate for the name, the second's does not.
//     The output's p50/p99 are the first visits', base_p50/base_p99 the
//     second visits'.
//
// Every response must be 200 with the expected body length; a certificate
// the client does not trust (a proxy that did not intercept, or did so
// with another CA) is an error. It prints one JSON object
// (bench/internal/loadgen.Result, plus base_p50_ms and base_p99_ms in mode
// mint).
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aupguard/aupguard/bench/internal/loadgen"
)

func main() {
	mode := flag.String("mode", "keepalive", "keepalive, newconn or mint")
	proxy := flag.String("proxy", "127.0.0.1:3128", "proxy address")
	target := flag.String("url", "", "https:// URL to request (mode mint: its port and path, with each name from -names)")
	caFile := flag.String("ca", "", "PEM file of the CA(s) the client trusts: the proxy's when it intercepts, the origin's when it splices")
	names := flag.String("names", "", "mode mint: file of host names, one a line, each visited once")
	size := flag.Int64("size", 1024, "expected body length (-1: any)")
	workers := flag.Int("c", 50, "concurrent clients")
	warmup := flag.Duration("warmup", 3*time.Second, "warm-up, not measured")
	window := flag.Duration("d", 10*time.Second, "measured window")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		fail(fmt.Errorf("-url must be an absolute https:// URL, got %q", *target))
	}
	roots, err := loadRoots(*caFile)
	if err != nil {
		fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cl := &client{proxy: *proxy, roots: roots, path: u.RequestURI(), port: u.Port(), size: *size}
	if cl.port == "" {
		cl.port = "443"
	}
	var out any
	switch *mode {
	case "keepalive":
		r := loadgen.Run(ctx, *workers, *warmup, *window, func() loadgen.Op {
			k := &kept{client: cl, host: u.Hostname()}
			return k.do
		})
		out = keptResult{Result: r, Conns: cl.opened.Load()}
	case "newconn":
		out = loadgen.Run(ctx, *workers, *warmup, *window, func() loadgen.Op {
			return func(ctx context.Context) (int64, error) { return cl.visit(ctx, u.Hostname()) }
		})
	case "mint":
		list, err := readNames(*names)
		if err != nil {
			fail(err)
		}
		out = mint(ctx, cl, list, *workers, *warmup, *window)
	default:
		fail(fmt.Errorf("unknown -mode %q", *mode))
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tlsload:", err)
	os.Exit(2)
}

func loadRoots(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, errors.New("-ca is required: the client trusts only the CA it is given")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading -ca: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("-ca %s: no PEM certificate", file)
	}
	return p, nil
}

func readNames(file string) ([]string, error) {
	if file == "" {
		return nil, errors.New("mode mint needs -names")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading -names: %w", err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-names %s is empty", file)
	}
	return out, nil
}

// client is what every mode shares: where the proxy is, what to trust and
// what to ask for.
type client struct {
	proxy string
	roots *x509.CertPool
	path  string
	port  string
	size  int64
	// opened counts the connections set up (warm-up included).
	opened atomic.Int64
}

// conn is one TLS connection through a CONNECT tunnel.
type conn struct {
	tc   *tls.Conn
	br   *bufio.Reader
	head []byte
}

// open dials the proxy, asks for host:port, and does the TLS handshake
// inside the tunnel, verifying the certificate against the given roots.
func (c *client) open(ctx context.Context, host string) (*conn, error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", c.proxy)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = raw.Close()
		}
	}()
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	target := net.JoinHostPort(host, c.port)
	if _, err := fmt.Fprintf(raw, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tlsload\r\n\r\n", target, target); err != nil {
		return nil, err
	}
	// The proxy's answer is read byte-wise up to its blank line so that no
	// byte of the TLS handshake that follows is swallowed by a buffer.
	status, err := readHead(raw)
	if err != nil {
		return nil, fmt.Errorf("reading CONNECT answer: %w", err)
	}
	if f := strings.Fields(status); len(f) < 2 || f[1] != "200" {
		return nil, fmt.Errorf("CONNECT refused: %q", status)
	}
	tc := tls.Client(raw, &tls.Config{
		ServerName: host,
		RootCAs:    c.roots,
		NextProtos: []string{"http/1.1"},
		MinVersion: tls.VersionTLS12,
		// The classical key exchanges every peer offers (OpenSSL 3.0 in
		// squid and e2guardian has no post-quantum hybrid, Go's default
		// would pick one with a Go proxy): each handshake costs the same
		// kind of work whichever proxy answers.
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256},
		// No ClientSessionCache: every handshake is a full one.
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("TLS handshake with %s through the proxy: %w", host, err)
	}
	ok = true
	c.opened.Add(1)
	return &conn{
		tc:   tc,
		br:   bufio.NewReaderSize(tc, 16<<10),
		head: fmt.Appendf(nil, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tlsload\r\nAccept: */*\r\n\r\n", c.path, target),
	}, nil
}

// readHead reads the CONNECT answer's head and returns its status line.
func readHead(r io.Reader) (string, error) {
	var line, status []byte
	b := make([]byte, 1)
	for {
		if _, err := io.ReadFull(r, b); err != nil {
			return "", err
		}
		line = append(line, b[0])
		if b[0] != '\n' {
			if len(line) > 8<<10 {
				return "", errors.New("CONNECT answer line too long")
			}
			continue
		}
		if status == nil {
			status = []byte(strings.TrimSpace(string(line)))
		} else if strings.TrimSpace(string(line)) == "" {
			return string(status), nil
		}
		line = line[:0]
	}
}

// get sends one request on the connection and reads the response to the
// end. keep says whether the connection can carry another.
func (c *client) get(ctx context.Context, cn *conn) (n int64, keep bool, err error) {
	stop := context.AfterFunc(ctx, func() { _ = cn.tc.NetConn().SetDeadline(time.Unix(1, 0)) })
	defer stop()
	_ = cn.tc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := cn.tc.Write(cn.head); err != nil {
		return 0, false, err
	}
	resp, err := http.ReadResponse(cn.br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return 0, false, err
	}
	n, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return n, false, err
	}
	if resp.StatusCode != http.StatusOK {
		return n, false, fmt.Errorf("status %s", resp.Status)
	}
	if c.size >= 0 && n != c.size {
		return n, false, fmt.Errorf("body of %d bytes, want %d", n, c.size)
	}
	return n, !resp.Close, nil
}

// visit is one new connection and one request.
func (c *client) visit(ctx context.Context, host string) (int64, error) {
	ctx, cancel := context.WithTimeout(graceful(ctx), 30*time.Second)
	defer cancel()
	cn, err := c.open(ctx, host)
	if err != nil {
		return 0, err
	}
	defer cn.tc.Close()
	n, _, err := c.get(ctx, cn)
	return n, err
}

// kept is one client of mode keepalive: one connection, reopened when the
// proxy closes it (each reopening is a handshake, which the proxy pays).
type kept struct {
	*client
	host string
	cn   *conn
}

func (k *kept) do(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(graceful(ctx), 30*time.Second)
	defer cancel()
	if k.cn == nil {
		cn, err := k.open(ctx, k.host)
		if err != nil {
			return 0, err
		}
		k.cn = cn
	}
	n, keep, err := k.get(ctx, k.cn)
	if err != nil || !keep {
		_ = k.cn.tc.Close()
		k.cn = nil
	}
	return n, err
}

// graceful detaches an operation from the end of the run: the last
// operations finish (bounded by their own timeout) instead of being cut
// off mid-handshake when the window closes. An intercepting proxy may
// take a client that hangs up during the handshake for one that refused
// its certificate (a pinned app) and splice that client's next
// connections, which would turn the next test into a different one.
func graceful(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// keptResult is loadgen.Result plus how many connections the clients had
// to open: a proxy that closes kept-alive connections makes every request
// pay a handshake.
type keptResult struct {
	loadgen.Result
	Conns int64 `json:"conns"`
}

// mintResult is loadgen.Result for the first visits plus the second
// visits' percentiles.
type mintResult struct {
	loadgen.Result
	BaseP50Ms float64 `json:"base_p50_ms"`
	BaseP99Ms float64 `json:"base_p99_ms"`
}

// mint runs mode mint: every worker takes the next unused name, visits it
// twice on new connections, and (in the measured window) records both
// latencies. Running out of names ends the run early and says so.
func mint(ctx context.Context, c *client, names []string, workers int, warmup, window time.Duration) mintResult {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var measuring atomic.Bool
	var mu sync.Mutex
	var first, second []time.Duration
	var errs int64
	var firstErr string
	var exhausted atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(names)) {
					exhausted.Store(true)
					cancel()
					return
				}
				host := names[i]
				t0 := time.Now()
				_, err1 := c.visit(ctx, host)
				d1 := time.Since(t0)
				var err2 error
				var d2 time.Duration
				if err1 == nil {
					t1 := time.Now()
					_, err2 = c.visit(ctx, host)
					d2 = time.Since(t1)
				}
				if !measuring.Load() || ctx.Err() != nil {
					continue
				}
				mu.Lock()
				switch err := errors.Join(err1, err2); {
				case err != nil:
					errs++
					if firstErr == "" {
						firstErr = err.Error()
					}
				default:
					first = append(first, d1)
					second = append(second, d2)
				}
				mu.Unlock()
				if err1 != nil || err2 != nil {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	sleepCtx(ctx, warmup)
	start := time.Now()
	measuring.Store(true)
	sleepCtx(ctx, window)
	measuring.Store(false)
	took := time.Since(start)
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	var r mintResult
	r.Ops, r.Errors, r.FirstError = int64(len(first)), errs, firstErr
	if exhausted.Load() {
		r.Errors++
		r.FirstError = strings.TrimSpace(fmt.Sprintf("ran out of names after %d (give more with -names) %s", len(names), r.FirstError))
	}
	r.Seconds = took.Seconds()
	r.Rate = float64(r.Ops) / r.Seconds
	r.P50Ms, r.P99Ms = pct(first, 0.50), pct(first, 0.99)
	r.BaseP50Ms, r.BaseP99Ms = pct(second, 0.50), pct(second, 0.99)
	return r
}

func pct(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[int(float64(len(s)-1)*p)]) / float64(time.Millisecond)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
