package identity

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
)

// ErrBadCredentials is returned for an unknown user or a wrong password;
// the two are deliberately not told apart.
var ErrBadCredentials = errors.New("identity: wrong user name or password")

// ErrRateLimited matches a *RateLimitedError with errors.Is.
var ErrRateLimited = errors.New("identity: too many failed logins")

// ErrNoAuth is returned by Verify when no htpasswd file is configured.
var ErrNoAuth = errors.New("identity: proxy authentication is not configured")

// RateLimitedError says a client address made too many failed logins and
// is refused, without checking, until RetryAfter has passed.
type RateLimitedError struct {
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("identity: too many failed logins; retry in %s", e.RetryAfter.Round(time.Second))
}

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitedError) Is(target error) bool { return target == ErrRateLimited }

// ParseBasic extracts the user and password from a Basic credentials
// header value (Proxy-Authorization or Authorization).
func ParseBasic(header string) (user, password string, ok bool) {
	const prefix = "basic "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(header[len(prefix):]))
	if err != nil {
		return "", "", false
	}
	user, password, ok = strings.Cut(string(raw), ":")
	if !ok || user == "" {
		return "", "", false
	}
	return user, password, true
}

// authState is one loaded revision of the two files; it is replaced, never
// modified, so readers need no lock.
type authState struct {
	hashes map[string][]byte
	groups map[string][]string
	// cost is the highest bcrypt cost in the file, for the dummy hash.
	cost int
}

type cacheEntry struct {
	user    string
	ok      bool
	expires time.Time
}

// cacheSize bounds the credential cache; a network with more concurrently
// active users than this only pays bcrypt a little more often.
const cacheSize = 8192

// maxTracked bounds the failure table, so a flood of failed logins from
// many addresses cannot grow memory without limit.
const maxTracked = 65536

// authenticator checks Basic credentials against the htpasswd file.
type authenticator struct {
	htpasswd    string
	usersGroups string
	cacheTTL    time.Duration
	now         func() time.Time

	state atomic.Pointer[authState]
	// cacheKey keys the HMAC that names cache entries: the cache never
	// holds anything a leaked heap dump could test passwords against
	// offline faster than bcrypt.
	cacheKey []byte
	cache    *lru.Cache[[sha256.Size]byte, cacheEntry]
	flight   singleflight.Group
	fails    *failures
	// dummies are compared against for unknown users, so that a wrong
	// user name costs as much time as a wrong password; one per bcrypt
	// cost, made on first use.
	dummyMu sync.Mutex
	dummies map[int][]byte
	// compares counts bcrypt comparisons, for tests and statistics.
	compares atomic.Int64
}

func newAuthenticator(c AuthConfig, now func() time.Time) (*authenticator, error) {
	a := &authenticator{
		htpasswd:    c.HTPasswd,
		usersGroups: c.UsersGroups,
		cacheTTL:    c.CacheTTL,
		now:         now,
		cacheKey:    make([]byte, 32),
	}
	if _, err := rand.Read(a.cacheKey); err != nil {
		return nil, fmt.Errorf("auth cache key: %w", err)
	}
	var err error
	if a.fails, err = newFailures(c.MaxFailures, c.FailureWindow); err != nil {
		return nil, err
	}
	if a.cache, err = lru.New[[sha256.Size]byte, cacheEntry](cacheSize); err != nil {
		return nil, fmt.Errorf("auth cache: %w", err)
	}
	if err := a.reload(); err != nil {
		return nil, err
	}
	return a, nil
}

// reload reads both files and swaps them in only if both are valid.
func (a *authenticator) reload() error {
	hashes, err := readHTPasswd(a.htpasswd)
	if err != nil {
		return err
	}
	var groups map[string][]string
	if a.usersGroups != "" {
		if groups, err = readUsersGroups(a.usersGroups); err != nil {
			return err
		}
	}
	cost := bcrypt.MinCost
	for _, h := range hashes {
		if c, err := bcrypt.Cost(h); err == nil && c > cost {
			cost = c
		}
	}
	a.state.Store(&authState{hashes: hashes, groups: groups, cost: cost})
	// Cached answers were for the old files: a removed user or a changed
	// password must take effect at once.
	a.cache.Purge()
	return nil
}

