package dnsfilter

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/verdict"
)

var foldT0 = time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)

// blockEvent is a DNS block event as the filter makes it.
func blockEvent(id string, at time.Duration) events.Event {
	return events.Event{
		ID: id, Time: foldT0.Add(at), Kind: events.KindBlock, Source: "dns", Phase: "query",
		Action: "block", Category: "gambling", Rule: "gambling", ClientIP: "10.0.0.7",
		Groups: []string{"learners"}, Host: "casino.test", QName: "casino.test", QType: "A",
	}
}

func ids(evs []events.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.ID)
	}
	return out
}

func TestFoldSendsFirstAtOnceAndCountsRepeatsInAFollowUp(t *testing.T) {
	var st counters
	f := newFolder(5*time.Second, seqIDs(), &st)
	first := blockEvent("q1", 0)
	if got := f.filter([]events.Event{first}); len(got) != 1 || got[0].ID != "q1" || got[0].Repeats != 0 || got[0].Ref != "" {
		t.Fatalf("first event: %+v, want it sent unchanged", got)
	}
	aaaa := blockEvent("q3", 2*time.Second)
	aaaa.QType = "AAAA" // A, AAAA and HTTPS for one name are one attempt
	for _, ev := range []events.Event{blockEvent("q2", time.Second), aaaa} {
		if got := f.filter([]events.Event{ev}); len(got) != 0 {
			t.Fatalf("repeat %s sent: %v", ev.ID, ids(got))
		}
	}
	if got := f.expire(foldT0.Add(5*time.Second - time.Nanosecond)); len(got) != 0 {
		t.Fatalf("follow-up before the window closed: %+v", got)
	}
	got := f.expire(foldT0.Add(5 * time.Second))
	if len(got) != 1 {
		t.Fatalf("%d follow-ups, want 1", len(got))
	}
	up := got[0]
	if up.Repeats != 2 || up.Ref != "q1" || up.ID == "q1" || up.ID == "" || !up.Time.Equal(foldT0.Add(2*time.Second)) ||
		up.Host != "casino.test" || up.ClientIP != "10.0.0.7" || up.Kind != events.KindBlock || up.QType != "A" {
		t.Errorf("follow-up %+v: want repeats 2, ref q1, its own id, the last repeat's time, the first's fields", up)
	}
	if n := st.eventsFolded.Load(); n != 2 {
		t.Errorf("eventsFolded %d, want 2", n)
	}
	// A window without repeats closes silently.
	f.filter([]events.Event{blockEvent("q4", 10*time.Second)})
	if got := f.expire(foldT0.Add(time.Minute)); len(got) != 0 {
		t.Errorf("follow-up for a window without repeats: %+v", got)
	}
}

func TestFoldKeepsDifferentAttemptsApart(t *testing.T) {
	f := newFolder(time.Minute, seqIDs(), &counters{})
	variants := map[string]func(*events.Event){
		"client":      func(ev *events.Event) { ev.ClientIP = "10.0.0.8" },
		"host":        func(ev *events.Event) { ev.Host = "poker.test"; ev.QName = "poker.test" },
		"qname":       func(ev *events.Event) { ev.QName = "innocent.test" }, // a CNAME into casino.test
		"kind":        func(ev *events.Event) { ev.Kind = events.KindAlert; ev.Action = "allow" },
		"rule":        func(ev *events.Event) { ev.Rule = "gambling_strict" },
		"category":    func(ev *events.Event) { ev.Category = "betting" },
		"fail-closed": func(ev *events.Event) { ev.Error = "policy unavailable" },
	}
	evs := []events.Event{blockEvent("base", 0)}
	for name, change := range variants {
		ev := blockEvent(name, time.Second)
		change(&ev)
		evs = append(evs, ev)
	}
	if got := f.filter(evs); len(got) != len(evs) {
		t.Errorf("sent %v of %v: different attempts were folded", ids(got), ids(evs))
	}
}

func TestFoldStartsAgainAfterTheWindow(t *testing.T) {
	f := newFolder(5*time.Second, seqIDs(), &counters{})
	f.filter([]events.Event{blockEvent("q1", 0)})
	f.filter([]events.Event{blockEvent("q2", time.Second)})
	// The next attempt after the window: the old window's follow-up first,
	// then the new first event, unchanged.
	got := f.filter([]events.Event{blockEvent("q3", 6*time.Second)})
	if len(got) != 2 || got[0].Ref != "q1" || got[0].Repeats != 1 || got[1].ID != "q3" || got[1].Repeats != 0 {
		t.Fatalf("after the window: %+v", got)
	}
	if got := f.filter([]events.Event{blockEvent("q4", 7*time.Second)}); len(got) != 0 {
		t.Errorf("a repeat in the new window was sent: %v", ids(got))
	}
}

func TestFoldSizeCapClosesTheOldestWindowWithItsCount(t *testing.T) {
	f := newFolder(time.Minute, seqIDs(), &counters{})
	f.max = 2
	a, b, c := blockEvent("a", 0), blockEvent("b", time.Second), blockEvent("c", 2*time.Second)
	b.Host, c.Host = "b.test", "c.test"
	f.filter([]events.Event{a, blockEvent("a2", 500*time.Millisecond), b})
	got := f.filter([]events.Event{c})
	if len(got) != 2 || got[0].Ref != "a" || got[0].Repeats != 1 || got[1].ID != "c" {
		t.Fatalf("third window with room for two: %+v", got)
	}
	if len(f.open) != 2 || f.order.Len() != 2 {
		t.Errorf("%d windows open (%d in order), want 2", len(f.open), f.order.Len())
	}
	// Shutdown reports what is still open.
	f.filter([]events.Event{blockEvent("c2", 3*time.Second)})
	c2 := blockEvent("c3", 3*time.Second)
	c2.Host = "c.test"
	f.filter([]events.Event{c2})
	if got := f.closeAll(); len(got) != 1 || got[0].Ref != "c" || got[0].Repeats != 1 {
		t.Errorf("closeAll: %+v", got)
	}
}

