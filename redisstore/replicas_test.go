package redisstore

import (
	"strings"
	"testing"
	"time"

	"github.com/aupguard/aupguard/internal/testredis"
)

// Replication is asynchronous: a master can acknowledge a batch and die
// before its replica copied it. With stream.replicas: 1 the sink counts a
// batch delivered only once a replica holds it, so when the replica is
// promoted the batch is retried there and the stream on the new master
// holds every event once. (With replicas: 0 the ten events below are lost
// from the stream: the replica is lagging while the master takes them.)
func TestStreamWaitsForAReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("Sentinel fail-over (about 10s); runs without -short")
	}
	set := testredis.StartSentinel(t, "aupguard")
	cfg := DefaultConfig()
	cfg.Enabled = true
	cfg.MasterName = "aupguard"
	cfg.Addrs = set.Addrs()
	cfg.Stream.BackoffMin, cfg.Stream.BackoffMax = 20*time.Millisecond, 200*time.Millisecond
	cfg.Stream.Replicas = 1
	cfg.Stream.ReplicaTimeout = 200 * time.Millisecond
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
	processed := func() uint64 { return p.Stats().Sinks[StreamSinkName].Processed }
	emit(10)
	eventually(t, "the first events", func() bool { return processed() == 10 })

	// The replica stops reading. 16 MiB written to the master fill the
	// loopback socket buffers between them, so what the master takes next
	// stays in its output buffer: replication lag, as a slow network or a
	// busy replica makes it.
	set.Replica.Pause()
	must(t, set.Master.Client().Set(ctx, "fill", strings.Repeat("x", 16<<20), 0).Err())
	emit(10)
	eventually(t, "the master to take the batch", func() bool {
		n, err := set.Master.Client().XLen(ctx, sink.Key()).Result()
		return err == nil && n == 20
	})
	// Then the master dies and the replica, which never saw the batch,
	// is promoted.
	set.Master.Kill()
	set.Replica.Resume()
	testredis.Until(t, 45*time.Second, "the promotion", func() bool {
		addr, err := set.MasterAddr(ctx)
		return err == nil && addr == set.Replica.Addr()
	})
	testredis.Until(t, 20*time.Second, "the batch to be delivered", func() bool { return processed() == 20 })
	counts, _ := streamCounts(t, set.Replica.Client(), sink.Key())
	for _, id := range ids {
		if counts[id] != 1 {
			t.Errorf("event %s is in the new master's stream %d times", id, counts[id])
		}
	}
	if len(counts) != len(ids) {
		t.Errorf("the new master's stream holds %d events, want %d", len(counts), len(ids))
	}
	if st := sink.Stats(); st.Failures == 0 {
		t.Errorf("no failed attempt: the batch was never held back (%+v)", st)
	}
}

// stream.replicas is checked and its timeout must fit in read_timeout.
func TestStreamReplicasConfig(t *testing.T) {
	c := DefaultConfig()
	c.Enabled = true
	c.Addrs = []string{"127.0.0.1:6379"}
	c.Stream.Replicas = 1
	if err := c.Validate(); err != nil {
		t.Fatalf("the defaults with replicas 1: %v", err)
	}
	c.Stream.ReplicaTimeout = c.ReadTimeout
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "stream.replica_timeout") {
		t.Fatalf("replica_timeout = read_timeout: %v", err)
	}
	c.Stream.ReplicaTimeout = time.Millisecond
	c.Stream.Replicas = -1
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "stream.replicas") {
		t.Fatalf("replicas -1: %v", err)
	}
}
