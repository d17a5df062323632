package console

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/exceptions"
	"github.com/aupguard/aupguard/policies"
	"github.com/aupguard/aupguard/rego"
	"github.com/aupguard/aupguard/staff"
	"github.com/aupguard/aupguard/verdict"
)

const password = "correct horse battery staple"

// clock is a settable clock for idle expiry and retention.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// harness is a console on a real HTTP server, with real staff accounts,
// a real exceptions file and the real policy engine reading it.
type harness struct {
	t      *testing.T
	c      *Console
	srv    *httptest.Server
	clock  *clock
	engine *rego.Engine
	exc    *exceptions.File
	dir    string
}

func newHarness(t *testing.T, mod ...func(*Config)) *harness {
	t.Helper()
	dir := t.TempDir()
	accounts, err := staff.Open(filepath.Join(dir, "staff", "users.json"), staff.Options{Cost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	for name, role := range map[string]staff.Role{"dsl": staff.RoleSafeguarding, "itadmin": staff.RoleAdmin, "governor": staff.RoleViewer} {
		if err := accounts.Add(name, role, password); err != nil {
			t.Fatal(err)
		}
	}
	excPath := filepath.Join(dir, "console", exceptions.FileName)
	eng, err := rego.New(context.Background(), rego.Options{Builtin: policies.FS, Overlays: []string{excPath}, Location: time.UTC, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	for _, m := range mod {
		m(&cfg)
	}
	clk := &clock{t: time.Now().UTC()}
	exc := exceptions.Open(excPath)
	c, err := New(cfg, filepath.Join(dir, "console"), Options{
		Accounts: accounts, Exceptions: exc, Policy: eng, Location: time.UTC, Logger: quiet(), Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(func() { srv.Close(); _ = c.Close() })
	return &harness{t: t, c: c, srv: srv, clock: clk, engine: eng, exc: exc, dir: dir}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see them.
type browser struct {
	t    *testing.T
	h    *harness
	c    *http.Client
	csrf string
}

func (h *harness) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: h.t, h: h, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type page struct {
	status int
	header http.Header
	body   string
	loc    string
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := page{status: resp.StatusCode, header: resp.Header, body: string(body), loc: resp.Header.Get("Location")}
	if m := csrfRE.FindStringSubmatch(p.body); m != nil {
		b.csrf = m[1]
	}
	return p
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) get(path string) page {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.h.srv.URL+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.h.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// postForm posts with the CSRF token of the last page seen.
func (b *browser) postForm(path string, form url.Values) page {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", b.csrf)
	return b.post(path, form)
}

func (b *browser) login(user string) page {
	b.t.Helper()
	p := b.post("/login", url.Values{"username": {user}, "password": {password}})
	if p.status != http.StatusSeeOther {
		b.t.Fatalf("login %s: %d %s", user, p.status, p.body)
	}
	return p
}

// insert stores events as the pipeline's sink would.
func (h *harness) insert(evs ...events.Event) {
	h.t.Helper()
	if err := h.c.Sink().Deliver(context.Background(), evs); err != nil {
		h.t.Fatal(err)
	}
}

func block(id, user, host, category string, at time.Time) events.Event {
	return events.Event{
		ID: id, Time: at, Instance: "test", Kind: events.KindBlock, Source: verdict.SourceProxy, Phase: verdict.PhaseRequest,
		Action: verdict.ActionBlock, Category: category, Rule: category, Reason: "Not allowed.", Severity: verdict.SeverityMedium,
		Alert: true, ClientIP: "10.1.2.3", User: user, Groups: []string{"learners"}, Host: host, URL: "http://" + host + "/", Method: "GET",
	}
}

func review(id, ref string, disputed events.Event, at time.Time) events.Event {
	return events.Event{
		ID: id, Time: at, Instance: "test", Kind: events.KindReviewRequest, Source: verdict.SourceProxy, Severity: verdict.SeverityInfo,
		ClientIP: disputed.ClientIP, User: disputed.User, Groups: disputed.Groups, Ref: ref,
		Phase: disputed.Phase, Category: disputed.Category, Rule: disputed.Rule, Host: disputed.Host, URL: disputed.URL, Method: disputed.Method,
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
