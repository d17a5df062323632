package dnsfilter

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"sync/atomic"
	"time"
)

// wireCache holds replies exactly as they were sent, so that the fast path
// answers a repeat question by copying bytes and patching the ID, the RD
// bit, the question's letter case and the TTLs, instead of unpacking the
// query, walking the chain and packing a reply.
//
// It is a set-associative table: a key hashes to a set of wireWays slots,
// a lookup compares at most that many keys, and a new entry takes the
// key's old slot, a free one, or the one expiring first. Lookups take no
// lock and allocate nothing, and memory is bounded by the slot count. A
// miss only costs a trip through the full path, which refills the slot.
type wireCache struct {
	seed  maphash.Seed
	slots []atomic.Pointer[wireEntry]
	// tags hold each slot's key hash, so a lookup compares eight words
	// in one cache line instead of following eight pointers to compare
	// keys. A tag and its slot are not updated together; a lookup always
	// confirms the key of what it loads.
	tags []atomic.Uint64
	// sets is the number of sets minus one (a mask); set i is
	// slots[i*wireWays:(i+1)*wireWays].
	sets uint64
}

// wireWays is the associativity. With eight ways and twice as many slots
// as entries, collisions lose well under 0.1% of a full working set (four
// ways lose about 1%, a direct-mapped table about a seventh); each miss
// would cost a trip through the full path.
const wireWays = 8

// wireEntry is one stored reply.
type wireEntry struct {
	key string
	msg []byte
	// ttlOffs are the offsets of the records' TTL fields in msg, which
	// holds the TTLs as of stored; a hit subtracts the age.
	ttlOffs []uint16
	stored  time.Time
	expires time.Time
	// chain lists the other names the answer leads to (CNAME, DNAME and
	// SVCB/HTTPS targets); each must be allowed for the asking client
	// before the entry may be served.
	chain []string
	// block, for a block reply, is what the reply says about the decision;
	// it is served only to a client whose decision says the same.
	block *blockMark
}

// blockMark is the part of a block decision the reply's text depends on.
type blockMark struct {
	category, rule string
	failClosed     bool
}

// newWireCache makes a cache of room for at least entries replies (twice
// that many slots, in sets of wireWays), or returns nil for entries 0.
func newWireCache(entries int) *wireCache {
	if entries <= 0 {
		return nil
	}
	need := (2*entries + wireWays - 1) / wireWays
	sets := 1 << bits.Len(uint(need-1))
	n := sets * wireWays
	return &wireCache{seed: maphash.MakeSeed(), slots: make([]atomic.Pointer[wireEntry], n), tags: make([]atomic.Uint64, n), sets: uint64(sets - 1)}
}

// set returns the slots and tags of the set for hash h.
func (c *wireCache) set(h uint64) ([]atomic.Pointer[wireEntry], []atomic.Uint64) {
	i := (h & c.sets) * wireWays
	return c.slots[i : i+wireWays], c.tags[i : i+wireWays]
}

// get returns the live entry for key.
func (c *wireCache) get(key []byte, now time.Time) *wireEntry {
	h := maphash.Bytes(c.seed, key)
	slots, tags := c.set(h)
	for i := range tags {
		if tags[i].Load() != h {
			continue
		}
		if e := slots[i].Load(); e != nil && e.key == string(key) {
			if !now.Before(e.expires) {
				return nil
			}
			return e
		}
	}
	return nil
}

// put stores e in its key's set: over an entry of the same key, else in a
// free slot, else over the entry that expires first. Two concurrent puts
// may race for a slot; one of them is lost, which only costs a miss.
func (c *wireCache) put(e *wireEntry) {
	h := maphash.String(c.seed, e.key)
	slots, tags := c.set(h)
	victim := 0
	var first time.Time
	for i := range slots {
		old := slots[i].Load()
		if old == nil || old.key == e.key {
			victim = i
			break
		}
		if i == 0 || old.expires.Before(first) {
			victim, first = i, old.expires
		}
	}
	slots[victim].Store(e)
	tags[victim].Store(h)
}

// len counts the occupied slots (for tests and stats; it walks them all).
func (c *wireCache) len() int {
	n := 0
	for i := range c.slots {
		if c.slots[i].Load() != nil {
			n++
		}
	}
	return n
}

// appendWireKey appends the cache key of a question: the lowercased name,
// the type and the request bits the stored reply depends on.
func appendWireKey(b []byte, name []byte, q *wireQuery) []byte {
	b = append(b, name...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint16(b, q.qtype)
	var f byte
	if q.edns {
		f |= 1
	}
	if q.do {
		f |= 2
	}
	if q.cd() {
		f |= 4
	}
	if q.ad() {
		f |= 8
	}
	return append(b, f)
}

// newWireEntry makes an entry of the packed reply msg (which it keeps),
// valid for as long as its lowest TTL, or nil when msg has no record with a
// TTL above zero or does not parse.
func newWireEntry(key []byte, msg []byte, now time.Time) *wireEntry {
	offs, ok := rrTTLs(msg, nil)
	if !ok || len(offs) == 0 {
		return nil
	}
	lowest := ^uint32(0)
	for _, o := range offs {
		lowest = min(lowest, binary.BigEndian.Uint32(msg[o:]))
	}
	if lowest == 0 {
		return nil
	}
	return &wireEntry{
		key: string(key), msg: msg, ttlOffs: offs, stored: now,
		expires: now.Add(time.Duration(lowest) * time.Second),
	}
}

// reply appends the entry's reply to the request q (whose packet is req)
// to out: the request's ID, RD bit and question name (with its letter
// case), and TTLs aged by the whole seconds since the entry was stored.
func (e *wireEntry) reply(out []byte, req []byte, q *wireQuery, now time.Time) []byte {
	out = append(out[:0], e.msg...)
	binary.BigEndian.PutUint16(out, q.id)
	out[2] = out[2]&^byte(flagRD>>8) | byte((q.flags&flagRD)>>8)
	copy(out[headerLen:headerLen+q.qnameLen], req[headerLen:headerLen+q.qnameLen])
	if age := uint32(now.Sub(e.stored) / time.Second); age > 0 {
		for _, o := range e.ttlOffs {
			ttl := binary.BigEndian.Uint32(out[o:])
			binary.BigEndian.PutUint32(out[o:], ttl-min(ttl, age))
		}
	}
	return out
}
