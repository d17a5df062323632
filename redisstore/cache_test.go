package redisstore

import (
	"context"
	"fmt"
	"github.com/aupguard/aupguard/internal/testutil"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aupguard/aupguard/categories"
	"github.com/aupguard/aupguard/policies"
	"github.com/aupguard/aupguard/rego"
	"github.com/aupguard/aupguard/verdict"
)

// core is one instance's real decision core: the built-in policies, the
// bundled lists plus a test gambling list, and a decider in front.
type core struct {
	*verdict.Decider
	engine *rego.Engine
	lists  *categories.Index
}

func (c *core) Current() *categories.Index { return c.lists }

// testGambling is listed as gambling by the test list every core loads.
const testGambling = "casino-royale.test"

// The built-in policies and the default lists take a few seconds to load, and
// are immutable, so the cores of one test binary share them; each core
// still gets its own Decider (and so its own cache and counters).
var shared struct {
	once   sync.Once
	engine *rego.Engine
	lists  *categories.Index
	err    error
}

func loadShared(mirror string) (*rego.Engine, *categories.Index, error) {
	shared.once.Do(func() {
		ctx := context.Background()
		dir, err := os.MkdirTemp("", "redisstore-lists")
		if err != nil {
			shared.err = err
			return
		}
		p := filepath.Join(dir, "gambling.txt")
		if err := os.WriteFile(p, []byte(testGambling+"\n"), 0o644); err != nil {
			shared.err = err
			return
		}
		cfg := categories.DefaultConfig()
		cfg.Mirror = mirror
		cfg.CacheDir = filepath.Join(dir, "cache")
		cfg.Sources = append(cfg.Sources, categories.Source{Name: "test-gambling", Category: "gambling", Format: "domains", Path: p})
		idx, errs := categories.Build(ctx, cfg, nil)
		if len(errs) > 0 {
			shared.err = fmt.Errorf("lists: %v", errs)
			return
		}
		eng, err := rego.New(ctx, rego.Options{Builtin: policies.FS, Logger: testLoggerQuiet()})
		if err != nil {
			shared.err = fmt.Errorf("policies: %w", err)
			return
		}
		shared.engine, shared.lists = eng, idx
	})
	return shared.engine, shared.lists, shared.err
}

// newCore builds a core over its own engine when ownEngine is set (two
// instances that must not share anything), else over the shared one.
func newCore(t testing.TB, sc verdict.SharedCache, cacheSize int, ownEngine bool) *core {
	t.Helper()
	eng, idx, err := loadShared(testutil.SharedData(t))
	if err != nil {
		t.Fatal(err)
	}
	if ownEngine {
		eng, err = rego.New(context.Background(), rego.Options{Builtin: policies.FS, Logger: testLoggerQuiet()})
		if err != nil {
			t.Fatal(err)
		}
	}
	c := &core{engine: eng, lists: idx}
	c.Decider = verdict.NewDecider(eng, c, verdict.Options{CacheSize: cacheSize, Shared: sc})
	return c
}

// fixedTime keeps the time-dependent part of cache keys equal between
// instances whatever the clock says.
var fixedTime = time.Date(2026, 3, 4, 14, 5, 0, 0, time.UTC)

func proxyInput(host string) *verdict.Input {
	return &verdict.Input{
		Source:  verdict.SourceProxy,
		Phase:   verdict.PhaseRequest,
		Client:  verdict.Client{IP: "10.1.2.3", User: "jsmith", Groups: []string{"learners"}},
		Request: verdict.Request{Method: "GET", Scheme: "https", Host: host, Port: 443, Path: "/", ContentLength: -1},
		Time:    fixedTime,
	}
}

