package redisstore

import (
	"context"
	"testing"
	"time"
)

// With the production back-off (500ms doubling to 30s), a Redis that comes
// back after the stream sink has failed five times would wait 4–8s more
// for the pipeline's next attempt. The sink's recovery watch notices the
// server answering and wakes the pipeline, so the backlog is delivered
// before the back-off's earliest retry, each event once.
func TestStreamSinkWakesWhenRedisReturns(t *testing.T) {
	srv := startRedis(t, true)
	cfg := testConfig(srv)
	cfg.Stream.BackoffMin, cfg.Stream.BackoffMax = 500*time.Millisecond, 30*time.Second // the defaults
	store := newStore(t, cfg, "a")
	sink := store.StreamSink()
	p := newPipeline(t, t.TempDir(), "a", nil, nil, sink)
	ctx := t.Context()

	var ids []string
	emit := func(n int) {
		for _, ev := range testEvents(n, "jsmith") {
			must(t, p.Emit(ctx, ev))
			ids = append(ids, ev.ID)
		}
	}
	delivered := func() uint64 { return p.Stats().Sinks[StreamSinkName].Delivered }
	emit(5)
	eventually(t, "the first events", func() bool { return delivered() == 5 })

	srv.Kill()
	emit(10)
	// Five failed attempts: the pipeline's next wait is 4–8s (equal
	// jitter on 8s).
	const failures = 5
	deadline := time.Now().Add(30 * time.Second)
	for sink.Stats().Failures < failures {
		if time.Now().After(deadline) {
			t.Fatalf("the sink did not fail %d times: %+v", failures, sink.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	fifth := time.Now()
	srv.Start()
	back := time.Now()
	earliest := fifth.Add(4 * time.Second) // the back-off's earliest retry
	for delivered() < 15 {
		if time.Now().After(earliest) {
			t.Fatalf("the backlog waited out the back-off: %d of 15 delivered %s after Redis answered (%+v)",
				delivered(), time.Since(back).Round(time.Millisecond), sink.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("backlog delivered %s after Redis answered", time.Since(back).Round(time.Millisecond))
	if st := sink.Stats(); st.Wakes < 1 || st.Failures != failures {
		t.Fatalf("want a wake and no failed attempt after it: %+v", st)
	}
	checkStreamHoldsExactly(t, srv, sink.Key(), ids)
}

// A failure that a returning server does not cure (a reply error such as
// a script error) keeps the ordinary back-off: no watch, so no fast retry
// loop against a Redis that answers but refuses.
func TestRecoveryWatchesOnlyConnectionAndFailoverErrors(t *testing.T) {
	srv := startRedis(t, false)
	c := srv.Client()
	ctx := t.Context()
	scriptErr := c.Eval(ctx, "return redis.error_reply('OOM command not allowed')", nil).Err()
	readonly := c.Eval(ctx, "return redis.error_reply('READONLY You can\\'t write against a read only replica.')", nil).Err()
	srv.Kill()
	dialErr := c.Ping(ctx).Err()
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"canceled", context.Canceled, false},
		{"script error", scriptErr, false},
		{"READONLY", readonly, true},
		{"refused", dialErr, true},
	} {
		if tc.err == nil && tc.name != "nil" {
			t.Fatalf("%s: no error from Redis", tc.name)
		}
		if got := worthWatching(tc.err); got != tc.want {
			t.Errorf("%s (%v): worthWatching = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
