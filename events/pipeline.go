package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// ErrOverflow is returned by Emit when the queue stayed full until the
// caller's context ended; the event is not spooled, and counted.
var ErrOverflow = errors.New("events: queue full")

// ErrClosed is returned by Emit after Close.
var ErrClosed = errors.New("events: pipeline closed")

// Pipeline is the misuse-event pipeline: Emit queues an event, one writer
// goroutine appends it to the spool, and one deliverer per sink (and one
// for alerts) tails the spool from its own durable cursor.
type Pipeline struct {
	cfg       Config
	instance  string
	log       *slog.Logger
	dir       string
	cursorDir string
	lock      *os.File

	queue chan item
	// mu orders Emit against Close: Emit holds it shared while it sends,
	// Close takes it to mark the pipeline closed and close the queue, so
	// no event can be queued after the writer's last drain.
	mu     sync.RWMutex
	closed bool

	spool *spoolWriter

	setupMu    sync.Mutex
	started    bool
	stages     []*stage
	alerts     *alertStage
	alertStage *stage
	// The e-mail alert stage, its sink and the daily digest; nil when off.
	emailAlerts *alertStage
	emailStage  *stage
	email       *Email
	digest      *digest

	stop       chan struct{} // asks deliverers to stop after the attempt in flight
	abort      chan struct{} // tells the writer to give up a failing write
	writerDone chan struct{}
	hardCancel context.CancelFunc
	wg         sync.WaitGroup
	closeOnce  sync.Once
	closeErr   error
	writerErr  error // set by the writer before writerDone closes
	// pruneEvery is how often the janitor prunes the spool.
	pruneEvery time.Duration
	// writeLinger is how long the writer waits for more events when it
	// has fewer than lingerBelow to write.
	writeLinger time.Duration

	emitted, spooled, overflow, refused, spoolErrs, lost, emitTimeouts atomic.Uint64
	lastOverflowLog                                                    atomic.Int64
}

// item is one encoded event on its way to the spool.
type item struct {
	line []byte
	id   string
	done chan error // EmitDurable's, or nil
}

// New opens the spool in cfg.DataDir/events (creating it) and sets up the
// webhook and alert stages the config enables. instance names this process
// in events (the host name when empty). Nothing runs until Start, but Emit
// can already queue.
func New(cfg Config, instance string, logger *slog.Logger) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("events config: %w", err)
	}
	if logger == nil {
		logger = slog.Default()
	}
	if instance == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("events: no instance name and no host name: %w", err)
		}
		instance = h
	}
	dir := filepath.Join(cfg.DataDir, "events")
	cursorDir := filepath.Join(dir, "cursors")
	if err := os.MkdirAll(cursorDir, 0o750); err != nil {
		return nil, fmt.Errorf("events: creating spool directory: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	p := &Pipeline{
		cfg:         cfg,
		instance:    instance,
		log:         logger,
		dir:         dir,
		cursorDir:   cursorDir,
		lock:        lock,
		queue:       make(chan item, cfg.QueueSize),
		stop:        make(chan struct{}),
		abort:       make(chan struct{}),
		writerDone:  make(chan struct{}),
		pruneEvery:  time.Minute,
		writeLinger: time.Millisecond,
	}
	fail := func(err error) (*Pipeline, error) {
		if p.spool != nil {
			p.spool.close()
		}
		unlockDir(lock)
		return nil, err
	}
	p.spool, err = openSpool(dir, cfg.Fsync, int64(cfg.MaxFileSize), logger)
	if err != nil {
		return fail(fmt.Errorf("events: %w", err))
	}
	if cfg.Webhook.Enabled() {
		wh, err := NewWebhook("webhook", cfg.Webhook)
		if err != nil {
			return fail(err)
		}
		if err := p.AddSink(wh); err != nil {
			return fail(err)
		}
	}
	if cfg.Alerts.Webhook.Enabled() {
		wh, err := NewWebhook("alerts", cfg.Alerts.Webhook)
		if err != nil {
			return fail(err)
		}
		p.alerts = &alertStage{
			minSeverity: cfg.Alerts.MinSeverity,
			window:      cfg.Alerts.Window,
			dedup:       NewMemDeduper(cfg.Alerts.MaxKeys, nil),
			log:         logger,
		}
		p.alertStage = p.newStage(wh)
		p.alertStage.prepare = p.alerts.prepare
		// Alerts are about now: enabling them must not replay the spool's
		// history to the safeguarding team.
		p.alertStage.fromEnd = true
		p.stages = append(p.stages, p.alertStage)
	}
	if cfg.Alerts.Email.Enabled() {
		if err := p.setupEmail(cfg.Alerts); err != nil {
			return fail(err)
		}
	}
	return p, nil
}

