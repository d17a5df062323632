package dnsfilter

import (
	"context"
	"errors"
	"fmt"
	"github.com/aupguard/aupguard/internal/testutil"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/internal/testcore"
	"github.com/aupguard/aupguard/verdict"
)

// ---- a real upstream: a miekg/dns server on loopback serving a small zone

// zone is the test upstream's data. Names are FQDNs, lowercased.
type zone struct {
	rrs map[string][]dns.RR
	soa *dns.SOA
}

func mustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("bad test RR %q: %v", s, err)
	}
	return rr
}

// bigTXT is a 4 KB TXT record: 16 strings of 250 bytes.
func bigTXT() string {
	var b strings.Builder
	b.WriteString("big.test. 300 IN TXT")
	for i := range 16 {
		fmt.Fprintf(&b, " \"%02d%s\"", i, strings.Repeat("x", 248))
	}
	return b.String()
}

// mediumTXT is a TXT record whose reply (about 700 bytes) fits a 1232-byte
// EDNS buffer but not 512 bytes.
func mediumTXT() string {
	var b strings.Builder
	b.WriteString("medium.test. 300 IN TXT")
	for i := range 3 {
		fmt.Fprintf(&b, " \"%02d%s\"", i, strings.Repeat("m", 218))
	}
	return b.String()
}

func testZone(t testing.TB) *zone {
	z := &zone{rrs: map[string][]dns.RR{}}
	z.soa = mustRR(t, "test. 3600 IN SOA ns.test. hostmaster.test. 1 7200 900 1209600 300").(*dns.SOA)
	for _, s := range []string{
		"allowed.test. 300 IN A 192.0.2.10",
		"allowed.test. 300 IN AAAA 2001:db8::10",
		"allowed.test. 300 IN MX 10 mail.allowed.test.",
		"allowed.test. 300 IN TXT \"hello world\" \"second string\"",
		"mail.allowed.test. 300 IN A 192.0.2.11",
		"short.test. 5 IN A 192.0.2.12",
		"long.test. 100000 IN A 192.0.2.13",
		"alert.test. 300 IN A 192.0.2.14",
		"stale.test. 300 IN A 192.0.2.15",
		bigTXT(),
		mediumTXT(),
		// An innocent alias of a name the policy treats differently per
		// group (blocked for learners, an alert for staff).
		"via-alert.test. 300 IN CNAME alert.test.",
		"alias.test. 300 IN CNAME allowed.test.",
		// A CNAME chain that cloaks a blocked tracker behind two innocent names.
		"cloak.test. 300 IN CNAME hop.test.",
		"hop.test. 300 IN CNAME tracker.blocked.test.",
		"tracker.blocked.test. 300 IN A 192.0.2.66",
		"casino.test. 300 IN A 192.0.2.77",
		"casino.test. 300 IN AAAA 2001:db8::77",
		// Search engines: their real addresses, and the safe-search targets
		// at addresses that differ from the published VIPs, so a test can
		// tell an upstream answer from the fallback.
		"www.google.co.uk. 300 IN A 192.0.2.200",
		"www.youtube.com. 300 IN A 192.0.2.201",
		"forcesafesearch.google.com. 300 IN A 192.0.2.120",
		"forcesafesearch.google.com. 300 IN AAAA 2001:db8::120",
		"restrict.youtube.com. 300 IN A 192.0.2.121",
		"restrictmoderate.youtube.com. 300 IN A 192.0.2.122",
		"use-application-dns.net. 300 IN A 192.0.2.250",
	} {
		rr := mustRR(t, s)
		n := dns.CanonicalName(rr.Header().Name)
		z.rrs[n] = append(z.rrs[n], rr)
	}
	return z
}

// answer resolves like a recursive resolver would from this zone: CNAMEs
// are followed, unknown names are NXDOMAIN, known names without the type
// are NODATA; negative answers carry the SOA.
func (z *zone) answer(q dns.Question) (rcode int, ans []dns.RR, ns []dns.RR) {
	name := dns.CanonicalName(q.Name)
	for hops := 0; hops < 8; hops++ {
		rrs, ok := z.rrs[name]
		if !ok {
			if len(ans) == 0 {
				return dns.RcodeNameError, nil, []dns.RR{dns.Copy(z.soa)}
			}
			return dns.RcodeNameError, ans, []dns.RR{dns.Copy(z.soa)}
		}
		var cname *dns.CNAME
		found := false
		for _, rr := range rrs {
			if rr.Header().Rrtype == q.Qtype {
				ans = append(ans, dns.Copy(rr))
				found = true
			}
			if c, ok := rr.(*dns.CNAME); ok {
				cname = c
			}
		}
		if found {
			return dns.RcodeSuccess, ans, nil
		}
		if cname == nil {
			return dns.RcodeSuccess, ans, []dns.RR{dns.Copy(z.soa)}
		}
		ans = append(ans, dns.Copy(cname))
		name = dns.CanonicalName(cname.Target)
	}
	return dns.RcodeServerFailure, nil, nil
}

