package identity

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

// retryAfter returns the wait a limited Verify reports, or 0 when the
// client was not limited.
func retryAfter(t *testing.T, id *Identity, ip netip.Addr, user, pw string) (time.Duration, error) {
	t.Helper()
	_, err := id.Verify(ip, user, pw)
	var rl *RateLimitedError
	if errors.As(err, &rl) {
		return rl.RetryAfter, err
	}
	return 0, err
}

// The allowance: max failures at once, then one more try every
// window/max; refused tries take nothing and do not extend the wait, and
// a success gives nothing back.
func TestFailureAllowanceRefillsAtMaxPerWindow(t *testing.T) {
	id, a, clock := newAuthIdentity(t, 3, time.Minute)
	ip := netip.MustParseAddr("192.0.2.7")
	for i := range 2 {
		if _, err := id.Verify(ip, "alice", "guess"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	// A success in between neither resets nor refunds.
	if _, err := id.Verify(ip, "alice", "correct horse"); err != nil {
		t.Fatalf("right password with allowance left: %v", err)
	}
	if _, err := id.Verify(ip, "alice", "guess"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("third failure: %v", err)
	}
	wait, err := retryAfter(t, id, ip, "alice", "correct horse")
	if !errors.Is(err, ErrRateLimited) || wait != 20*time.Second {
		t.Fatalf("after 3 failures: wait %s, err %v; want 20s (1 min / 3)", wait, err)
	}
	// Refused tries cost no bcrypt and do not push the wait back.
	before := a.compares.Load()
	clock.add(10 * time.Second)
	for range 5 {
		if wait, _ = retryAfter(t, id, ip, "alice", "guess"); wait != 10*time.Second {
			t.Fatalf("10s into the wait: RetryAfter %s, want 10s", wait)
		}
	}
	if a.compares.Load() != before {
		t.Error("refused tries ran bcrypt")
	}
	// One token back: one try, and a failure spends it again.
	clock.add(10 * time.Second)
	if _, err := id.Verify(ip, "alice", "guess"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("after window/max: %v, want a checked failure", err)
	}
	if wait, err = retryAfter(t, id, ip, "alice", "correct horse"); !errors.Is(err, ErrRateLimited) || wait != 20*time.Second {
		t.Fatalf("after spending the refilled try: wait %s, %v", wait, err)
	}
	// A whole window refills the whole allowance.
	clock.add(time.Minute)
	for i := range 3 {
		if _, err := id.Verify(ip, "alice", "guess"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d after a full window: %v", i, err)
		}
	}
	if _, err := id.Verify(ip, "alice", "guess"); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("fourth failure after a full window: %v", err)
	}
}

// An IPv4 client seen as IPv4-mapped IPv6 (a dual-stack listener) or with
// a zone is the same client: it cannot get a second allowance that way.
func TestFailureAllowanceIgnoresAddressSpelling(t *testing.T) {
	id, _, _ := newAuthIdentity(t, 2, time.Minute)
	for _, ip := range []string{"192.0.2.9", "::ffff:192.0.2.9"} {
		if _, err := id.Verify(netip.MustParseAddr(ip), "alice", "guess"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("%s: %v", ip, err)
		}
	}
	for _, ip := range []string{"192.0.2.9", "::ffff:192.0.2.9"} {
		if _, err := id.Verify(netip.MustParseAddr(ip), "alice", "correct horse"); !errors.Is(err, ErrRateLimited) {
			t.Errorf("%s after two failures between both spellings: %v", ip, err)
		}
	}
	v6 := netip.MustParseAddr("fe80::1")
	if _, err := id.Verify(v6.WithZone("eth0"), "alice", "guess"); !errors.Is(err, ErrBadCredentials) {
		t.Fatal(err)
	}
	if _, err := id.Verify(v6.WithZone("eth1"), "alice", "guess"); !errors.Is(err, ErrBadCredentials) {
		t.Fatal(err)
	}
	if _, err := id.Verify(v6, "alice", "correct horse"); !errors.Is(err, ErrRateLimited) {
		t.Errorf("zones gave a second allowance: %v", err)
	}
}

// The table of addresses is bounded: a flood of failures from more
// addresses than it holds keeps it at its size.
func TestFailureTableIsBounded(t *testing.T) {
	f, err := newFailures(3, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	for i := range maxTracked + 1000 {
		f.record(addr(i), now)
	}
	if n := f.buckets.Len(); n != maxTracked {
		t.Fatalf("%d addresses tracked, want the bound %d", n, maxTracked)
	}
	// The most recent offender is still limited after its failures.
	last := addr(maxTracked + 999)
	f.record(last, now)
	f.record(last, now)
	if f.limited(last, now) == 0 {
		t.Error("a tracked address with its allowance spent is not limited")
	}
}
