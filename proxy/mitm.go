package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/aupguard/aupguard/intercept"
)

// TLS interception ("MITM") of the tunnels the policy answers intercept
// for at phase connect.
//
// Built beside goproxy's own MITM rather than on it: goproxy's ConnectMitm
// reads requests in a loop of its own, without the server's header and idle
// timeouts, Expect: 100-continue handling or the tracking this proxy does
// for shutdown, and it presents a leaf for whatever SNI the client sends.
// Here the hijacked client connection is wrapped in a tls.Server whose only
// certificate is the leaf for the CONNECT host the policy decided on, and
// an http.Server serves that one connection: keep-alive, chunked uploads,
// 100-continue and timeouts come from net/http, and every request it reads
// is handed to the same goproxy handler chain (onRequest, the verified
// transport, onResponse, the WebSocket relay) as a plain-HTTP request, with
// its URL set to https://<CONNECT host>. Only HTTP/1.1 is offered in ALPN.

// LeafSource mints the certificate presented to an intercepted client for
// a host (*intercept.Minter).
type LeafSource interface {
	Certificate(host string) (*tls.Certificate, error)
}

// RefusalMemory remembers clients that rejected the interception
// certificate for a host (*intercept.Refusals).
type RefusalMemory interface {
	Remember(client, host string)
	Refused(client, host string) bool
}

// tunnelMode says how a CONNECT tunnel was carried, for the
// aupguard_proxy_tls_connections_total counter.
type tunnelMode uint8

const (
	modeSpliced tunnelMode = iota
	modeIntercept
	modePinnedFallback
)

// mitmState is what every request inside one intercepted connection
// shares: the CONNECT it came from.
type mitmState struct {
	host     string // the CONNECT host, normalised, as the policy saw it
	hostport string // the URL authority requests are sent to
	// certRefused is set once an origin certificate failed verification
	// on this connection, so the counter counts connections.
	certRefused atomic.Bool
}

// interceptTLSConfig presents the leaf for the CONNECT host, whatever name
// the client puts in SNI: requests on this connection go to the host the
// policy decided on, so a certificate for any other name would only be a
// way to front it.
//
// shown is set once the certificate has been handed to the handshake, so
// that a client hanging up before it ever saw one is not taken for a
// device refusing it.
func (s *Server) interceptTLSConfig(host string, shown *atomic.Bool) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			c, err := s.opts.Leaves.Certificate(host)
			shown.Store(err == nil)
			return c, err
		},
	}
}

// mitm answers the CONNECT, completes TLS with the client under the leaf
// for the CONNECT host, and serves the requests that arrive inside.
func (s *Server) mitm(r *http.Request, client net.Conn, _ *goproxy.ProxyCtx) {
	t := txnFrom(r.Context())
	host := t.req.Host
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	var raw = client
	if t.rw != nil && t.rw.buffered != nil && t.rw.buffered.Buffered() > 0 {
		raw = &prefixConn{Conn: client, r: withBuffered(t.rw.buffered, client)}
	}
	var shown atomic.Bool
	tc := tls.Server(raw, s.interceptTLSConfig(host, &shown))
	hctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeouts.TLSHandshake)
	err := tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		if shown.Load() && intercept.IsClientRefusal(err) {
			s.stats.tlsClientRefused.Add(1)
			if !t.failClosed {
				s.refusals.Remember(t.ipStr, host)
			}
			s.log.Info("proxy: client rejected the interception certificate", "client_ip", t.ipStr, "user", t.user,
				"host", host, "fail_closed", t.failClosed, "err", err)
			return
		}
		s.log.Debug("proxy: intercepted TLS handshake failed", "client_ip", t.ipStr, "host", host, "err", err)
		return
	}
	s.stats.tlsIntercepted.Add(1)
	st := &mitmState{host: host, hostport: urlAuthority(host, t.req.Port)}
	s.serveIntercepted(r.Context(), tc, t, st)
	s.log.Debug("proxy: intercepted connection closed", "client_ip", t.ipStr, "user", t.user, "host", host,
		"duration", time.Since(t.start))
}

// serveIntercepted serves one decrypted client connection with an
// http.Server of its own and returns once the connection is closed.
func (s *Server) serveIntercepted(ctx context.Context, tc *tls.Conn, outer *txn, st *mitmState) {
	c := &doneConn{Conn: tc, done: make(chan struct{})}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.serveInner(w, r, outer, st)
		}),
		ReadHeaderTimeout: s.cfg.Timeouts.ReadHeader,
		IdleTimeout:       s.cfg.Timeouts.ClientIdle,
		MaxHeaderBytes:    256 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	// Serve returns as soon as the one connection has been handed to its
	// goroutine; the connection's Close says when that goroutine is done.
	_ = srv.Serve(&oneConnListener{c: c})
	select {
	case <-c.done:
	case <-ctx.Done():
		_ = c.Close()
		<-c.done
	}
}

// serveInner runs one request read inside an intercepted connection
// through the same phases as a plain-HTTP request. The client is who the
// CONNECT said it was (no proxy credentials are sent inside TLS), and the
// request goes to the CONNECT host whatever Host header it carries.
func (s *Server) serveInner(w http.ResponseWriter, r *http.Request, outer *txn, st *mitmState) {
	if r.Method == http.MethodConnect {
		plain(w, http.StatusMethodNotAllowed, "aupguard: CONNECT inside a tunnel is not allowed.\n")
		return
	}
	t := &txn{start: time.Now(), ip: outer.ip, ipStr: outer.ipStr, user: outer.user, groups: outer.groups, mitm: st}
	r.URL.Scheme = "https"
	r.URL.Host = st.hostport
	s.serveProxied(w, r, t)
}

// urlAuthority is host[:port] for an https URL (443 left out).
func urlAuthority(host string, port int) string {
	h := host
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		h = "[" + host + "]"
	}
	if port == 443 || port == 0 {
		return h
	}
	return h + ":" + strconv.Itoa(port)
}

// upstreamCertRefused counts an intercepted connection whose origin
// certificate did not verify (once per connection).
func (s *Server) upstreamCertRefused(t *txn) {
	if t.mitm != nil && t.mitm.certRefused.CompareAndSwap(false, true) {
		s.stats.tlsUpstreamRefused.Add(1)
	}
}

// certProblem names why an origin's certificate was refused, in the words
// a technician would search for.
func certProblem(err error) (string, bool) {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var hostErr x509.HostnameError
	var verr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &unknown):
		return "certificate signed by unknown authority", true
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired {
			return "certificate has expired or is not yet valid", true
		}
		return "certificate is not valid: " + invalid.Error(), true
	case errors.As(err, &hostErr):
		return "certificate is not valid for " + hostErr.Host, true
	case errors.As(err, &verr):
		return "certificate could not be verified: " + verr.Err.Error(), true
	}
	return "", false
}

// doneConn closes done on its first Close, which the http.Server does when
// it is finished with the connection (and the WebSocket relay does after a
// hijack).
type doneConn struct {
	net.Conn
	once sync.Once
	done chan struct{}
}

func (c *doneConn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		err = c.Conn.Close()
		close(c.done)
	})
	return err
}

// oneConnListener hands out one connection, then reports itself closed.
type oneConnListener struct {
	c    net.Conn
	once sync.Once
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	var c net.Conn
	l.once.Do(func() { c = l.c })
	if c == nil {
		return nil, net.ErrClosed
	}
	return c, nil
}

func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return l.c.LocalAddr() }

// prefixConn reads the bytes the proxy's HTTP server had already buffered
// past the CONNECT head (a client that sends its ClientHello at once)
// before the connection's own.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }
