package events

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// crockford is Crockford's base32 alphabet: digits and upper-case letters
// without I, L, O and U.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

func TestNewIDFormat(t *testing.T) {
	for i := 0; i < 1000; i++ {
		id := NewID()
		if len(id) != IDLen {
			t.Fatalf("%q has %d characters", id, len(id))
		}
		for _, c := range id {
			if !strings.ContainsRune(crockford, c) {
				t.Fatalf("%q has %q, not in Crockford base32", id, c)
			}
		}
		if id[0] > '7' {
			t.Fatalf("%q: a 128-bit value starts with 0-7", id)
		}
	}
}

func TestIDsSortByTime(t *testing.T) {
	base := time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)
	prev := ""
	for i := 0; i < 2000; i++ {
		ts := base.Add(time.Duration(i) * time.Millisecond * 37)
		id := newIDAt(ts)
		if id <= prev {
			t.Fatalf("id %s at %s does not sort after %s", id, ts, prev)
		}
		got, err := IDTime(id)
		if err != nil || !got.Equal(ts) {
			t.Fatalf("IDTime(%s) = %s, %v; want %s", id, got, err, ts)
		}
		prev = id
	}
}

func TestIDsUnique(t *testing.T) {
	// All in (nearly) the same millisecond: uniqueness rests on the random
	// bits.
	ts := time.Now()
	seen := make(map[string]bool, 200000)
	for i := 0; i < 200000; i++ {
		id := newIDAt(ts)
		if seen[id] {
			t.Fatalf("duplicate id %s after %d", id, i)
		}
		seen[id] = true
	}
}

func TestNormalizeID(t *testing.T) {
	id := NewID()
	lower := strings.ToLower(id)
	grouped := id[:6] + "-" + id[6:13] + " " + id[13:]
	misread := strings.NewReplacer("0", "O", "1", "l").Replace(id)
	for _, in := range []string{id, lower, grouped, misread} {
		got, err := NormalizeID(in)
		if err != nil || got != id {
			t.Errorf("NormalizeID(%q) = %q, %v; want %q", in, got, err, id)
		}
	}
	for _, bad := range []string{"", "short", id + "0", "8" + id[1:], "U" + id[1:], id[:25] + "!"} {
		if got, err := NormalizeID(bad); err == nil {
			t.Errorf("NormalizeID(%q) = %q, want an error", bad, got)
		}
	}
}

// IDs keep the format they had before the ULID library: the same 128 bits
// give the same 26 characters, and IDs already printed on block pages and
// stored in spools still parse to the same time.
func TestIDFormatIsUnchanged(t *testing.T) {
	var b [16]byte
	for i := range b {
		b[i] = byte(i*37 + 11)
	}
	// Encoded by the hand-written encoder this package had before.
	if s := ulid.ULID(b).String(); s != "0B61AQN7Y4X4736P3XMB3YR49P" {
		t.Errorf("encoding changed: %s", s)
	}
	got, err := decodeID("0B61AQN7Y4X4736P3XMB3YR49P")
	if err != nil || got != ulid.ULID(b) {
		t.Errorf("decoding changed: %x, %v", got, err)
	}
	var max [16]byte
	for i := range max {
		max[i] = 0xff
	}
	if s := ulid.ULID(max).String(); s != "7ZZZZZZZZZZZZZZZZZZZZZZZZZ" {
		t.Errorf("max = %s", s)
	}
	ts, err := IDTime("01J8Z3K4QX7Y2B5N6M8P9R0S1T") // the README's example
	if want := time.Date(2024, 9, 29, 14, 40, 13, 565e6, time.UTC); err != nil || !ts.Equal(want) {
		t.Errorf("IDTime of an existing ID = %s, %v; want %s", ts, err, want)
	}
}

// IDs made in the same millisecond sort in the order they were made, so
// two events of one request (or one burst) keep their order in the spool
// and the console.
func TestIDsMonotonicWithinAMillisecond(t *testing.T) {
	ts := time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)
	prev := newIDAt(ts)
	for i := 0; i < 10000; i++ {
		id := newIDAt(ts)
		if id <= prev {
			t.Fatalf("id %d in one millisecond, %s, does not sort after %s", i, id, prev)
		}
		if got, err := IDTime(id); err != nil || !got.Equal(ts) {
			t.Fatalf("IDTime(%s) = %s, %v", id, got, err)
		}
		prev = id
	}
	// Concurrent callers share the order too: every ID is distinct and
	// they sort strictly.
	const workers, each = 8, 2000
	out := make(chan []string, workers)
	for range workers {
		go func() {
			ids := make([]string, each)
			for i := range ids {
				ids[i] = newIDAt(ts)
			}
			out <- ids
		}()
	}
	var all []string
	for range workers {
		ids := <-out
		if !slices.IsSorted(ids) {
			t.Fatal("one goroutine's IDs in one millisecond are out of order")
		}
		all = append(all, ids...)
	}
	slices.Sort(all)
	if len(slices.Compact(all)) != workers*each {
		t.Fatal("duplicate IDs among concurrent callers")
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NewID()
	}
}

func BenchmarkNewIDParallel(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = NewID()
		}
	})
}

func BenchmarkNormalizeID(b *testing.B) {
	id := strings.ToLower(NewID())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NormalizeID(id); err != nil {
			b.Fatal(err)
		}
	}
}