func (p *Pipeline) newStage(s Sink) *stage {
	policy := DefaultDeliveryPolicy()
	if d, ok := s.(interface{ Delivery() DeliveryPolicy }); ok {
		policy = d.Delivery()
	}
	st := &stage{
		name:      s.Name(),
		sink:      s,
		policy:    policy,
		cursorDir: p.cursorDir,
		log:       p.log,
	}
	st.reader = &spoolReader{dir: p.dir, stage: st.name, state: p.spool.state, log: p.log, onCorrupt: func() { st.corrupt.Add(1) }}
	return st
}

// AddSink registers a sink before Start. Its name (lower case letters,
// digits, '.', '_', '-') names its cursor file, so it must be stable across
// restarts and unique. A sink with no cursor yet starts at the oldest spool
// file.
func (p *Pipeline) AddSink(s Sink) error {
	p.setupMu.Lock()
	defer p.setupMu.Unlock()
	if p.started {
		return errors.New("events: AddSink after Start")
	}
	name := s.Name()
	if !validSinkName.MatchString(name) {
		return fmt.Errorf("events: invalid sink name %q: use lower case letters, digits, '.', '_' and '-'", name)
	}
	for _, st := range p.stages {
		if st.name == name {
			return fmt.Errorf("events: a sink named %q is already registered", name)
		}
	}
	if name == "alerts" {
		return errors.New(`events: sink name "alerts" is reserved for the alert stage`)
	}
	st := p.newStage(s)
	if err := st.policy.validate(); err != nil {
		return fmt.Errorf("events: sink %s: %w", name, err)
	}
	p.stages = append(p.stages, st)
	return nil
}

// SetDeduper replaces the in-process alert de-duplication (with a shared
// one, say) before Start.
func (p *Pipeline) SetDeduper(d Deduper) error {
	p.setupMu.Lock()
	defer p.setupMu.Unlock()
	if p.started {
		return errors.New("events: SetDeduper after Start")
	}
	if p.alerts == nil && p.emailAlerts == nil {
		return errors.New("events: alerts are not configured (alerts.webhook.url and alerts.email.smtp are empty)")
	}
	if p.alerts != nil {
		p.alerts.dedup = d
	}
	if p.emailAlerts != nil {
		// Its own keys: the webhook stage admitting an alert must not
		// suppress the same alert's e-mail.
		p.emailAlerts.dedup = prefixDeduper{d: d, prefix: "email|"}
	}
	return nil
}

// Start runs the spool writer, the deliverers and the spool janitor.
// Cancelling ctx stops deliveries at once (a request in flight is
// abandoned); Close is the orderly stop and must be called in any case.
func (p *Pipeline) Start(ctx context.Context) error {
	p.setupMu.Lock()
	defer p.setupMu.Unlock()
	if p.started {
		return errors.New("events: already started")
	}
	p.mu.RLock()
	closed := p.closed
	p.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	p.started = true
	go p.runWriter()
	ctx, p.hardCancel = context.WithCancel(ctx)
	cur, _, _ := p.spool.state.get()
	seqs, err := listSpool(p.dir)
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	oldest := cur
	if len(seqs) > 0 {
		oldest = seqs[0]
	}
	for _, st := range p.stages {
		pos, ok, err := loadCursor(p.cursorDir, st.name)
		if err != nil {
			p.log.Error("events: cannot read the delivery cursor; starting over (receivers may see duplicates)", "stage", st.name, "err", err)
		}
		if !ok {
			pos = Position{Seq: oldest}
			if st.fromEnd {
				pos = Position{Seq: cur}
			}
		}
		st.reader.pos = pos
		st.mu.Lock()
		st.saved = pos
		st.mu.Unlock()
		p.log.Info("events: delivery starting", "stage", st.name, "cursor", pos.String(), "batch_size", st.policy.BatchSize)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			st.run(ctx, p.stop)
		}()
	}
	if p.digest != nil {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.digest.run(ctx, p.stop)
		}()
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.janitor(ctx)
	}()
	return nil
}

