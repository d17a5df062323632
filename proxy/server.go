// Package proxy is aupguard's forward proxy, the enforcement point
// learners' devices browse through. Built on elazarl/goproxy, it asks the
// decision core about every plain-HTTP request (phase request), every
// CONNECT tunnel (phase connect) and every response (phase response),
// answers blocks with a block page and a misuse event, and connects only to
// destinations it has resolved and checked itself.
package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/identity"
	"github.com/aupguard/aupguard/intercept"
	"github.com/aupguard/aupguard/verdict"
)

// Decider is the decision core: it fills in input.Categories itself and
// never fails (on evaluation error it returns a fail-closed decision with
// Error set).
type Decider interface {
	Decide(ctx context.Context, in *verdict.Input) verdict.Decision
}

// Emitter receives misuse events. The proxy passes a context that a
// client hanging up does not cancel, so Emit must bound its own wait
// (events.Pipeline waits at most its emit_timeout). An Emitter that also
// has EmitDurable (the pipeline does) is used through it for review
// requests, which a learner is told have been recorded.
type Emitter interface {
	Emit(ctx context.Context, ev events.Event) error
}

// Identity says who a client is; *identity.Identity implements it.
type Identity interface {
	Identify(ip netip.Addr) (groups []string, allowed bool)
	AuthRequired() bool
	AuthEnabled() bool
	Realm() string
	Verify(ip netip.Addr, user, password string) ([]string, error)
}

// Options are the proxy's runtime dependencies.
type Options struct {
	// Decider, Emitter, Identity and NewID are required.
	Decider  Decider
	Emitter  Emitter
	Identity Identity
	// NewID makes event IDs; the block page's reference is the event ID.
	NewID func() string
	// Logger receives the canonical decision lines; nil discards them.
	Logger *slog.Logger
	// Instance names this aupguard instance in events.
	Instance string
	// Hosts maps host names to addresses ahead of DNS (tests point
	// real-looking names at local servers with it).
	Hosts map[string][]netip.Addr
	// Resolver resolves everything else; nil means the config's
	// nameservers, or net.DefaultResolver when there are none.
	Resolver *net.Resolver
	// ProtectedAddrs are this process's other listeners (the admin
	// console, metrics) as host:port; no client may reach them through the
	// proxy, whatever allow_destinations says. The proxy's own listener is
	// always protected. A listener bound to port 0 is only known once bound:
	// hand its address to Protect then.
	ProtectedAddrs []string
	// SafeSearchHost, when set, names the host that serves a search
	// engine's host with safe search enforced (dnsfilter.SafeSearchHost):
	// a tunnel whose decision asks for safe search is dialled there, since
	// proxied clients do not resolve names through the DNS filter.
	SafeSearchHost func(host, level string) (string, bool)
	// PageScorer, when set, scores HTML responses (proxy/pagescore.go).
	PageScorer *PageScorer
	// Leaves, when set, turns on TLS interception: a tunnel the policy
	// answers intercept for at phase connect is opened with a leaf from
	// it, and the requests inside go through the request and response
	// phases. Nil tunnels those connections untouched.
	Leaves LeafSource
	// Refusals remembers clients that rejected the interception
	// certificate; nil with Leaves set keeps up to 10 000 for an hour.
	Refusals RefusalMemory
}

