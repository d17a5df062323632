package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aupguard/aupguard/verdict"
)

// CacheStats are the shared verdict cache's counters.
type CacheStats struct {
	// Hits and Misses are reads Redis answered; Errors are reads that
	// failed or timed out (a miss for the decider); Skipped are reads not
	// sent because the breaker was open.
	Hits    uint64 `json:"hits"`
	Misses  uint64 `json:"misses"`
	Errors  uint64 `json:"errors"`
	Skipped uint64 `json:"skipped"`
	// BreakerOpens counts the times the breaker opened; BreakerOpen is its
	// state now.
	BreakerOpens uint64 `json:"breaker_opens"`
	BreakerOpen  bool   `json:"breaker_open"`
	// Writes are verdicts stored; Drops were refused because the write
	// buffer was full; WriteFailed were not stored because Redis failed or
	// the breaker was open.
	Writes      uint64 `json:"writes"`
	Drops       uint64 `json:"drops"`
	WriteFailed uint64 `json:"write_failed"`
}

// valueVersion starts every stored verdict, so a format change can never
// be misread.
const valueVersion = 1

// headerLen is the version byte and the expiry in Unix milliseconds.
const headerLen = 1 + 8

// verdictCache is verdict.SharedCache on Redis.
//
// Keys are KeyPrefix + "v:" + hex(SHA-256(opaque key)). Hashing, rather
// than storing the raw key, keeps every key 64 characters however long the
// request path or query was, and keeps learners' addresses, user names and
// URLs out of key names that KEYS, SCAN and MONITOR show. SHA-256 makes a
// collision (two inputs sharing a verdict) impossible in practice: about
// 2^128 keys before one is likely. Hashing costs well under a microsecond,
// against a network round trip of tens.
//
// Values are a version byte, the absolute expiry (Unix ms, big endian)
// and the Decision as JSON. The expiry gives the reader the time left, so
// the in-process copy the decider makes of an L2 hit expires when the
// shared one does.
type verdictCache struct {
	s       *Store
	timeout time.Duration
	br      *breaker
	now     func() time.Time
	writes  chan pendingWrite

	hits, misses, errs, skipped, written, drops, writeFailed atomic.Uint64
}

type pendingWrite struct {
	key   string
	value []byte
	ttl   time.Duration
}

func newVerdictCache(s *Store, now func() time.Time) *verdictCache {
	if now == nil {
		now = time.Now
	}
	cc := s.cfg.Cache
	return &verdictCache{
		s:       s,
		timeout: cc.Timeout,
		br:      newBreaker(cc.Breaker.Failures, cc.Breaker.OpenFor, now),
		now:     now,
		writes:  make(chan pendingWrite, cc.WriteBuffer),
	}
}

func (c *verdictCache) redisKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return c.s.key("v:", hex.EncodeToString(sum[:]))
}

// Get implements verdict.SharedCache: one GET without retries, bounded by
// cache.timeout, skipped while the breaker is open. Every failure is a
// miss; the decider then evaluates the policy itself.
func (c *verdictCache) Get(ctx context.Context, key string) (verdict.Decision, bool) {
	if !c.br.allow() {
		c.skipped.Add(1)
		return verdict.Decision{}, false
	}
	rk := c.redisKey(key)
	tctx, cancel := context.WithTimeout(ctx, c.timeout)
	b, err := c.s.fast.Get(tctx, rk).Bytes()
	cancel()
	switch {
	case err == nil:
		c.br.success()
	case errors.Is(err, redis.Nil):
		c.br.success()
		c.misses.Add(1)
		return verdict.Decision{}, false
	case ctx.Err() != nil:
		// The caller gave up; that says nothing about Redis.
		c.br.abandon()
		c.errs.Add(1)
		return verdict.Decision{}, false
	default:
		c.br.failure()
		c.errs.Add(1)
		// Under Cluster the key's master may have died and its replica
		// taken over: have the slot map reloaded (bounded by the breaker).
		c.s.reloadTopology(context.WithoutCancel(ctx))
		return verdict.Decision{}, false
	}
	d, err := decodeVerdict(b, c.now())
	if errors.Is(err, errExpired) {
		c.misses.Add(1)
		return verdict.Decision{}, false
	}
	if err != nil {
		// A value we cannot read is a miss; the evaluation that follows
		// overwrites it.
		c.errs.Add(1)
		c.s.log.Debug("unreadable verdict in redis", "key", rk, "err", err)
		return verdict.Decision{}, false
	}
	c.hits.Add(1)
	return d, true
}

