package events

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aupguard/aupguard/internal/testsmtp"
	"github.com/aupguard/aupguard/verdict"
)

// emailConfig is a pipeline config with e-mail alerts to relay (plain
// SMTP: a loopback relay may be reached without TLS) and fast retries.
func emailConfig(t *testing.T, relay string) Config {
	t.Helper()
	cfg := testConfig(t)
	e := &cfg.Alerts.Email
	e.SMTP = relay
	e.From = "aupguard <aupguard@school.test>"
	e.To = []string{"dsl@school.test"}
	e.StartTLS = false
	e.Timeout = 10 * time.Second
	e.BackoffMin = 5 * time.Millisecond
	e.BackoffMax = 50 * time.Millisecond
	e.Location = time.UTC
	return cfg
}

// waitEmailed waits until the e-mail stage has read n events and sent
// every alert it decided to send.
func waitEmailed(t *testing.T, p *Pipeline, n uint64) Stats {
	t.Helper()
	var st Stats
	eventually(t, "the e-mail stage to process the events", func() bool {
		st = p.Stats()
		a := st.EmailAlerts
		return st.Sinks["alerts-email"].Processed == n && a.Sent == a.Considered-a.Suppressed
	})
	return st
}

// byEventID counts messages per X-Aupguard-Event-Id.
func byEventID(msgs []testsmtp.Message) map[string]int {
	out := map[string]int{}
	for _, m := range msgs {
		out[m.Header().Get("X-Aupguard-Event-Id")]++
	}
	return out
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// One alert, one message, over STARTTLS verified with ca_file and AUTH
// PLAIN, with a subject to triage from and a body that says what
// happened without the query string.
func TestEmailAlertSTARTTLSAndAuth(t *testing.T) {
	ca := testsmtp.NewCA(t)
	relay := testsmtp.Start(t, testsmtp.Options{TLS: ca.Server, Username: "alerts", Password: "s3cret pass"})
	cfg := emailConfig(t, relay.Addr())
	e := &cfg.Alerts.Email
	e.StartTLS = true
	e.CAFile = ca.File
	e.Username = "alerts"
	e.PasswordFile = writeFile(t, "smtp.pass", "s3cret pass\n")
	e.ConsoleURL = "https://console.school.test/"
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	e.Location = loc
	logger, logs := newLogger(t)
	p := start(t, cfg, logger)

	ev := testEvent("jsmith", "gambling", "high")
	ev.Groups = []string{"learners", "year9"}
	ev.Host = "www.casino.example"
	ev.URL = "https://www.casino.example/play/" + strings.Repeat("x", 100) + "?session=SECRET#frag"
	ev.Rule = "gambling <script>alert(1)</script>"
	ev.Time = time.Date(2026, 7, 1, 12, 3, 4, 0, time.UTC)
	id := emit(t, p, ev)
	waitEmailed(t, p, 1)

	msgs := relay.Messages()
	if len(msgs) != 1 {
		t.Fatalf("relay got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if !m.TLS || m.User != "alerts" {
		t.Errorf("session TLS=%v user=%q; want STARTTLS and AUTH as alerts", m.TLS, m.User)
	}
	if got, want := m.Subject(), "[aupguard] high · gambling · jsmith"; got != want {
		t.Errorf("subject %q, want %q", got, want)
	}
	if got, want := m.Header().Get("Message-Id"), "<aupguard.alert."+id+"@school.test>"; got != want {
		t.Errorf("Message-ID %q, want %q", got, want)
	}
	if !slices.Equal(m.To, []string{"dsl@school.test"}) || m.From != "aupguard@school.test" {
		t.Errorf("envelope from %q to %v", m.From, m.To)
	}
	text := m.Part("text/plain")
	for _, want := range []string{
		"jsmith", "learners, year9", "10.1.2.3", "gambling", "www.casino.example/play/xxx",
		"13:03:04 BST", // the policy time zone
		"Reference: " + id,
		"https://console.school.test/events/" + id,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text body lacks %q:\n%s", want, text)
		}
	}
	for _, bad := range []string{"SECRET", "session=", "frag", strings.Repeat("x", 61)} {
		if strings.Contains(m.Part("text/plain")+m.Part("text/html"), bad) {
			t.Errorf("body holds %q: no query string, no fragment, path cut at %d", bad, maxSitePath)
		}
	}
	html := m.Part("text/html")
	if html == "" || strings.Contains(html, "<script>") || !strings.Contains(html, "&lt;script&gt;") {
		t.Errorf("HTML part does not escape the rule:\n%s", html)
	}
	if strings.Contains(logs.String(), "s3cret") {
		t.Error("the relay password was logged")
	}
}

// Implicit TLS (tls: true, port 465 style).
func TestEmailImplicitTLS(t *testing.T) {
	ca := testsmtp.NewCA(t)
	relay := testsmtp.Start(t, testsmtp.Options{TLS: ca.Server, Implicit: true})
	cfg := emailConfig(t, relay.Addr())
	cfg.Alerts.Email.TLS = true
	cfg.Alerts.Email.CAFile = ca.File
	p := start(t, cfg, nil)
	emit(t, p, testEvent("jsmith", "gambling", "high"))
	waitEmailed(t, p, 1)
	if msgs := relay.Messages(); len(msgs) != 1 || !msgs[0].TLS {
		t.Fatalf("got %d messages (%+v); want one over TLS", len(msgs), msgs)
	}
}

// STARTTLS is required by default: a relay whose certificate the CA does
// not vouch for gets nothing.
func TestEmailRefusesUntrustedCertificate(t *testing.T) {
	ca := testsmtp.NewCA(t)
	relay := testsmtp.Start(t, testsmtp.Options{TLS: ca.Server})
	cfg := emailConfig(t, relay.Addr())
	cfg.Alerts.Email.StartTLS = true // no ca_file: the test CA is unknown
	p := start(t, cfg, nil)
	emit(t, p, testEvent("jsmith", "gambling", "high"))
	eventually(t, "failed attempts", func() bool { return p.Stats().Sinks["alerts-email"].Failures >= 2 })
	if n := len(relay.Messages()); n != 0 {
		t.Fatalf("relay got %d messages over an unverified TLS session", n)
	}
	if e := p.Stats().Sinks["alerts-email"].LastError; !strings.Contains(e, "certificate") {
		t.Errorf("last error %q does not name the certificate", e)
	}
}

// The relay is down (port closed) while alerts arrive, then comes back:
// every alert arrives exactly once, and a restart resends none.
func TestEmailRelayDownThenBack(t *testing.T) {
	addr := testsmtp.FreeAddr(t)
	cfg := emailConfig(t, addr)
	p := start(t, cfg, nil)
	var ids []string
	for _, u := range []string{"ann", "bob", "cat", "dan", "eve"} {
		ids = append(ids, emit(t, p, testEvent(u, "gambling", "high")))
	}
	eventually(t, "failed attempts while the relay is down", func() bool { return p.Stats().Sinks["alerts-email"].Failures >= 3 })

	relay := testsmtp.StartAt(t, addr, testsmtp.Options{})
	waitEmailed(t, p, 5)
	closeP(t, p)

	// A new process on the same spool: it resumes after the last message.
	p2 := start(t, cfg, nil)
	ids = append(ids, emit(t, p2, testEvent("fay", "gambling", "high")))
	waitEmailed(t, p2, 1)
	closeP(t, p2)

	got := byEventID(relay.Messages())
	if len(got) != len(ids) {
		t.Errorf("relay got %d distinct alerts, want %d", len(got), len(ids))
	}
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("alert %s arrived %d times, want exactly once", id, got[id])
		}
	}
}

