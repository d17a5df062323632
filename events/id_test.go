package events

import (
	"strings"
	"testing"
	"time"
)

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

func TestEncodeDecodeRoundTrip(t *testing.T) {
	var b [16]byte
	for i := range b {
		b[i] = byte(i*37 + 11)
	}
	got, err := decodeID(encodeID(b))
	if err != nil || got != b {
		t.Fatalf("round trip: %x, %v; want %x", got, err, b)
	}
	var max [16]byte
	for i := range max {
		max[i] = 0xff
	}
	if s := encodeID(max); s != "7ZZZZZZZZZZZZZZZZZZZZZZZZZ" {
		t.Errorf("max = %s", s)
	}
}
