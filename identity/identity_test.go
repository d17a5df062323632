package identity

import (
	"context"
	"encoding/base64"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"github.com/aupguard/aupguard/config/field"
)

func TestDefaultConfigIsValidAndLoopbackOnly(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	id, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ip      string
		allowed bool
	}{
		{"127.0.0.1", true},
		{"127.8.9.10", true},
		{"::1", true},
		{"::ffff:127.0.0.1", true},
		{"10.0.0.1", false},
		{"192.168.1.1", false},
		{"8.8.8.8", false},
		{"::2", false},
	} {
		groups, allowed := id.Identify(netip.MustParseAddr(tc.ip))
		if allowed != tc.allowed {
			t.Errorf("Identify(%s) allowed=%v, want %v", tc.ip, allowed, tc.allowed)
		}
		if groups != nil {
			t.Errorf("Identify(%s) groups=%v, want nil with no groups configured", tc.ip, groups)
		}
	}
	if id.AuthRequired() || id.AuthEnabled() {
		t.Error("authentication must be off by default")
	}
}

func TestConfigFromYAML(t *testing.T) {
	src := `
networks: [10.0.0.0/8, "2001:db8::/32"]
groups:
  10.0.0.0/8: [learners]
  10.20.0.0/16: [staff]
  10.20.5.7: [approved-publishers, staff]
auth:
  required: true
  htpasswd: /etc/aupguard/htpasswd
  failure_window: 90s
  cache_ttl: 2m
`
	c := DefaultConfig()
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	if c.Auth.FailureWindow != 90*time.Second || c.Auth.CacheTTL != 2*time.Minute {
		t.Errorf("durations: window %s ttl %s", c.Auth.FailureWindow, c.Auth.CacheTTL)
	}
	if c.Auth.Realm != "aupguard" || c.Auth.MaxFailures != 10 {
		t.Errorf("defaults lost under YAML: %+v", c.Auth)
	}
}

func TestValidateNamesEveryBadKey(t *testing.T) {
	c := DefaultConfig()
	c.Networks = []string{"10.0.0.0/8", "not-a-net", "300.1.1.1/8"}
	c.Groups = map[string][]string{
		"10.1.0.0/16":  {"staff"},
		"10.1.9.9/16":  {"learners"}, // same network once masked
		"bogus":        {"x"},
		"10.2.0.0/16":  {},
		"10.3.0.0/16":  {"has space"},
		"192.0.2.0/24": {"ok"},
	}
	c.Auth = AuthConfig{Required: true, UsersGroups: "/x", Realm: `a"b`, MaxFailures: 0, FailureWindow: 0, CacheTTL: -time.Second}
	err := c.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	got := map[string]string{}
	for _, e := range field.Flatten(err) {
		var fe *field.Error
		if !errors.As(e, &fe) {
			t.Fatalf("error without a key path: %v", e)
		}
		got[fe.Path] = fe.Msg
	}
	for _, p := range []string{
		"networks[1]", "networks[2]", "groups.bogus", "groups.10.1.9.9/16", "groups.10.2.0.0/16",
		"groups.10.3.0.0/16[0]", "auth.required", "auth.users_groups", "auth.realm",
		"auth.max_failures", "auth.failure_window", "auth.cache_ttl",
	} {
		if _, ok := got[p]; !ok {
			t.Errorf("no error for %s; got %v", p, got)
		}
	}
	for _, p := range []string{"networks[0]", "groups.192.0.2.0/24", "groups.10.1.0.0/16"} {
		if m, ok := got[p]; ok {
			t.Errorf("unexpected error for valid %s: %s", p, m)
		}
	}

	empty := DefaultConfig()
	empty.Networks = nil
	if err := empty.Validate(); err == nil || !strings.Contains(err.Error(), "networks") {
		t.Errorf("empty networks accepted: %v", err)
	}
}

func TestIdentifyMostSpecificPrefixWins(t *testing.T) {
	c := DefaultConfig()
	c.Networks = []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.0/24"}
	c.Groups = map[string][]string{
		"10.0.0.0/8":          {"learners"},
		"10.20.0.0/16":        {"staff"},
		"10.20.5.0/24":        {"approved-publishers", "staff"},
		"10.20.5.7":           {"it"},
		"2001:db8::/32":       {"learners"},
		"2001:db8:1::/48":     {"staff"},
		"2001:db8:1:2::99/64": {"lab"}, // host bits ignored
	}
	id, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ip      string
		groups  []string
		allowed bool
	}{
		{"10.9.9.9", []string{"learners"}, true},
		{"10.20.1.1", []string{"staff"}, true},
		{"10.20.5.1", []string{"approved-publishers", "staff"}, true},
		{"10.20.5.7", []string{"it"}, true},
		{"::ffff:10.20.5.7", []string{"it"}, true},
		{"2001:db8::5", []string{"learners"}, true},
		{"2001:db8:1::5", []string{"staff"}, true},
		{"2001:db8:1:2::1", []string{"lab"}, true},
		{"192.0.2.10", nil, true}, // allowed, no group: the decider's default
		{"11.0.0.1", nil, false},
		{"127.0.0.1", nil, false}, // networks replace the default
	} {
		groups, allowed := id.Identify(netip.MustParseAddr(tc.ip))
		if allowed != tc.allowed || !slices.Equal(groups, tc.groups) {
			t.Errorf("Identify(%s) = %v, %v; want %v, %v", tc.ip, groups, allowed, tc.groups, tc.allowed)
		}
	}

	ip := netip.MustParseAddr("10.20.5.1")
	if allocs := testing.AllocsPerRun(1000, func() { id.Identify(ip) }); allocs != 0 {
		t.Errorf("Identify allocates %.1f times per call; the hot path must not allocate", allocs)
	}
}