// Through the real server: a device retrying a blocked name makes one
// event at once, and the count follows when the window closes.
func TestBlockedRetriesFoldIntoOneEventAndAFollowUp(t *testing.T) {
	clock := newFakeClock()
	e := startEnv(t, func(c *Config, o *Options) {
		o.Now = clock.Now
		c.EventFoldWindow = 5 * time.Second
	})
	ask := func(name string, qtype uint16) {
		if r := exchange(t, "udp", e.udp, question(name, qtype)); edeOf(r) == nil && len(r.Answer) == 0 && r.Rcode == dns.RcodeSuccess {
			t.Fatalf("%s: not a block answer: %s", name, r)
		}
	}
	ask("casino.test", dns.TypeA)
	// The clock stands still: a first event held for its window would
	// never arrive.
	first := e.rec.waitEvents(t, 1)[0]
	if first.Host != "casino.test" || first.Repeats != 0 || first.Ref != "" {
		t.Fatalf("first event: %+v", first)
	}
	// Retries on the chain and on the fast path, and the AAAA twin.
	ask("casino.test", dns.TypeA)
	ask("casino.test", dns.TypeA)
	ask("casino.test", dns.TypeAAAA)
	// Events go out after the reply: wait until the last repeat is
	// counted, or the clock would move before it is seen.
	deadline := time.Now().Add(10 * time.Second)
	for e.srv.Stats().EventsFolded < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("EventsFolded %d, want 3; events: %+v", e.srv.Stats().EventsFolded, e.rec.events())
		}
		time.Sleep(5 * time.Millisecond)
	}
	clock.Add(6 * time.Second)
	evs := e.rec.waitEvents(t, 2)
	if up := evs[1]; up.Ref != first.ID || up.Repeats != 3 || up.Host != "casino.test" || up.Kind != events.KindBlock {
		t.Fatalf("follow-up: %+v", up)
	}
	// After the window, the next attempt is an event of its own; another
	// name is never folded into it.
	ask("casino.test", dns.TypeA)
	ask("tracker.blocked.test", dns.TypeA)
	e.rec.waitEvents(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	evs = e.rec.events()
	if len(evs) != 4 {
		t.Fatalf("%d events, want 4: %+v", len(evs), evs)
	}
	for _, ev := range evs[2:] {
		if ev.Repeats != 0 || ev.Ref != "" {
			t.Errorf("a new attempt's event carries a count: %+v", ev)
		}
	}
	if st := e.srv.Stats(); st.EventsFolded != 3 || st.Blocked != 6 {
		t.Errorf("EventsFolded %d, Blocked %d; want 3 and 6 (every block is still counted)", st.EventsFolded, st.Blocked)
	}
}

func TestShutdownSendsTheCountsOfOpenWindows(t *testing.T) {
	e := startEnv(t, func(c *Config, _ *Options) { c.EventFoldWindow = 10 * time.Minute })
	for range 3 {
		exchange(t, "udp", e.udp, question("casino.test", dns.TypeA))
	}
	e.rec.waitEvents(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	evs := e.rec.events()
	if len(evs) != 2 || evs[1].Ref != evs[0].ID || evs[1].Repeats != 2 {
		t.Fatalf("after Shutdown: %+v, want the first event and a follow-up with repeats 2", evs)
	}
}

func TestEventFoldWindowIsValidated(t *testing.T) {
	for _, w := range []time.Duration{-time.Second, 11 * time.Minute} {
		cfg := DefaultConfig()
		cfg.EventFoldWindow = w
		if err := cfg.Validate(); err == nil {
			t.Errorf("event_fold_window %s accepted", w)
		}
	}
	cfg := DefaultConfig()
	cfg.EventFoldWindow = 0
	if err := cfg.Validate(); err != nil {
		t.Errorf("event_fold_window 0 (off): %v", err)
	}
}

// The judge recognises a repeat before it builds the event; the key it
// uses must be the key of the event it would have built, or repeats would
// be counted under one key and their first event filed under another.
func TestDecisionKeyIsTheKeyOfTheEventMade(t *testing.T) {
	em := &eventMaker{newID: seqIDs(), now: time.Now}
	for _, client := range []string{"10.0.0.7", "2001:db8::7"} {
		q := &query{name: "innocent.test", fqdn: "innocent.test.", qtype: dns.TypeAAAA, qclass: dns.ClassINET,
			client: netip.MustParseAddr(client), groups: []string{"learners"}}
		for _, d := range []verdict.Decision{
			{Action: verdict.ActionBlock, Category: "gambling", Rule: "gambling", Severity: "medium"},
			{Action: verdict.ActionBlock, Category: "gambling", Rule: "default", Error: "policy unavailable"},
			{Action: verdict.ActionAllow, Category: "hacking", Rule: "hacking", Alert: true},
		} {
			for _, kind := range []events.Kind{events.KindBlock, events.KindAlert} {
				ev := em.make(q, kind, &d, "casino.test")
				if got, want := decisionKey(q, kind, &d, "casino.test"), keyOf(&ev); got != want {
					t.Errorf("decisionKey %+v, key of the event %+v", got, want)
				}
			}
		}
	}
}