// Stats are the proxy's counters since New: requests and CONNECTs decided,
// blocks and alerts, destinations refused, clients refused for their
// network, failed and rate-limited logins, tunnels (CONNECT and WebSocket)
// open now and refused for the per-client cap, origins that could not be
// reached, events the Emitter failed to take, and review requests.
type Stats struct {
	Requests        uint64 `json:"requests"`
	Connects        uint64 `json:"connects"`
	Blocked         uint64 `json:"blocked"`
	Alerts          uint64 `json:"alerts"`
	Refused         uint64 `json:"destinations_refused"`
	ClientsDenied   uint64 `json:"clients_denied"`
	AuthFailures    uint64 `json:"auth_failures"`
	AuthLimited     uint64 `json:"auth_rate_limited"`
	TunnelsActive   int64  `json:"tunnels_active"`
	TunnelsRejected uint64 `json:"tunnels_rejected"`
	UpstreamErrors  uint64 `json:"upstream_errors"`
	EmitErrors      uint64 `json:"emit_errors"`
	Reviews         uint64 `json:"review_requests"`
	// TLS connections by how they were carried: intercepted (the client
	// accepted our leaf), spliced (tunnelled untouched), pinned fallback
	// (tunnelled untouched because the client rejected our certificate
	// for that host lately), and intercepted connections on which an
	// origin's certificate failed verification (also counted as
	// intercepted). TLSClientRefusals counts the handshakes in which a
	// client rejected our certificate.
	TLSIntercepted         uint64 `json:"tls_intercepted"`
	TLSSpliced             uint64 `json:"tls_spliced"`
	TLSPinnedFallback      uint64 `json:"tls_pinned_fallback"`
	TLSUpstreamCertRefused uint64 `json:"tls_upstream_cert_refused"`
	TLSClientRefusals      uint64 `json:"tls_client_refusals"`
}

type counters struct {
	requests, connects, blocked, alerts, refused, clientsDenied      atomic.Uint64
	authFailures, authLimited, tunnelsRejected, upstreamErr, emitErr atomic.Uint64
	reviews                                                          atomic.Uint64
	tlsIntercepted, tlsSpliced, tlsPinnedFallback                    atomic.Uint64
	tlsUpstreamRefused, tlsClientRefused                             atomic.Uint64
}

// While draining, tunnels and WebSockets quiet for drainIdle are closed
// (checked every drainTick): browsers keep tunnels open between requests,
// and a drain should not wait for them.
const (
	defaultDrainIdle = time.Second
	drainTick        = 200 * time.Millisecond
)

// recentSize bounds the memory of recent blocks kept for review requests.
const recentSize = 10000

// Server is the forward proxy.
type Server struct {
	cfg     Config
	opts    Options
	log     *slog.Logger
	id      Identity
	dialer  *dialer
	tr      *http.Transport
	gp      *goproxy.ProxyHttpServer
	pages   *pages
	tunnels *tunnelLimit
	recent  *lru.Cache[string, *blockRecord]
	// reviewMu makes "already requested?" and "mark requested" one step,
	// so a double-clicked button records one review request.
	reviewMu sync.Mutex
	// replies says how staff answered earlier review requests (the
	// console, set once it exists; see SetReviewReplies).
	replies atomic.Pointer[reviewRepliesBox]
	stats   counters
	// refusals remembers clients that rejected the interception
	// certificate (nil without interception).
	refusals RefusalMemory

	inflight  tracker
	conns     connSet
	drainIdle time.Duration
	// bodyBufs and tunnelBufs are copy buffers for response bodies and
	// tunnels, reused rather than allocated per response or tunnel
	// direction.
	bodyBufs, tunnelBufs bufPool

	mu      sync.Mutex
	srv     *http.Server
	ln      net.Listener
	served  chan struct{}
	base    context.Context
	cancel  context.CancelFunc
	stopped bool
}