// Set implements verdict.SharedCache: it queues the write and returns at
// once; when the buffer is full the write is dropped and counted.
func (c *verdictCache) Set(_ context.Context, key string, d verdict.Decision, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	v, err := encodeVerdict(d, c.now().Add(ttl))
	if err != nil {
		c.writeFailed.Add(1)
		return
	}
	select {
	case c.writes <- pendingWrite{key: c.redisKey(key), value: v, ttl: ttl}:
	default:
		c.drops.Add(1)
	}
}

// writeLinger is how long the writer waits for more writes before
// sending a batch that is not full. Under load it turns one round trip per
// verdict into one per batch, which leaves the CPU to the decisions; a
// verdict reaches Redis at most this much later.
const writeLinger = time.Millisecond

// writer sends queued writes, up to write_batch per pipeline, until stop
// closes; then it sends what is left, once, within write_timeout.
func (c *verdictCache) writer(stop <-chan struct{}) {
	batch := make([]pendingWrite, 0, c.s.cfg.Cache.WriteBatch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		select {
		case w := <-c.writes:
			batch = append(batch[:0], w)
			batch = c.fill(batch)
			if len(batch) < cap(batch) {
				linger.Reset(writeLinger)
			wait:
				for len(batch) < cap(batch) {
					select {
					case w := <-c.writes:
						batch = c.fill(append(batch, w))
					case <-linger.C:
						break wait
					case <-stop:
						break wait
					}
				}
				linger.Stop()
			}
			c.flush(batch)
		case <-stop:
			for {
				batch = c.fill(batch[:0])
				if len(batch) == 0 {
					return
				}
				c.flush(batch)
			}
		}
	}
}

// fill adds queued writes to batch without waiting.
func (c *verdictCache) fill(batch []pendingWrite) []pendingWrite {
	for len(batch) < cap(batch) {
		select {
		case w := <-c.writes:
			batch = append(batch, w)
		default:
			return batch
		}
	}
	return batch
}

func (c *verdictCache) flush(batch []pendingWrite) {
	if c.br.isOpen() {
		// Redis is failing: writes would only queue up behind timeouts.
		c.writeFailed.Add(uint64(len(batch)))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.WriteTimeout+c.s.cfg.ReadTimeout)
	defer cancel()
	_, err := c.s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, w := range batch {
			p.Set(ctx, w.key, w.value, w.ttl)
		}
		return nil
	})
	if err != nil {
		c.writeFailed.Add(uint64(len(batch)))
		c.s.log.Debug("verdict cache write failed", "verdicts", len(batch), "err", err)
		return
	}
	c.written.Add(uint64(len(batch)))
}

// Stats returns the counters.
func (c *verdictCache) Stats() CacheStats {
	return CacheStats{
		Hits:         c.hits.Load(),
		Misses:       c.misses.Load(),
		Errors:       c.errs.Load(),
		Skipped:      c.skipped.Load(),
		BreakerOpens: c.br.opens.Load(),
		BreakerOpen:  c.br.isOpen(),
		Writes:       c.written.Load(),
		Drops:        c.drops.Load(),
		WriteFailed:  c.writeFailed.Load(),
	}
}

func encodeVerdict(d verdict.Decision, expires time.Time) ([]byte, error) {
	// Where the decision came from is the reader's business.
	d.Cached = ""
	body, err := json.Marshal(&d)
	if err != nil {
		return nil, fmt.Errorf("encoding verdict: %w", err)
	}
	b := make([]byte, headerLen, headerLen+len(body))
	b[0] = valueVersion
	binary.BigEndian.PutUint64(b[1:], uint64(expires.UnixMilli()))
	return append(b, body...), nil
}

// errExpired is a verdict Redis still holds past the expiry it was written
// with: the clocks of two instances differ a little.
var errExpired = errors.New("verdict expired")

// decodeVerdict reads a stored verdict; its CacheTTL is the time left.
func decodeVerdict(b []byte, now time.Time) (verdict.Decision, error) {
	var d verdict.Decision
	if len(b) < headerLen || b[0] != valueVersion {
		return d, errors.New("not a version 1 verdict")
	}
	left := time.UnixMilli(int64(binary.BigEndian.Uint64(b[1:]))).Sub(now)
	if left <= 0 {
		return d, errExpired
	}
	if err := json.Unmarshal(b[headerLen:], &d); err != nil {
		return d, fmt.Errorf("decoding verdict: %w", err)
	}
	d.CacheTTL = left
	return d, nil
}
