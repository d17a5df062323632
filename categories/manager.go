package categories

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Manager owns the current Index. It starts from what is on this machine
// (the seed, a mirror, local files, the last good downloads) without
// waiting on the network, then fetches URL sources in the background and
// swaps the new Index in when they arrive. It refreshes every
// Config.Refresh (conditional GET; a 304 costs nothing), retries sources
// that could not be had sooner, with back-off, and re-checks local files.
// A download that fails or does not parse leaves the cached copy, and so
// the Index, as it was; a rebuild in which a source that loaded before now
// fails is not swapped in at all.
type Manager struct {
	cfg    Config
	logger *slog.Logger
	loader *loader

	cur  atomic.Pointer[Index]
	mu   sync.Mutex // serializes rebuilds
	good map[string]bool
	// stamp fingerprints the local files at the last build.
	stamp string

	stMu   sync.Mutex
	status map[string]SourceStatus
	order  []string

	cbMu    sync.Mutex
	cbs     []func(*Index)
	started atomic.Bool
	done    chan struct{}
}

// SourceStatus is how one source stands after the last attempt to load it.
type SourceStatus struct {
	Name string `json:"name"`
	// State is "ok" (loaded, fresh or current), "cache" (its publisher
	// could not be reached or sent a bad list; the last good download is
	// in force), "partial" (some of its files could not be had),
	// "pending" (not fetched yet) or "missing" (nothing could be had).
	State  string `json:"state"`
	Origin string `json:"origin"`
	// Error says why the source is not "ok".
	Error string    `json:"error,omitempty"`
	Since time.Time `json:"since"`
}

// Loaded reports whether some copy of the source is in force.
func (s SourceStatus) Loaded() bool {
	return s.State == "ok" || s.State == "cache" || s.State == "partial"
}

// NewManager validates cfg and prepares the cache directory. Current
// returns an empty Index until Start has built the first one.
func NewManager(cfg Config, logger *slog.Logger) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("lists config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{cfg: cfg, logger: logger, loader: newLoader(cfg, logger), good: map[string]bool{},
		status: map[string]SourceStatus{}, done: make(chan struct{})}
	for _, s := range m.loader.remoteSources() {
		if err := os.MkdirAll(cfg.CacheDir, 0o750); err != nil {
			return nil, fmt.Errorf("lists cache_dir: %w", err)
		}
		// Downloads interrupted by a crash leave temporary files behind.
		for _, pt := range parts(s) {
			stale, _ := filepath.Glob(filepath.Join(cfg.CacheDir, "."+pt.key+".*.part"))
			for _, p := range stale {
				os.Remove(p)
			}
		}
	}
	m.cur.Store(newBuilder(maphash.MakeSeed()).finish(nil))
	return m, nil
}

// Start builds the first Index from what is on this machine, without
// touching the network, and then, until ctx is done, fetches the URL
// sources, refreshes and retries in the background. Sources that fail are
// logged and shown in Sources; they do not fail Start. Start returns an
// error only if called twice or if ctx ends first.
func (m *Manager) Start(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("lists manager already started")
	}
	m.mu.Lock()
	stamp := localStamp(m.loader.plan())
	ix, outs := m.loader.build(ctx, nil, nil)
	if err := ctx.Err(); err != nil {
		m.mu.Unlock()
		close(m.done)
		return err
	}
	m.record(outs, nil, true)
	m.swap(ix, outs, stamp)
	m.mu.Unlock()
	if len(m.loader.remoteSources()) == 0 && m.cfg.Refresh <= 0 {
		close(m.done)
		return nil
	}
	go m.loop(ctx)
	return nil
}

// Load is Start for one-shot commands (check, lists stats): it builds
// from what is on this machine and, only if some source has no copy yet,
// fetches once (conditionally) and rebuilds. It starts no background work.
func (m *Manager) Load(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("lists manager already started")
	}
	defer close(m.done)
	m.mu.Lock()
	stamp := localStamp(m.loader.plan())
	ix, outs := m.loader.build(ctx, nil, nil)
	if err := ctx.Err(); err != nil {
		m.mu.Unlock()
		return err
	}
	m.record(outs, nil, true)
	m.swap(ix, outs, stamp)
	m.mu.Unlock()
	if len(m.Missing()) == 0 {
		return nil
	}
	return m.refresh(ctx, false)
}

