package redisstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/aupguard/aupguard/events"
)

// StreamSinkName is the sink's name in the events pipeline; it names the
// delivery cursor, so it never changes.
const StreamSinkName = "redis-stream"

// xaddOnce adds each event to the stream unless its ID was added before.
//
// KEYS[1] is the stream, KEYS[2..n] one "seen" key per event; ARGV[1] is
// the approximate MAXLEN (0: no trimming), ARGV[2] how long a seen key
// lives (ms), then the events' ID and JSON body in pairs. It returns how
// many events were added. The script runs atomically, so an event is
// marked seen if and only if it was added: a batch redelivered after a
// lost reply or an outage adds nothing twice.
var xaddOnce = redis.NewScript(`
local maxlen = tonumber(ARGV[1])
local added = 0
for i = 2, #KEYS do
  local id = ARGV[2 * i - 1]
  local body = ARGV[2 * i]
  if redis.call('SET', KEYS[i], '1', 'NX', 'PX', ARGV[2]) then
    if maxlen > 0 then
      redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 'id', id, 'event', body)
    else
      redis.call('XADD', KEYS[1], '*', 'id', id, 'event', body)
    end
    added = added + 1
  end
end
return added
`)

// StreamSink is an events.Sink that adds each misuse event to a Redis
// stream as the fields "id" (the event ID) and "event" (the event as JSON,
// the same object as a spool line).
//
// Why a "seen" key per event rather than deriving the stream entry ID from
// the event's ULID: XADD refuses an explicit ID not greater than the
// stream's last one, and several instances (each with its own spool), or
// one instance replaying a backlog, add events out of time order. With
// server-assigned IDs every add succeeds, and the seen key
// (KeyPrefix+"seen:{<stream key>}:"+event ID, living stream.dedupe_ttl)
// refuses duplicates. The braces are a Cluster hash tag: every seen key
// lives in the stream's slot, so the script's keys share one node.
type StreamSink struct {
	s      *Store
	stream string
	seen   string
	rec    *recovery

	added, duplicates, failures atomic.Uint64
}

func newStreamSink(s *Store) *StreamSink {
	stream := s.key(s.cfg.Stream.Key)
	k := &StreamSink{s: s, stream: stream, seen: s.key("seen:{", stream, "}:")}
	// EXISTS on the stream key goes where the script goes: the master of
	// the stream's slot (Cluster) or the master Sentinel names.
	k.rec = newRecovery(s, func(ctx context.Context) error { return s.client.Exists(ctx, stream).Err() })
	return k
}

// Ready implements events.Waker: it receives when Redis answers again
// after a failed delivery, so the pipeline retries at once.
func (k *StreamSink) Ready() <-chan struct{} { return k.rec.ready }

// Name implements events.Sink.
func (k *StreamSink) Name() string { return StreamSinkName }

// Key returns the stream's full key name.
func (k *StreamSink) Key() string { return k.stream }

// Delivery tells the events pipeline how to feed this sink.
func (k *StreamSink) Delivery() events.DeliveryPolicy {
	c := k.s.cfg.Stream
	return events.DeliveryPolicy{BatchSize: c.BatchSize, BackoffMin: c.BackoffMin, BackoffMax: c.BackoffMax}
}

