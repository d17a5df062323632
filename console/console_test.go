package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/verdict"
)

func TestAnonymousIsRefused(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	for _, path := range []string{"/", "/alerts", "/events/X", "/learners/jsmith", "/reviews", "/find?ref=X", "/dashboard", "/audit", "/exceptions"} {
		p := b.get(path)
		if p.status != http.StatusSeeOther || !strings.HasPrefix(p.loc, "/login?next=") {
			t.Errorf("GET %s without a session: %d → %q", path, p.status, p.loc)
		}
	}
	for _, path := range []string{"/api/alerts", "/api/summary"} {
		if p := b.get(path); p.status != http.StatusUnauthorized {
			t.Errorf("GET %s without a session: %d, want 401", path, p.status)
		}
	}
	if p := b.post("/events/X/ack", url.Values{"note": {"x"}}); p.status != http.StatusSeeOther || !strings.HasPrefix(p.loc, "/login") {
		t.Errorf("POST without a session: %d %q", p.status, p.loc)
	}
	// A forged cookie is no session.
	u, _ := url.Parse(h.srv.URL)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "aupguard_session", Value: "forged"}})
	if p := b.get("/alerts"); p.status != http.StatusSeeOther {
		t.Errorf("forged cookie: %d", p.status)
	}
}

func TestLoginSessionAndHeaders(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	// The login page itself carries the headers.
	p := b.get("/login")
	if p.status != 200 || !strings.Contains(p.body, `name="username"`) || !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("login page: %d", p.status)
	}
	if p := b.post("/login", url.Values{"username": {"dsl"}, "password": {"wrong password here"}}); p.status != http.StatusUnauthorized || !strings.Contains(p.body, "wrong password") {
		t.Fatalf("wrong password: %d", p.status)
	}
	resp, err := b.c.PostForm(h.srv.URL+"/login", url.Values{"username": {"dsl"}, "password": {password}, "next": {"/reviews"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/reviews" {
		t.Fatalf("login: %d → %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	ck := resp.Cookies()
	if len(ck) != 1 || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteLaxMode || ck[0].Path != "/" || ck[0].Secure {
		t.Fatalf("session cookie: %+v", ck)
	}
	p = b.get("/alerts")
	if p.status != 200 {
		t.Fatalf("/alerts after login: %d", p.status)
	}
	want := map[string]string{
		"Content-Security-Policy": "default-src 'self'",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
	}
	for k, v := range want {
		if !strings.Contains(p.header.Get(k), v) {
			t.Errorf("%s = %q, want %q", k, p.header.Get(k), v)
		}
	}
	if strings.Contains(p.header.Get("Content-Security-Policy"), "unsafe-inline") {
		t.Error("CSP allows inline code")
	}
	// An off-site redirect target is not followed.
	b2 := h.browser()
	if p := b2.post("/login", url.Values{"username": {"dsl"}, "password": {password}, "next": {"//evil.example/x"}}); p.loc != "/alerts" {
		t.Errorf("open redirect: %q", p.loc)
	}
	// Logout ends the session on the server, not only in the browser.
	cookie := b.c.Jar.Cookies(mustURL(h.srv.URL))
	b.get("/alerts")
	if p := b.postForm("/logout", nil); p.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", p.status)
	}
	b3 := h.browser()
	b3.c.Jar.SetCookies(mustURL(h.srv.URL), cookie)
	if p := b3.get("/alerts"); p.status != http.StatusSeeOther {
		t.Fatalf("the old cookie still works after logout: %d", p.status)
	}
}

func mustURL(s string) *url.URL {
	u, _ := url.Parse(s)
	return u
}

func TestCSRFRefused(t *testing.T) {
	h := newHarness(t)
	now := h.clock.Now()
	h.insert(block("01AAAAAAAAAAAAAAAAAAAAAAAA", "jsmith", "casino.example", "gambling", now))
	b := h.browser()
	b.login("dsl")
	b.get("/events/01AAAAAAAAAAAAAAAAAAAAAAAA")
	if b.csrf == "" {
		t.Fatal("no CSRF token in the page")
	}
	for name, form := range map[string]url.Values{
		"none":  {"note": {"x"}},
		"wrong": {"note": {"x"}, "csrf": {"not-the-token"}},
	} {
		if p := b.post("/events/01AAAAAAAAAAAAAAAAAAAAAAAA/ack", form); p.status != http.StatusForbidden {
			t.Errorf("%s token: %d, want 403", name, p.status)
		}
	}
	// Another session's token is no good either.
	other := h.browser()
	other.login("dsl")
	other.get("/alerts")
	if p := b.post("/events/01AAAAAAAAAAAAAAAAAAAAAAAA/ack", url.Values{"csrf": {other.csrf}}); p.status != http.StatusForbidden {
		t.Errorf("another session's token: %d", p.status)
	}
	// A cross-site post is refused even with the right token.
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/events/01AAAAAAAAAAAAAAAAAAAAAAAA/ack", strings.NewReader(url.Values{"csrf": {b.csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	if p := b.do(req); p.status != http.StatusForbidden {
		t.Errorf("cross-origin post: %d", p.status)
	}
	if ev, _ := h.c.store.Event(context.Background(), "01AAAAAAAAAAAAAAAAAAAAAAAA"); ev.Status != StatusNew {
		t.Fatalf("a refused post changed the alert: %s", ev.Status)
	}
	b.get("/events/01AAAAAAAAAAAAAAAAAAAAAAAA")
	if p := b.postForm("/events/01AAAAAAAAAAAAAAAAAAAAAAAA/ack", url.Values{"note": {"spoke to learner"}}); p.status != http.StatusSeeOther {
		t.Fatalf("ack with the token: %d %s", p.status, p.body)
	}
	if ev, _ := h.c.store.Event(context.Background(), "01AAAAAAAAAAAAAAAAAAAAAAAA"); ev.Status != StatusAcknowledged {
		t.Fatalf("status %s", ev.Status)
	}
}

func TestLoginRateLimit(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	// Per account: loginPerUserBurst tries, then refused even with the
	// right password.
	for i := 0; i < loginPerUserBurst; i++ {
		if p := b.post("/login", url.Values{"username": {"dsl"}, "password": {"guess number " + string(rune('a'+i))}}); p.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, p.status)
		}
	}
	p := b.post("/login", url.Values{"username": {"dsl"}, "password": {password}})
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
		t.Fatalf("after %d failures: %d", loginPerUserBurst, p.status)
	}
	// Another account from the same address still works (the address's
	// bucket is larger)...
	b.login("itadmin")
	// ...until the address has used its own bucket on made-up names.
	for i := 0; i < loginPerIPBurst; i++ {
		b.post("/login", url.Values{"username": {"nobody" + string(rune('a'+i))}, "password": {"x"}})
	}
	if p := b.post("/login", url.Values{"username": {"governor"}, "password": {password}}); p.status != http.StatusTooManyRequests {
		t.Fatalf("per-address limit: %d", p.status)
	}
	// Time refills the buckets.
	h.clock.Add(10 * time.Minute)
	h.browser().login("dsl")
	log, _ := h.c.store.AuditLog(context.Background(), 100)
	var failed, refused int
	for _, e := range log {
		switch e.Action {
		case "login failed":
			failed++
		case "login refused":
			refused++
		}
	}
	if failed < loginPerUserBurst || refused < 2 {
		t.Fatalf("audit: %d failed, %d refused", failed, refused)
	}
}

