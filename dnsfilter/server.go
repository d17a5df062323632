package dnsfilter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/miekg/dns"
)

// Server is the filtering DNS server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	chain   resolver
	cache   *cacheResolver // nil when the cache is off
	ups     *upstreamResolver
	emitter Emitter
	stats   counters
	// The fast path's collaborators (fastpath.go); fast is nil without a
	// CachedDecider.
	fast     *fastPath
	identify Identifier
	limiter  *clientLimiter
	judge    *policyJudge
	ev       *eventMaker
	// fold folds repeated events (fold.go); nil when off. The sweeper
	// goroutine sends the follow-ups of closed windows until foldStop.
	fold     *folder
	foldStop chan struct{}
	foldDone chan struct{}
	now      func() time.Time
	// realClock says now is time.Now (no test clock injected).
	realClock bool

	inflight atomic.Int64
	// base is the parent of every query's context; Shutdown cancels it.
	base   context.Context
	cancel context.CancelFunc

	pcs []net.PacketConn
	ls  []net.Listener

	mu      sync.Mutex
	started bool
	stopped bool
	servers []*dns.Server
	// serving has, per entry of servers, a channel closed once that
	// server runs (NotifyStartedFunc) or its ActivateAndServe returned:
	// only then does ShutdownContext stop it (see stopServer).
	serving []chan struct{}
	// owned are the sockets the server was started with; shutdown closes
	// them itself, so a serve loop stops whatever state miekg/dns is in.
	owned    []io.Closer
	udp      []*udpServer
	udpWG    sync.WaitGroup
	udpAddr  net.Addr
	tcpAddr  net.Addr
	serveErr chan error
	wg       sync.WaitGroup
}

// udpReadSize is the largest request read over UDP; real queries are far
// smaller, and anything bigger is not a query worth answering.
const udpReadSize = 4096

// New validates cfg and opts and builds the resolver chain. It reads
// resolv.conf for the "system" upstream but binds nothing until Start.
func New(cfg Config, opts Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dns config: %w", err)
	}
	if opts.Decider == nil {
		return nil, errors.New("dnsfilter: Options.Decider is required")
	}
	if opts.Identifier == nil {
		return nil, errors.New("dnsfilter: Options.Identifier is required (without it the server would be an open resolver)")
	}
	for name, addrs := range opts.Hosts {
		if _, ok := dns.IsDomainName(name); !ok || name == "" {
			return nil, fmt.Errorf("dnsfilter: hosts: %q is not a domain name", name)
		}
		for i, a := range addrs {
			if !a.IsValid() {
				return nil, fmt.Errorf("dnsfilter: hosts: %s: address %d is not set", name, i)
			}
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "dns")
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	newID := opts.NewID
	if newID == nil {
		newID = uuid.NewString
	}
	resolvConf := opts.ResolvConf
	if resolvConf == "" {
		resolvConf = "/etc/resolv.conf"
	}
	ups, err := resolveUpstreams(cfg.Upstreams, resolvConf)
	if err != nil {
		return nil, fmt.Errorf("dns config: %w", err)
	}

	ev := &eventMaker{newID: newID, now: now, instance: opts.Instance, log: log}
	s := &Server{cfg: cfg, log: log, emitter: opts.Emitter, pcs: opts.PacketConns, ls: opts.Listeners,
		identify: opts.Identifier, ev: ev, now: now, realClock: opts.Now == nil}
	s.base, s.cancel = context.WithCancel(context.Background())
	s.ups = &upstreamResolver{ups: ups, timeout: cfg.UpstreamTimeout, udpSize: uint16(cfg.EDNSMaxSize), now: now, stats: &s.stats, log: log}
	if s.cache, err = newCacheResolver(cfg.Cache, now, &s.stats); err != nil {
		return nil, fmt.Errorf("dns cache: %w", err)
	}
	if s.limiter, err = newClientLimiter(cfg.RateLimit); err != nil {
		return nil, fmt.Errorf("dns rate limit: %w", err)
	}
	s.fold = newFolder(cfg.EventFoldWindow, newID, &s.stats)
	s.judge = &policyJudge{decider: opts.Decider, ev: ev, stats: &s.stats, fold: s.fold, now: now}
	hosts, special := normalizeHosts(opts.Hosts), specialNames()
	s.chain = s.buildChain(opts, hosts, special)
	s.fast = newFastPath(opts.Decider, cfg.Cache.Size, special, hosts, safeSearchTable())
	return s, nil
}

