package rego

import (
	"slices"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// virtualCache is OPA's per-evaluation memo of rule results
// (topdown.VirtualCache), kept as a flat list and reused across
// evaluations. OPA's own is a trie of hash maps built afresh for every
// evaluation, a few dozen allocations each time; a decision caches a dozen
// or so results, for which a linear search is as fast and allocates once
// per entry. A policy that caches many more (a function called on every
// element of a long list) gets a hash index, so that it is not quadratic.
type virtualCache struct {
	entries []cacheEntry
	frames  []int // where each frame (pushed for a `with`) starts in entries
	// byHash indexes entries by the hash of their ref once there are more
	// than linearMax of them; nil until then.
	byHash map[int][]int
}

const linearMax = 32

type cacheEntry struct {
	ref       ast.Ref
	value     *ast.Term
	undefined bool
}

var _ topdown.VirtualCache = (*virtualCache)(nil)

var virtualCaches = sync.Pool{New: func() any { return &virtualCache{frames: []int{0}} }}

// getVirtualCache returns an empty cache for one evaluation; give it back
// with release once the evaluation is over.
func getVirtualCache() *virtualCache { return virtualCaches.Get().(*virtualCache) }

func (c *virtualCache) release() {
	clear(c.entries) // let go of the evaluation's terms
	c.entries = c.entries[:0]
	c.frames = append(c.frames[:0], 0)
	c.byHash = nil
	virtualCaches.Put(c)
}

// Push starts a new, empty frame.
func (c *virtualCache) Push() { c.frames = append(c.frames, len(c.entries)) }

// Pop drops the newest frame and everything cached in it.
func (c *virtualCache) Pop() {
	start := c.frames[len(c.frames)-1]
	if c.byHash != nil {
		for _, e := range c.entries[start:] {
			h := e.ref.Hash()
			c.byHash[h] = c.byHash[h][:len(c.byHash[h])-1] // entries are indexed in order
		}
	}
	clear(c.entries[start:])
	c.entries = c.entries[:start]
	c.frames = c.frames[:len(c.frames)-1]
}

// top is the entries of the newest frame: only they are visible.
func (c *virtualCache) top() []cacheEntry { return c.entries[c.frames[len(c.frames)-1]:] }

func (c *virtualCache) find(ref ast.Ref) *cacheEntry {
	start := c.frames[len(c.frames)-1]
	if c.byHash != nil {
		for _, i := range c.byHash[ref.Hash()] {
			if i >= start && c.entries[i].ref.Equal(ref) {
				return &c.entries[i]
			}
		}
		return nil
	}
	for i := start; i < len(c.entries); i++ {
		if c.entries[i].ref.Equal(ref) {
			return &c.entries[i]
		}
	}
	return nil
}

// Get returns the cached value of ref: (value, false) when it is cached,
// (nil, true) when it is cached as undefined, (nil, false) when it is not
// cached.
func (c *virtualCache) Get(ref ast.Ref) (*ast.Term, bool) {
	if e := c.find(ref); e != nil {
		if e.undefined {
			return nil, true
		}
		return e.value, false
	}
	return nil, false
}

// Put caches value for ref; a nil value records that ref is undefined.
func (c *virtualCache) Put(ref ast.Ref, value *ast.Term) {
	e := c.find(ref)
	if e == nil {
		// OPA reuses the slice behind ref as it evaluates, so keep a copy.
		c.entries = append(c.entries, cacheEntry{ref: slices.Clone(ref)})
		e = &c.entries[len(c.entries)-1]
		switch {
		case c.byHash != nil:
			h := ref.Hash()
			c.byHash[h] = append(c.byHash[h], len(c.entries)-1)
		case len(c.entries) > linearMax:
			c.byHash = make(map[int][]int, 2*len(c.entries))
			for i, e := range c.entries {
				h := e.ref.Hash()
				c.byHash[h] = append(c.byHash[h], i)
			}
		}
	}
	e.value, e.undefined = value, value == nil
}

// Keys lists the refs cached with a value in the newest frame.
func (c *virtualCache) Keys() []ast.Ref {
	var keys []ast.Ref
	for _, e := range c.top() {
		if e.value != nil {
			keys = append(keys, e.ref)
		}
	}
	return keys
}