func TestHTPasswdRejectsNonBcryptWithFileLine(t *testing.T) {
	dir := t.TempDir()
	good := hash(t, "secret")
	path := writeFile(t, dir, "htpasswd", strings.Join([]string{
		"# learners",
		"alice:" + good,
		"",
		"bob:$apr1$abc$defghijklmnopqrstuvwx",
		"carol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
		"dave",
		"alice:" + good,
		"erin:$2y$10$tooshort",
	}, "\n"))
	_, err := readHTPasswd(path)
	if err == nil {
		t.Fatal("bad htpasswd accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		path + ":4: user \"bob\": MD5 ($apr1$) hashes are not accepted",
		path + ":5: user \"carol\": SHA-1 ({SHA}) hashes are not accepted",
		path + ":6: want user:bcrypt-hash",
		path + ":7: user \"alice\" already defined on line 2",
		path + ":8: user \"erin\": malformed bcrypt hash",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "W6ph5Mm5") || strings.Contains(msg, "defghijk") {
		t.Errorf("error echoes a password hash:\n%s", msg)
	}

	c := DefaultConfig()
	c.Auth.HTPasswd = path
	if _, err := New(c, Options{}); err == nil || !strings.Contains(err.Error(), path+":4:") {
		t.Errorf("New with a bad htpasswd: %v", err)
	}
}

func TestUsersGroupsFile(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "users", "# who is what\nalice: staff, approved-publishers\nbob:learners\n\nbad line\ncarol: ok, has space\n")
	_, err := readUsersGroups(path)
	if err == nil {
		t.Fatal("bad users_groups accepted")
	}
	for _, want := range []string{path + ":5: want user: group1,group2", path + ":6: user \"carol\""} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	path = writeFile(t, dir, "users2", "alice: staff, approved-publishers, staff\nbob:learners\n")
	m, err := readUsersGroups(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m["alice"], []string{"staff", "approved-publishers"}) || !slices.Equal(m["bob"], []string{"learners"}) {
		t.Errorf("parsed %v", m)
	}
}

