package verdict

import (
	"fmt"
	"testing"
	"time"
)

// TestMemCacheLRU checks the shard's bookkeeping directly: hits refresh
// recency, the least recently used entry goes first, expired entries are
// not returned, and updates and purges keep map and ring in step.
func TestMemCacheLRU(t *testing.T) {
	c := newMemCache(16 * cacheShards) // 16 per shard
	now := time.Now()
	later := now.Add(time.Hour)
	// Keys that land in one shard, so the per-shard limit is exercised.
	target := c.shardOf("k0")
	var keys []string
	for i := 0; len(keys) < 17; i++ {
		k := fmt.Sprintf("k%d", i)
		if c.shardOf(k) == target {
			keys = append(keys, k)
		}
	}
	for i, k := range keys[:16] {
		c.add(k, Decision{Rule: fmt.Sprint(i)}, later)
	}
	if _, ok := c.get([]byte(keys[0]), now); !ok { // keys[0] is now the most recent
		t.Fatal("keys[0] missing before eviction")
	}
	c.add(keys[16], Decision{Rule: "16"}, later) // evicts keys[1], the least recent
	if _, ok := c.get([]byte(keys[1]), now); ok {
		t.Error("keys[1] should have been evicted (least recently used)")
	}
	for _, k := range append([]string{keys[0]}, keys[2:]...) {
		if _, ok := c.get([]byte(k), now); !ok {
			t.Errorf("%s evicted, want kept", k)
		}
	}
	if n := len(target.m); n != 16 {
		t.Errorf("shard holds %d entries, want 16", n)
	}
	// Update in place.
	c.add(keys[5], Decision{Rule: "updated"}, later)
	if d, _ := c.get([]byte(keys[5]), now); d.Rule != "updated" {
		t.Errorf("updated entry reads %q", d.Rule)
	}
	// Expiry: an entry past its time is a miss and is dropped.
	c.add("short", Decision{Rule: "short"}, now.Add(time.Second))
	if _, ok := c.get([]byte("short"), now.Add(2*time.Second)); ok {
		t.Error("expired entry returned")
	}
	if _, ok := c.shardOf("short").m["short"]; ok {
		t.Error("expired entry kept in the map")
	}
	// The ring and the map agree.
	for i := range c.shards {
		s := &c.shards[i]
		n := 0
		for e := s.root.next; e != &s.root; e = e.next {
			if s.m[e.key] != e {
				t.Fatalf("shard %d: ring entry %q not in map", i, e.key)
			}
			n++
		}
		if n != len(s.m) {
			t.Fatalf("shard %d: ring has %d entries, map %d", i, n, len(s.m))
		}
	}
	before := c.len()
	c.purge()
	if c.len() != 0 || before == 0 {
		t.Errorf("len before purge %d, after %d", before, c.len())
	}
	if _, ok := c.get([]byte(keys[0]), now); ok {
		t.Error("purged entry returned")
	}
}

// TestMemCacheHitAllocs: a hit allocates nothing, the point of looking up
// by the key's bytes.
func TestMemCacheHitAllocs(t *testing.T) {
	c := newMemCache(1000)
	key := []byte("policy-rev\x00lists-rev\x00request www.example.org")
	c.add(string(key), Decision{Action: ActionAllow}, time.Now().Add(time.Hour))
	now := time.Now()
	if n := testing.AllocsPerRun(100, func() {
		if _, ok := c.get(key, now); !ok {
			t.Fatal("miss")
		}
	}); n != 0 {
		t.Errorf("cache hit allocates %.0f times, want 0", n)
	}
}
