package categories

import (
	"hash/maphash"
	"math/bits"
)

// table is an open-addressing hash table (linear probing) from the 64-bit
// hash of a normalized name to a uint32 value, usually a set number.
//
// Names themselves are not stored: two different names that hash alike
// would share an entry. With maphash (a per-Index random seed) the chance
// that a lookup of an unlisted name hits some listed name's hash is about
// n/2^64 per probe: for n = 5 million entries, 2.7e-13, i.e. one false
// match in roughly 10^12 lookups of names not on any list, and the random
// seed means a given pair of names does not collide again after a rebuild.
//
// Keys and values sit in separate arrays, 12 bytes per slot: most probes
// are misses, and they only touch the dense key array.
type table struct {
	keys []uint64 // 0 marks an empty slot; hash 0 is stored as 1
	vals []uint32
	mask uint64
	n    int
}

// maxLoad bounds the fill ratio; linear probing stays short below it.
const maxLoadNum, maxLoadDen = 3, 4

func newTable(entries int) *table {
	c := uint64(8)
	for c*maxLoadNum/maxLoadDen < uint64(entries)+1 {
		c <<= 1
	}
	return &table{keys: make([]uint64, c), vals: make([]uint32, c), mask: c - 1}
}

func fixHash(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

// slot spreads the hash with a multiply so that the low bits used for the
// index depend on all of the hash, whatever the hash function.
func (t *table) slot(h uint64) uint64 {
	hi, lo := bits.Mul64(h, 0x9E3779B97F4A7C15)
	return (hi ^ lo) & t.mask
}

func (t *table) get(h uint64) (uint32, bool) {
	h = fixHash(h)
	for i := t.slot(h); ; i = (i + 1) & t.mask {
		k := t.keys[i]
		if k == h {
			return t.vals[i], true
		}
		if k == 0 {
			return 0, false
		}
	}
}

// ref returns a pointer to the value for h, inserting a zero value first if
// h is absent; inserted reports which. The table grows as needed.
func (t *table) ref(h uint64) (v *uint32, inserted bool) {
	h = fixHash(h)
	if uint64(t.n+1)*maxLoadDen > uint64(len(t.keys))*maxLoadNum {
		t.grow()
	}
	for i := t.slot(h); ; i = (i + 1) & t.mask {
		k := t.keys[i]
		if k == h {
			return &t.vals[i], false
		}
		if k == 0 {
			t.keys[i] = h
			t.n++
			return &t.vals[i], true
		}
	}
}

func (t *table) grow() {
	old := *t
	nt := newTable(2 * t.n)
	for i, k := range old.keys {
		if k != 0 {
			p, _ := nt.ref(k)
			*p = old.vals[i]
		}
	}
	*t = *nt
}

// hashString and hashBytes are the same function (maphash guarantees
// Bytes(seed, b) == String(seed, string(b))): lists hash byte slices while
// parsing, lookups may hash either.
func hashString(seed maphash.Seed, s string) uint64 { return maphash.String(seed, s) }
func hashBytes(seed maphash.Seed, b []byte) uint64  { return maphash.Bytes(seed, b) }

// hashChunks collects hashes while a list is parsed, in fixed-size chunks so
// that millions of entries never need one huge reallocation.
type hashChunks struct {
	chunks [][]uint64
	n      int
}

// Chunks start small (most lists are short) and double up to the maximum.
const minHashChunk, maxHashChunk = 1 << 10, 1 << 16

func (c *hashChunks) add(h uint64) {
	if k := len(c.chunks); k == 0 || len(c.chunks[k-1]) == cap(c.chunks[k-1]) {
		size := minHashChunk
		if k > 0 {
			size = min(maxHashChunk, 2*cap(c.chunks[k-1]))
		}
		c.chunks = append(c.chunks, make([]uint64, 0, size))
	}
	last := &c.chunks[len(c.chunks)-1]
	*last = append(*last, h)
	c.n++
}