// A 4xx at the end of DATA is temporary: the same alert is retried until
// accepted, and arrives once.
func TestEmailTemporaryFailureRetried(t *testing.T) {
	relay := testsmtp.Start(t, testsmtp.Options{})
	relay.FailNext(2)
	p := start(t, emailConfig(t, relay.Addr()), nil)
	id := emit(t, p, testEvent("jsmith", "gambling", "high"))
	st := waitEmailed(t, p, 1)
	if f := st.Sinks["alerts-email"].Failures; f != 2 {
		t.Errorf("failures %d, want the 2 temporary ones", f)
	}
	if r := st.Sinks["alerts-email"].Rejected; r != 0 {
		t.Errorf("rejected %d: a 451 is temporary", r)
	}
	if got := byEventID(relay.Messages()); len(got) != 1 || got[id] != 1 {
		t.Errorf("relay got %v, want %s once", got, id)
	}
}

// Routes pick recipients by severity and category; an alert matching
// none goes to the default to.
func TestEmailRouting(t *testing.T) {
	relay := testsmtp.Start(t, testsmtp.Options{})
	cfg := emailConfig(t, relay.Addr())
	cfg.Alerts.MinSeverity = verdict.SeverityMedium
	cfg.Alerts.Email.To = []string{"it@school.test"}
	cfg.Alerts.Email.Routes = []EmailRoute{
		{Severities: []verdict.Severity{verdict.SeverityCritical}, To: []string{"dsl@school.test"}},
		{Categories: []string{"selfharm"}, To: []string{"welfare@school.test", "dsl@school.test"}},
		{Severities: []verdict.Severity{verdict.SeverityMedium}, Categories: []string{"gambling"}, To: []string{"year-head@school.test"}},
	}
	p := start(t, cfg, nil)
	want := map[string][]string{
		emit(t, p, testEvent("u1", "weapons", "high")):      {"it@school.test"},
		emit(t, p, testEvent("u2", "gambling", "critical")): {"dsl@school.test"},
		emit(t, p, testEvent("u3", "selfharm", "high")):     {"welfare@school.test", "dsl@school.test"},
		emit(t, p, testEvent("u4", "selfharm", "critical")): {"dsl@school.test", "welfare@school.test"},
		emit(t, p, testEvent("u5", "gambling", "medium")):   {"year-head@school.test"},
		emit(t, p, testEvent("u6", "gambling", "high")):     {"it@school.test"},
	}
	waitEmailed(t, p, uint64(len(want)))
	msgs := relay.Messages()
	if len(msgs) != len(want) {
		t.Fatalf("relay got %d messages, want %d", len(msgs), len(want))
	}
	for _, m := range msgs {
		id := m.Header().Get("X-Aupguard-Event-Id")
		if !slices.Equal(m.To, want[id]) {
			t.Errorf("alert %s (%s) went to %v, want %v", id, m.Subject(), m.To, want[id])
		}
	}
}

