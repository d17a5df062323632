package categories

import (
	"encoding/binary"
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
)

// Match is one (category, source) membership, e.g. {"gambling", "ut1:gambling"}.
type Match struct {
	Category string `json:"category"`
	Source   string `json:"source"`
}

func compareMatch(a, b Match) int {
	if c := strings.Compare(a.Category, b.Category); c != 0 {
		return c
	}
	return strings.Compare(a.Source, b.Source)
}

// Set is an immutable set of matches sorted by Category then Source. The
// zero Set is empty. Sets returned by an Index are interned and shared, so
// the slices they hand out must be treated as read-only.
type Set struct {
	d *setData
}

// setData is never empty: the empty set is represented by a nil pointer so
// that Empty is a single comparison on the hot path.
type setData struct {
	matches []Match
	cats    []string
	key     string
	// id numbers the set within one Index: interned sets below 2^32,
	// sets made by that Index's union cache above. Sets made by NewSet or
	// Union have id 0 and are never cached.
	id uint64
}

// NewSet returns the set of the given matches, sorted and without
// duplicates. It allocates; an Index hands out pre-built sets instead.
func NewSet(matches ...Match) Set {
	if len(matches) == 0 {
		return Set{}
	}
	ms := slices.Clone(matches)
	slices.SortFunc(ms, compareMatch)
	ms = slices.Compact(ms)
	return Set{d: newSetData(ms, 0)}
}

func newSetData(sorted []Match, id uint64) *setData {
	d := &setData{matches: sorted, id: id}
	var b strings.Builder
	for i, m := range sorted {
		if i == 0 || sorted[i-1].Category != m.Category {
			d.cats = append(d.cats, m.Category)
			if i > 0 {
				b.WriteByte(';')
			}
			b.WriteString(m.Category)
			b.WriteByte('=')
		} else {
			b.WriteByte('+')
		}
		b.WriteString(m.Source)
	}
	d.key = b.String()
	return d
}

// Empty reports whether the set has no matches.
func (s Set) Empty() bool { return s.d == nil }

// Len returns the number of matches.
func (s Set) Len() int {
	if s.d == nil {
		return 0
	}
	return len(s.d.matches)
}

// Matches returns the matches, sorted by Category then Source. The slice is
// shared: do not modify it.
func (s Set) Matches() []Match {
	if s.d == nil {
		return nil
	}
	return s.d.matches
}

// Categories returns the distinct categories, sorted. The slice is shared:
// do not modify it.
func (s Set) Categories() []string {
	if s.d == nil {
		return nil
	}
	return s.d.cats
}

// Has reports whether any match is in category.
func (s Set) Has(category string) bool {
	if s.d == nil {
		return false
	}
	_, ok := slices.BinarySearch(s.d.cats, category)
	return ok
}

// ByCategory returns the set as the policy input wants it: category to
// sorted sources. It allocates a new map on every call.
func (s Set) ByCategory() map[string][]string {
	if s.d == nil {
		return map[string][]string{}
	}
	out := make(map[string][]string, len(s.d.cats))
	for _, m := range s.d.matches {
		out[m.Category] = append(out[m.Category], m.Source)
	}
	return out
}

// Key returns a stable compact string that identifies the set's content,
// for cache keys: "gambling=sinfonietta-gambling+ut1:gambling;social=ut1:social_networks".
// The empty set's key is "". Category and source names never contain
// '=', '+' or ';' (Config.Validate enforces it), so the key is unambiguous.
func (s Set) Key() string {
	if s.d == nil {
		return ""
	}
	return s.d.key
}

// String returns Key, so that sets print readably in logs and test failures.
func (s Set) String() string { return s.Key() }

// Equal reports whether two sets have the same matches.
func (s Set) Equal(o Set) bool {
	if s.d == o.d {
		return true
	}
	if s.d == nil || o.d == nil {
		return false
	}
	return s.d.key == o.d.key
}

// MarshalJSON encodes the set as ByCategory does.
func (s Set) MarshalJSON() ([]byte, error) {
	return json.Marshal(s.ByCategory())
}

// subsetOf reports whether every match of a is in b; both are sorted.
func subsetOf(a, b []Match) bool {
	if len(a) > len(b) {
		return false
	}
	j := 0
	for _, m := range a {
		for j < len(b) && compareMatch(b[j], m) < 0 {
			j++
		}
		if j == len(b) || b[j] != m {
			return false
		}
		j++
	}
	return true
}

