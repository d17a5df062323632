package events

import (
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// IDLen is the length of an event ID.
const IDLen = 26

// NewID returns a new event ID: a ULID (github.com/oklog/ulid/v2), 48 bits
// of Unix milliseconds followed by 80 random bits (crypto/rand), in
// Crockford base32 (26 characters). IDs made in the same millisecond by
// this process increase: the random part of each is the previous one's
// plus a random step (up to 2^32), so they sort in the order they were made.
//
// Why this shape: the ID is printed on the block page as the learner's
// "reference", so it must survive being read aloud or retyped (Crockford's
// alphabet, case-insensitive, see NormalizeID); it sorts by time as a plain
// string, which the spool, the console and receivers rely on; and 80 random
// bits make IDs unique across instances without any coordination (a
// collision needs ~2^40 events in the same millisecond). A shorter ID would
// trade away either the time order or the coordination-free uniqueness.
func NewID() string {
	return newIDAt(time.Now())
}

// monotonic is the process's one source of ID entropy: the order within a
// millisecond can only be kept by remembering the last ID made, so it is
// shared (behind the reader's own lock, held for one increment).
var monotonic = &ulid.LockedMonotonicReader{MonotonicReader: ulid.Monotonic(rand.Reader, 0)}

func newIDAt(t time.Time) string {
	ms := ulid.Timestamp(t)
	id, err := ulid.New(ms, monotonic)
	if err != nil {
		// The increments ran out of room within one millisecond (an
		// astronomically unlikely 2^48 IDs in it): fresh random bits keep
		// the ID unique, only its order within the millisecond is lost.
		id = ulid.MustNew(ms, rand.Reader)
	}
	return id.String()
}

// decodeID parses an ID (26 Crockford base32 characters; a 128-bit value,
// so the first is 0-7).
func decodeID(s string) (ulid.ULID, error) {
	if len(s) != IDLen {
		return ulid.ULID{}, fmt.Errorf("event id %q: want %d characters, got %d", s, IDLen, len(s))
	}
	id, err := ulid.ParseStrict(s)
	if err != nil {
		return ulid.ULID{}, fmt.Errorf("event id %q: %w", s, err)
	}
	return id, nil
}

// NormalizeID turns an ID as a person typed it (lower case, with spaces or
// hyphens, O for 0, I or L for 1) into the canonical form, or explains why
// it is not an event ID. Block-page review requests and console searches use
// it so a misread reference still finds its event.
func NormalizeID(s string) (string, error) {
	var sb strings.Builder
	sb.Grow(IDLen)
	for _, r := range s {
		switch {
		case r == '-' || r == ' ' || r == '\t':
			continue
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		}
		switch r {
		case 'O':
			r = '0'
		case 'I', 'L':
			r = '1'
		}
		sb.WriteRune(r)
	}
	id := sb.String()
	if _, err := decodeID(id); err != nil {
		return "", err
	}
	return id, nil
}

// IDTime returns the millisecond timestamp embedded in an event ID.
func IDTime(id string) (time.Time, error) {
	b, err := decodeID(id)
	if err != nil {
		return time.Time{}, err
	}
	return b.Timestamp().UTC(), nil
}