// New builds a proxy from a validated config. It does not listen yet.
func New(cfg Config, opts Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("proxy config: %w", err)
	}
	switch {
	case opts.Decider == nil:
		return nil, errors.New("proxy: Options.Decider is required")
	case opts.Emitter == nil:
		return nil, errors.New("proxy: Options.Emitter is required")
	case opts.Identity == nil:
		return nil, errors.New("proxy: Options.Identity is required (without it the proxy would be open to everyone)")
	case opts.NewID == nil:
		return nil, errors.New("proxy: Options.NewID is required")
	}
	s := &Server{
		cfg:     cfg,
		opts:    opts,
		log:     opts.Logger,
		id:      opts.Identity,
		tunnels: &tunnelLimit{max: cfg.MaxTunnelsPerClient, n: map[netip.Addr]int{}},
		conns:   connSet{m: map[*trackedConn]struct{}{}},
	}
	if opts.Leaves != nil {
		s.refusals = opts.Refusals
		if s.refusals == nil {
			s.refusals = intercept.NewRefusals(10_000, time.Hour)
		}
	}
	s.bodyBufs.size = 64 << 10
	s.tunnelBufs.size = 32 << 10
	s.drainIdle = defaultDrainIdle
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if s.recent, err = lru.New[string, *blockRecord](recentSize); err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	if s.pages, err = newPages(cfg.BlockPage); err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	s.dialer = &dialer{
		hosts:    map[string][]netip.Addr{},
		resolver: opts.Resolver,
		nd:       net.Dialer{Timeout: cfg.Timeouts.Dial, KeepAlive: 30 * time.Second},
	}
	if s.dialer.resolver == nil && len(cfg.Nameservers) > 0 {
		servers := make([]string, len(cfg.Nameservers))
		for i, n := range cfg.Nameservers {
			servers[i], _ = nameserverAddr(n) // validated
		}
		s.dialer.resolver = nameserverResolver(servers)
	}
	if s.dialer.resolver == nil {
		s.dialer.resolver = net.DefaultResolver
	}
	// The dialer is only ever given addresses it checked; should a name
	// reach it one day, it must at least be resolved by the same servers.
	s.dialer.nd.Resolver = s.dialer.resolver
	for _, d := range cfg.AllowDestinations {
		p, _ := identity.ParsePrefix(d) // validated
		s.dialer.allow = append(s.dialer.allow, p)
	}
	for name, ips := range opts.Hosts {
		n, err := normHost(name)
		if err != nil {
			return nil, fmt.Errorf("proxy: Options.Hosts: %w", err)
		}
		for _, ip := range ips {
			s.dialer.hosts[n] = append(s.dialer.hosts[n], ip.Unmap().WithZone(""))
		}
	}
	for _, a := range opts.ProtectedAddrs {
		if err := s.dialer.protect(a); err != nil {
			return nil, fmt.Errorf("proxy: Options.ProtectedAddrs: %w", err)
		}
	}
	tlsConf, err := upstreamTLS(cfg.UpstreamCAFile)
	if err != nil {
		return nil, fmt.Errorf("proxy: upstream_ca_file: %w", err)
	}
	s.tr = &http.Transport{
		// Never read proxy settings from the environment: aupguard is the
		// last hop, and HTTP_PROXY in its environment must not reroute
		// learners' traffic.
		Proxy:                 nil,
		DialContext:           s.dialer.DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   cfg.Timeouts.TLSHandshake,
		ResponseHeaderTimeout: cfg.Timeouts.ResponseHeader,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          1024,
		// Many learners fetch from the same few hosts (a CDN, a search
		// engine) at once. With fewer idle connections per host than
		// requests in flight to it, every response beyond the limit
		// closes its connection and the next request dials (and, for
		// HTTPS, handshakes) again: at 50 concurrent clients on one host
		// a limit of 32 cost the proxy a quarter of its throughput
		// (docs/benchmarks.md).
		MaxIdleConnsPerHost: 256,
		// Bodies pass as the origin sent them: no transparent gzip.
		DisableCompression: true,
		ForceAttemptHTTP2:  true,
	}
	s.gp = goproxy.NewProxyHttpServer()
	s.gp.Logger = goproxyLogger{s.log}
	s.gp.Tr = s.tr
	s.gp.ConnectDial = nil // NewProxyHttpServer may read HTTPS_PROXY
	s.gp.KeepAcceptEncoding = true
	s.gp.NonproxyHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plain(w, http.StatusBadRequest, "This is a proxy: send absolute-form requests.\n")
	})
	s.gp.OnRequest().HandleConnectFunc(s.onConnect)
	s.gp.OnRequest().DoFunc(s.onRequest)
	s.gp.OnResponse().DoFunc(s.onResponse)
	return s, nil
}

