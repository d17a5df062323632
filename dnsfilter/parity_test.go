package dnsfilter

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/verdict"
)

// parityDecider records every input exactly as the filter built it, before
// the decision core sees it, from the chain (Decide) and from the fast path
// (DecideCached hits: a miss decides nothing).
type parityDecider struct {
	next   CachedDecider
	mu     sync.Mutex
	inputs []verdict.Input
	cached []bool
}

func (d *parityDecider) keep(in *verdict.Input, cached bool) {
	c := *in
	if in.DNS != nil {
		// The fast path reuses its question's storage for every packet.
		q := *in.DNS
		c.DNS = &q
	}
	c.Client.Groups = append([]string(nil), in.Client.Groups...)
	d.mu.Lock()
	d.inputs = append(d.inputs, c)
	d.cached = append(d.cached, cached)
	d.mu.Unlock()
}

func (d *parityDecider) Decide(ctx context.Context, in *verdict.Input) verdict.Decision {
	d.keep(in, false)
	return d.next.Decide(ctx, in)
}

func (d *parityDecider) DecideCached(in *verdict.Input) (verdict.Decision, bool) {
	c := *in
	dec, ok := d.next.DecideCached(&c)
	if ok {
		d.keep(in, true)
	}
	return dec, ok
}

// take returns the inputs recorded since the last take.
func (d *parityDecider) take() []verdict.Input {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.inputs
	d.inputs, d.cached = nil, nil
	return out
}

// answering returns the inputs of the path that answered since the last
// take: the chain's when it decided anything, else the fast path's. A fast
// path that found a cached decision but no stored reply hands the query
// to the chain; what it asked then must be what the chain asks first.
func (d *parityDecider) answering(t *testing.T) []verdict.Input {
	t.Helper()
	d.mu.Lock()
	ins, cached := d.inputs, d.cached
	d.inputs, d.cached = nil, nil
	d.mu.Unlock()
	var fast, chain []verdict.Input
	for i, in := range ins {
		if cached[i] {
			fast = append(fast, in)
		} else {
			chain = append(chain, in)
		}
	}
	if len(chain) == 0 {
		return comparableInputs(t, fast)
	}
	chain = comparableInputs(t, chain)
	if fast = comparableInputs(t, fast); len(fast) > len(chain) || !reflect.DeepEqual(fast, chain[:len(fast)]) {
		t.Errorf("the fast path asked other questions than the chain it handed over to:\nfast:  %s\nchain: %s",
			describe(fast), describe(chain))
	}
	return chain
}

// comparable strips what legitimately differs between two askings: the
// instant (both paths must set one).
func comparableInputs(t *testing.T, ins []verdict.Input) []verdict.Input {
	t.Helper()
	out := make([]verdict.Input, len(ins))
	for i, in := range ins {
		if in.Time.IsZero() {
			t.Errorf("input %d about %s has no time", i, in.Request.Host)
		}
		in.Time = time.Time{}
		out[i] = in
	}
	return out
}