// Emit queues an event for the spool. It fills in a missing ID, time and
// instance. It is cheap (an encode and a channel send); when the queue is
// full it waits for room until ctx is done or emit_timeout has passed,
// whichever is first, then counts an overflow (and, if the timeout fired,
// an emit timeout) and returns ErrOverflow. The timeout is the one rule of
// back-pressure for every enforcement point: a caller may pass a context
// that is never cancelled (a client hanging up must not cancel its own
// misuse event) and still wait no longer than emit_timeout. A nil error
// means queued: the event reaches disk within the fsync policy's window
// (see EmitDurable to wait for it).
func (p *Pipeline) Emit(ctx context.Context, ev Event) error {
	return p.emit(ctx, ev, nil)
}

// EmitDurable is Emit that also waits until the event is in the spool and
// fsynced as the fsync policy promises: for rare events whose caller must
// know, such as a learner's review request. Its wait for room in the
// queue is bounded as Emit's; its wait for the disk by ctx and by
// emit_timeout plus fsync_interval (the longest the fsync policy lets a
// written event wait for its fsync).
func (p *Pipeline) EmitDurable(ctx context.Context, ev Event) error {
	done := make(chan error, 1)
	if err := p.emit(ctx, ev, done); err != nil {
		return err
	}
	limit := p.cfg.EmitTimeout + p.cfg.FsyncInterval
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return fmt.Errorf("events: event queued but not confirmed on disk within %s (emit_timeout + fsync_interval)", limit)
	case <-ctx.Done():
		return fmt.Errorf("events: event queued but not yet confirmed on disk: %w", ctx.Err())
	}
}

func (p *Pipeline) emit(ctx context.Context, ev Event, done chan error) error {
	if ev.ID == "" {
		ev.ID = NewID()
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	if ev.Instance == "" {
		ev.Instance = p.instance
	}
	line, err := encodeLine(&ev)
	if err != nil {
		return fmt.Errorf("events: encoding event %s: %w", ev.ID, err)
	}
	it := item{line: line, id: ev.ID, done: done}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		p.refused.Add(1)
		return fmt.Errorf("events: event %s not spooled: %w", ev.ID, ErrClosed)
	}
	select {
	case p.queue <- it:
		p.emitted.Add(1)
		return nil
	default:
	}
	timer := time.NewTimer(p.cfg.EmitTimeout)
	defer timer.Stop()
	select {
	case p.queue <- it:
		p.emitted.Add(1)
		return nil
	case <-timer.C:
		p.emitTimeouts.Add(1)
		n := p.overflow.Add(1)
		p.logOverflow(n)
		return fmt.Errorf("events: event %s not spooled, queue of %d full for emit_timeout (%s): %w", ev.ID, cap(p.queue), p.cfg.EmitTimeout, ErrOverflow)
	case <-ctx.Done():
		n := p.overflow.Add(1)
		p.logOverflow(n)
		return fmt.Errorf("events: event %s not spooled, queue of %d full: %w (%w)", ev.ID, cap(p.queue), ErrOverflow, ctx.Err())
	}
}

// logOverflow logs at most every 10s so an overload does not also flood
// the log; the counter has every one.
func (p *Pipeline) logOverflow(total uint64) {
	now := time.Now().UnixNano()
	last := p.lastOverflowLog.Load()
	if now-last < int64(10*time.Second) || !p.lastOverflowLog.CompareAndSwap(last, now) {
		return
	}
	p.log.Error("events: queue full, events are being refused (the caller gets ErrOverflow)",
		"queue_size", cap(p.queue), "overflow_total", total)
}

