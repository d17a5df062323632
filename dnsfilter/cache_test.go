package dnsfilter

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// captureWriter is a dns.ResponseWriter that keeps the packed reply, so
// handler tests see exactly the bytes a client would.
type captureWriter struct {
	remote, local net.Addr
	mu            sync.Mutex
	wire          [][]byte
	closed        bool
}

func newCaptureWriter(tcp bool) *captureWriter {
	if tcp {
		return &captureWriter{
			remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000},
			local:  &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53},
		}
	}
	return &captureWriter{
		remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000},
		local:  &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53},
	}
}

func (w *captureWriter) LocalAddr() net.Addr  { return w.local }
func (w *captureWriter) RemoteAddr() net.Addr { return w.remote }
func (w *captureWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (w *captureWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.wire = append(w.wire, append([]byte(nil), b...))
	return len(b), nil
}

func (w *captureWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	return nil
}
func (w *captureWriter) TsigStatus() error   { return nil }
func (w *captureWriter) TsigTimersOnly(bool) {}
func (w *captureWriter) Hijack()             {}

// reply returns the single reply written, unpacked.
func (w *captureWriter) reply(t testing.TB) *dns.Msg {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.wire) != 1 {
		t.Fatalf("%d replies written, want 1", len(w.wire))
	}
	m := new(dns.Msg)
	if err := m.Unpack(w.wire[0]); err != nil {
		t.Fatalf("reply does not unpack: %v", err)
	}
	return m
}

// ask sends one query through the handler.
func ask(t testing.TB, s *Server, name string, qtype uint16) *dns.Msg {
	t.Helper()
	w := newCaptureWriter(false)
	s.ServeDNS(w, edns(question(name, qtype), 1232))
	return w.reply(t)
}