// The fast path is a second route to the same answer: for every query it
// handles it must ask the policy the same questions as the chain, answer
// the same bytes and record the same event. Each query is asked twice over
// UDP; the first answer comes from the chain, the second from the fast
// path (or the chain again, for names the fast path leaves to it).
func TestFastPathAndChainAskAndAnswerAlike(t *testing.T) {
	clock := newFakeClock()
	pd := &parityDecider{next: realCore(t).(CachedDecider)}
	e := startEnv(t, func(c *Config, o *Options) {
		o.Now, o.Decider = clock.Now, pd
		c.RateLimit = RateLimitConfig{QPS: 1000, Burst: 1000, Clients: 16}
		c.EventFoldWindow = 0 // each path's event is compared, not folded
	})
	rows := []struct {
		name  string
		req   func() *dns.Msg
		fast  bool
		event events.Kind
	}{
		{"allowed", func() *dns.Msg { return question("allowed.test", dns.TypeA) }, true, ""},
		{"allowed with EDNS", func() *dns.Msg { return edns(question("allowed.test", dns.TypeAAAA), 1232) }, true, ""},
		{"allowed through a CNAME", func() *dns.Msg { return question("alias.test", dns.TypeA) }, true, ""},
		{"NXDOMAIN", func() *dns.Msg { return question("nothing-here.test", dns.TypeA) }, true, ""},
		{"blocked", func() *dns.Msg { return question("casino.test", dns.TypeA) }, true, events.KindBlock},
		{"blocked with EDNS", func() *dns.Msg { return edns(question("Casino.Test", dns.TypeAAAA), 1232) }, true, events.KindBlock},
		{"blocked behind a CNAME", func() *dns.Msg { return question("cloak.test", dns.TypeA) }, false, events.KindBlock},
		{"safe search", func() *dns.Msg { return question("www.google.co.uk", dns.TypeA) }, false, ""},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			pd.take()
			evBefore := len(e.rec.events())
			full := exchange(t, "udp", e.udp, row.req())
			fullIn := pd.answering(t)
			fastBefore := e.srv.Stats().FastAnswers
			second := exchange(t, "udp", e.udp, row.req())
			secondIn := pd.answering(t)
			if got := e.srv.Stats().FastAnswers - fastBefore; (got == 1) != row.fast {
				t.Errorf("%d fast answers to the repeat, want fast=%v", got, row.fast)
			}
			if !same(full, second) {
				t.Errorf("answers differ:\nchain:\n%s\nrepeat:\n%s", full, second)
			}
			if len(fullIn) == 0 || !reflect.DeepEqual(fullIn, secondIn) {
				t.Errorf("policy inputs differ:\nchain:  %s\nrepeat: %s", describe(fullIn), describe(secondIn))
			}
			if row.event == "" {
				return
			}
			evs := e.rec.waitEvents(t, evBefore+2)[evBefore:]
			a, b := evs[0], evs[1]
			if a.Kind != row.event || b.Kind != row.event {
				t.Errorf("event kinds %s, %s; want %s", a.Kind, b.Kind, row.event)
			}
			a.ID, a.Time, b.ID, b.Time = "", time.Time{}, "", time.Time{}
			if !reflect.DeepEqual(a, b) {
				t.Errorf("events differ:\nchain:  %+v\nrepeat: %+v", a, b)
			}
		})
	}
}

// describe lists what each input asked, for failure messages.
func describe(ins []verdict.Input) string {
	s := fmt.Sprintf("%d inputs", len(ins))
	for _, in := range ins {
		s += fmt.Sprintf(" [%s %v %s %+v]", in.Client.IP, in.Client.Groups, in.Request.Host, in.DNS)
	}
	return s
}

// A query beyond its client's budget is dropped before the policy is
// asked, on the fast path (a UDP repeat of a stored answer) as in the
// chain (TCP, which has no fast path): the rate limit sits at one point,
// right after the client check.
func TestRateLimitComesBeforeThePolicyOnBothPaths(t *testing.T) {
	pd := &parityDecider{next: realCore(t).(CachedDecider)}
	e := startEnv(t, func(c *Config, o *Options) {
		o.Decider = pd
		c.RateLimit = RateLimitConfig{QPS: 0.001, Burst: 1, Clients: 16}
	})
	if r := exchange(t, "udp", e.udp, question("casino.test", dns.TypeA)); len(r.Answer) != 1 {
		t.Fatalf("first query: %s", r)
	}
	if len(pd.take()) == 0 {
		t.Fatal("the first query did not ask the policy")
	}
	for _, netw := range []string{"udp", "tcp"} {
		addr := e.udp
		if netw == "tcp" {
			addr = e.tcp
		}
		c := &dns.Client{Net: netw, Timeout: 500 * time.Millisecond}
		if r, _, err := c.Exchange(question("casino.test", dns.TypeA), addr); err == nil {
			t.Errorf("%s: query beyond the budget answered: %s", netw, r)
		}
		if ins := pd.take(); len(ins) != 0 {
			t.Errorf("%s: a rate-limited query asked the policy: %s", netw, describe(ins))
		}
	}
	if st := e.srv.Stats(); st.RateLimited != 2 || st.Blocked != 1 || st.FastAnswers != 0 {
		t.Errorf("RateLimited %d, Blocked %d, FastAnswers %d; want 2, 1, 0", st.RateLimited, st.Blocked, st.FastAnswers)
	}
}