func TestTwoInstancesShareVerdicts(t *testing.T) {
	srv := startRedis(t, false)
	ctx := t.Context()
	storeA := newStore(t, testConfig(srv), "a")
	storeB := newStore(t, testConfig(srv), "b")
	a := newCore(t, storeA.VerdictCache(), 10000, true)
	b := newCore(t, storeB.VerdictCache(), 10000, true)
	if a.engine.Current().Revision() != b.engine.Current().Revision() {
		t.Fatal("the two engines compiled the same files to different revisions")
	}

	for _, host := range []string{"www." + testGambling, "www.example.org"} {
		t.Run(host, func(t *testing.T) {
			writes := storeA.CacheStats().Writes
			da := a.Decide(ctx, proxyInput(host))
			if da.Error != "" || da.Cached != "" {
				t.Fatalf("instance a: %+v", da)
			}
			eventually(t, "instance a's verdict to reach redis", func() bool { return storeA.CacheStats().Writes > writes })

			before := b.Stats()
			db := b.Decide(ctx, proxyInput(host))
			after := b.Stats()
			if db.Cached != "l2" {
				t.Fatalf("instance b answered from %q, want l2: %+v", db.Cached, db)
			}
			if after.Evaluations != before.Evaluations || after.L2Hits != before.L2Hits+1 {
				t.Fatalf("instance b evaluated: before %+v after %+v", before, after)
			}
			if db.Action != da.Action || db.Rule != da.Rule || db.Category != da.Category || db.Reason != da.Reason ||
				db.Severity != da.Severity || db.Alert != da.Alert || db.PolicyRevision != da.PolicyRevision || db.ListsRevision != da.ListsRevision {
				t.Fatalf("shared verdict differs:\n a %+v\n b %+v", da, db)
			}
			if db.CacheTTL <= 0 {
				t.Fatalf("an L2 hit carries no remaining TTL (%s): the L1 copy would expire at once", db.CacheTTL)
			}
			// The L2 hit went into b's own cache, for as long as Redis keeps it.
			if again := b.Decide(ctx, proxyInput(host)); again.Cached != "l1" {
				t.Fatalf("second decision on b answered from %q, want l1", again.Cached)
			}
		})
	}
	if got := a.Decide(ctx, proxyInput("www."+testGambling)); got.Action != verdict.ActionBlock {
		t.Fatalf("the test gambling host was not blocked: %+v", got)
	}
	st := storeB.CacheStats()
	if st.Hits != 2 || st.Errors != 0 || st.Skipped != 0 {
		t.Fatalf("instance b's redis cache stats: %+v", st)
	}
}

func TestVerdictCacheKeysAndValues(t *testing.T) {
	srv := startRedis(t, false)
	ctx := t.Context()
	s := newStore(t, testConfig(srv), "a")
	c := s.VerdictCache()

	// The opaque key may hold any bytes; neither they nor anything
	// learner-identifying shows in Redis key names.
	key := "\x00rev\xff" + "jsmith|10.1.2.3|https://private.example/path?q=secret"
	d := verdict.Decision{Action: verdict.ActionBlock, Category: "gambling", Rule: "gambling", Reason: "No gambling.",
		Severity: verdict.SeverityMedium, Alert: true, PolicyRevision: "p1", ListsRevision: "l1", Cached: "l1",
		Categories: map[string][]string{"gambling": {"test"}}}
	c.Set(ctx, key, d, time.Minute)
	c.Set(ctx, "never", d, 0) // a TTL of 0 means do not cache
	eventually(t, "the write", func() bool { return s.CacheStats().Writes == 1 })

	keys, err := srv.Client().Keys(ctx, "*").Result()
	must(t, err)
	if len(keys) != 1 {
		t.Fatalf("keys %q, want exactly one", keys)
	}
	if !strings.HasPrefix(keys[0], "aupguard:v:") || len(keys[0]) != len("aupguard:v:")+64 || strings.Contains(keys[0], "jsmith") {
		t.Fatalf("key %q is not prefix + v: + 64 hex digits", keys[0])
	}
	ttl, err := srv.Client().PTTL(ctx, keys[0]).Result()
	must(t, err)
	if ttl <= 0 || ttl > time.Minute {
		t.Fatalf("redis TTL %s, want within the minute given", ttl)
	}

	got, ok := c.Get(ctx, key)
	if !ok {
		t.Fatal("miss after write")
	}
	if got.Cached != "" || got.CacheTTL <= 0 || got.CacheTTL > time.Minute {
		t.Fatalf("cached=%q ttl=%s", got.Cached, got.CacheTTL)
	}
	got.CacheTTL, d.Cached = 0, ""
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", d) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, d)
	}
	if _, ok := c.Get(ctx, key+"x"); ok {
		t.Fatal("hit for another key")
	}
	// A value written by something else is a miss, not a crash.
	must(t, srv.Client().Set(ctx, keys[0], "garbage", time.Minute).Err())
	if _, ok := c.Get(ctx, key); ok {
		t.Fatal("hit on a garbage value")
	}
	st := s.CacheStats()
	if st.Hits != 1 || st.Misses != 1 || st.Errors != 1 {
		t.Fatalf("stats %+v, want 1 hit, 1 miss, 1 error", st)
	}
}

