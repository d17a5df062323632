package events

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aupguard/aupguard/verdict"
)

// fakeClock lets de-duplication windows pass without sleeping.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

const alertSecret = "alert-secret"

func alertConfig(t *testing.T, rcv *receiver) Config {
	cfg := testConfig(t)
	cfg.Alerts.Webhook.URL = rcv.url()
	cfg.Alerts.Webhook.Secret = alertSecret
	return cfg
}

// startWithClock starts a pipeline whose alert de-duplication uses clock.
func startWithClock(t *testing.T, cfg Config, clock *fakeClock) *Pipeline {
	t.Helper()
	p, err := New(cfg, "test-1", quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetDeduper(NewMemDeduper(cfg.Alerts.MaxKeys, clock.Now)); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeP(t, p) })
	return p
}

func emit(t *testing.T, p *Pipeline, ev Event) string {
	t.Helper()
	ev.ID = NewID()
	if err := p.Emit(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	return ev.ID
}

// waitProcessed waits until the alert stage has read n events and sent
// every alert it decided to send.
func waitProcessed(t *testing.T, p *Pipeline, n uint64) Stats {
	t.Helper()
	var st Stats
	eventually(t, fmt.Sprintf("alert stage to process %d events", n), func() bool {
		st = p.Stats()
		a := st.Alerts
		return st.Sinks["alerts"].Processed == n && a.Sent == a.Considered-a.Suppressed
	})
	return st
}

func TestAlertDeduplication(t *testing.T) {
	rcv := newReceiver(t, alertSecret)
	cfg := alertConfig(t, rcv)
	clock := newFakeClock()
	p := startWithClock(t, cfg, clock)

	first := emit(t, p, testEvent("jsmith", "gambling", "high"))
	for i := 0; i < 49; i++ {
		emit(t, p, testEvent("jsmith", "gambling", "high"))
	}
	other := emit(t, p, testEvent("ajones", "gambling", "high")) // another learner
	cat := emit(t, p, testEvent("jsmith", "weapons", "high"))    // another category
	anon1 := testEvent("", "gambling", "high")
	anon1.ClientIP = "10.9.9.1"
	anonA := emit(t, p, anon1)
	emit(t, p, anon1) // same IP, no user: suppressed
	anon2 := anon1
	anon2.ClientIP = "10.9.9.2"
	anonB := emit(t, p, anon2)

	st := waitProcessed(t, p, 55)
	if st.Alerts.Sent != 5 || st.Alerts.Suppressed != 50 {
		t.Fatalf("alerts sent %d suppressed %d, want 5 and 50", st.Alerts.Sent, st.Alerts.Suppressed)
	}
	_, got, _ := rcv.snapshot()
	var ids []string
	for _, a := range got {
		ids = append(ids, a.ID)
		if a.Suppressed != 0 {
			t.Errorf("first alert %s carries suppressed=%d", a.ID, a.Suppressed)
		}
	}
	if want := []string{first, other, cat, anonA, anonB}; !slices.Equal(ids, want) {
		t.Errorf("alerts %v, want %v", ids, want)
	}

	// After the window the next alert for jsmith/gambling goes out and
	// says how many were held back.
	clock.Advance(cfg.Alerts.Window + time.Second)
	next := emit(t, p, testEvent("jsmith", "gambling", "high"))
	waitProcessed(t, p, 56)
	_, got, _ = rcv.snapshot()
	last := got[len(got)-1]
	if last.ID != next || last.Suppressed != 49 {
		t.Errorf("alert after the window: id %s suppressed %d, want %s with 49", last.ID, last.Suppressed, next)
	}
	rcv.checkProtocol()
}

func TestAlertMinSeverity(t *testing.T) {
	events := []struct {
		severity string
		alert    bool
		kind     Kind
	}{
		0: {"info", false, KindBlock},
		1: {"", false, KindBlock},
		2: {"low", false, KindBlock},
		3: {"low", true, KindAlert},
		4: {"medium", false, KindBlock},
		5: {"high", false, KindBlock},
		6: {"critical", false, KindBlock},
		7: {"critical", false, KindReviewRequest},
	}
	// Which events alert at each threshold.
	cases := []struct {
		min  verdict.Severity
		want []int
	}{
		{verdict.SeverityHigh, []int{3, 5, 6}},
		{verdict.SeverityCritical, []int{3, 6}},
		{verdict.SeverityMedium, []int{3, 4, 5, 6}},
		{verdict.SeverityInfo, []int{0, 1, 2, 3, 4, 5, 6}},
	}
	for _, c := range cases {
		t.Run(string(c.min), func(t *testing.T) {
			rcv := newReceiver(t, alertSecret)
			cfg := alertConfig(t, rcv)
			cfg.Alerts.MinSeverity = c.min
			p := startWithClock(t, cfg, newFakeClock())
			var ids []string
			for i, e := range events {
				ev := testEvent(fmt.Sprintf("learner%d", i), "gambling", e.severity)
				ev.Alert, ev.Kind = e.alert, e.kind
				ids = append(ids, emit(t, p, ev))
			}
			waitProcessed(t, p, uint64(len(events)))
			var want []string
			for _, i := range c.want {
				want = append(want, ids[i])
			}
			_, got, _ := rcv.snapshot()
			var sent []string
			for _, a := range got {
				sent = append(sent, a.ID)
			}
			if !slices.Equal(sent, want) {
				t.Errorf("min_severity %s: alerts %v, want %v", c.min, sent, want)
			}
		})
	}
}

func TestAlertsDoNotReplayHistory(t *testing.T) {
	rcv := newReceiver(t, alertSecret)
	cfg := testConfig(t)
	p1 := start(t, cfg, nil)
	emit(t, p1, testEvent("jsmith", "gambling", "critical"))
	closeP(t, p1)

	// Alerts enabled later: only what happens from now on alerts.
	cfg = alertConfig(t, rcv)
	cfg.DataDir = p1.cfg.DataDir
	p2 := start(t, cfg, nil)
	now := emit(t, p2, testEvent("ajones", "gambling", "critical"))
	waitProcessed(t, p2, 1)
	closeP(t, p2)

	// And after a restart the alert stage resumes from its cursor: the
	// alert raised while down is sent, nothing is sent twice.
	rcv.mode.Store(modeDown)
	p3 := start(t, cfg, nil)
	down := emit(t, p3, testEvent("bsmith", "gambling", "critical"))
	eventually(t, "alert delivery failures", func() bool { return p3.Stats().Sinks["alerts"].Failures > 0 })
	closeP(t, p3)
	rcv.mode.Store(modeUp)
	p4 := start(t, cfg, nil)
	waitProcessed(t, p4, 1)
	rcv.expectExactlyOnce([]string{now, down})
}

func TestAlertDedupFailureSendsAlert(t *testing.T) {
	rcv := newReceiver(t, alertSecret)
	p, err := New(alertConfig(t, rcv), "t", quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetDeduper(failingDeduper{}); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer closeP(t, p)
	a := emit(t, p, testEvent("jsmith", "gambling", "high"))
	b := emit(t, p, testEvent("jsmith", "gambling", "high"))
	st := waitProcessed(t, p, 2)
	if st.Alerts.DedupErrors != 2 {
		t.Errorf("dedup errors = %d, want 2", st.Alerts.DedupErrors)
	}
	rcv.expectExactlyOnce([]string{a, b})
}

type failingDeduper struct{}

func (failingDeduper) Admit(context.Context, string, time.Duration) (bool, int, error) {
	return false, 0, fmt.Errorf("redis: connection refused")
}

func TestMemDeduper(t *testing.T) {
	clock := newFakeClock()
	d := NewMemDeduper(100, clock.Now)
	ctx := context.Background()
	const w = 10 * time.Minute
	admit := func(key string) (bool, int) {
		ok, n, err := d.Admit(ctx, key, w)
		if err != nil {
			t.Fatal(err)
		}
		return ok, n
	}
	if ok, n := admit("k"); !ok || n != 0 {
		t.Fatalf("first: %v %d", ok, n)
	}
	for i := 0; i < 5; i++ {
		if ok, _ := admit("k"); ok {
			t.Fatalf("admitted within the window")
		}
	}
	clock.Advance(w - time.Second)
	if ok, _ := admit("k"); ok {
		t.Fatalf("admitted within the window")
	}
	clock.Advance(time.Second)
	if ok, n := admit("k"); !ok || n != 6 {
		t.Fatalf("after the window: %v %d, want true 6", ok, n)
	}
	clock.Advance(w)
	if ok, n := admit("k"); !ok || n != 0 {
		t.Fatalf("after a quiet window: %v %d, want true 0", ok, n)
	}

	// Window 0 disables de-duplication and holds no memory.
	z := NewMemDeduper(10, clock.Now)
	for i := 0; i < 3; i++ {
		if ok, _, _ := z.Admit(ctx, "k", 0); !ok {
			t.Fatal("window 0 suppressed an alert")
		}
	}
	if z.Len() != 0 {
		t.Errorf("window 0 holds %d keys", z.Len())
	}
}

func TestMemDeduperBoundedMemory(t *testing.T) {
	clock := newFakeClock()
	d := NewMemDeduper(100, clock.Now)
	ctx := context.Background()
	const w = time.Minute
	for i := 0; i < 10000; i++ {
		d.Admit(ctx, fmt.Sprintf("user%d|gambling", i), w)
		if d.Len() > 100 {
			t.Fatalf("after %d keys the deduper holds %d, over its bound of 100", i+1, d.Len())
		}
	}
	if d.Evicted() == 0 {
		t.Error("no evictions counted")
	}

	// Expired keys are pruned; a key with an unreported count is kept
	// until pendingTTL.
	d = NewMemDeduper(1000, clock.Now)
	for i := 0; i < 50; i++ {
		d.Admit(ctx, fmt.Sprintf("quiet%d", i), w)
	}
	d.Admit(ctx, "busy", w)
	d.Admit(ctx, "busy", w) // suppressed: pending count 1
	clock.Advance(2 * w)
	d.Admit(ctx, "trigger", w) // sweeps
	if d.Len() != 2 {
		t.Errorf("after the window %d keys remain, want busy and trigger", d.Len())
	}
	if ok, n, _ := d.Admit(ctx, "busy", w); !ok || n != 1 {
		t.Errorf("pending count lost: %v %d", ok, n)
	}
}