// Alerts for one learner and category within the window send one
// message; the next one after it reports how many were held back.
func TestEmailDeduplication(t *testing.T) {
	relay := testsmtp.Start(t, testsmtp.Options{})
	clock := newFakeClock()
	p := startWithClock(t, emailConfig(t, relay.Addr()), clock)
	first := emit(t, p, testEvent("jsmith", "gambling", "high"))
	emit(t, p, testEvent("jsmith", "gambling", "high"))
	emit(t, p, testEvent("jsmith", "gambling", "high"))
	waitEmailed(t, p, 3)
	clock.Advance(11 * time.Minute)
	next := emit(t, p, testEvent("jsmith", "gambling", "high"))
	waitEmailed(t, p, 4)
	msgs := relay.Messages()
	if len(msgs) != 2 {
		t.Fatalf("relay got %d messages, want 2", len(msgs))
	}
	if got := msgs[0].Header().Get("X-Aupguard-Event-Id"); got != first {
		t.Errorf("first message is %s, want %s", got, first)
	}
	if got := msgs[1].Header().Get("X-Aupguard-Event-Id"); got != next {
		t.Errorf("second message is %s, want %s", got, next)
	}
	if text := msgs[1].Part("text/plain"); !strings.Contains(text, "2 more alert(s)") {
		t.Errorf("second message does not report the 2 held back:\n%s", text)
	}
}