// A stalled Redis (SIGSTOP: connections open, nothing answers) costs
// cache.breaker.failures timeouts, then reads are skipped: decisions go on
// at in-process speed. When Redis is back the breaker's probe closes it.
func TestStalledRedisOpensTheBreaker(t *testing.T) {
	srv := startRedis(t, false)
	ctx := t.Context()
	cfg := testConfig(srv)
	cfg.Cache.Breaker.OpenFor = time.Hour
	cfg.Cache.Timeout = 50 * time.Millisecond
	s := newStore(t, cfg, "a")
	dec := newCore(t, s.VerdictCache(), 10000, false)
	if d := dec.Decide(ctx, proxyInput("warm.example.org")); d.Error != "" {
		t.Fatal(d.Error)
	}

	srv.Pause()
	pre := s.CacheStats()
	const n = 100
	for i := range n {
		d := dec.Decide(ctx, proxyInput(fmt.Sprintf("stalled-%d.example.org", i)))
		if d.Error != "" || d.Action != verdict.ActionAllow {
			t.Fatalf("decision %d while redis stalls: %+v", i, d)
		}
	}
	st := s.CacheStats()
	if st.BreakerOpens != 1 || !st.BreakerOpen {
		t.Fatalf("breaker did not open once: %+v", st)
	}
	failures := uint64(cfg.Cache.Breaker.Failures)
	if errs, skipped := st.Errors-pre.Errors, st.Skipped-pre.Skipped; errs > failures || errs+skipped != n || skipped < n-failures {
		t.Fatalf("a stalled redis cost %d timeouts (want at most %d, the breaker's threshold) and skipped %d reads: %+v",
			errs, failures, skipped, st)
	}
	srv.Resume()
}

func TestBreakerClosesWhenRedisRecovers(t *testing.T) {
	srv := startRedis(t, false)
	ctx := t.Context()
	cfg := testConfig(srv)
	cfg.Cache.Breaker.OpenFor = 50 * time.Millisecond
	s := newStore(t, cfg, "a")
	c := s.VerdictCache()
	d := verdict.Decision{Action: verdict.ActionAllow, PolicyRevision: "p", ListsRevision: "l"}
	c.Set(ctx, "k", d, time.Hour)
	eventually(t, "the write", func() bool { return s.CacheStats().Writes == 1 })

	srv.Kill()
	eventually(t, "the breaker to open", func() bool {
		c.Get(ctx, "k")
		return s.CacheStats().BreakerOpen
	})
	// A write while Redis is down is counted, not queued up.
	c.Set(ctx, "k", d, time.Hour)
	eventually(t, "the failed write to be counted", func() bool { return s.CacheStats().WriteFailed == 1 })

	srv.Start() // not persistent: the verdict is gone, but Redis answers
	eventually(t, "a hit after redis came back", func() bool {
		c.Set(ctx, "k", d, time.Hour)
		_, ok := c.Get(ctx, "k")
		return ok
	})
	if st := s.CacheStats(); st.BreakerOpen {
		t.Fatalf("after recovery: %+v", st)
	}
}

// Set never blocks a decision: with the writer stuck on a stalled Redis
// and a buffer of one, further writes are dropped and counted.
func TestCacheWriteBufferDropsWhenFull(t *testing.T) {
	srv := startRedis(t, false)
	ctx := t.Context()
	cfg := testConfig(srv)
	cfg.Cache.WriteBuffer = 1
	s := newStore(t, cfg, "a")
	c := s.VerdictCache()
	d := verdict.Decision{Action: verdict.ActionAllow}
	srv.Pause()
	for i := range 50 {
		c.Set(ctx, fmt.Sprint(i), d, time.Hour)
	}
	// Fifty Sets returned while the writer is stuck: none waited.
	if st := s.CacheStats(); st.Drops == 0 {
		t.Fatalf("no drops with a buffer of 1 and a stalled redis: %+v", st)
	}
	srv.Resume()
	// Every write is accounted for: written, dropped or failed.
	eventually(t, "every write accounted for", func() bool {
		st := s.CacheStats()
		return st.Writes+st.Drops+st.WriteFailed == 50
	})
}
