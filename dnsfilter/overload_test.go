package dnsfilter

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/aupguard/aupguard/verdict"
)

// silent asks addr over netw and requires no reply: a dropped query shows
// only as the client's timeout.
func silent(t *testing.T, netw, addr string, m *dns.Msg) {
	t.Helper()
	c := &dns.Client{Net: netw, Timeout: 500 * time.Millisecond}
	r, _, err := c.Exchange(m, addr)
	var ne net.Error
	if err == nil || (!errors.As(err, &ne) || !ne.Timeout()) && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "EOF") {
		t.Errorf("%s %s: got %v, %v; want no reply (dropped)", netw, m.Question[0].Name, r, err)
	}
}

// max_inflight: with the one allowed query held at the upstream, further
// queries the chain would answer are dropped, without a reply, and
// counted; repeats the fast path answers are never in flight and keep
// being answered; once the held query finishes, queries are answered
// again.
func TestMaxInflightDropsAndCounts(t *testing.T) {
	e := startEnv(t, func(c *Config, _ *Options) {
		c.MaxInflight = 1
		// The held query must outlast the checks made meanwhile.
		c.Timeout, c.UpstreamTimeout = 30*time.Second, 30*time.Second
	})
	// A query leaves the count just after its reply is sent: the client
	// may be quicker than that.
	idle := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for e.srv.inflight.Load() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d queries still in flight", e.srv.inflight.Load())
			}
			time.Sleep(time.Millisecond)
		}
	}
	// Stored for the fast path before the load.
	exchange(t, "udp", e.udp, question("allowed.test", dns.TypeA))
	idle()

	gate, arrived := make(chan struct{}), make(chan string, 1)
	e.up.mu.Lock()
	e.up.gate, e.up.arrived = gate, arrived
	e.up.mu.Unlock()
	released := false
	release := func() {
		if !released {
			released = true
			e.up.mu.Lock()
			e.up.gate = nil
			e.up.mu.Unlock()
			close(gate)
		}
	}
	defer release()
	held := make(chan *dns.Msg, 1)
	go func() {
		c := &dns.Client{Net: "udp", Timeout: 20 * time.Second}
		r, _, _ := c.Exchange(question("stale.test", dns.TypeA), e.udp)
		held <- r
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the held query never reached the upstream")
	}

	silent(t, "udp", e.udp, question("mail.allowed.test", dns.TypeA))
	silent(t, "tcp", e.tcp, question("allowed.test", dns.TypeA))
	if st := e.srv.Stats(); st.Overloaded != 2 {
		t.Errorf("Overloaded %d, want 2", st.Overloaded)
	}
	before := e.srv.Stats().FastAnswers
	if r := exchange(t, "udp", e.udp, question("allowed.test", dns.TypeA)); len(r.Answer) != 1 {
		t.Errorf("fast-path repeat under load: %s", r)
	}
	if e.srv.Stats().FastAnswers != before+1 {
		t.Error("the repeat under load was not a fast answer")
	}

	release()
	if r := <-held; r == nil || len(r.Answer) != 1 {
		t.Fatalf("held query: %v", r)
	}
	idle()
	if r := exchange(t, "udp", e.udp, question("mail.allowed.test", dns.TypeA)); len(r.Answer) != 1 {
		t.Errorf("after the load: %s", r)
	}
	idle()
	if r := exchange(t, "tcp", e.tcp, question("allowed.test", dns.TypeAAAA)); len(r.Answer) != 1 {
		t.Errorf("TCP after the load: %s", r)
	}
	if st := e.srv.Stats(); st.Overloaded != 2 {
		t.Errorf("Overloaded %d after the load, want still 2", st.Overloaded)
	}
}

// panicky is the real core, except that deciding about panic.test panics
// (a bug in the decision path), on the chain and in the cache alike.
type panicky struct{ CachedDecider }

func (p panicky) Decide(ctx context.Context, in *verdict.Input) verdict.Decision {
	if in.Request.Host == "panic.test" {
		panic("decider bug")
	}
	return p.CachedDecider.Decide(ctx, in)
}

func (p panicky) DecideCached(in *verdict.Input) (verdict.Decision, bool) {
	if in.Request.Host == "panic.test" {
		panic("decision cache bug")
	}
	return p.CachedDecider.DecideCached(in)
}

// A panic while answering is recovered, counted and answered SERVFAIL,
// over UDP (where the fast path runs on the socket's reading goroutine)
// and TCP; the server keeps answering everyone else.
func TestHandlerPanicIsServfailAndTheServerStaysUp(t *testing.T) {
	e := startEnv(t, func(_ *Config, o *Options) {
		o.Decider = panicky{realCore(t).(CachedDecider)}
	})
	for _, c := range []struct{ netw, addr string }{{"udp", e.udp}, {"tcp", e.tcp}, {"udp", e.udp}} {
		r := exchange(t, c.netw, c.addr, edns(question("panic.test", dns.TypeA), 1232))
		if r.Rcode != dns.RcodeServerFailure {
			t.Errorf("%s: rcode %s, want SERVFAIL", c.netw, dns.RcodeToString[r.Rcode])
		}
		if r := exchange(t, c.netw, c.addr, question("allowed.test", dns.TypeA)); len(r.Answer) != 1 {
			t.Errorf("%s after the panic: %s", c.netw, r)
		}
	}
	if st := e.srv.Stats(); st.Panics < 3 {
		t.Errorf("Panics %d, want at least 3 (one per panicking query)", st.Panics)
	}
}
