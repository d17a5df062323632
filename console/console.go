package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/exceptions"
	"github.com/aupguard/aupguard/rego"
	"github.com/aupguard/aupguard/staff"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Accounts are the staff accounts (a *staff.Store).
type Accounts interface {
	Refresh() error
	Authenticate(name, password string) (staff.User, error)
	Lookup(name string) (staff.User, bool)
	List() []staff.User
}

// Policy is the running policy engine (a *rego.Engine): approving a review
// reloads it so that the exception is in force at once.
type Policy interface {
	Reload(ctx context.Context, trigger string) (bool, error)
	History() []rego.Change
	Current() *rego.Policy
}

// Options are the console's collaborators.
type Options struct {
	Accounts Accounts
	// Exceptions is the policy overlay approvals write to.
	Exceptions *exceptions.File
	// Policy is reloaded after each exception change; nil disables
	// approvals (reviews can still be declined).
	Policy Policy
	// Location is the policy's time zone: exception dates and the times
	// shown are in it.
	Location *time.Location
	Logger   *slog.Logger
	// Now is the clock (tests move it).
	Now func() time.Time
}

// Console is the web console: its store, its sink and its handler.
type Console struct {
	cfg   Config
	opts  Options
	log   *slog.Logger
	store *Store
	sess  *sessions
	ipLim *limiter
	usLim *limiter
	pages map[string]*template.Template
	// approveMu serialises approvals and revocations: each is a
	// read-modify-write of the exceptions file and a policy reload.
	approveMu sync.Mutex
	handler   http.Handler
}

// DirName is the console's directory under data_dir.
const DirName = "console"

// New opens the console's database in dir (creating it) and builds the
// handler. Nothing listens: the caller serves Handler.
func New(cfg Config, dir string, opts Options) (*Console, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("console config: %w", err)
	}
	if opts.Accounts == nil || opts.Exceptions == nil {
		return nil, errors.New("console: accounts and exceptions are required")
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	store, err := OpenStore(filepath.Join(dir, "console.db"))
	if err != nil {
		return nil, err
	}
	c := &Console{
		cfg: cfg, opts: opts, log: opts.Logger.With("component", "console"), store: store,
		sess:  newSessions(cfg.SessionIdle, cfg.SessionMax, opts.Now),
		ipLim: newLimiter(loginPerIPEvery, loginPerIPBurst),
		usLim: newLimiter(loginPerUserEvery, loginPerUserBurst),
	}
	if c.pages, err = parsePages(opts.Location); err != nil {
		_ = store.Close()
		return nil, err
	}
	c.handler = c.routes()
	return c, nil
}

// Store is the console's database.
func (c *Console) Store() *Store { return c.store }

// Sink is what the event pipeline delivers to (its cursor is "console").
func (c *Console) Sink() events.Sink { return sink{c.store} }

// Handler serves the console.
func (c *Console) Handler() http.Handler { return c.handler }

// Close closes the database.
func (c *Console) Close() error { return c.store.Close() }

// RecordPolicyChange writes an activated policy revision to the audit log,
// whatever triggered it (the console, a file change, SIGHUP, another
// instance).
func (c *Console) RecordPolicyChange(ctx context.Context, revision, previous, trigger string) {
	err := c.store.Audit(ctx, AuditEntry{Time: c.opts.Now(), Staff: "system", Action: "policy activated",
		Target: revision, Detail: fmt.Sprintf("previous %s; trigger: %s", previous, trigger)})
	if err != nil {
		c.log.Error("console: recording a policy change", "err", err)
	}
}

// RunRetention purges events older than console.retention now and then
// every interval until ctx is done.
func (c *Console) RunRetention(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		c.purge(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Console) purge(ctx context.Context) {
	cut := c.opts.Now().Add(-c.cfg.Retention)
	n, err := c.store.Purge(ctx, cut)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Error("console: purging old events", "err", err)
		}
		return
	}
	if n > 0 {
		c.log.Info("console: purged events past retention", "events", n, "before", cut.Format(time.RFC3339))
		// The events are gone: their record must be written even if the
		// server is stopping.
		_ = c.store.Audit(context.WithoutCancel(ctx), AuditEntry{Time: c.opts.Now(), Staff: "system", Action: "retention purge",
			Detail: fmt.Sprintf("%d events before %s (console.retention %s)", n, cut.Format(time.RFC3339), c.cfg.Retention)})
	}
}

// Serve serves the console on ln (TLS when configured) until srv is shut
// down.
func (c *Console) Serve(srv *http.Server, ln net.Listener) error {
	if c.cfg.TLS.Enabled() {
		return srv.ServeTLS(ln, c.cfg.TLS.Cert, c.cfg.TLS.Key)
	}
	return srv.Serve(ln)
}

func staticFS() fs.FS {
	sub, _ := fs.Sub(assets, "static") // a fixed, embedded path
	return sub
}

// clientIP is the address a request came from (no forwarded headers are
// trusted: anyone could send them).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func trimTo(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = s[:n]
	}
	return s
}