// runWriter is the only writer of the spool. It takes whatever is queued
// (group commit: many events, one write, one fsync), appends it, and syncs
// according to the fsync mode.
func (p *Pipeline) runWriter() {
	defer close(p.writerDone)
	const maxBatch = 1024
	var (
		batch   []item
		waiting []chan error // EmitDurable callers waiting for the next sync
		timer   *time.Timer
		timerC  <-chan time.Time
		linger  *time.Timer
	)
	syncNow := func() {
		err := p.spool.sync(false)
		if err != nil {
			p.spoolErrs.Add(1)
			p.log.Error("events: spool fsync failed", "err", err)
		}
		for _, w := range waiting {
			w <- err
		}
		waiting = waiting[:0]
		if timer != nil {
			timer.Stop()
			timerC = nil
		}
	}
	finish := func() {
		err := p.spool.close()
		if err != nil {
			p.spoolErrs.Add(1)
			p.log.Error("events: closing the spool failed", "err", err)
			p.writerErr = err
		}
		for _, w := range waiting {
			w <- err
		}
	}
	for {
		select {
		case it, ok := <-p.queue:
			if !ok {
				finish()
				return
			}
			var closed bool
			batch, closed = p.gather(append(batch[:0], it), maxBatch, nil)
			// A writer that drains faster than events arrive writes a few
			// lines per syscall: under a flood of blocks (a DNS client
			// retrying a blocked name) those writes were a sixth of the DNS
			// filter's CPU. Waiting up to writeLinger for more costs no
			// visibility (readers see the spool only once it is synced)
			// and is skipped when a caller is waiting for durability.
			if !closed && len(batch) < lingerBelow && p.writeLinger > 0 && !anyDurable(batch) {
				if linger == nil {
					linger = time.NewTimer(p.writeLinger)
				} else {
					linger.Reset(p.writeLinger)
				}
				batch, closed = p.gather(batch, maxBatch, linger.C)
				linger.Stop()
			}
			written := p.writeBatch(batch)
			for _, it := range batch[:written] {
				if it.done != nil {
					waiting = append(waiting, it.done)
				}
			}
			for _, it := range batch[written:] {
				if it.done != nil {
					it.done <- errSpoolClosed
				}
			}
			if closed {
				finish()
				return
			}
			switch p.cfg.Fsync {
			case FsyncInterval:
				since := time.Since(p.spool.lastSync)
				if since >= p.cfg.FsyncInterval {
					syncNow()
				} else if timerC == nil {
					if timer == nil {
						timer = time.NewTimer(p.cfg.FsyncInterval - since)
					} else {
						timer.Reset(p.cfg.FsyncInterval - since)
					}
					timerC = timer.C
				}
			default:
				syncNow()
			}
		case <-timerC:
			timerC = nil
			syncNow()
		}
	}
}

// gather appends queued events to batch until it holds limit or the queue
// is closed (closed is then true). With wait nil it takes only what is
// queued now; otherwise it waits for more until wait fires or an
// EmitDurable event arrives.
func (p *Pipeline) gather(batch []item, limit int, wait <-chan time.Time) (_ []item, closed bool) {
	for len(batch) < limit {
		if wait == nil {
			select {
			case it, ok := <-p.queue:
				if !ok {
					return batch, true
				}
				batch = append(batch, it)
				continue
			default:
				return batch, false
			}
		}
		select {
		case it, ok := <-p.queue:
			if !ok {
				return batch, true
			}
			batch = append(batch, it)
			if it.done != nil {
				return batch, false
			}
		case <-wait:
			return batch, false
		}
	}
	return batch, false
}

// lingerBelow is the batch size from which the writer writes at once:
// by then the per-write cost is a small share of the batch's.
const lingerBelow = 64

// anyDurable reports whether an EmitDurable caller waits on the batch.
func anyDurable(batch []item) bool {
	for _, it := range batch {
		if it.done != nil {
			return true
		}
	}
	return false
}