func TestVerifyCachesAndGroups(t *testing.T) {
	id, a, _ := newAuthIdentity(t, 3, time.Minute)
	ip := netip.MustParseAddr("127.0.0.1")

	groups, err := id.Verify(ip, "alice", "correct horse")
	if err != nil {
		t.Fatalf("good password: %v", err)
	}
	if !slices.Equal(groups, []string{"staff", "approved-publishers"}) {
		t.Errorf("alice groups %v", groups)
	}
	n := a.compares.Load()
	for range 5 {
		if _, err := id.Verify(ip, "alice", "correct horse"); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.compares.Load(); got != n {
		t.Errorf("cached credentials paid bcrypt %d more times", got-n)
	}
	groups, err = id.Verify(ip, "bob", "bobpw")
	if err != nil || groups != nil {
		t.Errorf("bob (no groups line) = %v, %v; want nil groups", groups, err)
	}
	if _, err := id.Verify(ip, "alice", "wrong"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := id.Verify(ip, "mallory", "x"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("unknown user: %v", err)
	}
}

func TestVerifyRateLimitsFailuresPerClient(t *testing.T) {
	id, a, clock := newAuthIdentity(t, 3, time.Minute)
	attacker := netip.MustParseAddr("127.0.0.2")
	other := netip.MustParseAddr("127.0.0.3")
	for i := range 3 {
		if _, err := id.Verify(attacker, "alice", "guess"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	before := a.compares.Load()
	_, err := id.Verify(attacker, "alice", "correct horse")
	var rl *RateLimitedError
	if !errors.As(err, &rl) || !errors.Is(err, ErrRateLimited) {
		t.Fatalf("after 3 failures, even the right password must be refused: %v", err)
	}
	if rl.RetryAfter <= 0 || rl.RetryAfter > time.Minute {
		t.Errorf("RetryAfter %s", rl.RetryAfter)
	}
	if a.compares.Load() != before {
		t.Error("a limited client still made the proxy run bcrypt")
	}
	if _, err := id.Verify(other, "alice", "correct horse"); err != nil {
		t.Errorf("another client is not limited: %v", err)
	}
	clock.add(time.Minute)
	if _, err := id.Verify(attacker, "alice", "correct horse"); err != nil {
		t.Errorf("after the window: %v", err)
	}
}

func TestVerifyConcurrent(t *testing.T) {
	id, a, _ := newAuthIdentity(t, 1000, time.Minute)
	ip := netip.MustParseAddr("127.0.0.1")
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range 32 {
		wg.Go(func() {
			if _, err := id.Verify(ip, "alice", "correct horse"); err != nil {
				bad.Add(1)
			}
		})
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d concurrent verifications failed", bad.Load())
	}
	// Concurrent identical checks collapse into a few bcrypt runs, not 32.
	if n := a.compares.Load(); n > 8 {
		t.Errorf("%d bcrypt comparisons for 32 identical concurrent logins", n)
	}
}

func TestReloadKeepsPreviousOnErrorAndPurgesCache(t *testing.T) {
	id, _, _ := newAuthIdentity(t, 100, time.Minute)
	ip := netip.MustParseAddr("127.0.0.1")
	ht := id.auth.htpasswd
	if _, err := id.Verify(ip, "alice", "correct horse"); err != nil {
		t.Fatal(err)
	}
	// A broken file: the reload fails, alice keeps working.
	writeFile(t, filepath.Dir(ht), filepath.Base(ht), "alice:"+hash(t, "new")+"\nbob:plain\n")
	err := id.Reload()
	if err == nil || !strings.Contains(err.Error(), ht+":2:") {
		t.Fatalf("reload of a broken file: %v", err)
	}
	if _, err := id.Verify(ip, "alice", "correct horse"); err != nil {
		t.Errorf("previous credentials lost after a failed reload: %v", err)
	}
	// A good file with a new password: the cached old one stops working.
	writeFile(t, filepath.Dir(ht), filepath.Base(ht), "alice:"+hash(t, "new")+"\n")
	if err := id.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := id.Verify(ip, "alice", "correct horse"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("old password still accepted after reload: %v", err)
	}
	if _, err := id.Verify(ip, "alice", "new"); err != nil {
		t.Errorf("new password: %v", err)
	}
}

func TestWatchReloadsOnRename(t *testing.T) {
	id, _, _ := newAuthIdentity(t, 100, time.Minute)
	ip := netip.MustParseAddr("127.0.0.1")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- id.Watch(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	}()

	ht := id.auth.htpasswd
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Replace by rename, as editors and config management do; repeat
		// until the watcher (which starts asynchronously) has seen it.
		tmp := writeFile(t, filepath.Dir(ht), "htpasswd.tmp", "carol:"+hash(t, "carolpw")+"\n")
		if err := os.Rename(tmp, ht); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		if _, err := id.Verify(ip, "carol", "carolpw"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the watcher never reloaded the renamed htpasswd file")
		}
	}
}

func TestParseBasic(t *testing.T) {
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		in         string
		user, pass string
		ok         bool
	}{
		{"Basic " + enc("alice:pw:with:colons"), "alice", "pw:with:colons", true},
		{"basic " + enc("bob:"), "bob", "", true},
		{"Basic " + enc(":nouser"), "", "", false},
		{"Basic " + enc("nocolon"), "", "", false},
		{"Basic !!!", "", "", false},
		{"Bearer abc", "", "", false},
		{"", "", "", false},
	} {
		u, p, ok := ParseBasic(tc.in)
		if u != tc.user || p != tc.pass || ok != tc.ok {
			t.Errorf("ParseBasic(%q) = %q, %q, %v", tc.in, u, p, ok)
		}
	}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newAuthIdentity(t *testing.T, maxFailures int, window time.Duration) (*Identity, *authenticator, *fakeClock) {
	t.Helper()
	dir := t.TempDir()
	c := DefaultConfig()
	c.Auth.Required = true
	c.Auth.MaxFailures = maxFailures
	c.Auth.FailureWindow = window
	c.Auth.HTPasswd = writeFile(t, dir, "htpasswd", "alice:"+hash(t, "correct horse")+"\nbob:"+hash(t, "bobpw")+"\n")
	c.Auth.UsersGroups = writeFile(t, dir, "users", "alice: staff,approved-publishers\n")
	clock := &fakeClock{t: time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)}
	id, err := New(c, Options{Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	return id, id.auth, clock
}

func hash(t testing.TB, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func BenchmarkIdentify(b *testing.B) {
	c := DefaultConfig()
	c.Networks = []string{"10.0.0.0/8", "2001:db8::/32"}
	c.Groups = map[string][]string{}
	for i := range 200 {
		c.Groups[netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16).String()] = []string{"learners"}
		c.Groups[netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 7, 0}), 24).String()] = []string{"staff"}
	}
	id, err := New(c, Options{})
	if err != nil {
		b.Fatal(err)
	}
	ip := netip.MustParseAddr("10.42.7.9")
	b.ReportAllocs()
	for b.Loop() {
		if g, ok := id.Identify(ip); !ok || g[0] != "staff" {
			b.Fatal(g, ok)
		}
	}
}
