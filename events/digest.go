package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	mail "github.com/wneessen/go-mail"

	"github.com/aupguard/aupguard/internal/atomicfile"
	"github.com/aupguard/aupguard/verdict"
)

// digestFile holds the digest's state in the spool directory: the events
// waiting for the next digest and the day of the last one sent. It is
// written like a cursor (temporary file, fsync, rename), so a restart
// neither loses waiting events nor sends a day's digest twice.
const digestFile = "digest.json"

// maxDigestRows bounds the events listed one by one in a digest; the
// counts per category cover all of them.
const maxDigestRows = 200

// maxDigestPending bounds the events kept between digests; beyond it
// only the counts grow.
const maxDigestPending = 10000

// digestRecord is what a digest shows of one event: no URL, no reason.
type digestRecord struct {
	ID       string           `json:"id"`
	Time     time.Time        `json:"time"`
	Severity verdict.Severity `json:"severity,omitempty"`
	Category string           `json:"category,omitempty"`
	User     string           `json:"user,omitempty"`
	ClientIP string           `json:"client_ip,omitempty"`
	Site     string           `json:"site,omitempty"`
}

type digestState struct {
	// LastSent is the local date (YYYY-MM-DD) of the last digest sent, or
	// of the last due time that had nothing to send.
	LastSent string `json:"last_sent,omitempty"`
	// Pending are the events for the next digest, oldest first.
	Pending []digestRecord `json:"pending,omitempty"`
	// Counts are events per category waiting for the next digest,
	// including those beyond maxDigestPending.
	Counts map[string]int `json:"counts,omitempty"`
}

// digest is the daily e-mail of events below the alert threshold. It is a
// Sink of its own (cursor "alerts-digest") that collects qualifying events
// into digestFile, and a loop that sends them once a day at cfg.At.
type digest struct {
	mailer   *Email
	cfg      DigestConfig
	to       []string
	minAlert verdict.Severity
	path     string
	loc      *time.Location
	hour     int
	minute   int
	now      func() time.Time
	log      *slog.Logger

	mu    sync.Mutex
	state digestState
	ids   map[string]bool
}

func newDigest(mailer *Email, cfg EmailConfig, minAlert verdict.Severity, dir string, log *slog.Logger) (*digest, error) {
	h, m, err := parseClock(cfg.Digest.At)
	if err != nil {
		return nil, fmt.Errorf("email digest: %w", err)
	}
	to := cfg.Digest.To
	if len(to) == 0 {
		to = cfg.To
	}
	d := &digest{
		mailer: mailer, cfg: cfg.Digest, to: to, minAlert: minAlert,
		path: filepath.Join(dir, digestFile), loc: mailer.loc, hour: h, minute: m,
		now: time.Now, log: log, ids: map[string]bool{},
	}
	b, err := os.ReadFile(d.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("email digest: %w", err)
	default:
		if err := json.Unmarshal(b, &d.state); err != nil {
			return nil, fmt.Errorf("email digest: %s is corrupt (%v); remove it to start over", d.path, err)
		}
	}
	for _, r := range d.state.Pending {
		d.ids[r.ID] = true
	}
	return d, nil
}

// Name is the digest's cursor name.
func (d *digest) Name() string { return "alerts-digest" }

// Delivery batches freely: collecting is a local file write.
func (d *digest) Delivery() DeliveryPolicy {
	return DeliveryPolicy{BatchSize: 100, BackoffMin: time.Second, BackoffMax: time.Minute}
}

// wanted: below the alert threshold (those are e-mailed one by one), at
// least the digest's minimum, and not a review request.
func (d *digest) wanted(ev *Event) bool {
	return ev.Kind != KindReviewRequest && !alertWorthy(ev, d.minAlert) &&
		sevOf(ev).Rank() >= d.cfg.MinSeverity.Rank()
}

// Deliver adds the batch's qualifying events to the waiting list and
// saves it before the cursor moves. An event already waiting (the batch
// came again after a crash) is not added twice.
func (d *digest) Deliver(_ context.Context, batch []Event) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	changed := false
	for i := range batch {
		ev := &batch[i]
		if !d.wanted(ev) || d.ids[ev.ID] {
			continue
		}
		changed = true
		if d.state.Counts == nil {
			d.state.Counts = map[string]int{}
		}
		d.state.Counts[categoryName(ev.Category)]++
		if len(d.state.Pending) >= maxDigestPending {
			continue
		}
		d.ids[ev.ID] = true
		d.state.Pending = append(d.state.Pending, digestRecord{
			ID: ev.ID, Time: ev.Time, Severity: sevOf(ev), Category: ev.Category,
			User: ev.User, ClientIP: ev.ClientIP, Site: site(ev),
		})
	}
	if !changed {
		return nil
	}
	return d.saveLocked()
}

func categoryName(c string) string {
	if c == "" {
		return "uncategorised"
	}
	return c
}

func (d *digest) saveLocked() error {
	b, err := json.Marshal(d.state)
	if err != nil {
		return err
	}
	return atomicfile.Write(d.path, b, 0o600)
}

