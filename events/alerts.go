package events

import (
	"container/list"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aupguard/aupguard/verdict"
)

// Deduper decides whether an alert for key goes out now. The first alert
// for a key is admitted; others within window of the last admitted one are
// counted and refused; the next one admitted after the window learns how
// many were refused since the previous one (suppressedSinceLast). The
// in-process MemDeduper serves one instance; a shared (Redis)
// implementation lets several instances de-duplicate together.
type Deduper interface {
	Admit(ctx context.Context, key string, window time.Duration) (admit bool, suppressedSinceLast int, err error)
}

// pendingTTL is how long a key whose window has passed keeps an
// unreported suppressed count, waiting for its next alert to carry it.
const pendingTTL = 24 * time.Hour

// MemDeduper is an in-process Deduper with bounded memory: at most maxKeys
// keys; keys whose window has passed are pruned (those with an unreported
// suppressed count after pendingTTL of quiet), and when still full the
// least recently active key is evicted (its pending count is lost to the
// alerts, not to the statistics).
type MemDeduper struct {
	now     func() time.Time
	maxKeys int

	mu        sync.Mutex
	keys      map[string]*list.Element // of *dedupEntry
	order     *list.List               // least recently active first
	lastSweep time.Time
	evicted   atomic.Uint64
}

type dedupEntry struct {
	key        string
	sent       time.Time // last admitted
	seen       time.Time // last activity
	suppressed int
}

// NewMemDeduper returns an empty deduper holding at most maxKeys keys. now
// is the clock (nil for time.Now); tests pass a fake one.
func NewMemDeduper(maxKeys int, now func() time.Time) *MemDeduper {
	if now == nil {
		now = time.Now
	}
	return &MemDeduper{now: now, maxKeys: max(maxKeys, 1), keys: make(map[string]*list.Element), order: list.New()}
}

// Admit implements Deduper; it never fails.
func (d *MemDeduper) Admit(_ context.Context, key string, window time.Duration) (bool, int, error) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if now.Sub(d.lastSweep) >= max(window, time.Minute) {
		d.sweep(now, window)
	}
	if el, ok := d.keys[key]; ok {
		e := el.Value.(*dedupEntry)
		e.seen = now
		d.order.MoveToBack(el)
		if now.Sub(e.sent) < window {
			e.suppressed++
			return false, 0, nil
		}
		n := e.suppressed
		e.sent, e.suppressed = now, 0
		return true, n, nil
	}
	if window <= 0 {
		return true, 0, nil
	}
	if len(d.keys) >= d.maxKeys {
		d.sweep(now, window)
		// Evict down to 90% so a full map does not sweep on every call.
		for len(d.keys) >= d.maxKeys*9/10 && d.order.Len() > 0 {
			d.remove(d.order.Front())
			d.evicted.Add(1)
		}
	}
	d.keys[key] = d.order.PushBack(&dedupEntry{key: key, sent: now, seen: now})
	return true, 0, nil
}

// sweep drops keys that no longer affect an answer.
func (d *MemDeduper) sweep(now time.Time, window time.Duration) {
	d.lastSweep = now
	for el := d.order.Front(); el != nil; {
		next := el.Next()
		e := el.Value.(*dedupEntry)
		if now.Sub(e.sent) >= window && (e.suppressed == 0 || now.Sub(e.seen) >= pendingTTL) {
			d.remove(el)
		}
		el = next
	}
}

func (d *MemDeduper) remove(el *list.Element) {
	delete(d.keys, el.Value.(*dedupEntry).key)
	d.order.Remove(el)
}

// Len returns the number of keys held.
func (d *MemDeduper) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.keys)
}

// Evicted counts keys dropped for lack of room.
func (d *MemDeduper) Evicted() uint64 { return d.evicted.Load() }

// alertStage filters and de-duplicates events into safeguarding alerts.
type alertStage struct {
	minSeverity verdict.Severity
	window      time.Duration
	dedup       Deduper
	log         *slog.Logger

	considered, suppressed, dedupErrs atomic.Uint64
}

// alertWorthy: the policy marked it alert, or it is at least min severity.
// Review requests are staff workflow, not misuse, and never alert.
func alertWorthy(ev *Event, minSev verdict.Severity) bool {
	if ev.Kind == KindReviewRequest {
		return false
	}
	return ev.Alert || verdict.Severity(ev.Severity).Rank() >= minSev.Rank()
}

// alertKey groups alerts per learner (the client IP when there is no user)
// and category.
func alertKey(ev *Event) string {
	who := "user:" + ev.User
	if ev.User == "" {
		who = "ip:" + ev.ClientIP
	}
	return who + "|" + ev.Category
}

// prepare turns a spool batch into the alerts to send.
func (a *alertStage) prepare(ctx context.Context, batch []Event) []Event {
	var out []Event
	for i := range batch {
		ev := batch[i]
		if !alertWorthy(&ev, a.minSeverity) {
			continue
		}
		a.considered.Add(1)
		admit, n, err := a.dedup.Admit(ctx, alertKey(&ev), a.window)
		if err != nil {
			// A duplicate alert is better than a missed one.
			a.dedupErrs.Add(1)
			a.log.Warn("events: alert de-duplication failed; sending the alert", "id", ev.ID, "err", err)
			admit, n = true, 0
		}
		if !admit {
			a.suppressed.Add(1)
			continue
		}
		ev.Suppressed = n
		out = append(out, ev)
	}
	return out
}
