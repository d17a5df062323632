package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/aupguard/aupguard/staff"
)

const token = "0123456789abcdef-admin-token"

// authServer serves the admin routes behind auth on a real listener.
func authServer(t *testing.T, cfg AuthConfig, usersFile string) (*Auth, string) {
	t.Helper()
	a, err := NewAuth(cfg, usersFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Handler(Deps{Auth: a, Started: time.Now(), Stats: map[string]func() any{"x": func() any { return 1 }}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return a, srv.URL
}

type cred struct{ bearer, user, pass string }

func get(t *testing.T, url string, c cred) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func addUser(t *testing.T, path, name string, role staff.Role, pass string) {
	t.Helper()
	st, err := staff.Open(path, staff.Options{Cost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Add(name, role, pass); err != nil {
		t.Fatal(err)
	}
}

// Out of the box (no token file, no admin account) the API refuses
// everyone and says how to unlock it; the probes and /metrics answer.
func TestAuthLockedByDefault(t *testing.T) {
	users := filepath.Join(t.TempDir(), "staff", "users.json")
	a, url := authServer(t, AuthConfig{}, users)
	if !a.Locked() {
		t.Error("Locked() false with no credential")
	}
	for _, p := range []string{"/api/stats", "/api/policy", "/api/lists", "/anything"} {
		code, body, h := get(t, url+p, cred{bearer: "guess-guess-guess-guess", user: "", pass: ""})
		if code != http.StatusUnauthorized || !strings.Contains(body, "locked") {
			t.Errorf("%s: %d %s; want 401 locked", p, code, body)
		}
		if len(h.Values("WWW-Authenticate")) != 2 {
			t.Errorf("%s: WWW-Authenticate %v; want Bearer and Basic challenges", p, h.Values("WWW-Authenticate"))
		}
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if code, _, _ := get(t, url+p, cred{}); code != 200 {
			t.Errorf("%s: %d, want 200 without credentials", p, code)
		}
	}
	// An admin added later (aupguard users add, another process) unlocks
	// it without a restart.
	addUser(t, users, "root", staff.RoleAdmin, "a long admin password")
	if code, body, _ := get(t, url+"/api/stats", cred{user: "root", pass: "a long admin password"}); code != 200 {
		t.Errorf("admin after being added: %d %s", code, body)
	}
	if a.Locked() {
		t.Error("Locked() true with an admin account")
	}
	// And one added while the file is already in use.
	addUser(t, users, "root2", staff.RoleAdmin, "another admin password")
	if code, body, _ := get(t, url+"/api/stats", cred{user: "root2", pass: "another admin password"}); code != 200 {
		t.Errorf("second admin after being added: %d %s", code, body)
	}
}

func TestAuthTokenAndAccounts(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.json")
	addUser(t, users, "root", staff.RoleAdmin, "a long admin password")
	addUser(t, users, "dsl", staff.RoleSafeguarding, "a long dsl password")
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, url := authServer(t, AuthConfig{TokenFile: tokenFile, Metrics: true}, users)
	cases := []struct {
		name string
		path string
		c    cred
		want int
	}{
		{"token", "/api/stats", cred{bearer: token}, 200},
		{"wrong token", "/api/stats", cred{bearer: token + "x"}, 401},
		{"no credential", "/api/stats", cred{}, 401},
		{"admin account", "/api/stats", cred{user: "root", pass: "a long admin password"}, 200},
		{"admin, wrong password", "/api/stats", cred{user: "root", pass: "a long dsl password"}, 401},
		{"unknown user", "/api/stats", cred{user: "nobody", pass: "a long admin password"}, 401},
		{"safeguarding account", "/api/stats", cred{user: "dsl", pass: "a long dsl password"}, 403},
		{"metrics needs credentials", "/metrics", cred{}, 401},
		{"metrics with token", "/metrics", cred{bearer: token}, 200},
		{"healthz stays open", "/healthz", cred{}, 200},
	}
	for _, c := range cases {
		if code, body, _ := get(t, url+c.path, c.c); code != c.want {
			t.Errorf("%s: GET %s: %d %s, want %d", c.name, c.path, code, body, c.want)
		}
	}

	// SIGHUP: a new token replaces the old one.
	if err := os.WriteFile(tokenFile, []byte("fedcba9876543210-new-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := get(t, url+"/api/stats", cred{bearer: token}); code != 401 {
		t.Errorf("old token after reload: %d, want 401", code)
	}
	if code, _, _ := get(t, url+"/api/stats", cred{bearer: "fedcba9876543210-new-token"}); code != 200 {
		t.Errorf("new token after reload: %d, want 200", code)
	}
	// A broken token file keeps the token in use.
	if err := os.WriteFile(tokenFile, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err == nil {
		t.Error("reload accepted a 5-character token")
	}
	if code, _, _ := get(t, url+"/api/stats", cred{bearer: "fedcba9876543210-new-token"}); code != 200 {
		t.Errorf("token after a failed reload: %d, want 200", code)
	}
}

func TestAuthConfigValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	short := filepath.Join(dir, "short")
	os.WriteFile(good, []byte(token), 0o600)
	os.WriteFile(short, []byte("abc"), 0o600)
	for _, c := range []struct {
		cfg  AuthConfig
		want string
	}{
		{AuthConfig{}, ""},
		{AuthConfig{TokenFile: good}, ""},
		{AuthConfig{Disabled: true}, ""},
		{AuthConfig{TokenFile: short}, "token_file: token in"},
		{AuthConfig{TokenFile: filepath.Join(dir, "missing")}, "token_file: reading token"},
		{AuthConfig{Disabled: true, TokenFile: good}, "disabled: true with token_file"},
	} {
		err := c.cfg.Validate()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
}