func TestRoles(t *testing.T) {
	h := newHarness(t)
	now := h.clock.Now()
	h.insert(block("01BBBBBBBBBBBBBBBBBBBBBBBB", "jsmith", "casino.example", "gambling", now))
	cases := map[string]map[string]int{
		"dsl":      {"/alerts": 200, "/events/01BBBBBBBBBBBBBBBBBBBBBBBB": 200, "/learners/jsmith": 200, "/reviews": 200, "/dashboard": 200, "/exceptions": 200, "/audit": 403, "/users": 403, "/policy": 403, "/api/alerts": 200},
		"itadmin":  {"/alerts": 403, "/events/01BBBBBBBBBBBBBBBBBBBBBBBB": 403, "/learners/jsmith": 403, "/dashboard": 200, "/exceptions": 200, "/audit": 200, "/users": 200, "/policy": 200, "/api/alerts": 403},
		"governor": {"/alerts": 403, "/events/01BBBBBBBBBBBBBBBBBBBBBBBB": 403, "/learners/jsmith": 403, "/reviews": 403, "/dashboard": 200, "/exceptions": 403, "/audit": 403, "/api/summary": 200},
	}
	for user, paths := range cases {
		b := h.browser()
		b.login(user)
		for path, want := range paths {
			p := b.get(path)
			if p.status != want {
				t.Errorf("%s GET %s: %d, want %d", user, path, p.status, want)
			}
			if want == 403 && strings.Contains(p.body, "jsmith") {
				t.Errorf("%s GET %s: a refused page names the learner", user, path)
			}
		}
		// Counts without identities.
		if p := b.get("/dashboard"); strings.Contains(p.body, "jsmith") || strings.Contains(p.body, "casino.example") || !strings.Contains(p.body, "gambling") {
			t.Errorf("%s: dashboard must count categories and name no learner or host", user)
		}
	}
	// A new password (`aupguard users passwd`) ends the old sessions.
	b := h.browser()
	b.login("dsl")
	if err := h.c.opts.Accounts.(interface{ SetPassword(string, string) error }).SetPassword("dsl", "another long passphrase"); err != nil {
		t.Fatal(err)
	}
	if p := b.get("/alerts"); p.status != http.StatusSeeOther {
		t.Fatalf("session survived a password change: %d", p.status)
	}
	// An account removed with `aupguard users remove` loses its session.
	b = h.browser()
	b.login("governor")
	if err := h.c.opts.Accounts.(interface{ Remove(string) error }).Remove("governor"); err != nil {
		t.Fatal(err)
	}
	if p := b.get("/dashboard"); p.status != http.StatusSeeOther {
		t.Fatalf("removed account still signed in: %d", p.status)
	}
}

