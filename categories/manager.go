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

// Manager owns the current Index. It refreshes URL sources every
// Config.Refresh (conditional GET; a 304 costs nothing), re-checks local
// files for changes, rebuilds when something changed and swaps the new
// Index in atomically. A download that fails or does not parse leaves the
// cached copy, and so the Index, as it was; a rebuild in which a source
// that loaded before now fails is not swapped in at all.
type Manager struct {
	cfg    Config
	logger *slog.Logger
	loader *loader

	cur  atomic.Pointer[Index]
	mu   sync.Mutex // serializes rebuilds
	good map[string]bool
	// stamp fingerprints the local files at the last build.
	stamp string

	cbMu    sync.Mutex
	cbs     []func(*Index)
	started atomic.Bool
	done    chan struct{}
}

// NewManager validates cfg and prepares the cache directory. Current
// returns an empty Index until Start has built the first one.
func NewManager(cfg Config, logger *slog.Logger) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("categories config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	for _, s := range cfg.Sources {
		if s.URL == "" {
			continue
		}
		if err := os.MkdirAll(cfg.CacheDir, 0o750); err != nil {
			return nil, fmt.Errorf("categories cache_dir: %w", err)
		}
		// Downloads interrupted by a crash leave temporary files behind.
		stale, _ := filepath.Glob(filepath.Join(cfg.CacheDir, "."+s.Name+".*.part"))
		for _, p := range stale {
			os.Remove(p)
		}
	}
	m := &Manager{cfg: cfg, logger: logger, loader: newLoader(cfg, logger), good: map[string]bool{}, done: make(chan struct{})}
	m.cur.Store(newBuilder(maphash.MakeSeed()).finish(nil))
	return m, nil
}

// Start builds the first Index (fetching URL sources, falling back to their
// cached copies) and then refreshes in the background until ctx is done.
// Sources that fail are logged and shown in Stats; they do not fail Start.
// Start returns an error only if called twice or if ctx ends first.
func (m *Manager) Start(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("categories manager already started")
	}
	m.mu.Lock()
	dls, fetchErrs := m.loader.fetchAll(ctx)
	stamp := localStamp(m.cfg)
	ix, outs := m.loader.build(ctx, dls, fetchErrs)
	if err := ctx.Err(); err != nil {
		m.mu.Unlock()
		close(m.done)
		return err
	}
	m.swap(ix, outs, stamp)
	m.mu.Unlock()
	if m.cfg.Refresh <= 0 {
		close(m.done)
		return nil
	}
	go m.loop(ctx)
	return nil
}

// Done is closed when the refresh loop has stopped (after ctx ends, or at
// once when refreshing is off).
func (m *Manager) Done() <-chan struct{} { return m.done }

func (m *Manager) loop(ctx context.Context) {
	defer close(m.done)
	t := time.NewTicker(m.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.refresh(ctx, false); err != nil && ctx.Err() == nil {
				m.logger.Error("category refresh", "err", err)
			}
		}
	}
}

// Current returns the Index in force. It is never nil.
func (m *Manager) Current() *Index { return m.cur.Load() }

// Reload re-fetches URL sources, re-reads every list and swaps the result
// in if its revision differs. It returns an error, and keeps the current
// Index, when a source that loaded before fails now.
func (m *Manager) Reload(ctx context.Context) error { return m.refresh(ctx, true) }

// Refresh does what one tick of the refresh loop does: conditional fetches
// and a change check of local files, and a rebuild only if something
// changed.
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

func (m *Manager) refresh(ctx context.Context, force bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dls, fetchErrs := m.loader.fetchAll(ctx)
	stamp := localStamp(m.cfg)
	if !force && len(dls) == 0 && stamp == m.stamp {
		m.logger.Debug("category lists unchanged", "revision", m.Current().Revision())
		return nil
	}
	ix, outs := m.loader.build(ctx, dls, fetchErrs)
	if err := ctx.Err(); err != nil {
		return err
	}
	var lost []string
	for _, o := range outs {
		if m.good[o.p.src.Name] && !loadedOK(o) {
			lost = append(lost, o.p.src.Name)
		}
	}
	if len(lost) > 0 {
		// The stamp is left alone so the next tick tries again.
		return fmt.Errorf("category source(s) %s no longer load; keeping the last good lists (revision %s)",
			strings.Join(lost, ", "), m.Current().Revision())
	}
	if ix.Revision() == m.Current().Revision() {
		m.stamp = stamp
		m.logger.Info("category lists unchanged after rebuild", "revision", ix.Revision())
		return nil
	}
	m.swap(ix, outs, stamp)
	return nil
}

func loadedOK(o *loadOutcome) bool { return o.err == nil && o.fallback != "bundle" }

// swap installs ix; callers hold m.mu.
func (m *Manager) swap(ix *Index, outs []*loadOutcome, stamp string) {
	prev := m.cur.Swap(ix)
	m.stamp = stamp
	for _, o := range outs {
		if o.err == nil || !m.good[o.p.src.Name] {
			m.good[o.p.src.Name] = loadedOK(o)
		}
	}
	for _, s := range ix.stats {
		if s.Error != "" {
			continue
		}
		m.logger.Info("category list loaded", "list", s.Label, "category", s.Category, "entries", s.Entries,
			"duplicates", s.Duplicates, "skipped", s.Skipped, "errors", s.Errors, "revision", s.Revision,
			"origin", s.Origin, "fallback", s.Fallback)
	}
	m.logger.Info("category index swapped", "revision", ix.Revision(), "previous", prev.Revision(), "entries", ix.Len())
	m.cbMu.Lock()
	cbs := slices.Clone(m.cbs)
	m.cbMu.Unlock()
	for _, f := range cbs {
		f(ix)
	}
}

// localStamp fingerprints the local files the sources read (size and
// modification time), so a refresh tick can tell whether to rebuild.
func localStamp(cfg Config) string {
	var b strings.Builder
	stat := func(p string) {
		if st, err := os.Stat(p); err == nil {
			fmt.Fprintf(&b, "%s|%d|%d\n", p, st.Size(), st.ModTime().UnixNano())
		} else {
			fmt.Fprintf(&b, "%s|missing\n", p)
		}
	}
	for _, s := range cfg.Sources {
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