func (a *authenticator) users() int { return len(a.state.Load().hashes) }

// verify checks user and password for a client address and returns the
// user's groups (nil when the users_groups file lists none for them).
func (a *authenticator) verify(ip netip.Addr, user, password string) ([]string, error) {
	now := a.now()
	ip = ip.Unmap().WithZone("")
	// A limited address is refused before anything else, the cache
	// included: otherwise guesses during the lockout would be free.
	if wait := a.fails.limited(ip, now); wait > 0 {
		return nil, &RateLimitedError{RetryAfter: wait}
	}
	key := a.key(user, password)
	if e, ok := a.cache.Get(key); ok && now.Before(e.expires) && e.user == user {
		return a.result(user, e.ok, ip, now)
	}
	v, _, _ := a.flight.Do(string(key[:]), func() (any, error) {
		st := a.state.Load()
		hash, known := st.hashes[user]
		if !known {
			hash = a.dummy(st.cost)
		}
		a.compares.Add(1)
		ok := bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil && known
		if a.cacheTTL > 0 {
			a.cache.Add(key, cacheEntry{user: user, ok: ok, expires: a.now().Add(a.cacheTTL)})
		}
		return ok, nil
	})
	return a.result(user, v.(bool), ip, now)
}

// dummy returns a hash of the given cost that no password matches.
func (a *authenticator) dummy(cost int) []byte {
	a.dummyMu.Lock()
	defer a.dummyMu.Unlock()
	if h, ok := a.dummies[cost]; ok {
		return h
	}
	h, err := bcrypt.GenerateFromPassword([]byte("aupguard-dummy"), cost)
	if err != nil {
		// Only an invalid cost fails, and costs come from parsed hashes.
		h, _ = bcrypt.GenerateFromPassword([]byte("aupguard-dummy"), bcrypt.DefaultCost)
	}
	if a.dummies == nil {
		a.dummies = map[int][]byte{}
	}
	a.dummies[cost] = h
	return h
}

func (a *authenticator) result(user string, ok bool, ip netip.Addr, now time.Time) ([]string, error) {
	if !ok {
		a.fails.record(ip, now)
		return nil, ErrBadCredentials
	}
	st := a.state.Load()
	return st.groups[user], nil
}

func (a *authenticator) key(user, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, a.cacheKey)
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write([]byte(password))
	var k [sha256.Size]byte
	m.Sum(k[:0])
	return k
}

// failures limits failed logins per client address with a token bucket
// per address (golang.org/x/time/rate, as the DNS filter limits queries):
// max failures at once, refilled at max per window. A success takes
// nothing back: a client that knows one password must not be able to
// clear the way for guessing another. Buckets live in an LRU of
// maxTracked addresses, so a flood from many addresses cannot grow memory
// without limit (an evicted address starts again with a full bucket).
type failures struct {
	limit   rate.Limit
	burst   int
	buckets *lru.Cache[netip.Addr, *rate.Limiter]
}

func newFailures(max int, window time.Duration) (*failures, error) {
	c, err := lru.New[netip.Addr, *rate.Limiter](maxTracked)
	if err != nil {
		return nil, fmt.Errorf("auth failure table: %w", err)
	}
	return &failures{limit: rate.Limit(float64(max) / window.Seconds()), burst: max, buckets: c}, nil
}

// limited returns how long ip must still wait, or 0. It takes no token.
func (f *failures) limited(ip netip.Addr, now time.Time) time.Duration {
	lim, ok := f.buckets.Get(ip)
	if !ok {
		return 0
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	wait := time.Duration((1 - tokens) / float64(f.limit) * float64(time.Second))
	return max(wait, time.Nanosecond)
}

// record takes a token from ip's bucket for a failed login.
func (f *failures) record(ip netip.Addr, now time.Time) {
	lim, ok := f.buckets.Get(ip)
	if !ok {
		// Two first failures racing may each create a bucket; the loser's
		// token is a negligible leak compared to a lock here.
		lim = rate.NewLimiter(f.limit, f.burst)
		if prev, found, _ := f.buckets.PeekOrAdd(ip, lim); found {
			lim = prev
		}
	}
	lim.AllowN(now, 1)
}
