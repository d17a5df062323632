// Package identity tells the enforcement points who a client is: whether
// its address may use the service at all, which policy groups its network
// belongs to, and — when proxy authentication is configured — which user it
// is and that user's groups. The proxy and the DNS filter share it.
package identity

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/aupguard/aupguard/internal/watch"
)

// Identity answers who a client is. It is safe for concurrent use; the
// slices it returns are shared and must not be modified.
type Identity struct {
	nets     *netTable
	auth     *authenticator
	required bool
	realm    string
	log      *slog.Logger
}

// Options are the runtime dependencies of an Identity.
type Options struct {
	// Logger receives reload messages; nil discards them.
	Logger *slog.Logger
	// Now replaces the clock (tests); nil means time.Now.
	Now func() time.Time
}

// New builds an Identity from a validated config, loading the htpasswd and
// users_groups files. A file with any malformed line is an error naming
// file:line, so a typo is found at start-up rather than by a locked-out
// learner.
func New(cfg Config, opts Options) (*Identity, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("identity config: %w", err)
	}
	nets, err := newNetTable(cfg.Networks, cfg.Groups)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	id := &Identity{
		nets:     nets,
		required: cfg.Auth.Required,
		realm:    cfg.Auth.Realm,
		log:      opts.Logger,
	}
	if id.log == nil {
		id.log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if cfg.Auth.HTPasswd != "" {
		if id.auth, err = newAuthenticator(cfg.Auth, now); err != nil {
			return nil, fmt.Errorf("identity: %w", err)
		}
	}
	return id, nil
}

// Identify reports whether ip may use the service and the groups of its
// network (the most specific configured prefix). An allowed address in no
// configured network gets nil groups: the decider then applies its default
// (learners). It does not allocate.
func (id *Identity) Identify(ip netip.Addr) (groups []string, allowed bool) {
	return id.nets.identify(ip)
}

// AuthRequired reports whether every proxy request must authenticate.
func (id *Identity) AuthRequired() bool { return id.required }

// AuthEnabled reports whether an htpasswd file is configured, so that
// credentials a client offers can be checked.
func (id *Identity) AuthEnabled() bool { return id.auth != nil }

// Realm is the Basic realm for Proxy-Authenticate challenges.
func (id *Identity) Realm() string { return id.realm }

// Verify checks a user name and password offered by the client at ip. It
// returns the user's groups from the users_groups file, or nil when the
// file lists none for them (the caller then uses the network's groups).
// Errors: ErrBadCredentials, a *RateLimitedError (errors.Is ErrRateLimited)
// when ip has failed too often, or ErrNoAuth. The password is never logged
// or kept; only a keyed hash of it is cached for the configured TTL.
func (id *Identity) Verify(ip netip.Addr, user, password string) ([]string, error) {
	if id.auth == nil {
		return nil, ErrNoAuth
	}
	return id.auth.verify(ip, user, password)
}

// Reload re-reads the htpasswd and users_groups files. When either is
// unreadable or has a malformed line, the previous contents stay in force
// and the error (with file:line) is returned.
func (id *Identity) Reload() error {
	if id.auth == nil {
		return nil
	}
	if err := id.auth.reload(); err != nil {
		return err
	}
	id.log.Info("identity: credentials reloaded", "users", id.auth.users())
	return nil
}

// reloadDelay lets an editor finish writing (several events per save)
// before the files are read.
const reloadDelay = 250 * time.Millisecond

// Watch reloads the credential files whenever they change, until ctx is
// done. It watches the files' directories, so replacing a file by rename
// (what editors and config management do) is seen too. Failed reloads are
// logged and keep the previous contents. Without authentication it just
// waits for ctx.
func (id *Identity) Watch(ctx context.Context) error {
	if id.auth == nil {
		<-ctx.Done()
		return nil
	}
	files := map[string]bool{}
	var dirs []string
	for _, f := range []string{id.auth.htpasswd, id.auth.usersGroups} {
		if f == "" {
			continue
		}
		abs, err := filepath.Abs(f)
		if err != nil {
			return fmt.Errorf("identity watch: %w", err)
		}
		files[abs] = true
		dirs = append(dirs, filepath.Dir(abs))
	}
	err := watch.Run(ctx, watch.Options{
		Dirs:    dirs,
		Match:   func(p string) bool { return files[p] },
		Delay:   reloadDelay,
		OnError: func(err error) { id.log.Warn("identity: watching credential files", "err", err) },
	}, func() {
		if err := id.Reload(); err != nil {
			id.log.Error("identity: reload failed; keeping the previous credentials", "err", err)
		}
	})
	if err != nil {
		return fmt.Errorf("identity watch: %w", err)
	}
	return nil
}
