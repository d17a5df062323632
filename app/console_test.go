package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"github.com/aupguard/aupguard/console"
	"github.com/aupguard/aupguard/internal/testutil"
	"github.com/aupguard/aupguard/staff"
	"github.com/aupguard/aupguard/verdict"
)

const (
	staffPassword   = "correct horse battery staple"
	learnerPassword = "learner-password-1"
	chromiumPath    = "/usr/bin/chromium"
)

// consoleDeployment is a whole aupguard with the console on, proxy
// authentication for learners (so a learner is a user), and a gambling
// host pointed at a local origin.
type consoleDeployment struct {
	s       *Server
	dataDir string
	origin  string // host:port of www.bet365.com's stand-in
}

func serveConsole(t *testing.T) *consoleDeployment {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	hash, err := bcrypt.GenerateFromPassword([]byte(learnerPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("jsmith:"+string(hash)+"\nkjones:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The staff account is added before start, as `aupguard users add`
	// would; the console re-reads the file for later additions too.
	accounts, err := staff.Open(filepath.Join(data, "staff", "users.json"), staff.Options{Cost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	for name, role := range map[string]staff.Role{"dsl": staff.RoleSafeguarding, "itadmin": staff.RoleAdmin} {
		if err := accounts.Add(name, role, staffPassword); err != nil {
			t.Fatal(err)
		}
	}
	originURL := newLoopbackOrigin(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(originURL, "http://"))
	yaml := fmt.Sprintf(`data_dir: %s
lists: {mirror: %q}
admin: {listen: ""}
console: {listen: "127.0.0.1:0"}
dns: {enabled: false}
policy: {watch: true, timezone: UTC}
identity:
  networks: [127.0.0.0/8]
  # Required: every learner is a user, in a browser too (its 407 prompt).
  auth: {htpasswd: %s, required: true}
proxy: {listen: "127.0.0.1:0", allow_destinations: [127.0.0.0/8]}
hosts: {www.bet365.com: [127.0.0.1]}
`, data, testutil.SharedData(t), htpasswd)
	s := startServer(t, "console.yaml", yaml)
	return &consoleDeployment{s: s, dataDir: data, origin: "www.bet365.com:" + port}
}

// learner is a learner's HTTP client through the proxy, logged in to it.
func (d *consoleDeployment) learner(user string) *http.Client {
	pu := &url.URL{Scheme: "http", User: url.UserPassword(user, learnerPassword), Host: d.s.Proxy.Addr().String()}
	return &http.Client{
		Transport:     &http.Transport{Proxy: http.ProxyURL(pu), DisableKeepAlives: true},
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func browse(t *testing.T, c *http.Client, method, target string, form url.Values) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// The console is one of aupguard's own listeners: a learner cannot reach
// it through the proxy, although allow_destinations opens loopback.
func TestConsoleUnreachableThroughProxy(t *testing.T) {
	d := serveConsole(t)
	addr := d.s.ConsoleAddr().String()
	resp, err := http.Get("http://" + addr + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("console directly: %d", resp.StatusCode)
	}
	_, port, _ := net.SplitHostPort(addr)
	for _, host := range []string{"127.0.0.1", "[::ffff:127.0.0.1]"} {
		r, body := browse(t, d.learner("jsmith"), http.MethodGet, "http://"+host+":"+port+"/login", nil)
		if r.StatusCode != http.StatusForbidden || !strings.Contains(body, "own listeners") {
			t.Errorf("console via %s through the proxy: %d; want 403 (own listener)", host, r.StatusCode)
		}
	}
	// Without a session the console refuses: pages redirect, the API 401s.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for path, want := range map[string]int{"/alerts": http.StatusSeeOther, "/api/alerts": http.StatusUnauthorized} {
		resp, err := noRedirect.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s without a session: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

var refRE = regexp.MustCompile(`[0-9A-Z]{26}`)

// The whole loop in a real browser: a learner's request through the real
// proxy is blocked and raises an alert; the DSL signs in to the console in
// headless Chromium, finds it by the block page's reference, acknowledges
// it; the learner asks for a review; the DSL approves it as an exception;
// the learner's next request is allowed, by a decision that names the
// exception. Markup in the URL never runs.
func TestConsoleEndToEndInChromium(t *testing.T) {
	_, err := os.Stat(chromiumPath)
	testutil.Require(t, err == nil, "chromium is not installed (apt-get install -y chromium)")
	d := serveConsole(t)
	base := "http://" + d.s.ConsoleAddr().String()
	store := d.s.Console().Store()
	jsmith := d.learner("jsmith")

	// 1. The learner is blocked; the URL carries markup.
	evil := `/slots/<script>alert("url")</script>`
	resp, body := browse(t, jsmith, http.MethodGet, "http://"+d.origin+evil, nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("gambling through the proxy: %d", resp.StatusCode)
	}
	ref := resp.Header.Get("X-Aupguard-Reference")
	if !refRE.MatchString(ref) || !strings.Contains(body, ref) {
		t.Fatalf("block page reference %q not on the page", ref)
	}
	waitUntil(t, "the block in the console", func() bool {
		_, err := store.Event(context.Background(), ref)
		return err == nil
	})

	// 2. The DSL signs in and finds it.
	b := newChromium(t)
	shots := newShooter(t, b)
	run(t, b, "sign in page", chromedp.Navigate(base+"/alerts"), chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)))
	shots.take("login")
	run(t, b, "sign in",
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), "dsl"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), staffPassword),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`table.list`)))
	alertsText := cdpGet(t, b, "alerts", chromedp.Text(chromedp.CSS(`table.list`)))
	if !strings.Contains(alertsText, "jsmith") || !strings.Contains(alertsText, "www.bet365.com") {
		t.Fatalf("the alert is not listed: %q", alertsText)
	}
	shots.take("alerts")
	run(t, b, "find by reference",
		chromedp.Navigate(base+"/find"), chromedp.WaitVisible(chromedp.CSS(`input[name=ref]`)))
	shots.take("find")
	run(t, b, "find by reference",
		chromedp.SendKeys(chromedp.CSS(`input[name=ref]`), strings.ToLower(ref)),
		chromedp.Submit(chromedp.CSS(`input[name=ref]`)),
		chromedp.WaitVisible(chromedp.CSS(`#ack`)))
	loc := cdpGet(t, b, "event page", chromedp.Location())
	facts := cdpGet(t, b, "event page", chromedp.Text(chromedp.CSS(`dl.facts`)))
	if !strings.HasSuffix(loc, "/events/"+ref) || !strings.Contains(facts, `<script>alert("url")</script>`) {
		t.Fatalf("event page %s does not show the URL as text: %q", loc, facts)
	}
	noScripts(t, b)
	shots.take("event")

	// 3. Acknowledge with a note.
	run(t, b, "acknowledge",
		chromedp.SendKeys(chromedp.CSS(`#ack textarea[name=note]`), "Spoke to jsmith; <b>not</b> bold"),
		chromedp.Click(chromedp.CSS(`#ack button`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#ack`)))
	if ev, _ := store.Event(context.Background(), ref); ev.Status != console.StatusAcknowledged {
		t.Fatalf("alert status %q after acknowledging", ev.Status)
	}
	history := cdpGet(t, b, "history", chromedp.Text(chromedp.CSS(`ol.history`)))
	if !strings.Contains(history, "<b>not</b> bold") {
		t.Fatalf("the note is not shown as typed: %q", history)
	}

	// 4. The learner, in their own browser through the proxy, is blocked
	// again and asks for a review from the block page's form, with a
	// message that carries markup.
	lb := newLearnerChromium(t, d.s.Proxy.Addr().String(), "jsmith", learnerPassword)
	run(t, lb, "learner blocked", chromedp.Navigate("http://"+d.origin+"/slots"), chromedp.WaitVisible(chromedp.CSS(`textarea[name=message]`)))
	message := `For my PSHE essay on gambling harms <script>alert("review")</script><img src=x onerror=alert(2)>`
	run(t, lb, "learner asks for a review",
		chromedp.SendKeys(chromedp.CSS(`textarea[name=message]`), message),
		chromedp.Click(chromedp.CSS(`form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`p.status.ok`)))
	if sent := cdpGet(t, lb, "review confirmation", chromedp.Text(chromedp.CSS(`p.status.ok`))); !strings.Contains(strings.ToLower(sent), "request sent") {
		t.Fatalf("review confirmation: %q\n%s", sent, pageState(lb))
	}
	if n := lb.dialogs.Load(); n != 0 {
		t.Fatalf("%d JavaScript dialogs in the learner's browser", n)
	}
	var reviewID string
	waitUntil(t, "the review request in the console", func() bool {
		rows, _ := store.Reviews(context.Background(), console.StatusNew, 10)
		if len(rows) == 1 {
			reviewID = rows[0].ID
		}
		return reviewID != ""
	})
	run(t, b, "reviews", chromedp.Navigate(base+"/reviews"), chromedp.WaitVisible(chromedp.CSS(`table.list`)))
	noScripts(t, b)
	if listed := cdpGet(t, b, "reviews", chromedp.Text(chromedp.CSS(`table.list td.message`))); !strings.Contains(listed, `<script>alert("review")</script>`) {
		t.Fatalf("the review list does not show the message as text: %q", listed)
	}
	shots.take("reviews")
	run(t, b, "open the review", chromedp.Click(chromedp.CSS(`table.list a.btn`)), chromedp.WaitVisible(chromedp.CSS(`#approve`)))
	noScripts(t, b)
	if shown := cdpGet(t, b, "review message", chromedp.Text(chromedp.CSS(`#review-message`))); shown != message {
		t.Fatalf("the review page shows the message as %q, want %q", shown, message)
	}
	shots.take("review")

	// Before approval, the learner is still blocked.
	if resp, _ := browse(t, jsmith, http.MethodGet, "http://"+d.origin+"/", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("before approval: %d", resp.StatusCode)
	}
	// 5. Approve: this site, this learner, the date offered.
	run(t, b, "approve",
		chromedp.SendKeys(chromedp.CSS(`#approve input[name=note]`), "Assignment on gambling harms"),
		chromedp.Click(chromedp.CSS(`#approve button`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#approve`)))
	rv, _ := store.Event(context.Background(), reviewID)
	if rv.Status != console.StatusApproved {
		t.Fatalf("review status %q", rv.Status)
	}
	acts, _ := store.Actions(context.Background(), reviewID)
	if len(acts) != 1 || acts[0].ExceptionID == "" {
		t.Fatalf("approval not recorded with its exception: %+v", acts)
	}
	exID := acts[0].ExceptionID

	// 6. The learner's next request is allowed, and the decision names the
	// exception; another learner is still blocked.
	resp, body = browse(t, jsmith, http.MethodGet, "http://"+d.origin+"/", nil)
	if resp.StatusCode != http.StatusOK || body != "origin" {
		t.Fatalf("after approval, jsmith: %d %q", resp.StatusCode, body)
	}
	if resp, _ := browse(t, d.learner("kjones"), http.MethodGet, "http://"+d.origin+"/", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("after approval, kjones: %d", resp.StatusCode)
	}
	dec := d.s.Core.Decider.Decide(context.Background(), &verdict.Input{
		Source: verdict.SourceProxy, Phase: verdict.PhaseRequest,
		Client:  verdict.Client{IP: "127.0.0.1", User: "jsmith", Groups: []string{"learners"}},
		Request: verdict.Request{Method: "GET", Scheme: "http", Host: "www.bet365.com", Port: 80, Path: "/"},
	})
	if dec.Action != verdict.ActionAllow || dec.Rule != "exception:"+exID || !strings.Contains(dec.Reason, exID) {
		t.Fatalf("decision after approval: %+v", dec)
	}

	// The remaining pages, for the screenshots and a last look for scripts.
	for _, p := range []struct{ name, path string }{{"learner", "/learners/jsmith"}, {"dashboard", "/dashboard"}, {"exceptions", "/exceptions"}} {
		run(t, b, p.name, chromedp.Navigate(base+p.path), chromedp.WaitVisible(chromedp.CSS(`main`)))
		noScripts(t, b)
		shots.take(p.name)
	}
	run(t, b, "sign out", chromedp.Click(chromedp.CSS(`form.who button`)), chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)))
	run(t, b, "admin signs in", chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), "itadmin"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), staffPassword),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		// An admin lands on /policy; navigating before that redirect has
		// finished would abort it.
		chromedp.WaitVisible(chromedp.CSS(`dl.facts`)))
	shots.take("policy")
	for _, p := range []struct{ name, path string }{{"audit", "/audit"}, {"users", "/users"}} {
		run(t, b, p.name, chromedp.Navigate(base+p.path), chromedp.WaitVisible(chromedp.CSS(`main`)))
		shots.take(p.name)
	}
	run(t, b, "audit", chromedp.Navigate(base+"/audit"))
	audit := cdpGet(t, b, "audit", chromedp.Text(chromedp.CSS(`table.list`)))
	for _, want := range []string{"review approved", "alert acknowledged", exID, "policy activated"} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit log lacks %q", want)
		}
	}
	if n := b.dialogs.Load(); n != 0 {
		t.Fatalf("%d JavaScript dialogs opened: markup from an event ran", n)
	}
}

// chromiumTab is a headless Chromium tab that counts JavaScript dialogs.
type chromiumTab struct {
	ctx     context.Context
	dialogs *atomic.Int32
}

func newChromium(t *testing.T, extra ...chromedp.ExecAllocatorOption) chromiumTab {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 900),
	}
	opts = append(opts, extra...)
	dialogs := &atomic.Int32{}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	// The listener runs in the tab's message loop: it only counts. A
	// dialog would also stall the next action, which then times out.
	ctx, cancelC := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			dialogs.Add(1)
		}
	}))
	t.Cleanup(func() { cancelC(); cancelA() })
	// The first call starts the browser and must have no timeout of its
	// own (it would be the browser's lifetime).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return chromiumTab{ctx: ctx, dialogs: dialogs}
}