// Event fields come from learners' requests: a URL, host, user name or
// reason carrying markup must be shown as text.
func TestEverythingEscaped(t *testing.T) {
	h := newHarness(t)
	now := h.clock.Now()
	ev := block("01CCCCCCCCCCCCCCCCCCCCCCCC", `<b>jsmith</b>`, `x.example"><script>alert(1)</script>`, "gambling", now)
	ev.URL = `http://casino.example/<script>alert("url")</script>?q=<img src=x onerror=alert(2)>`
	ev.Reason = `</td><script>alert(3)</script>`
	ev.Groups = []string{`<i>learners</i>`}
	h.insert(ev, review("01CCCCCCCCCCCCCCCCCCCCCCCD", ev.ID, ev, now.Add(time.Minute)))
	b := h.browser()
	b.login("dsl")
	for _, path := range []string{"/alerts", "/events/" + ev.ID, "/events/01CCCCCCCCCCCCCCCCCCCCCCCD", "/learners/" + url.PathEscape(ev.User), "/reviews", "/alerts?group=" + url.QueryEscape("<i>learners</i>")} {
		p := b.get(path)
		if p.status != 200 {
			t.Fatalf("GET %s: %d", path, p.status)
		}
		for _, raw := range []string{"<script>", "<b>jsmith", "<img", "<i>learners"} {
			if strings.Contains(p.body, raw) {
				t.Errorf("GET %s: raw %q in the page", path, raw)
			}
		}
		if !strings.Contains(p.body, "&lt;") {
			t.Errorf("GET %s: the escaped fields are missing", path)
		}
	}
}