func upstreamTLS(caFile string) (*tls.Config, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificates found", caFile)
		}
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// Start listens on cfg.Listen and serves in the background; it returns
// once the listener is open. ctx bounds only the listen call: stop the
// server with Shutdown.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("proxy: already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("proxy: listen: %w", err)
	}
	if err := s.dialer.protect(ln.Addr().String()); err != nil {
		_ = ln.Close()
		return err
	}
	s.dialer.setLocal(localAddrs())
	s.base, s.cancel = context.WithCancel(context.Background())
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.Timeouts.ReadHeader,
		IdleTimeout:       s.cfg.Timeouts.ClientIdle,
		MaxHeaderBytes:    256 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return s.base },
	}
	s.ln = ln
	s.served = make(chan struct{})
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("proxy: serve", "err", err)
		}
	}()
	s.log.Info("proxy listening", "addr", ln.Addr().String())
	return nil
}

// Protect adds listeners of this process (host:port, as bound: a
// configured port 0 protects nothing) that no client may reach through the
// proxy, whatever allow_destinations says, like Options.ProtectedAddrs.
// Call it with each listener's bound address as soon as it is bound; an
// unspecified host protects the port on every local address.
func (s *Server) Protect(addrs ...string) error {
	for _, a := range addrs {
		if err := s.dialer.protect(a); err != nil {
			return fmt.Errorf("proxy: %w", err)
		}
	}
	return nil
}

// Addr is the listening address (useful with port 0); nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Shutdown stops accepting, then waits for requests, tunnels and
// WebSockets in flight to finish until ctx is done; whatever is still open
// then is closed, and ctx's error returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv, served := s.srv, s.served
	if srv == nil || s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	s.mu.Unlock()

	drainCtx, stopDrain := context.WithCancel(ctx)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		tick := time.NewTicker(drainTick)
		defer tick.Stop()
		for {
			s.conns.closeIdle(s.drainIdle)
			select {
			case <-drainCtx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	err := srv.Shutdown(ctx)
	if err == nil {
		err = s.inflight.wait(ctx)
	}
	stopDrain()
	<-drained
	if err != nil {
		// Out of time: cut what is left, including hijacked tunnels.
		s.conns.closeAll()
		_ = srv.Close()
		s.cancel()
	}
	<-served
	s.tr.CloseIdleConnections()
	if err == nil {
		s.cancel()
	}
	return err
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	c := &s.stats
	return Stats{
		Requests:        c.requests.Load(),
		Connects:        c.connects.Load(),
		Blocked:         c.blocked.Load(),
		Alerts:          c.alerts.Load(),
		Refused:         c.refused.Load(),
		ClientsDenied:   c.clientsDenied.Load(),
		AuthFailures:    c.authFailures.Load(),
		AuthLimited:     c.authLimited.Load(),
		TunnelsActive:   s.tunnels.active.Load(),
		TunnelsRejected: c.tunnelsRejected.Load(),
		UpstreamErrors:  c.upstreamErr.Load(),
		EmitErrors:      c.emitErr.Load(),
		Reviews:         c.reviews.Load(),

		TLSIntercepted:         c.tlsIntercepted.Load(),
		TLSSpliced:             c.tlsSpliced.Load(),
		TLSPinnedFallback:      c.tlsPinnedFallback.Load(),
		TLSUpstreamCertRefused: c.tlsUpstreamRefused.Load(),
		TLSClientRefusals:      c.tlsClientRefused.Load(),
	}
}

// ServeHTTP is the gate in front of goproxy: it identifies the client,
// refuses anyone outside the configured networks, runs the 407 flow, and
// serves the proxy's own pages (the review form's target).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.inflight.add()
	defer s.inflight.done()
	t := &txn{start: time.Now()}
	t.ip = clientAddr(r.RemoteAddr)
	groups, allowed := s.id.Identify(t.ip)
	if !allowed {
		s.stats.clientsDenied.Add(1)
		s.log.Debug("client refused: not in identity.networks", "client_ip", t.ip.String(), "method", r.Method, "host", r.Host)
		w.Header().Set("Connection", "close")
		plain(w, http.StatusForbidden, "aupguard: this proxy only serves the provider's own networks.\n")
		return
	}
	t.ipStr = t.ip.String()
	t.groups = groups
	proxied := r.Method == http.MethodConnect || r.URL.IsAbs()
	if !s.authenticate(w, r, t, proxied) {
		return
	}
	if !proxied || s.isLocalHost(r.URL.Hostname()) {
		s.serveLocal(w, r, t)
		return
	}
	s.serveProxied(w, r, t)
}