// Deliver implements events.Sink: the whole batch in one script call, so
// it is added entirely or (on error) the pipeline retries it, and the
// retry adds only what is missing.
func (k *StreamSink) Deliver(ctx context.Context, batch []events.Event) error {
	if len(batch) == 0 {
		return nil
	}
	keys := make([]string, 0, len(batch)+1)
	args := make([]any, 0, 2*len(batch)+2)
	keys = append(keys, k.stream)
	args = append(args, k.s.cfg.Stream.MaxLen, k.s.cfg.Stream.DedupeTTL.Milliseconds())
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i := range batch {
		ev := &batch[i]
		if ev.ID == "" {
			// The spool reader never passes one; refusing it keeps the
			// de-duplication key meaningful.
			return fmt.Errorf("redis stream: event %d of the batch has no id: %w", i, events.ErrRejected)
		}
		buf.Reset()
		if err := enc.Encode(ev); err != nil {
			return fmt.Errorf("redis stream: encoding event %s: %w", ev.ID, events.ErrRejected)
		}
		keys = append(keys, k.seen+ev.ID)
		// String copies, so reusing buf is safe.
		args = append(args, ev.ID, strings.TrimSuffix(buf.String(), "\n"))
	}
	var n int64
	var err error
	if k.s.cfg.Stream.Replicas > 0 {
		n, err = k.addReplicated(ctx, keys, args)
	} else {
		n, err = xaddOnce.Run(ctx, k.s.client, keys, args...).Int64()
	}
	if err != nil {
		k.added.Add(uint64(n)) // added before WAIT failed; the retry finds them seen
		k.failures.Add(1)
		k.rec.failed(err)
		return fmt.Errorf("redis stream %s: adding %d events (first %s): %w", k.stream, len(batch), batch[0].ID, err)
	}
	k.added.Add(uint64(n))
	k.duplicates.Add(uint64(int64(len(batch)) - n))
	return nil
}

// errTooFewReplicas is a batch the master added but fewer replicas than
// stream.replicas acknowledged in time. A failover would not cure it, so it
// keeps the plain back-off (see worthWatching).
var errTooFewReplicas = errors.New("fewer replicas than stream.replicas acknowledged the batch")

// addReplicated adds the batch and waits for replicas, all on one
// connection to the master of the stream's slot: WAIT counts the replicas
// that acknowledged that connection's writes. It waits for
// min(stream.replicas, replicas attached), read with INFO in the same round
// trip as the add: a master just promoted has none until its old master
// returns, and waiting for one it does not have would only stall every
// batch for replica_timeout.
func (k *StreamSink) addReplicated(ctx context.Context, keys []string, args []any) (int64, error) {
	var cl *redis.Client
	switch c := k.s.client.(type) {
	case *redis.ClusterClient:
		node, err := c.MasterForKey(ctx, k.stream)
		if err != nil {
			return 0, err
		}
		cl = node
	case *redis.Client: // single node, and Sentinel's failover client
		cl = c
	default:
		return 0, fmt.Errorf("stream.replicas with a %T client: %w", c, events.ErrRejected)
	}
	conn := cl.Conn()
	defer conn.Close()
	var add *redis.Cmd
	var info *redis.StringCmd
	if _, err := conn.Pipelined(ctx, func(p redis.Pipeliner) error {
		add = xaddOnce.Eval(ctx, p, keys, args...)
		info = p.Info(ctx, "replication")
		return nil
	}); err != nil {
		return 0, err
	}
	n, err := add.Int64()
	if err != nil {
		return 0, err
	}
	want := min(k.s.cfg.Stream.Replicas, connectedReplicas(info.Val()))
	if want == 0 {
		return n, nil
	}
	got, err := conn.Do(ctx, "WAIT", want, k.s.cfg.Stream.ReplicaTimeout.Milliseconds()).Int64()
	if err != nil {
		return n, fmt.Errorf("WAIT: %w", err)
	}
	if got < int64(want) {
		return n, fmt.Errorf("%w: %d of %d within %s", errTooFewReplicas, got, want, k.s.cfg.Stream.ReplicaTimeout)
	}
	return n, nil
}

// connectedReplicas reads connected_slaves from INFO replication (0 when
// absent).
func connectedReplicas(info string) int {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_slaves:"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// StreamStats are the stream sink's counters.
type StreamStats struct {
	// Added events went into the stream; Duplicates were redelivered
	// events already in it; Failures are failed batch attempts.
	Added      uint64 `json:"added"`
	Duplicates uint64 `json:"duplicates"`
	Failures   uint64 `json:"failures"`
	// Wakes counts the times Redis answered again after a failure and
	// the pipeline was told to retry without waiting out its back-off.
	Wakes uint64 `json:"wakes"`
}

// Stats returns the counters.
func (k *StreamSink) Stats() StreamStats {
	return StreamStats{Added: k.added.Load(), Duplicates: k.duplicates.Load(), Failures: k.failures.Load(), Wakes: k.rec.wakes.Load()}
}

// String names the sink for logs.
func (k *StreamSink) String() string {
	return "redis stream " + strconv.Quote(k.stream)
}