// writeBatch appends a batch, retrying a failing disk with backoff (the
// queue fills meanwhile and Emit reports overflow). It gives up only when
// Close runs out of time, and then logs every event it could not write.
// It returns how many items were written.
func (p *Pipeline) writeBatch(batch []item) int {
	lines := make([][]byte, len(batch))
	for i := range batch {
		lines[i] = batch[i].line
	}
	done := 0
	wait := 50 * time.Millisecond
	for {
		n, err := p.spool.append(lines[done:])
		done += n
		p.spooled.Add(uint64(n))
		if err == nil {
			return done
		}
		p.spoolErrs.Add(1)
		p.log.Error("events: spool write failed; holding the events and retrying", "events", len(batch)-done, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
			wait = min(wait*2, 5*time.Second)
		case <-p.abort:
			t.Stop()
			ids := make([]string, 0, len(batch)-done)
			for _, it := range batch[done:] {
				ids = append(ids, it.id)
			}
			p.lost.Add(uint64(len(ids)))
			p.log.Error("events: shutting down with events that could not be written to the spool: LOST", "count", len(ids), "ids", ids, "err", err)
			return done
		}
	}
}

// Close stops accepting events, writes and fsyncs everything queued, and
// stops the deliverers after the attempt each has in flight, all within
// ctx. If ctx ends first, a failing spool write is abandoned (its events
// are logged as lost) and deliveries in flight are cancelled. Close is
// safe to call more than once.
func (p *Pipeline) Close(ctx context.Context) error {
	p.closeOnce.Do(func() { p.closeErr = p.close(ctx) })
	return p.closeErr
}

func (p *Pipeline) close(ctx context.Context) error {
	p.setupMu.Lock()
	if !p.started {
		// Never started: still drain what Emit queued.
		p.started = true
		p.hardCancel = func() {}
		go p.runWriter()
	}
	p.setupMu.Unlock()

	p.mu.Lock()
	p.closed = true
	close(p.queue)
	p.mu.Unlock()

	var errs []error
	select {
	case <-p.writerDone:
	case <-ctx.Done():
		close(p.abort)
		<-p.writerDone
		errs = append(errs, fmt.Errorf("events: closing the spool: %w", ctx.Err()))
	}
	errs = append(errs, p.writerErr)

	close(p.stop)
	stopped := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		p.hardCancel()
		<-stopped
	}
	p.hardCancel()
	if err := unlockDir(p.lock); err != nil {
		errs = append(errs, fmt.Errorf("events: releasing the lock: %w", err))
	}
	return errors.Join(errs...)
}

// janitor prunes the spool now and then.
func (p *Pipeline) janitor(ctx context.Context) {
	t := time.NewTicker(p.pruneEvery)
	defer t.Stop()
	for {
		if _, err := p.Prune(); err != nil {
			p.log.Error("events: pruning the spool failed", "err", err)
		}
		select {
		case <-t.C:
		case <-p.stop:
			return
		case <-ctx.Done():
			return
		}
	}
}

// Prune removes spool files that every stage has delivered past and whose
// last write is older than retention; it returns the removed names. The
// file being written is never removed. Only the stages of this process
// count: a sink removed from the configuration no longer holds files.
func (p *Pipeline) Prune() ([]string, error) {
	p.setupMu.Lock()
	started := p.started
	stages := p.stages
	p.setupMu.Unlock()
	if !started {
		return nil, nil
	}
	keep, _, _ := p.spool.state.get()
	for _, st := range stages {
		keep = min(keep, st.savedPos().Seq)
	}
	seqs, err := listSpool(p.dir)
	if err != nil {
		return nil, err
	}
	cutoff := time.Now().Add(-p.cfg.Retention)
	var removed []string
	var errs []error
	for _, seq := range seqs {
		if seq >= keep {
			break
		}
		path := filepath.Join(p.dir, spoolName(seq))
		fi, err := os.Stat(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if fi.ModTime().After(cutoff) {
			continue
		}
		if err := os.Remove(path); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, spoolName(seq))
	}
	if len(removed) > 0 {
		p.log.Info("events: removed delivered spool files", "count", len(removed), "first", removed[0], "last", removed[len(removed)-1])
	}
	return removed, errors.Join(errs...)
}