func TestAlertsGroupAndAct(t *testing.T) {
	h := newHarness(t)
	t0 := h.clock.Now().Add(-time.Hour)
	a := block("01DDDDDDDDDDDDDDDDDDDDDDD1", "jsmith", "casino.example", "gambling", t0)
	b2 := block("01DDDDDDDDDDDDDDDDDDDDDDD2", "jsmith", "casino.example", "gambling", t0.Add(time.Minute))
	b3 := block("01DDDDDDDDDDDDDDDDDDDDDDD3", "jsmith", "casino.example", "gambling", t0.Add(2*time.Minute))
	other := block("01DDDDDDDDDDDDDDDDDDDDDDD4", "kjones", "casino.example", "gambling", t0)
	h.insert(a, b2)
	// The same batch again, as after a crash before the cursor was saved,
	// then a later one.
	h.insert(a, b2)
	h.insert(b3, other)
	rows, err := h.c.store.Alerts(context.Background(), AlertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d alerts, want 2 (jsmith's three grouped, kjones's one): %+v", len(rows), rows)
	}
	for _, r := range rows {
		if r.User == "jsmith" && (r.ID != a.ID || r.Count != 3) {
			t.Fatalf("jsmith's alert: %s count %d, want %s count 3", r.ID, r.Count, a.ID)
		}
	}
	b := h.browser()
	b.login("dsl")
	if p := b.get("/alerts"); !strings.Contains(p.body, a.ID) || strings.Contains(p.body, b2.ID) {
		t.Fatal("/alerts should list the group by its first event only")
	}
	b.get("/events/" + a.ID)
	b.postForm("/events/"+a.ID+"/ack", url.Values{"note": {"Spoke to the learner at 10:15."}})
	// Acknowledged: a new attempt starts a new alert.
	b4 := block("01DDDDDDDDDDDDDDDDDDDDDDD5", "jsmith", "casino.example", "gambling", t0.Add(3*time.Minute))
	h.insert(b4)
	if ev, _ := h.c.store.Event(context.Background(), b4.ID); ev.Parent != "" {
		t.Fatalf("an attempt after acknowledgement joined the old alert %s", ev.Parent)
	}
	p := b.get("/events/" + a.ID)
	if !strings.Contains(p.body, "Spoke to the learner at 10:15.") || !strings.Contains(p.body, "acknowledged") {
		t.Fatal("the acknowledgement note is not shown")
	}
	// Acknowledging twice is a conflict, closing works.
	if p := b.postForm("/events/"+a.ID+"/ack", nil); p.status != http.StatusConflict {
		t.Fatalf("second ack: %d", p.status)
	}
	b.get("/events/" + a.ID)
	if p := b.postForm("/events/"+a.ID+"/close", url.Values{"note": {"No further action."}}); p.status != http.StatusSeeOther {
		t.Fatalf("close: %d", p.status)
	}
	if p := b.get("/alerts"); strings.Contains(p.body, a.ID) {
		t.Fatal("a closed alert is still listed as open")
	}
	if p := b.get("/alerts?status=closed"); !strings.Contains(p.body, a.ID) {
		t.Fatal("a closed alert is missing from the closed list")
	}
	// Filters.
	if p := b.get("/alerts?category=drugs"); strings.Contains(p.body, other.ID) {
		t.Fatal("category filter")
	}
	if p := b.get("/alerts?severity=high"); strings.Contains(p.body, other.ID) {
		t.Fatal("severity filter (medium alert shown under high)")
	}
	if p := b.get("/alerts?group=staff"); strings.Contains(p.body, other.ID) {
		t.Fatal("group filter")
	}
	if p := b.get("/alerts?group=learners"); !strings.Contains(p.body, other.ID) {
		t.Fatal("group filter dropped a match")
	}
	tomorrow := h.clock.Now().AddDate(0, 0, 1).Format("2006-01-02")
	if p := b.get("/alerts?from=" + tomorrow); strings.Contains(p.body, other.ID) {
		t.Fatal("date filter")
	}
	// Find by reference, typed loosely.
	if p := b.get("/find?ref=" + url.QueryEscape(" "+strings.ToLower(other.ID)+" ")); p.status != http.StatusSeeOther || p.loc != "/events/"+other.ID {
		t.Fatalf("find: %d %q", p.status, p.loc)
	}
	if p := b.get("/find?ref=01ZZZZ"); p.status != http.StatusNotFound {
		t.Fatalf("find unknown: %d", p.status)
	}
	// The learner's timeline counts per category.
	p = b.get("/learners/jsmith")
	if !strings.Contains(p.body, b4.ID) || !strings.Contains(p.body, `<span class="tally-n">4</span>`) {
		t.Fatalf("timeline: %s", p.body)
	}
}

