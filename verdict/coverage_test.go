package verdict_test

import (
	"context"
	"testing"
	"time"

	"github.com/aupguard/aupguard/verdict"
)

// A response or DNS part that is present but empty is a different input
// from one that is absent (the policy sees an empty object, or nothing),
// so the two must never share a cached verdict, in either order.
func TestKeyTellsAbsentPartsFromEmptyOnes(t *testing.T) {
	for _, tc := range []struct {
		part         string
		absent, zero *verdict.Input
	}{
		{"response", &verdict.Input{Request: verdict.Request{Host: "files.example"}},
			&verdict.Input{Request: verdict.Request{Host: "files.example"}, Response: &verdict.Response{}}},
		{"dns", &verdict.Input{Request: verdict.Request{Host: "files.example"}},
			&verdict.Input{Request: verdict.Request{Host: "files.example"}, DNS: &verdict.DNSQuestion{}}},
	} {
		policy := `package aupguard

default decision := {"action": "allow"}

decision := {"action": "block", "category": "test"} if is_object(input.` + tc.part + `)
`
		e, _ := dirEngine(t, map[string]string{"main.rego": policy})
		for _, order := range [][]*verdict.Input{{tc.absent, tc.zero}, {tc.zero, tc.absent}} {
			d := verdict.NewDecider(e, buildLists(t, testLists), verdict.Options{CacheSize: 10})
			for round := range 2 {
				for _, in := range order {
					cp := *in
					want := verdict.ActionAllow
					if in == tc.zero {
						want = verdict.ActionBlock
					}
					if got := d.Decide(context.Background(), &cp); got.Action != want {
						t.Fatalf("%s present=%v (round %d): %+v, want %s", tc.part, in == tc.zero, round, got, want)
					}
				}
			}
			if st := d.Stats(); st.Evaluations != 2 || st.L1Hits != 2 {
				t.Errorf("%s: want one evaluation and one hit each: %+v", tc.part, st)
			}
		}
	}
}

// Explain (aupguard check) completes the input as Decide does but never
// reads or fills the cache.
func TestExplainCompletesInputAndBypassesTheCache(t *testing.T) {
	d := verdict.NewDecider(builtinEngine(t), buildLists(t, testLists), verdict.Options{CacheSize: 10})
	in := &verdict.Input{Source: verdict.SourceProxy, Phase: verdict.PhaseConnect, Request: verdict.Request{Method: "CONNECT", Host: "www.pokerstars.com", Port: 443}}
	got := d.Explain(context.Background(), in)
	if got.Action != verdict.ActionBlock || got.Category != "gambling" || got.Cached != "" {
		t.Fatalf("Explain = %+v", got)
	}
	if len(in.Client.Groups) != 1 || in.Client.Groups[0] != "learners" || in.Time.IsZero() {
		t.Errorf("Explain did not complete the input: groups %v, time %v", in.Client.Groups, in.Time)
	}
	if len(got.Categories["gambling"]) == 0 {
		t.Errorf("Explain does not report the categories: %+v", got.Categories)
	}
	at := time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)
	staff := &verdict.Input{Client: verdict.Client{Groups: []string{"staff"}}, Time: at, Request: verdict.Request{Host: "example.org"}}
	d.Explain(context.Background(), staff)
	if len(staff.Client.Groups) != 1 || staff.Client.Groups[0] != "staff" || !staff.Time.Equal(at) {
		t.Errorf("Explain replaced given groups or time: %v %v", staff.Client.Groups, staff.Time)
	}
	d.Explain(context.Background(), in)
	if st := d.Stats(); st.Evaluations != 3 || st.L1Hits != 0 {
		t.Errorf("Explain used the cache: %+v", st)
	}
	// And a Decide afterwards is a miss: Explain filled nothing.
	if got := d.Decide(context.Background(), in); got.Cached != "" {
		t.Errorf("Decide after Explain was answered from the cache: %+v", got)
	}
}

func TestPurgeEmptiesTheCache(t *testing.T) {
	e, _ := dirEngine(t, map[string]string{"main.rego": ttlPolicy})
	d := verdict.NewDecider(e, buildLists(t, testLists), verdict.Options{CacheSize: 10})
	in := func() *verdict.Input { return &verdict.Input{Request: verdict.Request{Host: "casino.example"}} }
	d.Decide(context.Background(), in())
	if got := d.Decide(context.Background(), in()); got.Cached != "l1" {
		t.Fatalf("not cached before Purge: %+v", got)
	}
	d.Purge()
	if got := d.Decide(context.Background(), in()); got.Cached != "" || got.Action != verdict.ActionBlock {
		t.Fatalf("answered from the cache after Purge: %+v", got)
	}
	// Without a cache Purge has nothing to do.
	verdict.NewDecider(e, buildLists(t, testLists), verdict.Options{}).Purge()
}

func TestOnlyBlockIsBlocked(t *testing.T) {
	for _, a := range []verdict.Action{verdict.ActionBlock, verdict.ActionAllow, verdict.ActionIntercept, ""} {
		d := verdict.Decision{Action: a}
		if got := d.Blocked(); got != (a == verdict.ActionBlock) {
			t.Errorf("Decision{Action: %q}.Blocked() = %v", a, got)
		}
	}
}