// Stats is a snapshot of the pipeline's counters.
type Stats struct {
	// Emitted counts events queued by Emit; Spooled those written to the
	// spool; Overflow those refused because the queue stayed full; Refused
	// those emitted after Close; Lost those queued but never written
	// (Close gave up on a failing disk); SpoolErrors failed writes/fsyncs.
	Emitted, Spooled, Overflow, Refused, Lost, SpoolErrors uint64
	// EmitTimeouts counts the overflows that waited the whole emit_timeout.
	EmitTimeouts uint64
	// SpoolWrites counts the writes that appended them: Spooled ÷
	// SpoolWrites is the writer's mean batch.
	SpoolWrites uint64
	// Queued is the queue's length now.
	Queued int
	// SpoolFiles and SpoolBytes describe the spool directory now.
	SpoolFiles int
	SpoolBytes int64
	// Sinks holds each stage by name, including "alerts".
	Sinks map[string]SinkStats
	// Alerts counts the alert stage's decisions.
	Alerts AlertStats
	// EmailAlerts counts the e-mail alert stage's decisions.
	EmailAlerts AlertStats
}

// SinkStats describes one stage's delivery.
type SinkStats struct {
	// Processed counts events read from the spool and done with (delivered,
	// or for alerts also filtered out); Delivered those the sink accepted
	// (for alerts: alerts sent); Batches the accepted calls;
	// Failures the failed attempts, Rejected those that were refusals;
	// CorruptLines the spool lines skipped; CursorErrors failed saves.
	Processed, Delivered, Batches, Failures, Rejected, CorruptLines, CursorErrors uint64
	// Cursor is the last saved position.
	Cursor        Position
	LastError     string
	LastErrorTime time.Time
	LastDelivery  time.Time
}

// AlertStats counts the alert stage's decisions.
type AlertStats struct {
	// Considered events met the alert threshold; Suppressed were
	// de-duplicated; Sent reached the alerts webhook; DedupErrors are
	// Deduper failures (the alert was sent).
	Considered, Suppressed, Sent, DedupErrors uint64
}

// Stats returns the counters now.
func (p *Pipeline) Stats() Stats {
	s := Stats{
		Emitted:      p.emitted.Load(),
		Spooled:      p.spooled.Load(),
		Overflow:     p.overflow.Load(),
		EmitTimeouts: p.emitTimeouts.Load(),
		Refused:      p.refused.Load(),
		Lost:         p.lost.Load(),
		SpoolErrors:  p.spoolErrs.Load(),
		SpoolWrites:  p.spool.writes.Load(),
		Queued:       len(p.queue),
		Sinks:        make(map[string]SinkStats),
	}
	if seqs, err := listSpool(p.dir); err == nil {
		s.SpoolFiles = len(seqs)
		for _, seq := range seqs {
			if fi, err := os.Stat(filepath.Join(p.dir, spoolName(seq))); err == nil {
				s.SpoolBytes += fi.Size()
			}
		}
	}
	p.setupMu.Lock()
	stages := p.stages
	p.setupMu.Unlock()
	for _, st := range stages {
		s.Sinks[st.name] = st.stats()
	}
	if p.alerts != nil {
		s.Alerts = AlertStats{
			Considered:  p.alerts.considered.Load(),
			Suppressed:  p.alerts.suppressed.Load(),
			DedupErrors: p.alerts.dedupErrs.Load(),
			Sent:        p.alertStage.delivered.Load(),
		}
	}
	if p.emailAlerts != nil {
		s.EmailAlerts = AlertStats{
			Considered:  p.emailAlerts.considered.Load(),
			Suppressed:  p.emailAlerts.suppressed.Load(),
			DedupErrors: p.emailAlerts.dedupErrs.Load(),
			Sent:        p.emailStage.delivered.Load(),
		}
	}
	return s
}

// Dir returns the spool directory (DataDir/events).
func (p *Pipeline) Dir() string { return p.dir }
