package redisstore

import (
	"sync"
	"sync/atomic"
	"time"
)

// Breaker states.
const (
	breakerClosed int32 = iota
	breakerOpen
	breakerProbing
)

// breaker is a circuit breaker for the verdict cache's read path. Closed,
// every read goes to Redis; after `failures` reads in a row fail it opens
// and reads are skipped (a miss) for openFor; then exactly one read probes
// Redis while the others keep skipping. A probe that succeeds closes it, a
// probe that fails opens it for another openFor. So a dead or stalled Redis
// costs one timeout per window, not one per decision.
//
// The closed state is read with one atomic load, so the hot path takes no
// lock; transitions are rare and take the mutex.
type breaker struct {
	failures int
	openFor  time.Duration
	now      func() time.Time

	state atomic.Int32
	fails atomic.Int32
	opens atomic.Uint64

	mu        sync.Mutex
	openUntil time.Time
}

func newBreaker(failures int, openFor time.Duration, now func() time.Time) *breaker {
	if now == nil {
		now = time.Now
	}
	return &breaker{failures: max(failures, 1), openFor: openFor, now: now}
}

// allow reports whether a read may go to Redis now. A true answer must be
// followed by exactly one of success, failure or abandon.
func (b *breaker) allow() bool {
	if b.state.Load() == breakerClosed {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state.Load() {
	case breakerClosed:
		return true
	case breakerOpen:
		if b.now().Before(b.openUntil) {
			return false
		}
		b.state.Store(breakerProbing)
		return true
	default: // a probe is in flight
		return false
	}
}

// isOpen reports whether reads are being skipped, without claiming the
// probe; the cache writer uses it to hold back while Redis is failing.
func (b *breaker) isOpen() bool { return b.state.Load() != breakerClosed }

func (b *breaker) success() {
	if b.state.Load() == breakerClosed && b.fails.Load() == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fails.Store(0)
	b.state.Store(breakerClosed)
}

func (b *breaker) failure() {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state.Load() {
	case breakerProbing:
		b.trip()
	case breakerClosed:
		if int(b.fails.Add(1)) >= b.failures {
			b.trip()
		}
	}
}

// abandon releases a read that ended for a reason that says nothing about
// Redis (the caller gave up): a probe is handed to the next read.
func (b *breaker) abandon() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state.Load() == breakerProbing {
		b.state.Store(breakerOpen) // openUntil has passed: the next read probes
	}
}

// trip opens the breaker; callers hold mu.
func (b *breaker) trip() {
	b.openUntil = b.now().Add(b.openFor)
	b.fails.Store(0)
	b.state.Store(breakerOpen)
	b.opens.Add(1)
}
