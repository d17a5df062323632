package redisstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aupguard/aupguard/events"
)

func testEvents(n int, user string) []events.Event {
	out := make([]events.Event, n)
	for i := range out {
		out[i] = events.Event{
			ID: events.NewID(), Time: time.Now().UTC().Truncate(time.Millisecond), Instance: "a", Kind: events.KindBlock,
			Source: "proxy", Phase: "request", Action: "block", Category: "gambling", Rule: "gambling",
			Reason: "Gambling <sites> & betting are not allowed", Severity: "medium", ClientIP: "10.1.2.3",
			User: user, Groups: []string{"learners"}, Host: fmt.Sprintf("casino-%d.example", i),
			URL: fmt.Sprintf("https://casino-%d.example/play", i), Method: "GET",
		}
	}
	return out
}

// streamCounts reads the whole stream and counts entries per event ID,
// checking each entry's body against its id field.
func streamCounts(t *testing.T, c *redis.Client, key string) (map[string]int, map[string]events.Event) {
	t.Helper()
	msgs, err := c.XRange(t.Context(), key, "-", "+").Result()
	must(t, err)
	counts := map[string]int{}
	bodies := map[string]events.Event{}
	for _, m := range msgs {
		id, _ := m.Values["id"].(string)
		body, _ := m.Values["event"].(string)
		var ev events.Event
		if err := json.Unmarshal([]byte(body), &ev); err != nil {
			t.Fatalf("stream entry %s: event is not JSON: %v", m.ID, err)
		}
		if ev.ID != id {
			t.Fatalf("stream entry %s: id field %q, event id %q", m.ID, id, ev.ID)
		}
		counts[id]++
		bodies[id] = ev
	}
	return counts, bodies
}

func TestStreamSinkAddsEachEventOnce(t *testing.T) {
	srv := startRedis(t, false)
	ctx := t.Context()
	s := newStore(t, testConfig(srv), "a")
	sink := s.StreamSink()
	var _ events.Sink = sink
	if sink.Name() != "redis-stream" || sink.Key() != "aupguard:events" {
		t.Fatalf("name %q key %q", sink.Name(), sink.Key())
	}

	batch := testEvents(25, "jsmith")
	must(t, sink.Deliver(ctx, batch[:10]))
	// The spool redelivers: the same batch again, then one overlapping it.
	must(t, sink.Deliver(ctx, batch[:10]))
	must(t, sink.Deliver(ctx, batch[5:]))

	counts, bodies := streamCounts(t, srv.Client(), sink.Key())
	if len(counts) != len(batch) {
		t.Fatalf("%d distinct events in the stream, want %d", len(counts), len(batch))
	}
	for _, ev := range batch {
		if counts[ev.ID] != 1 {
			t.Fatalf("event %s is in the stream %d times", ev.ID, counts[ev.ID])
		}
		if got := bodies[ev.ID]; !reflect.DeepEqual(got, ev) {
			t.Fatalf("event changed on the way:\n got %+v\nwant %+v", got, ev)
		}
	}
	if st := sink.Stats(); st.Added != 25 || st.Duplicates != 15 {
		t.Fatalf("stats %+v, want 25 added and 15 duplicates", st)
	}
	// The body is the spool's JSON: HTML characters are not escaped.
	raw, err := srv.Client().XRangeN(ctx, sink.Key(), "-", "+", 1).Result()
	must(t, err)
	if body := raw[0].Values["event"].(string); !json.Valid([]byte(body)) || !strings.Contains(body, "<sites> & betting") {
		t.Fatalf("body %s", body)
	}
	// Seen keys expire (stream.dedupe_ttl) and share the stream's hash slot.
	seen, err := srv.Client().Keys(ctx, "aupguard:seen:*").Result()
	must(t, err)
	if len(seen) != 25 || seen[0][:len("aupguard:seen:{aupguard:events}:")] != "aupguard:seen:{aupguard:events}:" {
		t.Fatalf("seen keys %v", seen[:min(3, len(seen))])
	}
	if ttl := srv.Client().PTTL(ctx, seen[0]).Val(); ttl <= 0 || ttl > 7*24*time.Hour {
		t.Fatalf("seen key TTL %s", ttl)
	}
}

func TestStreamIsTrimmedApproximately(t *testing.T) {
	srv := startRedis(t, false)
	ctx := t.Context()
	cfg := testConfig(srv)
	cfg.Stream.MaxLen = 200
	s := newStore(t, cfg, "a")
	for range 10 {
		must(t, s.StreamSink().Deliver(ctx, testEvents(100, "jsmith")))
	}
	n, err := srv.Client().XLen(ctx, s.StreamSink().Key()).Result()
	must(t, err)
	// "~" trims whole radix-tree nodes (100 entries by default), so the
	// stream keeps at least maxlen and at most about a node more.
	if n < 200 || n >= 1000 {
		t.Fatalf("stream length %d after 1000 adds with maxlen ~200", n)
	}
}

func TestStreamSinkRefusesEventWithoutID(t *testing.T) {
	srv := startRedis(t, false)
	s := newStore(t, testConfig(srv), "a")
	batch := testEvents(2, "x")
	batch[1].ID = ""
	err := s.StreamSink().Deliver(t.Context(), batch)
	if err == nil || !errors.Is(err, events.ErrRejected) {
		t.Fatalf("got %v, want a rejection", err)
	}
	if n := srv.Client().XLen(t.Context(), s.StreamSink().Key()).Val(); n != 0 {
		t.Fatalf("a rejected batch left %d entries", n)
	}
}

// TestConsumerGroupExample is the README's consumer example, run: a
// safeguarding tool reads the stream through a consumer group, acknowledges
// what it stored, and after a crash re-reads what it had not acknowledged.
func TestConsumerGroupExample(t *testing.T) {
	srv := startRedis(t, false)
	ctx := t.Context()
	s := newStore(t, testConfig(srv), "a")
	batch := testEvents(5, "jsmith")
	must(t, s.StreamSink().Deliver(ctx, batch))
	rdb := srv.Client()

	// --- README example starts
	const stream, group, consumer = "aupguard:events", "safeguarding", "console-1"
	// Once: create the group at the start of the stream ("0"; "$" for only new events).
	if err := rdb.XGroupCreateMkStream(ctx, stream, group, "0").Err(); err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
		t.Fatal(err)
	}
	read := func(start string) []redis.XMessage {
		res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: group, Consumer: consumer, Streams: []string{stream, start}, Count: 100, Block: 100 * time.Millisecond,
		}).Result()
		if err != nil && err != redis.Nil {
			t.Fatal(err)
		}
		if len(res) == 0 {
			return nil
		}
		return res[0].Messages
	}
	// ">" asks for entries never delivered to this group.
	msgs := read(">")
	var stored []string
	for _, m := range msgs[:3] { // the consumer stores three, then crashes
		var ev events.Event
		must(t, json.Unmarshal([]byte(m.Values["event"].(string)), &ev))
		stored = append(stored, ev.ID)
		must(t, rdb.XAck(ctx, stream, group, m.ID).Err())
	}
	// After a restart, "0" re-reads this consumer's delivered but unacknowledged entries.
	pending := read("0")
	// --- README example ends

	if len(msgs) != 5 || len(pending) != 2 || pending[0].Values["id"] != batch[3].ID || pending[1].Values["id"] != batch[4].ID {
		t.Fatalf("read %d, pending %d %v", len(msgs), len(pending), pending)
	}
	if stored[0] != batch[0].ID {
		t.Fatalf("stream order differs from delivery order")
	}
}
