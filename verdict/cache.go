package verdict

import (
	"hash/maphash"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// cacheShards spreads the LRU's lock: every lookup takes its shard's
// mutex (an LRU hit moves the entry), and the proxy and DNS filter look
// up from many goroutines at once.
const cacheShards = 32

type cacheEntry struct {
	d       Decision
	expires time.Time
}

// memCache is the in-process (L1) cache: size-bounded LRU shards, each
// entry with the expiry its policy asked for.
type memCache struct {
	seed   maphash.Seed
	shards [cacheShards]*lru.Cache[string, cacheEntry]
}

func newMemCache(size int) *memCache {
	per := max(size/cacheShards, 16)
	c := &memCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		// lru.New only fails for a non-positive size.
		c.shards[i], _ = lru.New[string, cacheEntry](per)
	}
	return c
}

func (c *memCache) shard(key string) *lru.Cache[string, cacheEntry] {
	return c.shards[maphash.String(c.seed, key)%cacheShards]
}

func (c *memCache) get(key string, now time.Time) (Decision, bool) {
	s := c.shard(key)
	e, ok := s.Get(key)
	if !ok {
		return Decision{}, false
	}
	if now.After(e.expires) {
		s.Remove(key)
		return Decision{}, false
	}
	return e.d, true
}

func (c *memCache) add(key string, d Decision, expires time.Time) {
	c.shard(key).Add(key, cacheEntry{d: d, expires: expires})
}

func (c *memCache) len() int {
	n := 0
	for _, s := range c.shards {
		n += s.Len()
	}
	return n
}

func (c *memCache) purge() {
	for _, s := range c.shards {
		s.Purge()
	}
}
