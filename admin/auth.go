package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aupguard/aupguard/config/field"
	"github.com/aupguard/aupguard/staff"
)

// AuthConfig is `admin.auth`: who may use the admin listener's API.
type AuthConfig struct {
	// Disabled turns authentication off: anyone who can reach the admin
	// listener reads the API. Only for a listener no one else can reach.
	Disabled bool `yaml:"disabled"`
	// TokenFile holds a bearer token (trailing newline ignored) for
	// scripts and monitoring: `Authorization: Bearer <token>`. It is read
	// at start and on SIGHUP and never logged. Staff accounts with role
	// admin (aupguard users add --role admin NAME) may use HTTP basic auth
	// instead. With neither, /api/* answers 401 to everyone.
	TokenFile string `yaml:"token_file"`
	// Metrics requires the same credentials for /metrics; by default it is
	// open, like /healthz and /readyz, so a Prometheus without credentials
	// can scrape it.
	Metrics bool `yaml:"metrics"`
}

// Validate checks the section.
func (c *AuthConfig) Validate() error {
	var errs []error
	if c.Disabled && c.TokenFile != "" {
		errs = append(errs, field.Errorf("disabled", "true with token_file set: the token would not be asked for; remove one"))
	}
	if c.TokenFile != "" {
		if _, err := readToken(c.TokenFile); err != nil {
			errs = append(errs, field.Errorf("token_file", "%v", err))
		}
	}
	return errors.Join(errs...)
}

// minTokenLength keeps a guessable token out.
const minTokenLength = 16

func readToken(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading token: %w", err)
	}
	tok := strings.TrimRight(string(b), "\r\n")
	if len(tok) < minTokenLength {
		return nil, fmt.Errorf("token in %s is shorter than %d characters", path, minTokenLength)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return nil, fmt.Errorf("token in %s holds white space", path)
	}
	return []byte(tok), nil
}

// Auth guards the admin listener: a bearer token or a staff account with
// role admin. /healthz and /readyz are always open (probes carry no
// credentials), /metrics unless AuthConfig.Metrics.
type Auth struct {
	cfg      AuthConfig
	log      *slog.Logger
	token    atomic.Pointer[[sha256.Size]byte]
	accounts *accounts
}

// NewAuth reads the token file (if any) and watches the staff account
// file usersFile (which may not exist yet: accounts added later with
// `aupguard users add` are seen without a restart).
func NewAuth(cfg AuthConfig, usersFile string, logger *slog.Logger) (*Auth, error) {
	if logger == nil {
		logger = slog.Default()
	}
	a := &Auth{cfg: cfg, log: logger, accounts: &accounts{path: usersFile}}
	if err := a.Reload(); err != nil {
		return nil, err
	}
	return a, nil
}

// Reload re-reads the token file (SIGHUP); on error the previous token
// stays in use.
func (a *Auth) Reload() error {
	if a.cfg.TokenFile == "" {
		return nil
	}
	tok, err := readToken(a.cfg.TokenFile)
	if err != nil {
		return fmt.Errorf("admin.auth.token_file: %w", err)
	}
	sum := sha256.Sum256(tok)
	a.token.Store(&sum)
	return nil
}

// Locked reports that no credential exists yet: no token file and no
// staff account with role admin, so /api/* refuses everyone.
func (a *Auth) Locked() bool {
	if a.token.Load() != nil {
		return false
	}
	return !a.accounts.hasAdmin()
}

// open are the paths that never need credentials.
func (a *Auth) open(path string) bool {
	switch path {
	case "/healthz", "/readyz":
		return true
	case "/metrics":
		return !a.cfg.Metrics
	}
	return false
}

// Wrap returns h behind authentication.
func (a *Auth) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.open(r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		switch a.check(r) {
		case allowed:
			h.ServeHTTP(w, r)
		case forbidden:
			writeErr(w, http.StatusForbidden, "this account may not use the admin API: it needs role admin")
		default:
			w.Header().Add("WWW-Authenticate", `Bearer realm="aupguard admin"`)
			w.Header().Add("WWW-Authenticate", `Basic realm="aupguard admin", charset="UTF-8"`)
			msg := "authentication required: a bearer token (admin.auth.token_file) or an admin account (basic auth)"
			if a.Locked() {
				msg = "the admin API is locked: set admin.auth.token_file or add an admin with `aupguard users add --role admin NAME`"
			}
			writeErr(w, http.StatusUnauthorized, msg)
		}
	})
}

type verdict int

const (
	denied verdict = iota
	forbidden
	allowed
)

func (a *Auth) check(r *http.Request) verdict {
	h := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		want := a.token.Load()
		if want == nil {
			return denied
		}
		got := sha256.Sum256([]byte(strings.TrimSpace(cred)))
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			return allowed
		}
		return denied
	case strings.EqualFold(scheme, "Basic"):
		name, password, ok := r.BasicAuth()
		if !ok {
			return denied
		}
		u, err := a.accounts.authenticate(name, password)
		if err != nil {
			if !errors.Is(err, staff.ErrBadLogin) {
				a.log.Error("admin: reading the staff accounts failed", "err", err)
			}
			return denied
		}
		if u.Role != staff.RoleAdmin {
			return forbidden
		}
		return allowed
	}
	return denied
}

func writeErr(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// accounts is the staff account file, re-opened when it changes, since
// `aupguard users` edits it from another process.
type accounts struct {
	path string

	mu    sync.Mutex
	fi    fs.FileInfo // of the file store was read from; nil when none
	store *staff.Store
}

func (c *accounts) current() (*staff.Store, error) {
	if c.path == "" {
		return nil, nil
	}
	fi, err := os.Stat(c.path)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.store, c.fi = nil, nil
		return nil, nil
	case err != nil:
		return nil, err
	}
	// staff rewrites the file by renaming a new one over it, so a change
	// is a new inode (SameFile), and at worst a new time or size.
	if c.fi != nil && os.SameFile(c.fi, fi) && fi.ModTime().Equal(c.fi.ModTime()) && fi.Size() == c.fi.Size() {
		return c.store, nil
	}
	st, err := staff.Open(c.path, staff.Options{})
	if err != nil {
		return nil, err
	}
	c.store, c.fi = st, fi
	return st, nil
}

func (c *accounts) authenticate(name, password string) (staff.User, error) {
	st, err := c.current()
	if err != nil {
		return staff.User{}, err
	}
	if st == nil {
		return staff.User{}, staff.ErrBadLogin
	}
	return st.Authenticate(name, password)
}

func (c *accounts) hasAdmin() bool {
	st, err := c.current()
	if err != nil || st == nil {
		return false
	}
	for _, u := range st.List() {
		if u.Role == staff.RoleAdmin {
			return true
		}
	}
	return false
}
