package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Sink receives batches of events from the spool. Deliver returns nil only
// when the whole batch is safely received; any error makes the deliverer
// retry the same batch, so a sink must tolerate duplicates or de-duplicate
// by event ID. Wrap ErrRejected for a refusal that a retry will not cure
// soon (it is logged loudly and retried slowly, never dropped).
type Sink interface {
	Name() string
	Deliver(ctx context.Context, batch []Event) error
}

// ErrRejected marks a delivery the receiver refused, such as an HTTP 4xx
// other than 408 and 429: bad credentials, a wrong URL, a body too large.
var ErrRejected = errors.New("rejected by receiver")

// DeliveryPolicy tunes how a sink is fed. A Sink may implement
// `Delivery() DeliveryPolicy`; otherwise DefaultDeliveryPolicy applies.
type DeliveryPolicy struct {
	// BatchSize is the most events passed to one Deliver call.
	BatchSize int
	// BackoffMin and BackoffMax bound the delay between attempts; it
	// doubles per failure, with jitter.
	BackoffMin, BackoffMax time.Duration
}

// DefaultDeliveryPolicy is used for sinks that do not state one.
func DefaultDeliveryPolicy() DeliveryPolicy {
	return DeliveryPolicy{BatchSize: 100, BackoffMin: time.Second, BackoffMax: 5 * time.Minute}
}

func (p DeliveryPolicy) validate() error {
	if p.BatchSize < 1 || p.BackoffMin <= 0 || p.BackoffMax < p.BackoffMin {
		return fmt.Errorf("invalid delivery policy: batch size %d, backoff %s..%s", p.BatchSize, p.BackoffMin, p.BackoffMax)
	}
	return nil
}

// backoff is the delay before retry number attempt+1: min·2^attempt capped
// at max, with "equal jitter" (half fixed, half random) so instances that
// failed together do not retry together, yet never retry instantly.
func backoff(p DeliveryPolicy, attempt int) time.Duration {
	d := p.BackoffMin
	for i := 0; i < attempt && d < p.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, p.BackoffMax)
	half := d / 2
	return half + rand.N(d-half+1)
}

// stage is one consumer of the spool with its own durable cursor: a sink,
// or the alert stage (which filters and de-duplicates before its sink).
type stage struct {
	name      string
	sink      Sink
	policy    DeliveryPolicy
	cursorDir string
	log       *slog.Logger
	// prepare turns a batch read from the spool into what is delivered; it
	// runs once per batch, not per attempt, so retries resend the same
	// events. nil delivers the batch as read.
	prepare func(ctx context.Context, batch []Event) []Event
	// fromEnd starts a stage that has no cursor at the spool's current
	// file instead of its oldest.
	fromEnd bool

	reader *spoolReader

	mu        sync.Mutex
	saved     Position
	lastErr   string
	lastErrAt time.Time
	lastOK    time.Time

	processed, delivered, batches, failures, rejected, corrupt, cursorErrs atomic.Uint64
}

// run tails the spool and delivers until stop is closed or ctx is done. An
// attempt in flight when stop closes is allowed to finish, so a clean
// shutdown saves the cursor of a batch the receiver accepted.
func (s *stage) run(ctx context.Context, stop <-chan struct{}) {
	defer s.reader.close()
	readErrs := 0
	for {
		evs, pos, err := s.reader.next(ctx, stop, s.policy.BatchSize)
		if err != nil {
			if errors.Is(err, errStopped) || ctx.Err() != nil {
				return
			}
			s.setErr(err)
			s.log.Error("events: reading the spool failed; retrying", "stage", s.name, "err", err)
			if !sleep(ctx, stop, backoff(s.policy, readErrs)) {
				return
			}
			readErrs++
			continue
		}
		readErrs = 0
		out := evs
		if s.prepare != nil && len(evs) > 0 {
			out = s.prepare(ctx, evs)
		}
		if len(out) > 0 {
			select {
			case <-stop:
				return
			default:
			}
			if !s.deliver(ctx, stop, out) {
				return
			}
		}
		s.commit(pos)
		s.processed.Add(uint64(len(evs)))
	}
}

