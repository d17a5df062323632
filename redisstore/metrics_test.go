package redisstore

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aupguard/aupguard/verdict"
)

func TestCollector(t *testing.T) {
	srv := startRedis(t, false)
	ctx := t.Context()
	s := newStore(t, testConfig(srv), "a")
	reg := prometheus.NewPedanticRegistry()
	must(t, reg.Register(s.Collector()))

	s.VerdictCache().Set(ctx, "k", verdict.Decision{Action: verdict.ActionAllow}, time.Minute)
	eventually(t, "the write", func() bool { return s.CacheStats().Writes == 1 })
	s.VerdictCache().Get(ctx, "k")
	s.VerdictCache().Get(ctx, "missing")
	must(t, s.StreamSink().Deliver(ctx, testEvents(3, "x")))
	if _, _, err := s.Deduper().Admit(ctx, "user:x|adult", time.Minute); err != nil {
		t.Fatal(err)
	}

	mfs, err := reg.Gather()
	must(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			got[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	for name, want := range map[string]float64{
		"aupguard_redis_cache_reads_total{result=hit}":      1,
		"aupguard_redis_cache_reads_total{result=miss}":     1,
		"aupguard_redis_cache_reads_total{result=error}":    0,
		"aupguard_redis_cache_writes_total{result=written}": 1,
		"aupguard_redis_cache_breaker_open":                 0,
		"aupguard_redis_stream_added_total":                 3,
		"aupguard_redis_dedupe_total{result=admitted}":      1,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	if st := s.Stats(); st.Cache.Hits != 1 || st.Stream.Added != 3 || st.Dedupe.Admitted != 1 {
		t.Fatalf("Stats %+v", st)
	}
}