// Start binds UDP and TCP (or takes Options.PacketConns/Listeners) and
// returns once every socket is being served. ctx bounds only the start-up;
// the server runs until Shutdown.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.stopped {
		return errors.New("dnsfilter: server already started or shut down (a Server runs once)")
	}
	pcs, ls := s.pcs, s.ls
	if len(pcs) == 0 && len(ls) == 0 {
		// Checked before binding too, so a loop is reported as such even
		// when something else holds the port.
		if err := s.checkLoop(s.cfg.Listen); err != nil {
			return err
		}
		var err error
		pcs, ls, err = listen(ctx, s.cfg.Listen, s.cfg.UDPSockets)
		if err != nil {
			return fmt.Errorf("dns listen %s: %w", s.cfg.Listen, err)
		}
	}
	closeAll := func() {
		for _, pc := range pcs {
			_ = pc.Close()
		}
		for _, l := range ls {
			_ = l.Close()
		}
	}
	if len(pcs) > 0 {
		s.udpAddr = pcs[0].LocalAddr()
	}
	if len(ls) > 0 {
		s.tcpAddr = ls[0].Addr()
	}
	if err := s.checkLoop(addrString(s.udpAddr), addrString(s.tcpAddr)); err != nil {
		closeAll()
		return err
	}

	for _, pc := range pcs {
		s.owned = append(s.owned, pc)
	}
	for _, l := range ls {
		s.owned = append(s.owned, l)
	}
	s.serveErr = make(chan error, len(pcs)+len(ls))
	for _, pc := range pcs {
		if uc, ok := pc.(*net.UDPConn); ok {
			u, err := newUDPServer(s, uc)
			if err != nil {
				closeAll()
				return fmt.Errorf("dns udp socket options: %w", err)
			}
			s.udp = append(s.udp, u)
			continue
		}
		// A PacketConn of another kind (a test double, a wrapped socket)
		// gets miekg/dns's generic server, without the fast path.
		s.servers = append(s.servers, &dns.Server{PacketConn: pc, Handler: s, UDPSize: udpReadSize})
	}
	for _, l := range ls {
		s.servers = append(s.servers, &dns.Server{Listener: l, Handler: s})
	}
	for _, srv := range s.servers {
		serving := make(chan struct{})
		s.serving = append(s.serving, serving)
		var once sync.Once
		mark := func() { once.Do(func() { close(serving) }) }
		srv.NotifyStartedFunc = mark
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			// A server that fails before it notifies still counts as
			// settled, so shutdown never waits for a start that will not
			// come.
			defer mark()
			if err := srv.ActivateAndServe(); err != nil {
				s.serveErr <- err
			}
		}()
	}
	for _, u := range s.udp {
		s.udpWG.Add(1)
		go func() {
			defer s.udpWG.Done()
			u.serve()
		}()
	}
	if s.fold != nil {
		s.foldStop, s.foldDone = make(chan struct{}), make(chan struct{})
		go s.sweepFolds()
	}
	s.started = true
	for i := range s.servers {
		select {
		case <-s.serving[i]:
			select {
			case err := <-s.serveErr:
				s.abortStart()
				return fmt.Errorf("dns serve: %w", err)
			default:
			}
		case err := <-s.serveErr:
			s.abortStart()
			return fmt.Errorf("dns serve: %w", err)
		case <-ctx.Done():
			s.abortStart()
			return fmt.Errorf("dns start: %w", ctx.Err())
		}
	}
	s.log.Info("dns filter listening", "udp", addrString(s.udpAddr), "tcp", addrString(s.tcpAddr),
		"udp_sockets", len(pcs), "upstreams", s.ups.upstreamAddrs())
	return nil
}

// startAbortGrace bounds the shutdown of a start-up that was cancelled or
// failed: the caller is leaving, and the few queries that may have arrived
// meanwhile are not worth holding a SIGTERM for.
const startAbortGrace = 2 * time.Second

// abortStart shuts down what Start began; s.mu is held.
func (s *Server) abortStart() {
	ctx, cancel := context.WithTimeout(context.Background(), startAbortGrace)
	defer cancel()
	if err := s.shutdownLocked(ctx); err != nil {
		s.log.Warn("dns start aborted; stopping what had started", "err", err)
	}
}