func TestReviewApprovalBecomesException(t *testing.T) {
	h := newHarness(t)
	now := h.clock.Now()
	blk := block("01EEEEEEEEEEEEEEEEEEEEEEE1", "jsmith", "casino.example", "gambling", now.Add(-time.Minute))
	rv := review("01EEEEEEEEEEEEEEEEEEEEEEE2", blk.ID, blk, now)
	h.insert(blk, rv)
	decide := func(user string) verdict.Decision {
		d, err := h.engine.Current().Evaluate(context.Background(), &verdict.Input{
			Source: verdict.SourceProxy, Phase: verdict.PhaseRequest,
			Client:  verdict.Client{User: user, Groups: []string{"learners"}},
			Request: verdict.Request{Method: "GET", Host: "casino.example", Path: "/"}, Categories: map[string][]string{"gambling": {"t"}},
			Time: h.clock.Now(),
		})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := decide("jsmith"); d.Action != verdict.ActionBlock {
		t.Fatalf("before: %+v", d)
	}
	b := h.browser()
	b.login("dsl")
	if p := b.get("/reviews"); !strings.Contains(p.body, rv.ID) {
		t.Fatal("the review request is not listed")
	}
	p := b.get("/events/" + rv.ID)
	if !strings.Contains(p.body, `value="host"`) || !strings.Contains(p.body, blk.ID) {
		t.Fatal("the review page lacks the approval form or the disputed block")
	}
	// A made-up group is not a choice.
	if p := b.postForm("/reviews/"+rv.ID+"/approve", url.Values{"scope": {"host"}, "who": {"group:staff"}, "expires": {now.AddDate(0, 0, 7).Format("2006-01-02")}}); p.status != http.StatusBadRequest {
		t.Fatalf("approve for a group the learner is not in: %d", p.status)
	}
	b.get("/events/" + rv.ID)
	until := now.AddDate(0, 0, 7).Format("2006-01-02")
	p = b.postForm("/reviews/"+rv.ID+"/approve", url.Values{"scope": {"host"}, "who": {"user"}, "expires": {until}, "note": {"Research for a gambling-harms assignment."}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("approve: %d %s", p.status, p.body)
	}
	list, err := h.exc.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("exceptions: %+v %v", list, err)
	}
	ex := list[0]
	if ex.User != "jsmith" || ex.Host != "casino.example" || ex.Expires != until || ex.ApprovedBy != "dsl" || ex.Ref != rv.ID {
		t.Fatalf("exception: %+v", ex)
	}
	if d := decide("jsmith"); d.Action != verdict.ActionAllow || d.Rule != "exception:"+ex.ID {
		t.Fatalf("after approval, jsmith: %+v", d)
	}
	if d := decide("kjones"); d.Action != verdict.ActionBlock {
		t.Fatalf("after approval, another learner: %+v", d)
	}
	if st, _ := h.c.store.Event(context.Background(), rv.ID); st.Status != StatusApproved {
		t.Fatalf("review status %s", st.Status)
	}
	if p := b.postForm("/reviews/"+rv.ID+"/approve", url.Values{"scope": {"host"}, "who": {"user"}, "expires": {until}}); p.status != http.StatusConflict {
		t.Fatalf("approving twice: %d", p.status)
	}
	log, _ := h.c.store.AuditLog(context.Background(), 50)
	found := false
	for _, e := range log {
		if e.Action == "review approved" && e.Target == rv.ID && strings.Contains(e.Detail, ex.ID) && e.Staff == "dsl" {
			found = true
		}
	}
	if !found {
		t.Fatalf("approval not in the audit log: %+v", log)
	}
	// Revoking takes the exception out of force.
	b.get("/exceptions")
	if p := b.postForm("/exceptions/"+ex.ID+"/revoke", nil); p.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d", p.status)
	}
	if d := decide("jsmith"); d.Action != verdict.ActionBlock {
		t.Fatalf("after revoking: %+v", d)
	}
}

