package dnsfilter

import (
	"container/list"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/verdict"
)

// A device that cannot resolve a blocked name asks again: browsers retry,
// prefetch, and ask A, AAAA and HTTPS for every name. One event per packet
// floods the safeguarding trail with copies of one attempt, and costs the
// filter most of its time on blocked names. The folder keeps, for each
// (client, names, decision), a window of event_fold_window from its first
// event: that first event goes out at once, unchanged; repeats within the
// window are only counted (the policy step asks before it builds their
// event, so a repeat costs no event at all); when the window closes with
// repeats, a
// follow-up goes out — a copy of the first with its own ID, the time of
// the last repeat, Ref naming the first and Repeats the count. A reviewer
// thus sees when the attempt began at once, and how long it went on
// shortly after; no count is lost: windows pushed out by the size cap, and
// every open window at shutdown, report theirs the same way.

// foldMaxKeys bounds the open windows (about 1 KiB each): far more
// distinct (client, name) pairs than a school network blocks within a few
// seconds. When full, the oldest window closes early.
const foldMaxKeys = 16384

// folder folds repeated events; it is safe for concurrent use.
type folder struct {
	window time.Duration
	max    int
	newID  func() string
	stats  *counters

	mu   sync.Mutex
	open map[foldKey]*list.Element // of *foldEntry
	// order is oldest window first. Every window has the same length, so
	// the order they open in is the order they close in.
	order *list.List
}

type foldEntry struct {
	key     foldKey
	first   events.Event
	closes  time.Time
	last    time.Time
	repeats int
}

// newFolder returns nil when folding is off (window 0).
func newFolder(window time.Duration, newID func() string, stats *counters) *folder {
	if window <= 0 {
		return nil
	}
	return &folder{window: window, max: foldMaxKeys, newID: newID, stats: stats,
		open: map[foldKey]*list.Element{}, order: list.New()}
}

// foldKey is what makes two events the same attempt: the client, the name
// decided on and the name asked, and the decision. The query type is left
// out on purpose: A, AAAA and HTTPS for one name are one attempt. Its
// strings share the event's, so making one allocates nothing.
type foldKey struct {
	client                                    netip.Addr
	host, qname, kind, action, category, rule string
	failClosed                                bool
}

// keyOf is the key of an event.
func keyOf(ev *events.Event) foldKey {
	client, _ := netip.ParseAddr(ev.ClientIP)
	return foldKey{client: client, host: ev.Host, qname: ev.QName, kind: string(ev.Kind), action: string(ev.Action),
		category: ev.Category, rule: ev.Rule, failClosed: ev.Error != ""}
}

// decisionKey is the key of the event policyJudge.record would make for a
// decision d about host, so a repeat is known before its event is built
// (an ID, a clock reading and a copy of the groups per blocked packet).
// fold_test.go checks it against keyOf of the event really made.
func decisionKey(q *query, _ events.Kind, d *verdict.Decision, host string) foldKey {
	kind, _ := events.KindOf(d) // as the event's, whatever the caller thought
	return foldKey{client: q.client, host: host, qname: q.name, kind: string(kind), action: string(d.Action),
		category: d.Category, rule: d.Rule, failClosed: d.Error != ""}
}

// repeat counts an attempt with key k at now if it falls within an open
// window, and says so; the caller then makes no event at all. When it
// says no, the event goes to filter, which decides for good (another
// packet may have opened the window meanwhile).
func (f *folder) repeat(k foldKey, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	el, ok := f.open[k]
	if !ok {
		return false
	}
	e := el.Value.(*foldEntry)
	if !now.Before(e.closes) {
		return false
	}
	f.countLocked(e, now)
	return true
}

func (f *folder) countLocked(e *foldEntry, at time.Time) {
	e.repeats++
	if at.After(e.last) {
		e.last = at
	}
	f.stats.eventsFolded.Add(1)
}

// filter returns the events of evs to send now, with the follow-ups of
// windows that have closed (first, being older); repeats are counted and
// left out. It reuses evs's storage.
func (f *folder) filter(evs []events.Event) []events.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var due []events.Event
	out := evs[:0]
	for i := range evs {
		ev := evs[i]
		due = f.expireLocked(ev.Time, due)
		key := keyOf(&ev)
		if el, ok := f.open[key]; ok {
			f.countLocked(el.Value.(*foldEntry), ev.Time)
			continue
		}
		if len(f.open) >= f.max {
			due = f.closeLocked(f.order.Front(), due)
		}
		f.open[key] = f.order.PushBack(&foldEntry{key: key, first: ev, closes: ev.Time.Add(f.window), last: ev.Time})
		out = append(out, ev)
	}
	if len(due) == 0 {
		return out
	}
	return append(due, out...)
}

// expire returns the follow-ups of the windows closed by now.
func (f *folder) expire(now time.Time) []events.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.expireLocked(now, nil)
}

// closeAll closes every window (at shutdown) and returns the follow-ups.
func (f *folder) closeAll() []events.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var due []events.Event
	for f.order.Len() > 0 {
		due = f.closeLocked(f.order.Front(), due)
	}
	return due
}

func (f *folder) expireLocked(now time.Time, due []events.Event) []events.Event {
	for el := f.order.Front(); el != nil && !now.Before(el.Value.(*foldEntry).closes); el = f.order.Front() {
		due = f.closeLocked(el, due)
	}
	return due
}

func (f *folder) closeLocked(el *list.Element, due []events.Event) []events.Event {
	e := f.order.Remove(el).(*foldEntry)
	delete(f.open, e.key)
	if e.repeats == 0 {
		return due
	}
	ev := e.first
	ev.ID, ev.Time, ev.Ref, ev.Repeats = f.newID(), e.last, e.first.ID, e.repeats
	ev.Groups = slices.Clone(ev.Groups)
	return append(due, ev)
}

// sweepEvery is how often closed windows are looked for, so a follow-up
// goes out at most this long after its window closes even when its client
// asks nothing more.
func (f *folder) sweepEvery() time.Duration {
	return min(max(f.window/4, 50*time.Millisecond), time.Second)
}