// The password file is re-read on Reload (SIGHUP): a wrong password is
// retried, and the right one, once reloaded, delivers.
func TestEmailPasswordReload(t *testing.T) {
	ca := testsmtp.NewCA(t)
	relay := testsmtp.Start(t, testsmtp.Options{TLS: ca.Server, Username: "alerts", Password: "new-pass"})
	cfg := emailConfig(t, relay.Addr())
	e := &cfg.Alerts.Email
	e.StartTLS, e.CAFile, e.Username = true, ca.File, "alerts"
	e.PasswordFile = writeFile(t, "smtp.pass", "old-pass\n")
	logger, logs := newLogger(t)
	p := start(t, cfg, logger)
	id := emit(t, p, testEvent("jsmith", "gambling", "high"))
	eventually(t, "refused logins", func() bool { return p.Stats().Sinks["alerts-email"].Failures >= 2 })
	if err := os.WriteFile(e.PasswordFile, []byte("new-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	waitEmailed(t, p, 1)
	if got := byEventID(relay.Messages()); got[id] != 1 {
		t.Errorf("relay got %v after the reload, want %s once", got, id)
	}
	if s := logs.String(); strings.Contains(s, "old-pass") || strings.Contains(s, "new-pass") {
		t.Error("a password was logged")
	}
}

func TestEmailConfigValidate(t *testing.T) {
	base := func() EmailConfig {
		c := defaultEmail()
		c.SMTP = "mail.school.test:587"
		c.From = "aupguard@school.test"
		c.To = []string{"dsl@school.test"}
		return c
	}
	cases := []struct {
		name string
		edit func(*EmailConfig)
		want string // "" for valid
	}{
		{"starttls default", func(*EmailConfig) {}, ""},
		{"implicit tls", func(c *EmailConfig) { c.StartTLS, c.TLS = false, true }, ""},
		{"plain to a remote relay", func(c *EmailConfig) { c.StartTLS = false }, "starttls: false (and tls false) would send"},
		{"plain to a trusted relay", func(c *EmailConfig) { c.StartTLS, c.TrustedRelays = false, []string{"MAIL.school.test"} }, ""},
		{"plain to loopback", func(c *EmailConfig) { c.StartTLS, c.SMTP = false, "127.0.0.1:25" }, ""},
		{"plain to ::1", func(c *EmailConfig) { c.StartTLS, c.SMTP = false, "[::1]:25" }, ""},
		{"plain to localhost", func(c *EmailConfig) { c.StartTLS, c.SMTP = false, "localhost:25" }, ""},
		{"no port", func(c *EmailConfig) { c.SMTP = "mail.school.test" }, "smtp:"},
		{"bad from", func(c *EmailConfig) { c.From = "nobody" }, "from:"},
		{"no to", func(c *EmailConfig) { c.To = nil }, "to: must name"},
		{"bad to", func(c *EmailConfig) { c.To = []string{"x"} }, "to[0]:"},
		{"username without password", func(c *EmailConfig) { c.Username = "u" }, "password_file:"},
		{"missing password file", func(c *EmailConfig) { c.Username, c.PasswordFile = "u", "/nonexistent/pass" }, "password_file:"},
		{"route matching all", func(c *EmailConfig) { c.Routes = []EmailRoute{{To: []string{"a@b.test"}}} }, "routes[0]: matches every alert"},
		{"route bad severity", func(c *EmailConfig) {
			c.Routes = []EmailRoute{{Severities: []verdict.Severity{"urgent"}, To: []string{"a@b.test"}}}
		}, "routes[0].severities[0]:"},
		{"digest bad time", func(c *EmailConfig) { c.Digest.At = "7.30" }, "digest.at:"},
		{"console url", func(c *EmailConfig) { c.ConsoleURL = "console" }, "console_url:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// A relay that accepts a message and then drops the connection (RSET and
// QUIT fail) has the message: it is counted as sent, not sent again.
func TestEmailAcceptedThenConnectionLostNotResent(t *testing.T) {
	relay := testsmtp.Start(t, testsmtp.Options{})
	relay.DropAfterAccept(1)
	logger, logs := newLogger(t)
	p := start(t, emailConfig(t, relay.Addr()), logger)
	first := emit(t, p, testEvent("ann", "gambling", "high"))
	second := emit(t, p, testEvent("bob", "gambling", "high"))
	waitEmailed(t, p, 2)
	got := byEventID(relay.Messages())
	if got[first] != 1 || got[second] != 1 || len(got) != 2 {
		t.Errorf("relay got %v; want %s and %s once each", got, first, second)
	}
	if !strings.Contains(logs.String(), "accepted the e-mail but the connection failed") {
		t.Error("the lost connection after acceptance was not logged")
	}
}

// starttls (the default) is mandatory: a relay that does not offer it
// gets nothing, even on loopback.
func TestEmailSTARTTLSRequired(t *testing.T) {
	relay := testsmtp.Start(t, testsmtp.Options{}) // no STARTTLS
	cfg := emailConfig(t, relay.Addr())
	cfg.Alerts.Email.StartTLS = true
	p := start(t, cfg, nil)
	emit(t, p, testEvent("jsmith", "gambling", "high"))
	eventually(t, "failed attempts", func() bool { return p.Stats().Sinks["alerts-email"].Failures >= 2 })
	if n := len(relay.Messages()); n != 0 {
		t.Fatalf("relay got %d messages in clear with starttls: true", n)
	}
}

// With the webhook and e-mail both configured and one shared Deduper,
// each alert goes to both: one stage admitting it does not suppress it
// for the other.
func TestEmailAndWebhookShareDeduper(t *testing.T) {
	relay := testsmtp.Start(t, testsmtp.Options{})
	rcv := newReceiver(t, alertSecret)
	cfg := emailConfig(t, relay.Addr())
	cfg.Alerts.Webhook.URL = rcv.url()
	cfg.Alerts.Webhook.Secret = alertSecret
	p := startWithClock(t, cfg, newFakeClock())
	id := emit(t, p, testEvent("jsmith", "gambling", "high"))
	waitEmailed(t, p, 1)
	waitProcessed(t, p, 1)
	if got := byEventID(relay.Messages()); got[id] != 1 {
		t.Errorf("e-mails %v, want %s once", got, id)
	}
	if n := rcv.unique(); n != 1 {
		t.Errorf("webhook got %d alerts, want 1", n)
	}
}

func TestEmailSite(t *testing.T) {
	for _, c := range []struct {
		ev   Event
		want string
	}{
		{Event{URL: "https://www.casino.example/play?seat=4#x"}, "www.casino.example/play"},
		{Event{URL: "https://www.casino.example/"}, "www.casino.example"},
		{Event{URL: "https://www.casino.example:8443/a/b"}, "www.casino.example:8443/a/b"},
		{Event{URL: "https://h.example/" + strings.Repeat("é", 70)}, "h.example/" + strings.Repeat("é", 59) + "…"},
		{Event{Host: "dns.example", QName: "dns.example."}, "dns.example"},
		{Event{QName: "only.example."}, "only.example"},
	} {
		if got := site(&c.ev); got != c.want {
			t.Errorf("site(%+v) = %q, want %q", c.ev, got, c.want)
		}
	}
}