func run(t *testing.T, b chromiumTab, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("chromium: %s: %v\n%s", what, err, pageState(b))
	}
}

// pageState says where the browser is, for a failure message.
func pageState(b chromiumTab) string {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	return "at " + loc + ":\n" + text
}

// cdpGet runs one action that returns a value.
func cdpGet[T any](t *testing.T, b chromiumTab, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("chromium: %s: %v", what, err)
	}
	return v
}

// noScripts checks the page has no script element at all (the console
// sends none, so any would be injected) and no dialog has opened.
func noScripts(t *testing.T, b chromiumTab) {
	t.Helper()
	n := cdpGet(t, b, "count scripts", chromedp.Evaluate[int](`document.querySelectorAll("script, [onerror], [onload], iframe").length`))
	if n != 0 || b.dialogs.Load() != 0 {
		t.Fatalf("injected markup in the page: %d elements, %d dialogs", n, b.dialogs.Load())
	}
}

// shooter saves full-page screenshots at phone and desktop widths into
// $AUPGUARD_ARTIFACTS, when it is set.
type shooter struct {
	t   *testing.T
	b   chromiumTab
	dir string
}

func newShooter(t *testing.T, b chromiumTab) *shooter {
	dir := os.Getenv("AUPGUARD_ARTIFACTS")
	if dir != "" {
		dir = filepath.Join(dir, "console")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &shooter{t: t, b: b, dir: dir}
}

func (s *shooter) take(name string) {
	s.t.Helper()
	if s.dir == "" {
		return
	}
	for _, w := range []struct {
		label         string
		width, height int64
		mobile        bool
	}{{"phone", 390, 844, true}, {"desktop", 1366, 900, false}} {
		emulate := chromedp.EmulateViewport(w.width, w.height)
		if w.mobile {
			emulate = chromedp.EmulateViewport(w.width, w.height, chromedp.EmulateMobile)
		}
		run(s.t, s.b, "viewport "+name, emulate)
		png := cdpGet(s.t, s.b, "screenshot "+name, chromedp.FullScreenshot(100))
		if err := os.WriteFile(filepath.Join(s.dir, fmt.Sprintf("%s-%s.png", name, w.label)), png, 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
	run(s.t, s.b, "viewport", chromedp.EmulateViewport(1366, 900))
}