// deliver retries one batch until the sink takes it; false means it was
// told to stop first (the cursor is not moved, so the batch comes again).
func (s *stage) deliver(ctx context.Context, stop <-chan struct{}, batch []Event) bool {
	for attempt := 0; ; attempt++ {
		err := s.sink.Deliver(ctx, batch)
		if err == nil {
			s.delivered.Add(uint64(len(batch)))
			s.batches.Add(1)
			s.mu.Lock()
			s.lastOK = time.Now()
			s.mu.Unlock()
			if attempt > 0 {
				s.log.Info("events: delivered after retries", "stage", s.name, "events", len(batch), "attempts", attempt+1)
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		s.failures.Add(1)
		s.setErr(err)
		wait := backoff(s.policy, attempt)
		if errors.Is(err, ErrRejected) {
			s.rejected.Add(1)
			wait = s.policy.BackoffMax
			s.log.Error("events: receiver rejected a batch; it is kept and retried until accepted: fix the receiver or the configuration",
				"stage", s.name, "events", len(batch), "first_id", batch[0].ID, "attempt", attempt+1, "retry_in", wait, "err", err)
		} else {
			var ra interface{ RetryAfter() time.Duration }
			if errors.As(err, &ra) && ra.RetryAfter() > wait {
				wait = min(ra.RetryAfter(), s.policy.BackoffMax)
			}
			s.log.Warn("events: delivery failed; retrying",
				"stage", s.name, "events", len(batch), "first_id", batch[0].ID, "attempt", attempt+1, "retry_in", wait, "err", err)
		}
		if !s.sleepOrWake(ctx, stop, wait) {
			return false
		}
	}
}

// Waker is an optional interface of a Sink that can tell when its receiver
// is reachable again (a Redis fail-over completed, a restarted server
// answers), so a failed batch is retried at once instead of after the rest
// of a back-off that may have grown to minutes. Ready's channel receives
// (or is closed) when a retry is worth making; the sink decides how it
// knows. The back-off still applies when no wake comes.
type Waker interface {
	Ready() <-chan struct{}
}

// sleepOrWake is sleep that also ends early when the sink says its
// receiver is back; false means stop or ctx came first.
func (s *stage) sleepOrWake(ctx context.Context, stop <-chan struct{}, d time.Duration) bool {
	w, ok := s.sink.(Waker)
	if !ok {
		return sleep(ctx, stop, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.Ready():
		s.log.Info("events: receiver is back; retrying now", "stage", s.name)
	case <-stop:
		return false
	case <-ctx.Done():
		return false
	}
	return true
}

// commit saves the cursor after a delivered batch. A failed save is
// logged and counted; delivery goes on, and a restart would resend from the
// last saved cursor (at-least-once).
func (s *stage) commit(pos Position) {
	if err := saveCursor(s.cursorDir, s.name, pos); err != nil {
		s.cursorErrs.Add(1)
		s.setErr(err)
		s.log.Error("events: saving the delivery cursor failed", "stage", s.name, "cursor", pos.String(), "err", err)
		return
	}
	s.mu.Lock()
	s.saved = pos
	s.mu.Unlock()
}

func (s *stage) setErr(err error) {
	s.mu.Lock()
	s.lastErr, s.lastErrAt = err.Error(), time.Now()
	s.mu.Unlock()
}

func (s *stage) savedPos() Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saved
}

func (s *stage) stats() SinkStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SinkStats{
		Processed:     s.processed.Load(),
		Delivered:     s.delivered.Load(),
		Batches:       s.batches.Load(),
		Failures:      s.failures.Load(),
		Rejected:      s.rejected.Load(),
		CorruptLines:  s.corrupt.Load(),
		CursorErrors:  s.cursorErrs.Load(),
		Cursor:        s.saved,
		LastError:     s.lastErr,
		LastErrorTime: s.lastErrAt,
		LastDelivery:  s.lastOK,
	}
}

// sleep waits d; false means stop or ctx came first.
func sleep(ctx context.Context, stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	case <-ctx.Done():
		return false
	}
}