// newHandlerEnv builds a server (not started: the handler is called
// directly) with a fake clock in front of a real upstream.
func newHandlerEnv(t testing.TB, mod func(*Config)) (*Server, *upstreamServer, *fakeClock) {
	t.Helper()
	up := startUpstream(t)
	clock := newFakeClock()
	cfg := testConfig(up.addr)
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, Options{Decider: realCore(t), Identifier: loopbackLearners,
		Emitter: &recorder{}, Now: clock.Now, NewID: seqIDs(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return s, up, clock
}

func TestCacheHonoursTTL(t *testing.T) {
	s, up, clock := newHandlerEnv(t, nil)
	first := ask(t, s, "allowed.test", dns.TypeA)
	if ttl := first.Answer[0].Header().Ttl; ttl != 300 {
		t.Fatalf("first TTL %d, want 300", ttl)
	}
	clock.Add(100 * time.Second)
	second := ask(t, s, "allowed.test", dns.TypeA)
	if ttl := second.Answer[0].Header().Ttl; ttl != 200 {
		t.Errorf("TTL after 100s in cache = %d, want 200", ttl)
	}
	if n := up.count("allowed.test", dns.TypeA); n != 1 {
		t.Errorf("upstream asked %d times, want 1", n)
	}
	clock.Add(200 * time.Second)
	third := ask(t, s, "allowed.test", dns.TypeA)
	if n := up.count("allowed.test", dns.TypeA); n != 2 {
		t.Errorf("after expiry upstream asked %d times, want 2", n)
	}
	if ttl := third.Answer[0].Header().Ttl; ttl != 300 {
		t.Errorf("refetched TTL %d", ttl)
	}
	if st := s.Stats(); st.CacheHits != 1 || st.CacheMisses != 2 || st.CacheEntries != 1 {
		t.Errorf("Stats = hits %d misses %d entries %d", st.CacheHits, st.CacheMisses, st.CacheEntries)
	}
}

func TestCacheClampsTTL(t *testing.T) {
	s, up, clock := newHandlerEnv(t, func(c *Config) {
		c.Cache.MinTTL = time.Minute
		c.Cache.MaxTTL = time.Hour
	})
	if ttl := ask(t, s, "short.test", dns.TypeA).Answer[0].Header().Ttl; ttl != 60 {
		t.Errorf("5s record served with TTL %d, want min_ttl 60", ttl)
	}
	if ttl := ask(t, s, "long.test", dns.TypeA).Answer[0].Header().Ttl; ttl != 3600 {
		t.Errorf("100000s record served with TTL %d, want max_ttl 3600", ttl)
	}
	clock.Add(30 * time.Second)
	ask(t, s, "short.test", dns.TypeA)
	if n := up.count("short.test", dns.TypeA); n != 1 {
		t.Errorf("short.test fetched %d times within min_ttl", n)
	}
	clock.Add(3600 * time.Second)
	ask(t, s, "long.test", dns.TypeA)
	if n := up.count("long.test", dns.TypeA); n != 2 {
		t.Errorf("long.test fetched %d times, want a refetch after max_ttl", n)
	}
}

func TestNegativeCachingUsesSOAMinimum(t *testing.T) {
	s, up, clock := newHandlerEnv(t, nil)
	// The zone's SOA has TTL 3600 and MINIMUM 300: RFC 2308 says 300.
	nx := ask(t, s, "missing.test", dns.TypeA)
	if nx.Rcode != dns.RcodeNameError || len(nx.Ns) != 1 || nx.Ns[0].Header().Ttl != 300 {
		t.Fatalf("NXDOMAIN = %s", nx)
	}
	nodata := ask(t, s, "allowed.test", dns.TypeSRV)
	if nodata.Rcode != dns.RcodeSuccess || len(nodata.Answer) != 0 || len(nodata.Ns) != 1 {
		t.Fatalf("NODATA = %s", nodata)
	}
	clock.Add(299 * time.Second)
	ask(t, s, "missing.test", dns.TypeA)
	ask(t, s, "allowed.test", dns.TypeSRV)
	if a, b := up.count("missing.test", dns.TypeA), up.count("allowed.test", dns.TypeSRV); a != 1 || b != 1 {
		t.Errorf("negative answers refetched within their TTL: %d, %d", a, b)
	}
	clock.Add(2 * time.Second)
	ask(t, s, "missing.test", dns.TypeA)
	if n := up.count("missing.test", dns.TypeA); n != 2 {
		t.Errorf("NXDOMAIN kept past the SOA minimum: %d fetches", n)
	}

	// negative_ttl caps it further.
	s2, up2, clock2 := newHandlerEnv(t, func(c *Config) { c.Cache.NegativeTTL = 30 * time.Second })
	if ttl := ask(t, s2, "missing.test", dns.TypeA).Ns[0].Header().Ttl; ttl != 30 {
		t.Errorf("negative TTL %d, want negative_ttl 30", ttl)
	}
	clock2.Add(31 * time.Second)
	ask(t, s2, "missing.test", dns.TypeA)
	if n := up2.count("missing.test", dns.TypeA); n != 2 {
		t.Errorf("fetches %d, want 2", n)
	}
}

func TestCacheDisabled(t *testing.T) {
	s, up, _ := newHandlerEnv(t, func(c *Config) { c.Cache.Size = 0 })
	ask(t, s, "allowed.test", dns.TypeA)
	ask(t, s, "allowed.test", dns.TypeA)
	if n := up.count("allowed.test", dns.TypeA); n != 2 {
		t.Errorf("with the cache off the upstream saw %d queries, want 2", n)
	}
}

func TestCacheCollapsesConcurrentQueries(t *testing.T) {
	s, up, _ := newHandlerEnv(t, nil)
	gate := make(chan struct{})
	arrived := make(chan string, 1)
	up.mu.Lock()
	up.gate, up.arrived = gate, arrived
	up.mu.Unlock()

	const n = 8
	replies := make([]*dns.Msg, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newCaptureWriter(false)
			s.ServeDNS(w, edns(question("stale.test", dns.TypeA), 1232))
			replies[i] = w.reply(t)
		}()
	}
	// Hold the one upstream query until every client query has missed the
	// cache and is waiting for it.
	<-arrived
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().CacheMisses < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d queries reached the cache", s.Stats().CacheMisses)
		}
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()
	if c := up.count("stale.test", dns.TypeA); c != 1 {
		t.Errorf("%d concurrent identical queries caused %d upstream queries, want 1", n, c)
	}
	for i, r := range replies {
		if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.15" {
			t.Errorf("reply %d: %s", i, r)
		}
	}
}

func TestCacheKeepsDNSSECVariantsApart(t *testing.T) {
	s, up, _ := newHandlerEnv(t, nil)
	ask(t, s, "allowed.test", dns.TypeA)
	w := newCaptureWriter(false)
	m := question("allowed.test", dns.TypeA)
	m.SetEdns0(1232, true)
	s.ServeDNS(w, m)
	if o := w.reply(t).IsEdns0(); o == nil || !o.Do() {
		t.Error("DO bit not echoed")
	}
	if n := up.count("allowed.test", dns.TypeA); n != 2 {
		t.Errorf("a DO query was served the non-DO cache entry (%d upstream queries)", n)
	}
}