// checkLoop refuses to forward to ourselves: with "system" on a host whose
// resolv.conf points at this very address, every query would loop until it
// timed out.
func (s *Server) checkLoop(listening ...string) error {
	for _, bound := range listening {
		ap, err := netip.ParseAddrPort(bound)
		if err != nil || ap.Port() == 0 {
			continue
		}
		for _, u := range s.ups.ups {
			up, err := netip.ParseAddrPort(u.addr)
			if err != nil || up.Port() != ap.Port() {
				continue
			}
			ip, bip := up.Addr().Unmap(), ap.Addr().Unmap()
			if ip == bip || (bip.IsUnspecified() && (ip.IsLoopback() || ip.IsUnspecified())) {
				return fmt.Errorf("dns: upstream %s is this server's own address %s (forwarding loop); configure upstreams explicitly", u, bound)
			}
		}
	}
	return nil
}

// Addr returns the bound UDP and TCP addresses (the real ports when Listen
// asked for port 0; both share one port then). Nil before Start.
func (s *Server) Addr() (udp, tcp net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.udpAddr, s.tcpAddr
}

// Shutdown stops accepting queries and waits for those in flight until ctx
// is done, then cancels them. Events of answered queries are still emitted.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdownLocked(ctx)
}

func (s *Server) shutdownLocked(ctx context.Context) error {
	if s.stopped {
		return nil
	}
	s.stopped = true
	// When the grace period ends, in-flight queries are cancelled so the
	// servers' handler wait can finish.
	stop := context.AfterFunc(ctx, s.cancel)
	defer stop()
	var errs []error
	// UDP readers stop first; each waits for its in-flight queries before
	// closing its socket, and those must finish before the cancel below.
	for _, u := range s.udp {
		u.stop()
	}
	udpDone := make(chan struct{})
	go func() {
		s.udpWG.Wait()
		close(udpDone)
	}()
	for i, srv := range s.servers {
		if err := s.stopServer(ctx, srv, s.serving[i]); err != nil {
			errs = append(errs, err)
		}
	}
	// Whatever state a serve loop is in, a closed socket ends it. The UDP
	// readers close their own once their handlers are done.
	for _, c := range s.owned {
		if _, isUDP := c.(*net.UDPConn); !isUDP {
			_ = c.Close()
		}
	}
	select {
	case <-udpDone:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("waiting for dns udp queries: %w", ctx.Err()))
	}
	s.cancel()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		<-udpDone
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("waiting for dns servers: %w", ctx.Err()))
	}
	if s.foldStop != nil {
		close(s.foldStop)
		select {
		case <-s.foldDone:
		case <-ctx.Done():
		}
		// The counts of windows still open go out now, or they would be
		// lost with the process.
		s.send(s.fold.closeAll())
	}
	return errors.Join(errs...)
}

// sweepFolds sends the follow-ups of fold windows that closed, until
// shutdown.
func (s *Server) sweepFolds() {
	defer close(s.foldDone)
	t := time.NewTicker(s.fold.sweepEvery())
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.send(s.fold.expire(s.now()))
		case <-s.foldStop:
			return
		}
	}
}

// stopServer stops one miekg/dns server. ShutdownContext on a server that
// has not yet marked itself started fails ("server not started") and leaves
// it to start and serve for ever afterwards, so it is called only once the
// server runs (serving closed); a server still starting when ctx ends has
// its socket closed instead, which ends its serve loop as soon as it runs.
func (s *Server) stopServer(ctx context.Context, srv *dns.Server, serving <-chan struct{}) error {
	select {
	case <-serving:
	case <-ctx.Done():
		closeSocket(srv)
		return fmt.Errorf("dns server still starting: %w", ctx.Err())
	}
	err := srv.ShutdownContext(ctx)
	var de *dns.Error
	if errors.As(err, &de) {
		// Not started means its ActivateAndServe has already returned
		// (with the error Start reported); nothing is left to stop.
		return nil
	}
	if err != nil {
		closeSocket(srv)
		return fmt.Errorf("dns server shutdown: %w", err)
	}
	return nil
}

func closeSocket(srv *dns.Server) {
	if srv.Listener != nil {
		_ = srv.Listener.Close()
	}
	if srv.PacketConn != nil {
		_ = srv.PacketConn.Close()
	}
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := s.stats.snapshot()
	if s.cache != nil {
		st.CacheEntries = s.cache.len()
	}
	return st
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
