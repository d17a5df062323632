package redisstore

import (
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestBreakerOpensAfterFailuresAndProbesOncePerWindow(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	b := newBreaker(3, 5*time.Second, clk.now)

	// Failures that are not in a row do not open it.
	for range 2 {
		if !b.allow() {
			t.Fatal("closed breaker refused")
		}
		b.failure()
	}
	b.allow()
	b.success()
	for range 2 {
		b.allow()
		b.failure()
	}
	if b.isOpen() {
		t.Fatal("opened after 2 failures in a row (and 2 before a success)")
	}
	b.allow()
	b.failure()
	if !b.isOpen() || b.opens.Load() != 1 {
		t.Fatalf("not open after 3 failures in a row: open=%v opens=%d", b.isOpen(), b.opens.Load())
	}
	for range 100 {
		if b.allow() {
			t.Fatal("open breaker let a read through within its window")
		}
	}

	// The window passes: exactly one read probes, however many ask.
	clk.advance(5 * time.Second)
	allowed := 0
	for range 50 {
		if b.allow() {
			allowed++
		}
	}
	if allowed != 1 {
		t.Fatalf("%d reads allowed after the window, want 1 probe", allowed)
	}
	// The probe fails: open for another window, one more timeout paid.
	b.failure()
	if b.opens.Load() != 2 || b.allow() {
		t.Fatalf("failed probe: opens=%d, want 2 and reads refused", b.opens.Load())
	}
	clk.advance(5 * time.Second)
	if !b.allow() {
		t.Fatal("no probe after the second window")
	}
	b.success()
	if b.isOpen() {
		t.Fatal("successful probe did not close the breaker")
	}
	for range 10 {
		if !b.allow() {
			t.Fatal("closed breaker refused")
		}
		b.success()
	}
}

func TestBreakerAbandonedProbeIsHandedOn(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	b := newBreaker(1, time.Second, clk.now)
	b.allow()
	b.failure()
	clk.advance(time.Second)
	if !b.allow() {
		t.Fatal("no probe")
	}
	// The caller gave up before Redis answered: not Redis's fault.
	b.abandon()
	if b.opens.Load() != 1 {
		t.Fatal("an abandoned probe reopened the breaker")
	}
	if !b.allow() {
		t.Fatal("the next read did not get the probe")
	}
}

// The breaker is used from every decision goroutine at once: a storm of
// failures opens it once, and after the window exactly one of many
// concurrent readers gets the probe.
func TestBreakerConcurrentUse(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	b := newBreaker(3, time.Hour, clk.now)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if b.allow() {
					b.failure()
				}
			}
		}()
	}
	wg.Wait()
	if !b.isOpen() || b.opens.Load() != 1 {
		t.Fatalf("after a storm of failures: open=%v opens=%d, want open once", b.isOpen(), b.opens.Load())
	}
	clk.advance(time.Hour)
	var mu sync.Mutex
	probes := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if b.allow() {
					mu.Lock()
					probes++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if probes != 1 {
		t.Fatalf("%d concurrent reads got through after the window, want exactly 1 probe", probes)
	}
}