// Union returns the matches in a or b. It returns one of its arguments
// without allocating when the other is empty or a subset of it, and
// allocates a new set only when both contribute something.
func Union(a, b Set) Set {
	if s, ok := trivialUnion(a, b); ok {
		return s
	}
	return Set{d: newSetData(mergeMatches(a.d.matches, b.d.matches), 0)}
}

func trivialUnion(a, b Set) (Set, bool) {
	switch {
	case b.d == nil || a.d == b.d:
		return a, true
	case a.d == nil:
		return b, true
	case subsetOf(b.d.matches, a.d.matches):
		return a, true
	case subsetOf(a.d.matches, b.d.matches):
		return b, true
	}
	return Set{}, false
}

func mergeMatches(a, b []Match) []Match {
	out := make([]Match, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := compareMatch(a[i], b[j]); {
		case c < 0:
			out = append(out, a[i])
			i++
		case c > 0:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// unionCache remembers unions of sets seen by one Index so that a host
// listed at two levels (www.x.com in one list, x.com in another) or a host
// with a URL-prefix match does not allocate on every lookup. It is a
// direct-mapped, lock-free cache: a slot holds the latest pair hashed to it.
type unionCache struct {
	slots [unionCacheSlots]atomic.Pointer[unionEntry]
	next  atomic.Uint64 // numbers the sets this cache makes
}

const unionCacheSlots = 4096

type unionEntry struct {
	a, b uint64
	s    Set
}

func (c *unionCache) union(a, b Set) Set {
	if s, ok := trivialUnion(a, b); ok {
		return s
	}
	ia, ib := a.d.id, b.d.id
	if ia == 0 || ib == 0 {
		return Union(a, b)
	}
	if ia > ib {
		ia, ib = ib, ia
	}
	slot := &c.slots[(ia*0x9E3779B97F4A7C15^ib*0xC2B2AE3D27D4EB4F)>>52%unionCacheSlots]
	if e := slot.Load(); e != nil && e.a == ia && e.b == ib {
		return e.s
	}
	s := Union(a, b) // both contribute: a new set nobody else holds yet
	s.d.id = 1<<32 + c.next.Add(1)
	slot.Store(&unionEntry{a: ia, b: ib, s: s})
	return s
}

// interner builds the distinct sets of one Index. Each set gets a dense
// uint32 number that the hash tables store instead of the set itself.
type interner struct {
	matches  []Match
	matchIDs map[Match]uint32
	sets     []Set      // by set number; 0 is the empty set
	members  [][]uint32 // by set number: sorted match numbers
	byKey    map[string]uint32
	// trans caches "set s plus match m" so that inserting millions of
	// names costs one map lookup each, not a set construction.
	trans map[uint64]uint32
}

func newInterner() *interner {
	return &interner{
		matchIDs: map[Match]uint32{},
		sets:     []Set{{}},
		members:  [][]uint32{nil},
		byKey:    map[string]uint32{"": 0},
		trans:    map[uint64]uint32{},
	}
}

func (in *interner) match(m Match) uint32 {
	if id, ok := in.matchIDs[m]; ok {
		return id
	}
	id := uint32(len(in.matches))
	in.matches = append(in.matches, m)
	in.matchIDs[m] = id
	return id
}

// add returns the number of set s with match m added.
func (in *interner) add(s, m uint32) uint32 {
	tk := uint64(s)<<32 | uint64(m)
	if r, ok := in.trans[tk]; ok {
		return r
	}
	mem := in.members[s]
	i, found := slices.BinarySearch(mem, m)
	r := s
	if !found {
		nm := slices.Insert(slices.Clone(mem), i, m)
		r = in.intern(nm)
	}
	in.trans[tk] = r
	return r
}

func (in *interner) intern(members []uint32) uint32 {
	kb := make([]byte, 0, 4*len(members))
	for _, m := range members {
		kb = binary.LittleEndian.AppendUint32(kb, m)
	}
	key := string(kb)
	if id, ok := in.byKey[key]; ok {
		return id
	}
	id := uint32(len(in.sets))
	ms := make([]Match, len(members))
	for i, m := range members {
		ms[i] = in.matches[m]
	}
	slices.SortFunc(ms, compareMatch)
	in.sets = append(in.sets, Set{d: newSetData(ms, uint64(id))})
	in.members = append(in.members, members)
	in.byKey[key] = id
	return id
}
