// Package rego is the Go side of the policy engine: it compiles the
// built-in policies (or an admin's directory laid over them), runs their
// Rego unit tests, prepares the decision query once, and evaluates each
// decision with an input built in Go. A new revision is activated only if
// it compiles and its tests pass; until then the running one keeps
// answering.
package rego

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aupguard/aupguard/internal/watch"

	"github.com/aupguard/aupguard/verdict"
)

// Options configure an Engine.
type Options struct {
	// Builtin holds the built-in policy set (policies.FS); nil for none.
	Builtin fs.FS
	// Dir is an admin's policy directory laid over Builtin; "" for none.
	Dir string
	// Query is the decision rule; DefaultQuery when empty.
	Query string
	// Location is the time zone of input.time; time.Local when nil.
	Location *time.Location
	// Overlays are data files laid over the set after Dir, each under its
	// base name (rego.Files.WithOverlays): data aupguard writes itself, such
	// as the exceptions safeguarding staff approve in the console. They are
	// part of the revision and reload like any policy file, but the set's
	// unit tests run without them: the rules' tests must not pass or fail
	// with live data (an exception for a learner who shares a test
	// fixture's name would otherwise block its own activation). The files'
	// writers validate them.
	Overlays []string
	// SkipTests activates a set without running its unit tests. Only
	// tooling that evaluates a set it has just tested uses it.
	SkipTests bool
	// Debounce is how long the watcher waits for a burst of file events to
	// settle before reloading (editors write files in several steps).
	Debounce time.Duration
	Logger   *slog.Logger
}

// Change records one activation or rejection, for the audit trail.
type Change struct {
	Time     time.Time `json:"time"`
	Revision string    `json:"revision"`
	Previous string    `json:"previous,omitempty"`
	Trigger  string    `json:"trigger"`
	Accepted bool      `json:"accepted"`
	Error    string    `json:"error,omitempty"`
}

// Engine holds the active policy revision and replaces it atomically.
type Engine struct {
	opts   Options
	log    *slog.Logger
	active atomic.Pointer[Policy]

	mu        sync.Mutex // serialises reloads and guards the fields below
	listeners []func(*Policy)
	history   []Change
}

const historyLen = 50

// New compiles, tests and activates the initial policy set. Unlike a
// reload, a broken set here is fatal: there is no previous revision to
// keep serving.
func New(ctx context.Context, opts Options) (*Engine, error) {
	if opts.Query == "" {
		opts.Query = DefaultQuery
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 300 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	e := &Engine{opts: opts, log: opts.Logger.With("component", "policy")}
	base, files, err := e.gather()
	if err != nil {
		return nil, err
	}
	p, err := prepare(ctx, files, base, opts.Query, opts)
	if err != nil {
		return nil, err
	}
	e.active.Store(p)
	e.record(Change{Time: p.activated, Revision: p.revision, Trigger: "start", Accepted: true})
	e.log.Info("policy activated", "revision", p.revision, "files", len(p.files), "trigger", "start")
	return e, nil
}

// Active returns the revision answering now.
func (e *Engine) Active() verdict.Policy { return e.active.Load() }

// Current returns the active revision with its concrete type.
func (e *Engine) Current() *Policy { return e.active.Load() }

// OnActivate registers fn to run after each new revision is activated (the
// verdict cache and the Redis fan-out listen here).
func (e *Engine) OnActivate(fn func(*Policy)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.listeners = append(e.listeners, fn)
}

// History returns the recent activations and rejections, newest last.
func (e *Engine) History() []Change {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Change(nil), e.history...)
}

func (e *Engine) record(c Change) {
	e.history = append(e.history, c)
	if len(e.history) > historyLen {
		e.history = e.history[len(e.history)-historyLen:]
	}
}

// Reload reads the policy files again and activates them if they compile
// and their tests pass. It reports whether the revision changed. On error
// the running revision keeps answering and the error names file and line.
func (e *Engine) Reload(ctx context.Context, trigger string) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	cur := e.active.Load()
	base, files, err := e.gather()
	if err != nil {
		return false, e.reject(cur, "", trigger, err)
	}
	rev := files.Revision()
	if rev == cur.revision {
		return false, nil
	}
	p, err := prepare(ctx, files, base, e.opts.Query, e.opts)
	if err != nil {
		return false, e.reject(cur, rev, trigger, err)
	}
	e.active.Store(p)
	e.record(Change{Time: p.activated, Revision: p.revision, Previous: cur.revision, Trigger: trigger, Accepted: true})
	e.log.Info("policy activated", "revision", p.revision, "previous", cur.revision, "files", len(p.files), "trigger", trigger)
	for _, fn := range e.listeners {
		fn(p)
	}
	return true, nil
}

func (e *Engine) reject(cur *Policy, rev, trigger string, err error) error {
	e.record(Change{Time: time.Now(), Revision: rev, Previous: cur.revision, Trigger: trigger, Error: err.Error()})
	e.log.Error("policy rejected; keeping the running revision", "running", cur.revision, "rejected", rev, "trigger", trigger, "error", err.Error())
	return fmt.Errorf("policy %s rejected, revision %s still active: %w", rev, cur.revision, err)
}

// gather reads the set: base without the overlays (what the unit tests
// run on) and files with them (what is activated).
func (e *Engine) gather() (base, files Files, err error) {
	base, err = Gather(e.opts.Builtin, e.opts.Dir)
	if err != nil {
		return nil, nil, err
	}
	files, err = base.WithOverlays(e.opts.Overlays)
	if err != nil {
		return nil, nil, err
	}
	return base, files, nil
}

// Watch reloads whenever a file in the policy directory or an overlay
// changes, until ctx is done. With neither there is nothing to watch and
// it just waits. An overlay's directory must exist when Watch starts (its
// writer creates it); the file itself may come later.
func (e *Engine) Watch(ctx context.Context) error {
	var dirs []string
	if e.opts.Dir != "" {
		dirs = append(dirs, e.opts.Dir)
	}
	overlays := map[string]bool{}
	for _, o := range e.opts.Overlays {
		abs, err := filepath.Abs(o)
		if err != nil {
			continue
		}
		overlays[abs] = true
		// No directory, no writer (the console is off): SIGHUP still
		// reloads a file put there by hand.
		if st, err := os.Stat(filepath.Dir(abs)); err == nil && st.IsDir() {
			dirs = append(dirs, filepath.Dir(abs))
		}
	}
	if len(dirs) == 0 {
		<-ctx.Done()
		return nil
	}
	policyDir := ""
	if e.opts.Dir != "" {
		policyDir, _ = filepath.Abs(e.opts.Dir)
	}
	err := watch.Run(ctx, watch.Options{
		Dirs:      dirs,
		Recursive: e.opts.Dir != "",
		// Every change under the policy directory counts; in an overlay's
		// directory (which holds other things, such as the console's
		// database) only the overlay itself.
		Match: func(p string) bool {
			abs, err := filepath.Abs(p)
			if err != nil {
				return true
			}
			if policyDir != "" && (abs == policyDir || strings.HasPrefix(abs, policyDir+string(filepath.Separator))) {
				return true
			}
			return overlays[abs]
		},
		Delay:   e.opts.Debounce,
		OnError: func(err error) { e.log.Warn("policy watcher error", "error", err) },
	}, func() {
		// The error is logged and kept in History by Reload.
		_, _ = e.Reload(ctx, "file change")
	})
	if err != nil {
		return fmt.Errorf("watch policies: %w", err)
	}
	return nil
}