// serveProxied runs a request through goproxy's handler chain (the
// phases, the transport, the WebSocket relay) with t in its context: a
// request or CONNECT from the listener, or a request read inside an
// intercepted connection.
func (s *Server) serveProxied(w http.ResponseWriter, r *http.Request, t *txn) {
	r = r.WithContext(context.WithValue(r.Context(), txnKey{}, t))
	rw := &respWriter{ResponseWriter: w, hijack: s.trackHijack, bufs: &s.bodyBufs}
	t.rw = rw
	s.gp.ServeHTTP(rw, r)
	if rw.conn != nil {
		_ = rw.conn.Close()
	}
	if t.tunnelSlot {
		s.tunnels.release(t.ip)
	}
}

func (s *Server) trackHijack(c net.Conn) *trackedConn {
	tc := newTrackedConn(c, s.cfg.Timeouts.TunnelIdle, s.conns.remove)
	s.conns.add(tc)
	return tc
}

// authenticate runs proxy authentication and reports whether the request
// may go on; when it may not, the answer has been written.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, t *txn, proxied bool) bool {
	if !s.id.AuthEnabled() {
		return true
	}
	hdr := r.Header.Get("Proxy-Authorization")
	if hdr == "" {
		if s.id.AuthRequired() && proxied {
			s.challenge(w, "aupguard: this proxy needs your user name and password.\n")
			return false
		}
		return true
	}
	user, pass, ok := identity.ParseBasic(hdr)
	if !ok {
		s.stats.authFailures.Add(1)
		s.challenge(w, "aupguard: only Basic proxy authentication is supported.\n")
		return false
	}
	groups, err := s.id.Verify(t.ip, user, pass)
	var limited *identity.RateLimitedError
	switch {
	case errors.As(err, &limited):
		s.stats.authLimited.Add(1)
		s.log.Info("proxy auth refused: too many failures", "client_ip", t.ipStr, "user", user)
		secs := int(limited.RetryAfter.Round(time.Second) / time.Second)
		w.Header().Set("Retry-After", fmt.Sprint(max(secs, 1)))
		plain(w, http.StatusTooManyRequests, "aupguard: too many failed logins from this device; try again later.\n")
		return false
	case err != nil:
		s.stats.authFailures.Add(1)
		// The user name is logged to attribute attempts; the password never is.
		s.log.Info("proxy auth failed", "client_ip", t.ipStr, "user", user, "err", err)
		s.challenge(w, "aupguard: wrong user name or password.\n")
		return false
	}
	t.user = user
	if groups != nil {
		t.groups = groups
	}
	return true
}

func (s *Server) challenge(w http.ResponseWriter, msg string) {
	w.Header().Set("Proxy-Authenticate", fmt.Sprintf("Basic realm=%q, charset=\"UTF-8\"", s.id.Realm()))
	plain(w, http.StatusProxyAuthRequired, msg)
}

func (s *Server) isLocalHost(host string) bool {
	return s.cfg.BlockPage.ReviewHost != "" && strings.EqualFold(strings.TrimSuffix(host, "."), s.cfg.BlockPage.ReviewHost)
}

// clientAddr parses the peer address; an unparsable one (not possible from
// a TCP listener) yields the zero Addr, which no network contains.
func clientAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap().WithZone("")
}

// normHost is the one host normaliser of every policy input
// (verdict.NormalizeHost), so the names the proxy dials and looks up are
// the names the policy decided on.
func normHost(h string) (string, error) { return verdict.NormalizeHost(h) }

func localAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip)
			}
		}
	}
	return out
}

// plain writes a short plain-text answer.
func plain(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg))
}

// goproxyLogger routes goproxy's own messages (mostly copy errors when a
// peer hangs up) to Debug: they are noise at any higher level.
type goproxyLogger struct{ l *slog.Logger }

func (g goproxyLogger) Printf(format string, v ...any) {
	if g.l.Enabled(context.Background(), slog.LevelDebug) {
		g.l.Debug(strings.TrimSpace(fmt.Sprintf(format, v...)), "component", "goproxy")
	}
}