func TestReviewDecline(t *testing.T) {
	h := newHarness(t)
	now := h.clock.Now()
	blk := block("01FFFFFFFFFFFFFFFFFFFFFFF1", "jsmith", "casino.example", "gambling", now)
	rv := review("01FFFFFFFFFFFFFFFFFFFFFFF2", blk.ID, blk, now)
	h.insert(blk, rv)
	b := h.browser()
	b.login("dsl")
	b.get("/events/" + rv.ID)
	if p := b.postForm("/reviews/"+rv.ID+"/decline", url.Values{"reply": {"  "}}); p.status != http.StatusBadRequest {
		t.Fatalf("decline without a reply: %d", p.status)
	}
	b.get("/events/" + rv.ID)
	if p := b.postForm("/reviews/"+rv.ID+"/decline", url.Values{"reply": {"Gambling sites stay blocked; use the library's resources."}}); p.status != http.StatusSeeOther {
		t.Fatalf("decline: %d", p.status)
	}
	if p := b.get("/events/" + rv.ID); !strings.Contains(p.body, "use the library") || !strings.Contains(p.body, "declined") {
		t.Fatal("the reply is not recorded on the request")
	}
	if list, _ := h.exc.List(); len(list) != 0 {
		t.Fatalf("a decline made an exception: %+v", list)
	}
}

func TestSessionIdleExpiry(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	b.login("dsl")
	h.clock.Add(DefaultConfig().SessionIdle - time.Minute)
	if p := b.get("/alerts"); p.status != 200 {
		t.Fatalf("within the idle time: %d", p.status)
	}
	h.clock.Add(DefaultConfig().SessionIdle + time.Second)
	if p := b.get("/alerts"); p.status != http.StatusSeeOther {
		t.Fatalf("after the idle time: %d", p.status)
	}
}

func TestAuditLogIsAppendOnly(t *testing.T) {
	h := newHarness(t)
	h.browser().login("dsl")
	if _, err := h.c.store.db.Exec(`UPDATE audit SET staff = 'someone else'`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("update: %v", err)
	}
	if _, err := h.c.store.db.Exec(`DELETE FROM audit`); err == nil {
		t.Fatal("delete allowed")
	}
	b := h.browser()
	b.login("itadmin")
	if p := b.get("/audit"); !strings.Contains(p.body, "login") || !strings.Contains(p.body, "dsl") {
		t.Fatal("the audit page does not show the logins")
	}
}

func TestRetentionPurge(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Retention = 30 * 24 * time.Hour })
	now := h.clock.Now()
	old := block("01GGGGGGGGGGGGGGGGGGGGGGG1", "jsmith", "casino.example", "gambling", now.Add(-31*24*time.Hour))
	recent := block("01GGGGGGGGGGGGGGGGGGGGGGG2", "jsmith", "casino.example", "gambling", now.Add(-29*24*time.Hour))
	h.insert(old, recent)
	b := h.browser()
	b.login("dsl")
	b.get("/events/" + old.ID)
	b.postForm("/events/"+old.ID+"/ack", url.Values{"note": {"x"}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.c.RunRetention(ctx, time.Hour); close(done) }()
	waitFor(t, "the purge", func() bool {
		_, err := h.c.store.Event(context.Background(), old.ID)
		return err == ErrNotFound
	})
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("RunRetention did not stop")
	}
	if _, err := h.c.store.Event(context.Background(), recent.ID); err != nil {
		t.Fatalf("a recent event was purged: %v", err)
	}
	if acts, _ := h.c.store.Actions(context.Background(), old.ID); len(acts) != 0 {
		t.Fatal("actions on a purged event remain")
	}
	log, _ := h.c.store.AuditLog(context.Background(), 10)
	if len(log) == 0 || log[0].Action != "retention purge" {
		t.Fatalf("the purge is not in the audit log: %+v", log)
	}
}