// upstreamServer is a real DNS server on 127.0.0.1 (UDP and TCP on one
// port) that counts the questions it is asked.
type upstreamServer struct {
	addr string
	zone *zone
	mu   sync.Mutex
	seen map[string]int // "name type" → count
	// gate, when set, is waited on before answering (to hold queries in
	// flight).
	gate    chan struct{}
	arrived chan string
	total   atomic.Int64
}

func (u *upstreamServer) count(name string, qtype uint16) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.seen[dns.CanonicalName(name)+" "+dns.Type(qtype).String()]
}

func (u *upstreamServer) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	q := r.Question[0]
	u.total.Add(1)
	u.mu.Lock()
	u.seen[dns.CanonicalName(q.Name)+" "+dns.Type(q.Qtype).String()]++
	gate, arrived := u.gate, u.arrived
	u.mu.Unlock()
	if arrived != nil {
		select {
		case arrived <- q.Name:
		default:
		}
	}
	if gate != nil {
		<-gate
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	m.Rcode, m.Answer, m.Ns = u.zone.answer(q)
	size := dns.MinMsgSize
	if o := r.IsEdns0(); o != nil {
		m.SetEdns0(dns.DefaultMsgSize, o.Do())
		size = int(o.UDPSize())
	}
	if _, ok := w.RemoteAddr().(*net.UDPAddr); ok {
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

func startUpstream(t testing.TB) *upstreamServer {
	t.Helper()
	u := &upstreamServer{zone: testZone(t), seen: map[string]int{}}
	pcs, ls, err := listen(context.Background(), "127.0.0.1:0", 1)
	if err != nil {
		t.Fatalf("upstream listen: %v", err)
	}
	u.addr = pcs[0].LocalAddr().String()
	serveTest(t, &dns.Server{PacketConn: pcs[0], Handler: u})
	serveTest(t, &dns.Server{Listener: ls[0], Handler: u})
	return u
}

// serveTest runs srv until the test ends, returning once it serves.
func serveTest(t testing.TB, srv *dns.Server) {
	t.Helper()
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ActivateAndServe()
	}()
	<-started
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
	})
}

// blackhole is an upstream that reads queries and never answers, on UDP
// and TCP.
func blackhole(t testing.TB) string {
	t.Helper()
	pcs, ls, err := listen(context.Background(), "127.0.0.1:0", 1)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		buf := make([]byte, 4096)
		for {
			if _, _, err := pcs[0].ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		defer wg.Done()
		for {
			c, err := ls[0].Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = pcs[0].Close()
		_ = ls[0].Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return pcs[0].LocalAddr().String()
}

// closedPort returns a loopback address nothing listens on (UDP gets
// ICMP port unreachable, TCP a reset).
func closedPort(t testing.TB) string {
	t.Helper()
	pcs, ls, err := listen(context.Background(), "127.0.0.1:0", 1)
	if err != nil {
		t.Fatal(err)
	}
	addr := pcs[0].LocalAddr().String()
	_ = pcs[0].Close()
	_ = ls[0].Close()
	return addr
}

// ---- collaborators

// testDomains are the test zone's names added to the real lists, per
// category. With the built-in policies, learners are blocked from all
// three; staff may reach hacking sites, recorded as an alert.
var testDomains = map[string][]string{
	"gambling": {"casino.test"},
	"malware":  {"blocked.test"},
	"hacking":  {"alert.test"},
}

// The real decision core (built-in policies and bundled lists, see
// internal/testcore) takes a couple of seconds to build, so the package's
// tests share one. Its verdict cache is keyed by the whole input, so
// sharing cannot change an answer.
var (
	coreOnce sync.Once
	core     Decider
)

func realCore(t testing.TB) Decider {
	t.Helper()
	coreOnce.Do(func() { core = testcore.NewDecider(t, testDomains) })
	if core == nil {
		t.Fatal("the decision core failed to build (see the first test that asked for it)")
	}
	return core
}

// recordingDecider passes every decision to the real core and remembers
// the inputs, so tests can see what the filter asked.
type recordingDecider struct {
	next  Decider
	calls atomic.Int64
	// forget stops recording inputs (fuzzing and benchmarks).
	forget bool
	mu     sync.Mutex
	inputs []verdict.Input
}

func newRecordingDecider(t testing.TB) *recordingDecider {
	return &recordingDecider{next: realCore(t)}
}

func (d *recordingDecider) Decide(ctx context.Context, in *verdict.Input) verdict.Decision {
	d.calls.Add(1)
	if !d.forget {
		d.mu.Lock()
		d.inputs = append(d.inputs, *in)
		d.mu.Unlock()
	}
	return d.next.Decide(ctx, in)
}

// DecideCached makes the recorder a CachedDecider, so the server under
// test has its fast path; a cache hit is recorded like a decision.
func (d *recordingDecider) DecideCached(in *verdict.Input) (verdict.Decision, bool) {
	cd, ok := d.next.(CachedDecider)
	if !ok {
		return verdict.Decision{}, false
	}
	dec, ok := cd.DecideCached(in)
	if ok {
		d.calls.Add(1)
		if !d.forget {
			d.mu.Lock()
			d.inputs = append(d.inputs, *in)
			d.mu.Unlock()
		}
	}
	return dec, ok
}

func (d *recordingDecider) hosts() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, in := range d.inputs {
		out = append(out, in.Request.Host)
	}
	return out
}

// prefixIdentifier serves clients inside one prefix, with fixed groups.
type prefixIdentifier struct {
	prefix netip.Prefix
	groups []string
}

func (p prefixIdentifier) Identify(ip netip.Addr) ([]string, bool) {
	if !p.prefix.Contains(ip) {
		return nil, false
	}
	return p.groups, true
}

var loopbackLearners = prefixIdentifier{prefix: netip.MustParsePrefix("127.0.0.0/8"), groups: []string{"learners"}}

// recorder is an Emitter that keeps events.
type recorder struct {
	mu  sync.Mutex
	evs []events.Event
	err error
}

func (r *recorder) Emit(_ context.Context, ev events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
	return r.err
}

func (r *recorder) events() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.evs...)
}

