package dnsfilter

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// discardWriter packs the reply like the real writer and drops it.
type discardWriter struct{ captureWriter }

func (w *discardWriter) WriteMsg(m *dns.Msg) error {
	_, err := m.Pack()
	return err
}

func benchServer(b *testing.B) *Server {
	b.Helper()
	up := startUpstream(b)
	cfg := testConfig(up.addr)
	d := newRecordingDecider(b)
	d.forget = true
	s, err := New(cfg, Options{Decider: d, Identifier: loopbackLearners, Emitter: discardEmitter{}, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func benchQuery(b *testing.B, s *Server, name string, want int) {
	w := &discardWriter{captureWriter{
		remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000},
		local:  &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53},
	}}
	req := edns(question(name, dns.TypeA), 1232)
	// Warm the cache (and check the path is the one meant).
	cw := newCaptureWriter(false)
	s.ServeDNS(cw, req)
	if got := cw.reply(b); got.Rcode != dns.RcodeSuccess || len(got.Answer) != 1 {
		b.Fatalf("warm-up reply %s", got)
	}
	before := s.Stats()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s.ServeDNS(w, req)
	}
	b.StopTimer()
	after := s.Stats()
	switch want {
	case wantCached:
		if after.CacheHits-before.CacheHits != uint64(b.N) {
			b.Fatalf("%d cache hits for %d queries", after.CacheHits-before.CacheHits, b.N)
		}
	case wantBlocked:
		if after.Blocked-before.Blocked != uint64(b.N) {
			b.Fatalf("%d blocks for %d queries", after.Blocked-before.Blocked, b.N)
		}
	}
}

const (
	wantCached = iota
	wantBlocked
)

// BenchmarkCachedAllowedQuery is an allowed name answered from the cache:
// network check, rate-limit bypass, special and hosts lookups, one policy
// decision, a CNAME-chain scan, a cache copy and the reply packing.
func BenchmarkCachedAllowedQuery(b *testing.B) {
	benchQuery(b, benchServer(b), "allowed.test", wantCached)
}

// BenchmarkBlockedQuery is a blocked name: one decision, the block answer
// and its event.
func BenchmarkBlockedQuery(b *testing.B) {
	benchQuery(b, benchServer(b), "casino.test", wantBlocked)
}

// benchFast measures the fast path alone (no sockets): the real server
// answers name once over UDP, which stores its reply, then fastAnswer is
// called with the same packet.
func benchFast(b *testing.B, name string, blocked bool, fold time.Duration) {
	e := startEnv(b, func(c *Config, o *Options) {
		o.Emitter = discardEmitter{}
		c.EventFoldWindow = fold
	})
	e.decider.forget = true
	req := question(name, dns.TypeA)
	exchange(b, "udp", e.udp, req)
	pkt, err := req.Pack()
	if err != nil {
		b.Fatal(err)
	}
	fs := newFastState()
	out := make([]byte, 0, 1232)
	client := netip.MustParseAddr("127.0.0.1")
	e.srv.tick(fs)
	if _, ok := e.srv.fastAnswer(fs, out, pkt, client); !ok {
		b.Fatal("not answered on the fast path")
	}
	b.ReportAllocs()
	for b.Loop() {
		// The server reads the clocks once per batch of up to udpBatch
		// packets; once per query here is the worst case.
		e.srv.tick(fs)
		if _, ok := e.srv.safeFastAnswer(fs, out, pkt, client); !ok {
			b.Fatal("fast path declined")
		}
		e.srv.emit(fs.pending)
		fs.pending = fs.pending[:0]
	}
	if st := e.srv.Stats(); blocked != (st.Blocked > 1) {
		b.Fatalf("stats: %+v", st)
	}
}

// BenchmarkFastAllowedQuery is a repeat of an allowed name on the fast
// path: read the request, the network check, one cached decision, the
// stored reply copied and patched.
func BenchmarkFastAllowedQuery(b *testing.B) { benchFast(b, "allowed.test", false, 5*time.Second) }

// BenchmarkFastBlockedQuery is a repeat of a blocked name on the fast
// path, its event made and folded into the first (event_fold_window 5s);
// the Emitter discards what reaches it.
func BenchmarkFastBlockedQuery(b *testing.B) { benchFast(b, "casino.test", true, 5*time.Second) }

// BenchmarkFastBlockedQueryNoFold is the same with folding off: every
// repeat reaches the Emitter.
func BenchmarkFastBlockedQueryNoFold(b *testing.B) { benchFast(b, "casino.test", true, 0) }