// due returns when the next digest is due and the local day it is for. A
// day whose time has passed without a digest (the process was down) is
// due at once.
func (d *digest) due() (time.Time, string) {
	now := d.now().In(d.loc)
	today := time.Date(now.Year(), now.Month(), now.Day(), d.hour, d.minute, 0, 0, d.loc)
	d.mu.Lock()
	last := d.state.LastSent
	d.mu.Unlock()
	if day := today.Format(time.DateOnly); last != day {
		if !now.Before(today) {
			return now, day
		}
		return today, day
	}
	next := today.AddDate(0, 0, 1)
	return next, next.Format(time.DateOnly)
}

// run sends each day's digest until stop or ctx ends.
func (d *digest) run(ctx context.Context, stop <-chan struct{}) {
	for {
		at, day := d.due()
		wait := max(at.Sub(d.now()), 0)
		// Wake at least hourly: a clock change or a suspended machine
		// must not push the digest back by a day.
		t := time.NewTimer(min(wait, time.Hour))
		select {
		case <-stop:
			t.Stop()
			return
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if d.now().Before(at) {
			continue
		}
		for attempt := 0; ; attempt++ {
			err := d.send(ctx, day)
			if err == nil {
				break
			}
			w := backoff(d.mailer.policy, attempt)
			d.log.Warn("events: sending the daily digest failed; retrying", "day", day, "retry_in", w, "err", err)
			if !sleep(ctx, stop, w) {
				return
			}
		}
	}
}

// send sends the digest for day (if anything waits) and records it. The
// events sent are removed from the waiting list; events that arrived
// while it was sent wait for the next one. A crash between the relay's
// acceptance and the state's save sends the same digest again, with the
// same Message-ID.
func (d *digest) send(ctx context.Context, day string) error {
	d.mu.Lock()
	recs := append([]digestRecord(nil), d.state.Pending...)
	counts := make(map[string]int, len(d.state.Counts))
	for k, v := range d.state.Counts {
		counts[k] = v
	}
	d.mu.Unlock()
	if len(counts) > 0 {
		m, err := d.message(day, recs, counts)
		if err != nil {
			return err
		}
		if err := d.mailer.send(ctx, m); err != nil {
			return err
		}
	}
	d.mu.Lock()
	sent := make(map[string]bool, len(recs))
	for _, r := range recs {
		sent[r.ID] = true
		delete(d.ids, r.ID)
	}
	kept := d.state.Pending[:0]
	for _, r := range d.state.Pending {
		if !sent[r.ID] {
			kept = append(kept, r)
		}
	}
	d.state.Pending = kept
	for k, v := range counts {
		if d.state.Counts[k] -= v; d.state.Counts[k] <= 0 {
			delete(d.state.Counts, k)
		}
	}
	d.state.LastSent = day
	err := d.saveLocked()
	d.mu.Unlock()
	if err != nil {
		// The next start would send this digest again: say so.
		d.log.Error("events: the daily digest was sent but its state could not be saved; a restart may send it again", "day", day, "err", err)
	}
	if len(counts) > 0 {
		d.log.Info("events: daily digest sent", "day", day, "events", total(counts))
	}
	return nil
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func (d *digest) message(day string, recs []digestRecord, counts map[string]int) (*mail.Msg, error) {
	n := total(counts)
	cats := make([]string, 0, len(counts))
	for c := range counts {
		cats = append(cats, c)
	}
	sort.Slice(cats, func(i, j int) bool {
		if counts[cats[i]] != counts[cats[j]] {
			return counts[cats[i]] > counts[cats[j]]
		}
		return cats[i] < cats[j]
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%d event(s) below the alert threshold since the last digest.\n\nBy category:\n", n)
	for _, c := range cats {
		fmt.Fprintf(&b, "  %-20s %d\n", oneLine(c, 60), counts[c])
	}
	b.WriteString("\nEvents (oldest first):\n")
	for i, r := range recs {
		if i == maxDigestRows {
			fmt.Fprintf(&b, "  … and %d more (see the console)\n", len(recs)-i)
			break
		}
		learner := r.User
		if learner == "" {
			learner = r.ClientIP
		}
		fmt.Fprintf(&b, "  %s  %-8s %-14s %-16s %s  [%s]\n", r.Time.In(d.loc).Format("Mon 15:04"), r.Severity,
			oneLine(categoryName(r.Category), 40), oneLine(learner, 40), oneLine(r.Site, 100), r.ID)
	}
	if u := d.mailer.cfg.ConsoleURL; u != "" {
		b.WriteString("\nConsole: " + strings.TrimRight(u, "/") + "/alerts\n")
	}
	b.WriteString("-- \naupguard\n")
	subject := fmt.Sprintf("[aupguard] daily digest %s · %d event(s)", day, n)
	m, err := d.mailer.newMsg(d.to, subject, "aupguard.digest."+day+"@"+d.mailer.domain)
	if err != nil {
		return nil, err
	}
	m.SetBodyString(mail.TypeTextPlain, b.String())
	return m, nil
}

// pendingIDs returns the IDs waiting for the next digest (tests).
func (d *digest) pendingIDs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, r := range d.state.Pending {
		out = append(out, r.ID)
	}
	return out
}