// Done is closed when the background loop has stopped (after ctx ends, or
// at once when there is nothing to fetch or refresh).
func (m *Manager) Done() <-chan struct{} { return m.done }

// loop fetches at once, then every Refresh; while a source is missing it
// tries again after Retry, doubling up to Refresh (at most an hour).
func (m *Manager) loop(ctx context.Context) {
	defer close(m.done)
	longest := m.cfg.Refresh
	if longest <= 0 || longest > time.Hour {
		longest = time.Hour
	}
	retry := m.cfg.Retry
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := m.refresh(ctx, false); err != nil && ctx.Err() == nil {
			m.logger.Error("lists refresh", "err", err)
		}
		next := m.cfg.Refresh
		if len(m.Missing()) > 0 {
			next, retry = retry, min(retry*2, longest)
		} else {
			retry = m.cfg.Retry
		}
		if next <= 0 {
			return
		}
		t.Reset(next)
	}
}

// Current returns the Index in force. It is never nil.
func (m *Manager) Current() *Index { return m.cur.Load() }

// Reload re-fetches URL sources, re-reads every list and swaps the result
// in if its revision differs. It returns an error, and keeps the current
// Index, when a source that loaded before fails now.
func (m *Manager) Reload(ctx context.Context) error { return m.refresh(ctx, true) }

// Refresh does what one tick of the background loop does: conditional
// fetches and a change check of local files, and a rebuild only if
// something changed.
func (m *Manager) Refresh(ctx context.Context) error { return m.refresh(ctx, false) }

// OnChange registers f to be called with the new Index after each swap,
// including the first one in Start. Calls happen on the goroutine that
// swapped, one at a time, while the Manager holds its rebuild lock: f must
// return promptly and must not call Reload or Refresh.
func (m *Manager) OnChange(f func(*Index)) {
	m.cbMu.Lock()
	m.cbs = append(m.cbs, f)
	m.cbMu.Unlock()
}

// Sources returns every planned source's status, in load order.
func (m *Manager) Sources() []SourceStatus {
	m.stMu.Lock()
	defer m.stMu.Unlock()
	out := make([]SourceStatus, 0, len(m.order))
	for _, n := range m.order {
		out = append(out, m.status[n])
	}
	return out
}

// Missing names the sources of which no copy is in force.
func (m *Manager) Missing() []string {
	var out []string
	for _, s := range m.Sources() {
		if !s.Loaded() {
			out = append(out, s.Name)
		}
	}
	return out
}

func (m *Manager) refresh(ctx context.Context, force bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dls, fetchErrs := m.loader.fetchAll(ctx)
	stamp := localStamp(m.loader.plan())
	if !force && len(dls) == 0 && stamp == m.stamp {
		m.record(nil, fetchErrs, false)
		m.logger.Debug("lists unchanged", "revision", m.Current().Revision())
		return nil
	}
	ix, outs := m.loader.build(ctx, dls, fetchErrs)
	if err := ctx.Err(); err != nil {
		return err
	}
	var lost []string
	for _, o := range outs {
		if m.good[o.p.src.Name] && o.err != nil {
			lost = append(lost, o.p.src.Name)
		}
	}
	if len(lost) > 0 {
		// The stamp is left alone so the next tick tries again.
		return fmt.Errorf("list source(s) %s no longer load; keeping the last good lists (revision %s)",
			strings.Join(lost, ", "), m.Current().Revision())
	}
	m.record(outs, fetchErrs, false)
	if ix.Revision() == m.Current().Revision() {
		m.stamp = stamp
		m.logger.Info("lists unchanged after rebuild", "revision", ix.Revision())
		return nil
	}
	m.swap(ix, outs, stamp)
	return nil
}

