package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"github.com/aupguard/aupguard/staff"
)

// session is one logged-in member of staff. Sessions live in memory only:
// a restart logs everyone out, which is the safe direction.
type session struct {
	id   string
	user string
	role staff.Role
	// changed is when the account's password was set, at login: a new
	// password (aupguard users passwd) ends the sessions of the old one.
	changed time.Time
	csrf    string
	created time.Time
	last    time.Time
}

// sessions holds the live sessions by ID.
type sessions struct {
	idle, max time.Duration
	now       func() time.Time

	mu   sync.Mutex
	byID map[string]*session
}

func newSessions(idle, max time.Duration, now func() time.Time) *sessions {
	return &sessions{idle: idle, max: max, now: now, byID: map[string]*session{}}
}

func token() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create starts a session with a fresh ID (never one the browser brought,
// so a planted cookie cannot become a logged-in session).
func (s *sessions) create(u staff.User) *session {
	now := s.now()
	ss := &session{id: token(), user: u.Name, role: u.Role, changed: u.Changed, csrf: token(), created: now, last: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	s.byID[ss.id] = ss
	return ss
}

// get returns the live session for id and marks it used; an idle or too
// old one is ended.
func (s *sessions) get(id string) (session, bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.byID[id]
	if !ok {
		return session{}, false
	}
	if now.Sub(ss.last) > s.idle || now.Sub(ss.created) > s.max {
		delete(s.byID, id)
		return session{}, false
	}
	ss.last = now
	return *ss, true
}

func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

// endUser ends every session of user (removed or re-passworded account).
func (s *sessions) endUser(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ss := range s.byID {
		if ss.user == user {
			delete(s.byID, id)
		}
	}
}

// sweepLocked drops expired sessions, so abandoned ones do not pile up.
func (s *sessions) sweepLocked(now time.Time) {
	for id, ss := range s.byID {
		if now.Sub(ss.last) > s.idle || now.Sub(ss.created) > s.max {
			delete(s.byID, id)
		}
	}
}

func validCSRF(ss session, got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(ss.csrf), []byte(got)) == 1
}

// Login rate limits: per client address and per account name, token
// buckets. An address may try loginPerIPBurst times in a row and then once
// per loginPerIPEvery; an account name loginPerUserBurst times and then once
// per loginPerUserEvery, whoever tries. That stops guessing at a rate that a
// member of staff who mistypes a few times never meets.
const (
	loginPerIPBurst     = 10
	loginPerIPEvery     = 6 * time.Second
	loginPerUserBurst   = 5
	loginPerUserEvery   = 30 * time.Second
	loginLimiterEntries = 10_000
)

// limiter is a bounded set of token buckets by key. The LRU bound keeps a
// flood of made-up names from growing memory; an evicted bucket starts
// full again, which an attacker cannot use to go faster than the per-IP
// bucket allows.
type limiter struct {
	every time.Duration
	burst int
	mu    sync.Mutex
	cache *lru.Cache[string, *rate.Limiter]
}

func newLimiter(every time.Duration, burst int) *limiter {
	c, _ := lru.New[string, *rate.Limiter](loginLimiterEntries) // size > 0: never fails
	return &limiter{every: every, burst: burst, cache: c}
}

// allow takes a token for key at now; false means wait.
func (l *limiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.cache.Get(key)
	if !ok {
		lim = rate.NewLimiter(rate.Every(l.every), l.burst)
		l.cache.Add(key, lim)
	}
	return lim.AllowN(now, 1)
}
