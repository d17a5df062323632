package redisstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aupguard/aupguard/verdict"
)

// The decision benchmarks run the real core (built-in policies, bundled
// lists) against a real redis-server on loopback. Each reports where the
// answers came from, so a number cannot silently measure the wrong path.
//
//	go test -run '^$' -bench Decide -benchmem ./redisstore/

func benchInputs(n int, prefix string) []*verdict.Input {
	ins := make([]*verdict.Input, n)
	for i := range ins {
		ins[i] = proxyInput(fmt.Sprintf("%s-%d.example.org", prefix, i))
	}
	return ins
}

func reportSources(b *testing.B, before, after verdict.Stats) {
	n := float64(after.Decisions - before.Decisions)
	b.ReportMetric(float64(after.L1Hits-before.L1Hits)/n, "l1/op")
	b.ReportMetric(float64(after.L2Hits-before.L2Hits)/n, "l2/op")
	b.ReportMetric(float64(after.Evaluations-before.Evaluations)/n, "evals/op")
}

// l1Size is the smallest in-process cache the decider builds (32 shards of
// at least 16 entries); cycling through many more keys than that makes
// every lookup an L1 miss.
const l1Size = 512

func BenchmarkDecide(b *testing.B) {
	srv := startRedis(b, false)
	ctx := context.Background()

	b.Run("l1-hit", func(b *testing.B) {
		c := newCore(b, nil, 10000, false)
		in := proxyInput("l1.example.org")
		c.Decide(ctx, in)
		before := c.Stats()
		b.ResetTimer()
		for b.Loop() {
			c.Decide(ctx, proxyInput("l1.example.org"))
		}
		reportSources(b, before, c.Stats())
	})

	b.Run("l2-hit", func(b *testing.B) {
		const keys = 8192
		// Fresh names per run: -count reruns this against the same Redis.
		prefix := fmt.Sprint("l2-", time.Now().UnixNano())
		ins := benchInputs(keys, prefix)
		// Instance a evaluates every input once and shares the verdicts.
		sa := newStore(b, testConfig(srv), "a")
		a := newCore(b, sa.VerdictCache(), keys*2, false)
		for _, in := range ins {
			a.Decide(ctx, in)
		}
		eventually(b, "a's verdicts in redis", func() bool { return sa.CacheStats().Writes == keys })
		// Instance b, with a small L1, answers from redis.
		cfg := testConfig(srv)
		cfg.Cache.Timeout = 20 * time.Millisecond // the production default
		sb := newStore(b, cfg, "b")
		c := newCore(b, sb.VerdictCache(), l1Size, false)
		ins = benchInputs(keys, prefix)
		before := c.Stats()
		i := 0
		b.ResetTimer()
		for b.Loop() {
			in := *ins[i%keys]
			c.Decide(ctx, &in)
			i++
		}
		reportSources(b, before, c.Stats())
		if st := sb.CacheStats(); st.Errors > 0 {
			b.Logf("redis read errors during the run: %+v", st)
		}
	})

	miss := func(b *testing.B, sc verdict.SharedCache) {
		c := newCore(b, sc, 10000, false)
		before := c.Stats()
		run := time.Now().UnixNano()
		i := 0
		b.ResetTimer()
		for b.Loop() {
			// A name never asked before: every layer misses.
			c.Decide(ctx, proxyInput(fmt.Sprintf("miss-%d-%d.example.org", run, i)))
			i++
		}
		reportSources(b, before, c.Stats())
	}
	b.Run("miss-no-redis", func(b *testing.B) { miss(b, nil) })
	b.Run("miss-with-redis", func(b *testing.B) {
		cfg := testConfig(srv)
		cfg.Cache.Timeout = 20 * time.Millisecond
		s := newStore(b, cfg, "m")
		miss(b, s.VerdictCache())
	})
}

// BenchmarkDecideParallel is the l2-hit case from every core at once, as
// the proxy and DNS filter call it.
func BenchmarkDecideParallel(b *testing.B) {
	srv := startRedis(b, false)
	ctx := context.Background()
	const keys = 8192
	ins := benchInputs(keys, "par")
	sa := newStore(b, testConfig(srv), "a")
	a := newCore(b, sa.VerdictCache(), keys*2, false)
	for _, in := range ins {
		a.Decide(ctx, in)
	}
	eventually(b, "a's verdicts in redis", func() bool { return sa.CacheStats().Writes == keys })
	sb := newStore(b, testConfig(srv), "b")
	c := newCore(b, sb.VerdictCache(), l1Size, false)
	ins = benchInputs(keys, "par")
	before := c.Stats()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			in := *ins[i%keys]
			c.Decide(ctx, &in)
			i += 7
		}
	})
	reportSources(b, before, c.Stats())
}

// BenchmarkVerdictCacheGet is one shared-cache read on loopback, without
// the decider around it.
func BenchmarkVerdictCacheGet(b *testing.B) {
	srv := startRedis(b, false)
	ctx := context.Background()
	s := newStore(b, testConfig(srv), "a")
	c := s.VerdictCache()
	d := verdict.Decision{Action: verdict.ActionBlock, Category: "gambling", Rule: "gambling", Reason: "Gambling sites are not allowed on the training network",
		Severity: verdict.SeverityMedium, Alert: true, PolicyRevision: "3f2a9c0d1e2b3c4d", ListsRevision: "9bc1aa00bb11cc22"}
	c.Set(ctx, "k", d, time.Hour)
	eventually(b, "the write", func() bool { return s.CacheStats().Writes == 1 })
	b.ResetTimer()
	for b.Loop() {
		if _, ok := c.Get(ctx, "k"); !ok {
			b.Fatal("miss")
		}
	}
}
