package verdict_test

import (
	"context"
	"testing"

	"github.com/aupguard/aupguard/internal/testcore"
	"github.com/aupguard/aupguard/verdict"
)

// BenchmarkModelListMiss is the cost the name model adds to a decision on
// a list miss, through the real decider, lists and policies: a name the
// model scores below its floor (no model input) and a spam casino it
// blocks, with the model and without, from the verdict cache (the model
// is asked for every key) and uncached.
func BenchmarkModelListMiss(b *testing.B) {
	trained := testcore.SharedModel(b)
	core := testcore.New(b, nil)
	for _, cache := range []int{0, 10000} {
		for _, withModel := range []bool{false, true} {
			opts := verdict.Options{CacheSize: cache}
			if withModel {
				opts.Model = trained
			}
			d := verdict.NewDecider(core.Engine, core, opts)
			for _, host := range []string{"quiet-garden-tools.example", "bengalwincasino.com"} {
				name := map[int]string{0: "uncached", 10000: "cached"}[cache] + "/" + map[bool]string{false: "nomodel", true: "model"}[withModel] + "/" + host
				b.Run(name, func(b *testing.B) {
					ctx := context.Background()
					mk := func() *verdict.Input {
						return &verdict.Input{Source: verdict.SourceDNS, Phase: verdict.PhaseQuery, Client: verdict.Client{IP: "10.1.2.3"},
							Request: verdict.Request{Host: host}, DNS: &verdict.DNSQuestion{QName: host, QType: "A"}}
					}
					if dec := d.Decide(ctx, mk()); dec.Error != "" {
						b.Fatal(dec.Error)
					}
					b.ReportAllocs()
					for b.Loop() {
						d.Decide(ctx, mk())
					}
				})
			}
		}
	}
}
