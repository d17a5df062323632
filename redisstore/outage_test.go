package redisstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/verdict"
)

// Redis is killed in the middle of the work: decisions keep flowing (the
// breaker opens after cache.breaker.failures failed reads), events keep
// landing in the spool, and once Redis is back the stream holds every
// event exactly once — also when the spool later redelivers all of it.
func TestRedisKilledInTheMiddle(t *testing.T) {
	srv := startRedis(t, true) // AOF, fsync always: Redis comes back with its data
	ctx := t.Context()
	cfg := testConfig(srv)
	cfg.Cache.Breaker.OpenFor = time.Hour // so the counts below are exact
	store := newStore(t, cfg, "a")
	sink := store.StreamSink()
	dec := newCore(t, store.VerdictCache(), 10000, false)
	dir := t.TempDir()
	p := newPipeline(t, dir, "a", nil, nil, sink)

	var ids []string
	decideAndEmit := func(phase string, n int) {
		t.Helper()
		for i := range n {
			in := proxyInput(fmt.Sprintf("%s-%d.%s", phase, i, testGambling))
			d := dec.Decide(ctx, in)
			if d.Error != "" || d.Action != verdict.ActionBlock || d.Category != "gambling" {
				t.Fatalf("%s decision %d: %+v", phase, i, d)
			}
			ev, ok := events.FromDecision(&d, in, events.BuildOptions{})
			if !ok {
				t.Fatalf("a block made no event: %+v", d)
			}
			must(t, p.Emit(ctx, ev))
			ids = append(ids, ev.ID)
		}
	}
	delivered := func(p *events.Pipeline) uint64 { return p.Stats().Sinks[StreamSinkName].Delivered }

	decideAndEmit("before", 30)
	eventually(t, "the first events in the stream", func() bool { return delivered(p) == 30 })

	srv.Kill()
	pre := store.CacheStats()
	decideAndEmit("during", 100)
	st := store.CacheStats()
	failures := uint64(cfg.Cache.Breaker.Failures)
	if errs, skipped := st.Errors-pre.Errors, st.Skipped-pre.Skipped; st.BreakerOpens != 1 || errs > failures || errs+skipped != 100 || skipped < 100-failures {
		t.Fatalf("with redis dead, 100 decisions cost %d failed reads (want at most %d, the breaker's threshold) and skipped %d: %+v",
			errs, failures, skipped, st)
	}
	eventually(t, "the outage's events in the spool", func() bool { return p.Stats().Spooled == 130 })
	eventually(t, "the stream sink to fail", func() bool { return p.Stats().Sinks[StreamSinkName].Failures > 0 })
	if s := p.Stats(); s.Overflow != 0 || s.Lost != 0 || delivered(p) != 30 {
		t.Fatalf("pipeline during the outage: %+v", s)
	}

	srv.Start()
	eventually(t, "the backlog to drain into the stream", func() bool { return delivered(p) == 130 })
	checkStreamHoldsExactly(t, srv, sink.Key(), ids)

	// The spool redelivers everything (say the cursor was lost in a
	// crash): nothing is added twice.
	ctxClose, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	must(t, p.Close(ctxClose))
	must(t, os.Remove(filepath.Join(dir, "events", "cursors", StreamSinkName+".json")))
	dupsBefore := sink.Stats().Duplicates
	p2 := newPipeline(t, dir, "a", nil, nil, sink)
	eventually(t, "the redelivery", func() bool { return p2.Stats().Sinks[StreamSinkName].Processed == 130 })
	checkStreamHoldsExactly(t, srv, sink.Key(), ids)
	if got := sink.Stats().Duplicates - dupsBefore; got != 130 {
		t.Fatalf("redelivery of 130 events counted %d duplicates", got)
	}
}

func checkStreamHoldsExactly(t *testing.T, srv *redisServer, key string, ids []string) {
	t.Helper()
	counts, _ := streamCounts(t, srv.Client(), key)
	var extra []string
	for id, n := range counts {
		if n != 1 {
			t.Errorf("event %s is in the stream %d times", id, n)
		}
		extra = append(extra, id)
	}
	for _, id := range ids {
		if counts[id] == 0 {
			t.Errorf("event %s is missing from the stream", id)
		}
	}
	if len(counts) != len(ids) {
		sort.Strings(extra)
		t.Fatalf("the stream holds %d events, want %d", len(counts), len(ids))
	}
}
