package verdict

import (
	"hash/maphash"
	"sync"
	"time"
)

// cacheShards spreads the LRU's lock: every lookup takes its shard's
// mutex (an LRU hit moves the entry), and the proxy and DNS filter look
// up from many goroutines at once.
const cacheShards = 32

// memCache is the in-process (L1) cache: size-bounded LRU shards, each
// entry with the expiry its policy asked for. It is looked up with the key
// bytes as built, so a hit — the common case on every request and DNS
// query — allocates nothing (a generic LRU keyed by string would need the
// key converted to a string first).
type memCache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
}

type cacheEntry struct {
	key        string
	d          Decision
	expires    time.Time
	prev, next *cacheEntry
}

// cacheShard is one LRU: a map for lookup and a ring through root for
// recency (root.next is the most recently used, root.prev the least).
type cacheShard struct {
	mu    sync.Mutex
	m     map[string]*cacheEntry
	root  cacheEntry
	limit int
}

func newMemCache(size int) *memCache {
	per := max(size/cacheShards, 16)
	c := &memCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		s := &c.shards[i]
		s.m = make(map[string]*cacheEntry)
		s.root.next, s.root.prev = &s.root, &s.root
		s.limit = per
	}
	return c
}

// shard and shardOf pick the same shard for the same key: maphash gives
// bytes and strings of equal content equal hashes.
func (c *memCache) shard(key []byte) *cacheShard {
	return &c.shards[maphash.Bytes(c.seed, key)%cacheShards]
}

func (c *memCache) shardOf(key string) *cacheShard {
	return &c.shards[maphash.String(c.seed, key)%cacheShards]
}

func (c *memCache) get(key []byte, now time.Time) (Decision, bool) {
	s := c.shard(key)
	s.mu.Lock()
	// The conversion in a map index does not allocate.
	e, ok := s.m[string(key)]
	if !ok {
		s.mu.Unlock()
		return Decision{}, false
	}
	if now.After(e.expires) {
		s.remove(e)
		s.mu.Unlock()
		return Decision{}, false
	}
	s.toFront(e)
	d := e.d
	s.mu.Unlock()
	return d, true
}

func (c *memCache) add(key string, d Decision, expires time.Time) {
	s := c.shardOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[key]; ok {
		e.d, e.expires = d, expires
		s.toFront(e)
		return
	}
	e := &cacheEntry{key: key, d: d, expires: expires}
	s.m[key] = e
	s.link(e)
	if len(s.m) > s.limit {
		s.remove(s.root.prev)
	}
}

func (c *memCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

func (c *memCache) purge() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.m)
		s.root.next, s.root.prev = &s.root, &s.root
		s.mu.Unlock()
	}
}

// link inserts e as the most recently used entry.
func (s *cacheShard) link(e *cacheEntry) {
	e.prev = &s.root
	e.next = s.root.next
	e.next.prev = e
	s.root.next = e
}

func (s *cacheShard) unlink(e *cacheEntry) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}

func (s *cacheShard) toFront(e *cacheEntry) {
	if s.root.next == e {
		return
	}
	s.unlink(e)
	s.link(e)
}

func (s *cacheShard) remove(e *cacheEntry) {
	s.unlink(e)
	delete(s.m, e.key)
}
