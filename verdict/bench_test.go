package verdict_test

import (
	"context"
	"github.com/aupguard/aupguard/internal/testutil"
	"log/slog"
	"testing"

	"github.com/aupguard/aupguard/categories"
	"github.com/aupguard/aupguard/verdict"
)

func bundleLists(b *testing.B) fixedLists {
	b.Helper()
	cfg := categories.DefaultConfig()
	cfg.Mirror = testutil.SharedData(b)
	idx, errs := categories.Build(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	return fixedLists{idx}
}

// benchInputs are typical proxy questions: an allowed page, a gambling
// host, a learner's social post.
var benchInputs = map[string]func() *verdict.Input{
	"allow": func() *verdict.Input {
		return &verdict.Input{Source: verdict.SourceProxy, Phase: verdict.PhaseRequest, Client: verdict.Client{IP: "10.1.2.3"},
			Request: verdict.Request{Method: "GET", Scheme: "http", Host: "www.bbc.co.uk", Port: 80, Path: "/news", ContentLength: 0}}
	},
	"gambling": func() *verdict.Input {
		return &verdict.Input{Source: verdict.SourceProxy, Phase: verdict.PhaseConnect, Client: verdict.Client{IP: "10.1.2.3"},
			Request: verdict.Request{Method: "CONNECT", Host: "www.pokerstars.com", Port: 443, ContentLength: -1}}
	},
	"social_post": func() *verdict.Input {
		return &verdict.Input{Source: verdict.SourceProxy, Phase: verdict.PhaseRequest, Client: verdict.Client{IP: "10.1.2.3"},
			Request: verdict.Request{Method: "POST", Scheme: "http", Host: "www.facebook.com", Port: 80, Path: "/share", ContentLength: 120}}
	},
}

// benchRules is the rule each of benchInputs must be decided by: checked
// before timing, so that a policy that fails (and fails closed, quickly)
// cannot post a good time.
var benchRules = map[string]string{"allow": "default_allow", "gambling": "gambling", "social_post": "social_publish_unapproved"}

// BenchmarkDecideUncached is a full decision with no cache: list lookup,
// input built in Go, the whole default policy evaluated.
func BenchmarkDecideUncached(b *testing.B) {
	d := verdict.NewDecider(builtinEngine(b), bundleLists(b), verdict.Options{CacheSize: 0})
	for _, name := range []string{"allow", "gambling", "social_post"} {
		mk := benchInputs[name]
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			if dec := d.Decide(ctx, mk()); dec.Rule != benchRules[name] || dec.Error != "" {
				b.Fatalf("decision %+v, want rule %s", dec, benchRules[name])
			}
			b.ReportAllocs()
			for b.Loop() {
				d.Decide(ctx, mk())
			}
		})
	}
}

// BenchmarkDecideCached is a decision answered from the in-process cache:
// list lookup, key, LRU hit.
func BenchmarkDecideCached(b *testing.B) {
	d := verdict.NewDecider(builtinEngine(b), bundleLists(b), verdict.Options{CacheSize: 10000})
	for _, name := range []string{"allow", "gambling", "social_post"} {
		mk := benchInputs[name]
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			d.Decide(ctx, mk())
			b.ReportAllocs()
			for b.Loop() {
				if d.Decide(ctx, mk()).Cached == "" {
					b.Fatal("not cached")
				}
			}
		})
	}
}

// BenchmarkDecideCachedParallel is the cached path under contention from
// every core, as the proxy drives it.
func BenchmarkDecideCachedParallel(b *testing.B) {
	d := verdict.NewDecider(builtinEngine(b), bundleLists(b), verdict.Options{CacheSize: 10000})
	mk := benchInputs["allow"]
	d.Decide(context.Background(), mk())
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			d.Decide(ctx, mk())
		}
	})
}
