// Package staff keeps the accounts of the people who use aupguard's web
// console: the safeguarding team, admins and viewers. Passwords are stored
// only as bcrypt hashes, in one file readable by the service alone; every
// change rewrites it atomically, so a crash never leaves half an account
// file.
package staff

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/aupguard/aupguard/internal/atomicfile"
)

// Role is what a member of staff may see and do.
type Role string

// The roles: safeguarding staff see learners' events and act on alerts and
// review requests; admins see policy, lists, users and the audit log;
// viewers see counts without identities.
const (
	RoleSafeguarding Role = "safeguarding"
	RoleAdmin        Role = "admin"
	RoleViewer       Role = "viewer"
)

// Roles lists the valid roles.
func Roles() []Role { return []Role{RoleSafeguarding, RoleAdmin, RoleViewer} }

// MinPasswordLength is the shortest password accepted. Length, not
// character classes, is what makes a password hard to guess (NCSC, NIST
// SP 800-63B).
const MinPasswordLength = 12

// File is where the accounts live under a data directory:
// data_dir/staff/users.json. `aupguard users` writes it; the console and
// the admin API read it.
func File(dataDir string) string {
	return filepath.Join(dataDir, "staff", "users.json")
}

// maxPasswordLength is bcrypt's limit: it ignores bytes past 72.
const maxPasswordLength = 72

// User is one account as stored.
type User struct {
	Name    string    `json:"name"`
	Role    Role      `json:"role"`
	Hash    string    `json:"hash"`
	Created time.Time `json:"created"`
	Changed time.Time `json:"password_changed"`
}

// Errors the Store returns.
var (
	ErrExists       = errors.New("a user of that name already exists")
	ErrNoUser       = errors.New("no such user")
	ErrBadLogin     = errors.New("unknown user or wrong password")
	ErrWeakPassword = fmt.Errorf("password must be %d to %d characters", MinPasswordLength, maxPasswordLength)
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{0,63}$`)

// Store is the account file. It is safe for concurrent use.
type Store struct {
	path string
	cost int
	now  func() time.Time
	// dummy is compared against when a user does not exist, so that a
	// login for an unknown name takes as long as one with a wrong password.
	dummy []byte

	mu    sync.Mutex
	users []User
	// stamp is the file's modification time and size when last read or
	// written, for Refresh.
	stamp fileStamp
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) fileStamp {
	st, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{st.ModTime(), st.Size()}
}

// Options tune a Store; zero values take the defaults.
type Options struct {
	// Cost is bcrypt's cost (default bcrypt.DefaultCost; tests lower it).
	Cost int
	// Now is the clock.
	Now func() time.Time
}

// Open reads the account file at path (none yet is an empty store).
func Open(path string, opts Options) (*Store, error) {
	if opts.Cost == 0 {
		opts.Cost = bcrypt.DefaultCost
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("no such user, same cost"), opts.Cost)
	if err != nil {
		return nil, fmt.Errorf("staff: %w", err)
	}
	s := &Store{path: path, cost: opts.Cost, now: opts.Now, dummy: dummy}
	users, stamp, err := readUsers(path)
	if err != nil {
		return nil, err
	}
	s.users, s.stamp = users, stamp
	return s, nil
}

// readUsers reads and checks the account file; none is no accounts.
func readUsers(path string) ([]User, fileStamp, error) {
	stamp := stampOf(path)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, fileStamp{}, nil
	case err != nil:
		return nil, stamp, fmt.Errorf("staff: %w", err)
	}
	var users []User
	if err := json.Unmarshal(b, &users); err != nil {
		return nil, stamp, fmt.Errorf("staff: %s: %w", path, err)
	}
	for i, u := range users {
		if !nameRE.MatchString(u.Name) || !slices.Contains(Roles(), u.Role) || u.Hash == "" {
			return nil, stamp, fmt.Errorf("staff: %s: entry %d (%q) is not a valid account", path, i, u.Name)
		}
	}
	return users, stamp, nil
}

// Refresh re-reads the file when it changed since the store last read or
// wrote it: `aupguard users` edits the file while the console runs, and an
// account it adds, removes or re-passwords counts from the next request.
// On error the accounts already loaded stay.
func (s *Store) Refresh() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if stampOf(s.path) == s.stamp {
		return nil
	}
	users, stamp, err := readUsers(s.path)
	if err != nil {
		return err
	}
	s.users, s.stamp = users, stamp
	return nil
}

// Lookup returns the account name (without its hash), if it exists.
func (s *Store) Lookup(name string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(name)
	if i < 0 {
		return User{}, false
	}
	u := s.users[i]
	u.Hash = ""
	return u, true
}

// Add creates an account.
func (s *Store) Add(name string, role Role, password string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if !slices.Contains(Roles(), role) {
		return fmt.Errorf("role %q: must be one of safeguarding, admin, viewer", role)
	}
	hash, err := s.hash(password)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.find(name) >= 0 {
		return fmt.Errorf("%s: %w", name, ErrExists)
	}
	now := s.now().UTC()
	users := append(slices.Clone(s.users), User{Name: name, Role: role, Hash: hash, Created: now, Changed: now})
	return s.save(users)
}

// SetPassword replaces a user's password.
func (s *Store) SetPassword(name, password string) error {
	hash, err := s.hash(password)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(name)
	if i < 0 {
		return fmt.Errorf("%s: %w", name, ErrNoUser)
	}
	users := slices.Clone(s.users)
	users[i].Hash, users[i].Changed = hash, s.now().UTC()
	return s.save(users)
}

// Remove deletes an account.
func (s *Store) Remove(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(name)
	if i < 0 {
		return fmt.Errorf("%s: %w", name, ErrNoUser)
	}
	return s.save(slices.Delete(slices.Clone(s.users), i, i+1))
}

// List returns the accounts without their hashes, by name.
func (s *Store) List() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, len(s.users))
	for i, u := range s.users {
		u.Hash = ""
		out[i] = u
	}
	slices.SortFunc(out, func(a, b User) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Authenticate returns the account for name and password, or ErrBadLogin
// without saying which of the two was wrong.
func (s *Store) Authenticate(name, password string) (User, error) {
	s.mu.Lock()
	i := s.find(name)
	var u User
	if i >= 0 {
		u = s.users[i]
	}
	s.mu.Unlock()
	hash := s.dummy
	if i >= 0 {
		hash = []byte(u.Hash)
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(password))
	if i < 0 || err != nil {
		return User{}, ErrBadLogin
	}
	u.Hash = ""
	return u, nil
}

func (s *Store) find(name string) int {
	return slices.IndexFunc(s.users, func(u User) bool { return u.Name == name })
}

func (s *Store) hash(password string) (string, error) {
	if n := len(password); n < MinPasswordLength || n > maxPasswordLength {
		return "", ErrWeakPassword
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
	if err != nil {
		return "", fmt.Errorf("staff: %w", err)
	}
	return string(h), nil
}

func checkName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("user name %q: 1-64 of a-z 0-9 . _ @ -, starting with a letter or digit", name)
	}
	return nil
}

// save writes users to the file (0600, atomically) and, only then, makes
// them the store's. Callers hold s.mu.
func (s *Store) save(users []User) error {
	b, err := json.MarshalIndent(users, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("staff: %w", err)
	}
	if err := atomicfile.Write(s.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("staff: %s: %w", s.path, err)
	}
	s.users, s.stamp = users, stampOf(s.path)
	return nil
}
