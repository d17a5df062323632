package verdict_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aupguard/aupguard/categories"
	"github.com/aupguard/aupguard/policies"
	"github.com/aupguard/aupguard/rego"
	"github.com/aupguard/aupguard/verdict"
)

// fixedLists serves one real Index built from small list files.
type fixedLists struct{ idx *categories.Index }

func (f fixedLists) Current() *categories.Index { return f.idx }

func buildLists(t testing.TB, lists map[string][]string) fixedLists {
	t.Helper()
	dir := t.TempDir()
	cfg := categories.DefaultConfig()
	cfg.Defaults = false
	for cat, names := range lists {
		p := filepath.Join(dir, cat+".txt")
		var b []byte
		for _, n := range names {
			b = append(b, n+"\n"...)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg.Sources = append(cfg.Sources, categories.Source{Name: "test-" + cat, Category: cat, Format: "domains", Path: p})
	}
	idx, errs := categories.Build(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatalf("build lists: %v", errs)
	}
	return fixedLists{idx}
}

func builtinEngine(t testing.TB) *rego.Engine {
	t.Helper()
	e, err := rego.New(context.Background(), rego.Options{Builtin: policies.FS, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func dirEngine(t testing.TB, files map[string]string) (*rego.Engine, string) {
	t.Helper()
	dir := t.TempDir()
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e, err := rego.New(context.Background(), rego.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return e, dir
}

var testLists = map[string][]string{
	"gambling": {"casino.example", "pokerstars.com"},
	"social":   {"facebook.com"},
}

func socialPost(groups ...string) *verdict.Input {
	return &verdict.Input{
		Source: verdict.SourceProxy, Phase: verdict.PhaseRequest,
		Client:  verdict.Client{IP: "10.0.0.5", Groups: groups},
		Request: verdict.Request{Method: "POST", Scheme: "http", Host: "www.facebook.com", Port: 80, Path: "/share", ContentLength: 120, ContentType: "application/x-www-form-urlencoded"},
	}
}

func TestGroupsNeverShareADifferingVerdict(t *testing.T) {
	d := verdict.NewDecider(builtinEngine(t), buildLists(t, testLists), verdict.Options{CacheSize: 1000})
	ctx := context.Background()
	// Interleave, so each group's verdict is asked for while the other's
	// is cached.
	for i := 0; i < 3; i++ {
		if got := d.Decide(ctx, socialPost()); got.Action != verdict.ActionBlock || got.Rule != "social_publish_unapproved" {
			t.Fatalf("round %d: learner (default group) POST = %+v", i, got)
		}
		if got := d.Decide(ctx, socialPost("approved-publishers")); got.Action != verdict.ActionAllow {
			t.Fatalf("round %d: approved publisher POST = %+v", i, got)
		}
		if got := d.Decide(ctx, socialPost("learners")); got.Action != verdict.ActionBlock {
			t.Fatalf("round %d: explicit learner POST = %+v", i, got)
		}
	}
	st := d.Stats()
	if st.L1Hits == 0 || st.Evaluations > 3 {
		t.Fatalf("cache not used as expected: %+v", st)
	}
}

func TestDefaultGroupIsLearners(t *testing.T) {
	d := verdict.NewDecider(builtinEngine(t), buildLists(t, testLists), verdict.Options{CacheSize: 10})
	in := socialPost()
	d.Decide(context.Background(), in)
	if len(in.Client.Groups) != 1 || in.Client.Groups[0] != "learners" {
		t.Fatalf("groups = %v", in.Client.Groups)
	}
}

func TestCachedVerdictCarriesRevisionsAndIsMarked(t *testing.T) {
	e := builtinEngine(t)
	l := buildLists(t, testLists)
	d := verdict.NewDecider(e, l, verdict.Options{CacheSize: 10})
	in := func() *verdict.Input {
		return &verdict.Input{Source: verdict.SourceProxy, Phase: verdict.PhaseConnect, Request: verdict.Request{Method: "CONNECT", Host: "www.pokerstars.com", Port: 443}}
	}
	first := d.Decide(context.Background(), in())
	second := d.Decide(context.Background(), in())
	if first.Cached != "" || second.Cached != "l1" {
		t.Fatalf("cached markers: %q then %q", first.Cached, second.Cached)
	}
	if second.Action != verdict.ActionBlock || second.Category != "gambling" || second.PolicyRevision != e.Current().Revision() || second.ListsRevision != l.idx.Revision() {
		t.Fatalf("cached decision = %+v", second)
	}
}

const ttlPolicy = `package aupguard

default decision := {"action": "allow", "cache_ttl_s": 0}

decision := {"action": "block", "category": "gambling"} if input.categories.gambling
`

func TestZeroTTLIsNeverCachedAndDefaultTTLIs(t *testing.T) {
	e, _ := dirEngine(t, map[string]string{"main.rego": ttlPolicy})
	d := verdict.NewDecider(e, buildLists(t, testLists), verdict.Options{CacheSize: 10})
	allow := &verdict.Input{Request: verdict.Request{Host: "example.org"}}
	for i := 0; i < 3; i++ {
		d.Decide(context.Background(), allow)
	}
	if st := d.Stats(); st.Evaluations != 3 || st.L1Hits != 0 {
		t.Fatalf("cache_ttl_s 0 was cached: %+v", st)
	}
	block := &verdict.Input{Request: verdict.Request{Host: "casino.example"}}
	for i := 0; i < 3; i++ {
		d.Decide(context.Background(), block)
	}
	if st := d.Stats(); st.Evaluations != 4 || st.L1Hits != 2 {
		t.Fatalf("default TTL not applied: %+v", st)
	}
}

func TestKeyFollowsWhatThePolicyReads(t *testing.T) {
	// This policy reads only the categories: requests that differ in path
	// or client are the same question and share a verdict.
	e, _ := dirEngine(t, map[string]string{"main.rego": ttlPolicy})
	d := verdict.NewDecider(e, buildLists(t, testLists), verdict.Options{CacheSize: 10})
	for i, p := range []string{"/a", "/b", "/c"} {
		in := &verdict.Input{Client: verdict.Client{IP: "10.0.0." + string(rune('1'+i))}, Request: verdict.Request{Host: "casino.example", Path: p}}
		if got := d.Decide(context.Background(), in); got.Action != verdict.ActionBlock {
			t.Fatalf("%s: %+v", p, got)
		}
	}
	if st := d.Stats(); st.Evaluations != 1 {
		t.Fatalf("a policy that ignores path and client evaluated %d times", st.Evaluations)
	}

	// This one reads the path: different paths must not share.
	e2, _ := dirEngine(t, map[string]string{"main.rego": `package aupguard

default decision := {"action": "allow"}

decision := {"action": "block", "category": "piracy"} if endswith(input.request.path, ".torrent")
`})
	d2 := verdict.NewDecider(e2, buildLists(t, testLists), verdict.Options{CacheSize: 10})
	if got := d2.Decide(context.Background(), &verdict.Input{Request: verdict.Request{Host: "files.example", Path: "/a.zip"}}); got.Action != verdict.ActionAllow {
		t.Fatalf("zip: %+v", got)
	}
	if got := d2.Decide(context.Background(), &verdict.Input{Request: verdict.Request{Host: "files.example", Path: "/a.torrent"}}); got.Action != verdict.ActionBlock {
		t.Fatalf("a cached verdict for another path answered: %+v", got)
	}
}

func TestReloadNeverServesOldVerdict(t *testing.T) {
	e, dir := dirEngine(t, map[string]string{"main.rego": ttlPolicy})
	d := verdict.NewDecider(e, buildLists(t, testLists), verdict.Options{CacheSize: 10})
	in := func() *verdict.Input { return &verdict.Input{Request: verdict.Request{Host: "casino.example"}} }
	if got := d.Decide(context.Background(), in()); got.Action != verdict.ActionBlock {
		t.Fatalf("before: %+v", got)
	}
	relaxed := `package aupguard

default decision := {"action": "allow"}
`
	if err := os.WriteFile(filepath.Join(dir, "main.rego"), []byte(relaxed), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Reload(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	if got := d.Decide(context.Background(), in()); got.Action != verdict.ActionAllow || got.Cached != "" {
		t.Fatalf("after reload: %+v (a verdict of the old revision answered)", got)
	}
}

const brokenAtEval = `package aupguard

decision := {"action": "allow"} if input.request.host
decision := {"action": "block"} if input.request.host
`

func TestFailClosedOnEvaluationError(t *testing.T) {
	e, _ := dirEngine(t, map[string]string{"main.rego": brokenAtEval})
	d := verdict.NewDecider(e, buildLists(t, testLists), verdict.Options{CacheSize: 10, FailOpenGroups: []string{"staff"}})
	for i := 0; i < 2; i++ {
		got := d.Decide(context.Background(), &verdict.Input{Request: verdict.Request{Host: "www.bbc.co.uk"}})
		if got.Action != verdict.ActionBlock || got.Rule != "fail_closed" || got.Error == "" || got.Cached != "" {
			t.Fatalf("learner on evaluation error: %+v", got)
		}
	}
	got := d.Decide(context.Background(), &verdict.Input{Client: verdict.Client{Groups: []string{"staff"}}, Request: verdict.Request{Host: "www.bbc.co.uk"}})
	if got.Action != verdict.ActionAllow || got.Rule != "fail_open" || got.Error == "" {
		t.Fatalf("fail-open group on evaluation error: %+v", got)
	}
	// A client with a fail-open group and a protected one stays protected.
	got = d.Decide(context.Background(), &verdict.Input{Client: verdict.Client{Groups: []string{"staff", "learners"}}, Request: verdict.Request{Host: "www.bbc.co.uk"}})
	if got.Action != verdict.ActionBlock {
		t.Fatalf("mixed groups on evaluation error: %+v", got)
	}
	if st := d.Stats(); st.Errors != 4 {
		t.Fatalf("errors counted: %+v", st)
	}
}

// gated delays every evaluation of a real policy until released, so that
// concurrent identical misses are certainly concurrent.
type gated struct {
	verdict.Policy
	started chan struct{}
	release chan struct{}
}

func (g *gated) Evaluate(ctx context.Context, in *verdict.Input) (verdict.Decision, error) {
	g.started <- struct{}{}
	<-g.release
	return g.Policy.Evaluate(ctx, in)
}

type gatedSource struct{ p *gated }

// missingShared is a shared cache that holds nothing and counts the
// lookups, which the decider makes after an L1 miss and right before it
// joins (or starts) the evaluation of that key.
type missingShared struct{ gets atomic.Int64 }

func (m *missingShared) Get(context.Context, string) (verdict.Decision, bool) {
	m.gets.Add(1)
	return verdict.Decision{}, false
}

func (m *missingShared) Set(context.Context, string, verdict.Decision, time.Duration) {}

func (s gatedSource) Active() verdict.Policy { return s.p }

func TestConcurrentIdenticalMissesCollapse(t *testing.T) {
	e, _ := dirEngine(t, map[string]string{"main.rego": ttlPolicy})
	g := &gated{Policy: e.Active(), started: make(chan struct{}, 100), release: make(chan struct{})}
	misses := &missingShared{}
	d := verdict.NewDecider(gatedSource{g}, buildLists(t, testLists), verdict.Options{CacheSize: 10, Shared: misses})
	const n = 20
	var wg sync.WaitGroup
	results := make([]verdict.Decision, n)
	<-func() chan struct{} {
		ready := make(chan struct{})
		go func() {
			<-g.started // the first caller is inside Evaluate
			close(ready)
		}()
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				results[i] = d.Decide(context.Background(), &verdict.Input{Request: verdict.Request{Host: "casino.example"}})
			}(i)
		}
		return ready
	}()
	// Wait until every caller has missed both caches (the shared one is
	// asked just before the collapse), then let the one evaluation finish.
	deadline := time.Now().Add(10 * time.Second)
	for misses.gets.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d callers missed the caches", misses.gets.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	close(g.release)
	wg.Wait()
	for i, r := range results {
		if r.Action != verdict.ActionBlock {
			t.Fatalf("result %d = %+v", i, r)
		}
	}
	if st := d.Stats(); st.Evaluations != 1 {
		t.Fatalf("%d evaluations for %d identical concurrent misses (collapsed %d)", st.Evaluations, n, st.Collapsed)
	}
}

func TestDecideCachedOnlyAnswersWhatDecideCached(t *testing.T) {
	e, dir := dirEngine(t, map[string]string{"main.rego": ttlPolicy})
	d := verdict.NewDecider(e, buildLists(t, testLists), verdict.Options{CacheSize: 10})
	in := func(groups ...string) *verdict.Input {
		return &verdict.Input{Client: verdict.Client{Groups: groups}, Request: verdict.Request{Host: "casino.example"}}
	}
	if _, ok := d.DecideCached(in()); ok {
		t.Fatal("a hit before any decision")
	}
	if st := d.Stats(); st.Evaluations != 0 || st.Decisions != 0 {
		t.Fatalf("DecideCached evaluated or counted a miss: %+v", st)
	}
	want := d.Decide(context.Background(), in())
	got, ok := d.DecideCached(in())
	if !ok || got.Action != want.Action || got.Category != want.Category || got.Cached != "l1" {
		t.Fatalf("after Decide: %+v, %v; Decide said %+v", got, ok, want)
	}
	// This policy reads no groups, so another group asks the same question.
	if _, ok := d.DecideCached(in("staff")); !ok {
		t.Error("staff missed a verdict that does not depend on groups")
	}
	// An entry is checked against in.Time when it is given.
	late := in()
	late.Time = time.Now().Add(10 * time.Minute)
	if _, ok := d.DecideCached(late); ok {
		t.Error("an entry past its 5-minute default TTL was served")
	}
	// A new revision has no cached verdicts.
	if err := os.WriteFile(filepath.Join(dir, "main.rego"), []byte("package aupguard\n\ndefault decision := {\"action\": \"allow\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Reload(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	if got, ok := d.DecideCached(in()); ok {
		t.Errorf("after reload: %+v from the old revision", got)
	}
	if st := d.Stats(); st.Evaluations != 1 || st.L1Hits != 2 {
		t.Errorf("stats %+v: want 1 evaluation and 2 L1 hits", st)
	}

	// With the built-in policy, which reads groups, a learner's verdict is
	// never a publisher's.
	b := verdict.NewDecider(builtinEngine(t), buildLists(t, testLists), verdict.Options{CacheSize: 10})
	b.Decide(context.Background(), socialPost())
	if got, ok := b.DecideCached(socialPost("approved-publishers")); ok {
		t.Errorf("approved publisher answered from the learners' verdict: %+v", got)
	}
	if got, ok := b.DecideCached(socialPost()); !ok || got.Action != verdict.ActionBlock {
		t.Errorf("learner: %+v, %v", got, ok)
	}
}
