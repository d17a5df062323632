package events

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// IDLen is the length of an event ID.
const IDLen = 26

// crockford is Crockford's base32 alphabet: digits and upper-case letters
// without I, L, O and U, so an ID read aloud or typed from a screen cannot be
// confused (I/L read as 1, O as 0).
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewID returns a new event ID: a ULID, 48 bits of Unix milliseconds followed
// by 80 random bits, in Crockford base32 (26 characters).
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

func newIDAt(t time.Time) string {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	b[0] = byte(ms >> 40)
	b[1] = byte(ms >> 32)
	b[2] = byte(ms >> 24)
	b[3] = byte(ms >> 16)
	b[4] = byte(ms >> 8)
	b[5] = byte(ms)
	// crypto/rand.Read never returns an error on supported platforms.
	_, _ = rand.Read(b[6:])
	return encodeID(b)
}

// encodeID writes 128 bits as 26 base32 digits (the top digit holds only 3
// bits, so a valid ID starts with 0-7).
func encodeID(b [16]byte) string {
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	var out [IDLen]byte
	for i := IDLen - 1; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// decodeID parses a canonical (upper-case, 26-character) ID.
func decodeID(s string) ([16]byte, error) {
	var b [16]byte
	if len(s) != IDLen {
		return b, fmt.Errorf("event id %q: want %d characters, got %d", s, IDLen, len(s))
	}
	if s[0] > '7' {
		return b, fmt.Errorf("event id %q: first character must be 0-7", s)
	}
	var hi, lo uint64
	for i := 0; i < IDLen; i++ {
		v := strings.IndexByte(crockford, s[i])
		if v < 0 {
			return b, fmt.Errorf("event id %q: invalid character %q at position %d", s, s[i], i+1)
		}
		hi = hi<<5 | lo>>59
		lo = lo<<5 | uint64(v)
	}
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return b, nil
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
	ms := uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(b[2])<<24 | uint64(b[3])<<16 | uint64(b[4])<<8 | uint64(b[5])
	return time.UnixMilli(int64(ms)).UTC(), nil
}
