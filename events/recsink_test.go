package events

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// recSink is a Sink that keeps every event delivered to it, as a receiver
// that stores what it accepts would. It reads the spool through the
// pipeline's own reader, from the oldest file when it has no cursor.
type recSink struct {
	name string

	mu  sync.Mutex
	got map[string]int
}

func newRecSink(name string) *recSink { return &recSink{name: name, got: map[string]int{}} }

func (s *recSink) Name() string { return s.name }

func (s *recSink) Delivery() DeliveryPolicy {
	return DeliveryPolicy{BatchSize: 100, BackoffMin: 2 * time.Millisecond, BackoffMax: 20 * time.Millisecond}
}

func (s *recSink) Deliver(_ context.Context, batch []Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range batch {
		s.got[ev.ID]++
	}
	return nil
}

func (s *recSink) count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[id]
}

// spoolContents parses every spool file in dir strictly: it returns how
// often each event ID occurs and the lines that are not whole JSON events
// (a final line without its newline counts as bad).
func spoolContents(t *testing.T, dir string) (ids map[string]int, bad []string) {
	t.Helper()
	seqs, err := listSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	ids = map[string]int{}
	for _, seq := range seqs {
		name := filepath.Join(dir, spoolName(seq))
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(f)
		for n := 1; ; n++ {
			line, err := br.ReadBytes('\n')
			if len(line) == 0 && err != nil {
				break
			}
			var ev Event
			if err != nil || json.Unmarshal(line, &ev) != nil || ev.ID == "" {
				bad = append(bad, spoolName(seq)+":"+strconv.Itoa(n))
				if err != nil {
					break
				}
				continue
			}
			ids[ev.ID]++
		}
		f.Close()
	}
	return ids, bad
}

// notExactlyOnce reports (the first few) and counts the events of want
// that are not in the spool exactly once or not delivered to sink exactly
// once; what names them in the report ("acknowledged", "accepted").
func notExactlyOnce(t *testing.T, spool map[string]int, sink *recSink, want []string, what string) int {
	t.Helper()
	n := 0
	for _, id := range want {
		if spool[id] != 1 || sink.count(id) != 1 {
			n++
			if n <= 5 {
				t.Errorf("%s event %s: %d times in the spool, delivered %d times", what, id, spool[id], sink.count(id))
			}
		}
	}
	return n
}