// record updates the sources' status from a build's outcomes (or, when
// nothing was rebuilt, from the fetch errors alone) and logs each change
// once: a source that cannot be had gets one WARN naming it and why, not
// one per retry. first marks the start-up build, which does not fetch.
func (m *Manager) record(outs []*loadOutcome, fetchErrs map[string]error, first bool) {
	m.stMu.Lock()
	defer m.stMu.Unlock()
	now := time.Now()
	set := func(st SourceStatus) {
		old, seen := m.status[st.Name]
		if !seen {
			m.order = append(m.order, st.Name)
		}
		if seen && old.State == st.State && old.Error == st.Error {
			return
		}
		st.Since = now
		m.status[st.Name] = st
		switch {
		case st.State == "pending":
			m.logger.Info("list source will be fetched in the background", "source", st.Name, "origin", st.Origin)
		case st.State == "ok":
			if seen && old.State != "ok" && old.State != "pending" {
				m.logger.Info("list source recovered", "source", st.Name, "origin", st.Origin)
			}
		default:
			m.logger.Warn("list source unavailable", "source", st.Name, "state", st.State, "origin", st.Origin, "err", st.Error)
		}
	}
	if outs == nil {
		// Nothing rebuilt: a source's standing changes only by its fetches.
		for _, name := range m.order {
			st := m.status[name]
			if errs := partErrors(m.loader.sourceByName(name), fetchErrs); errs != nil && st.State == "ok" {
				st.State, st.Error = "cache", errs.Error()
			} else if errs != nil && !st.Loaded() {
				st.State, st.Error = "missing", errs.Error()
			}
			set(st)
		}
		return
	}
	for _, o := range outs {
		src := o.p.src
		st := SourceStatus{Name: src.Name, State: "ok", Origin: o.origin}
		remote := src.URL != "" || len(src.URLs) > 0
		switch {
		case o.err != nil && first && remote:
			st.State, st.Origin = "pending", o.err.Origin
		case o.err != nil:
			st.State, st.Origin, st.Error = "missing", o.err.Origin, o.err.Err.Error()
			if errs := partErrors(src, fetchErrs); errs != nil {
				st.Error = errs.Error()
			}
		case o.fallback != "":
			st.State = o.fallback
			if o.warn != nil {
				st.Error = o.warn.Error()
			}
		}
		set(st)
	}
}

// partErrors joins the fetch errors of src's files.
func partErrors(src Source, fetchErrs map[string]error) error {
	if src.URL == "" && len(src.URLs) == 0 {
		return nil
	}
	var errs []error
	for _, pt := range parts(src) {
		if err := fetchErrs[pt.key]; err != nil {
			errs = append(errs, err)
		}
	}
	return summarize(errs)
}

// summarize joins errors, keeping a source with many files to one line:
// the first error and how many more there were.
func summarize(errs []error) error {
	if len(errs) <= 2 {
		return errors.Join(errs...)
	}
	return fmt.Errorf("%w (and %d more like it)", errs[0], len(errs)-1)
}

// swap installs ix; callers hold m.mu.
func (m *Manager) swap(ix *Index, outs []*loadOutcome, stamp string) {
	prev := m.cur.Swap(ix)
	m.stamp = stamp
	for _, o := range outs {
		if o.err == nil {
			m.good[o.p.src.Name] = true
		}
	}
	for _, s := range ix.stats {
		if s.Error != "" {
			continue
		}
		m.logger.Debug("list loaded", "list", s.Label, "category", s.Category, "entries", s.Entries,
			"duplicates", s.Duplicates, "skipped", s.Skipped, "errors", s.Errors, "revision", s.Revision,
			"origin", s.Origin, "fallback", s.Fallback)
	}
	m.logger.Info("lists swapped in", "revision", ix.Revision(), "previous", prev.Revision(), "names", ix.Len(),
		"sources", len(outs), "missing", len(m.Missing()))
	m.cbMu.Lock()
	cbs := slices.Clone(m.cbs)
	m.cbMu.Unlock()
	for _, f := range cbs {
		f(ix)
	}
}

// localStamp fingerprints the local files the planned sources read (size
// and modification time), so a refresh tick can tell whether to rebuild.
func localStamp(plan []planned) string {
	var b strings.Builder
	stat := func(p string) {
		if st, err := os.Stat(p); err == nil {
			fmt.Fprintf(&b, "%s|%d|%d\n", p, st.Size(), st.ModTime().UnixNano())
		} else {
			fmt.Fprintf(&b, "%s|missing\n", p)
		}
	}
	for _, p := range plan {
		s := p.src
		if s.Path == "" {
			continue
		}
		stat(s.Path)
		st, err := os.Stat(s.Path)
		if err != nil || !st.IsDir() {
			continue
		}
		root := s.Path
		if bl := filepath.Join(root, "blacklists"); isDir(bl) {
			root = bl
		}
		keys := make([]string, 0, len(s.Map))
		for k := range s.Map {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			for _, f := range ut1Files(s.Expressions) {
				stat(filepath.Join(root, k, f[0]))
			}
		}
	}
	return b.String()
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