// The console is fed by the real event pipeline through its own cursor,
// and keeps everything across a restart of both.
func TestPipelineFeedsConsoleAcrossRestart(t *testing.T) {
	h := newHarness(t)
	spoolDir := t.TempDir()
	start := func() *events.Pipeline {
		cfg := events.DefaultConfig()
		cfg.DataDir = spoolDir
		cfg.Webhook.URL = ""
		cfg.Alerts.Webhook.URL = ""
		p, err := events.New(cfg, "test", quiet())
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AddSink(h.c.Sink()); err != nil {
			t.Fatal(err)
		}
		if err := p.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return p
	}
	count := func() int {
		var n int
		if err := h.c.store.db.QueryRow(`SELECT COUNT(*) FROM events`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	p := start()
	now := time.Now().UTC()
	for i := 0; i < 5; i++ {
		if err := p.Emit(context.Background(), block(events.NewID(), "jsmith", "casino.example", "gambling", now)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "5 events in the console", func() bool { return count() == 5 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Restart the console's store too (same file).
	if err := h.c.store.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(h.dir + "/console/console.db")
	if err != nil {
		t.Fatal(err)
	}
	h.c.store = st
	if n := count(); n != 5 {
		t.Fatalf("after restart: %d events", n)
	}
	p = start()
	defer func() { _ = p.Close(context.Background()) }()
	if err := p.Emit(context.Background(), block(events.NewID(), "kjones", "casino.example", "gambling", now)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the sixth event", func() bool { return count() == 6 })
	rows, _ := h.c.store.Alerts(context.Background(), AlertFilter{})
	for _, r := range rows {
		if r.User == "jsmith" && r.Count != 5 {
			t.Fatalf("jsmith's alert counts %d (a replay doubled it?)", r.Count)
		}
	}
}

func TestAPISummary(t *testing.T) {
	h := newHarness(t)
	h.insert(block("01HHHHHHHHHHHHHHHHHHHHHHH1", "jsmith", "casino.example", "gambling", h.clock.Now()))
	b := h.browser()
	b.login("governor")
	p := b.get("/api/summary")
	var m map[string]int
	if err := json.Unmarshal([]byte(p.body), &m); err != nil || m["open_alerts"] != 1 {
		t.Fatalf("summary: %s %v", p.body, err)
	}
}

func TestMain(m *testing.M) { os.Exit(m.Run()) }

// What browsers send with a form under Referrer-Policy: no-referrer, and
// what they send from another site.
func TestOriginChecks(t *testing.T) {
	h := newHarness(t)
	login := func(hdr map[string]string) int {
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/login", strings.NewReader(url.Values{"username": {"dsl"}, "password": {password}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		return h.browser().do(req).status
	}
	for name, c := range map[string]struct {
		hdr  map[string]string
		want int
	}{
		"same-origin null origin": {map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "null"}, http.StatusSeeOther},
		"same origin":             {map[string]string{"Origin": h.srv.URL}, http.StatusSeeOther},
		"no headers (curl)":       {nil, http.StatusSeeOther},
		"cross-site":              {map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "null"}, http.StatusForbidden},
		"same-site sibling":       {map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		"other origin":            {map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
	} {
		if got := login(c.hdr); got != c.want {
			t.Errorf("%s: %d, want %d", name, got, c.want)
		}
	}
}