// waitEvents waits until n events arrived: they are emitted after the
// reply is written, so the client can see the answer first.
func (r *recorder) waitEvents(t testing.TB, n int) []events.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs := r.events()
		if len(evs) >= n {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d events, want %d: %+v", len(evs), n, evs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// seqIDs returns an ID generator producing ev-1, ev-2, ...
func seqIDs() func() string {
	var n atomic.Int64
	return func() string { return "ev-" + strconv.FormatInt(n.Add(1), 10) }
}

// fakeClock is a settable clock for cache ages.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// ---- the server under test

type env struct {
	srv      *Server
	up       *upstreamServer
	decider  *recordingDecider
	rec      *recorder
	udp, tcp string
}

// testConfig is the defaults with the test upstream and short timeouts.
func testConfig(upstreams ...string) Config {
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.UDPSockets = 2
	cfg.Upstreams = upstreams
	cfg.Timeout = 3 * time.Second
	cfg.UpstreamTimeout = time.Second
	cfg.RateLimit.QPS = 0
	return cfg
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startEnv starts an upstream and a server in front of it; mod adjusts the
// config and options.
func startEnv(t testing.TB, mod func(*Config, *Options)) *env {
	t.Helper()
	e := &env{up: startUpstream(t), decider: newRecordingDecider(t), rec: &recorder{}}
	cfg := testConfig(e.up.addr)
	opts := Options{Decider: e.decider, Identifier: loopbackLearners, Emitter: e.rec, NewID: seqIDs(), Logger: quietLogger()}
	if mod != nil {
		mod(&cfg, &opts)
	}
	e.srv = startServer(t, cfg, opts)
	udp, tcp := e.srv.Addr()
	e.udp, e.tcp = udp.String(), tcp.String()
	return e
}

func startServer(t testing.TB, cfg Config, opts Options) *Server {
	t.Helper()
	s, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

// ---- clients

// exchange asks addr with a miekg client over netw.
func exchange(t testing.TB, netw, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: netw, Timeout: 10 * time.Second, UDPSize: 65535}
	resp, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("exchange %s %s: %v", netw, m.Question[0].String(), err)
	}
	return resp
}

func question(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	return m
}

func edns(m *dns.Msg, size uint16) *dns.Msg {
	m.SetEdns0(size, false)
	return m
}

// edeOf returns the response's Extended DNS Error, or nil.
func edeOf(m *dns.Msg) *dns.EDNS0_EDE {
	if o := m.IsEdns0(); o != nil {
		for _, opt := range o.Option {
			if e, ok := opt.(*dns.EDNS0_EDE); ok {
				return e
			}
		}
	}
	return nil
}

// needTool skips the test when a client binary is not installed (fails
// it in CI, which installs them).
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	testutil.Require(t, err == nil, "%s not installed (apt-get install -y dnsutils knot-dnsutils): %v", name, err)
	return p
}

// dig runs dig against addr (host:port) and returns its output.
func dig(t testing.TB, addr string, args ...string) string {
	t.Helper()
	return runTool(t, "dig", addr, args...)
}

func kdig(t testing.TB, addr string, args ...string) string {
	t.Helper()
	return runTool(t, "kdig", addr, args...)
}

func runTool(t testing.TB, tool, addr string, args ...string) string {
	t.Helper()
	bin := needTool(t, tool)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	full := []string{"@" + host, "-p", port, "+time=5", "+tries=1"}
	if tool == "kdig" {
		full = []string{"@" + host, "-p", port, "+timeout=5", "+retry=0"}
	}
	full = append(full, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, full...).CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%s %v: %v\n%s", tool, full, err, out)
		}
		// dig exits non-zero on timeouts; callers check the output.
	}
	return string(out)
}

// digShort is the sorted lines of dig +short.
func digShort(t testing.TB, addr string, args ...string) []string {
	t.Helper()
	out := dig(t, addr, append([]string{"+short"}, args...)...)
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return lines
}

// resolverFor is Go's own resolver, dialing addr for every query.
func resolverFor(addr string) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}
