package events

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	mail "github.com/wneessen/go-mail"

	"github.com/aupguard/aupguard/verdict"
)

// Email is a Sink that sends each alert as one e-mail through an SMTP
// relay (github.com/wneessen/go-mail). It is fed one alert per Deliver
// call, so the stage saves its cursor after every message.
//
// SMTP has no idempotency, so "never twice" is made as narrow as it can
// be, not absolute:
//   - the cursor is saved (fsynced) after each message the relay accepted;
//   - a message the relay accepted is reported delivered even if the
//     connection fails afterwards (RSET or QUIT), so it is not resent;
//   - every copy of one alert has the same Message-ID
//     (<aupguard.alert.EVENTID@from-domain>), so a mail store or client
//     that de-duplicates by Message-ID shows it once.
//
// What can still duplicate: the relay took the message (its 250 after the
// final dot) but the answer never reached us (the connection broke at that
// instant, or Timeout ran out), or the process died between that 250 and
// the cursor's fsync. The alert is then sent again on the next attempt,
// with the same Message-ID.
type Email struct {
	name     string
	cfg      EmailConfig
	host     string
	port     int
	domain   string // for Message-IDs
	loc      *time.Location
	tlsConf  *tls.Config
	password atomic.Pointer[string]
	policy   DeliveryPolicy
	log      *slog.Logger
}

// NewEmail builds the e-mail alert sink from a validated, enabled config.
func NewEmail(name string, cfg EmailConfig, logger *slog.Logger) (*Email, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("email %s: %w", name, err)
	}
	if !cfg.Enabled() {
		return nil, fmt.Errorf("email %s: no smtp relay", name)
	}
	if logger == nil {
		logger = slog.Default()
	}
	host, portStr, _ := net.SplitHostPort(cfg.SMTP)
	port, _ := strconv.Atoi(portStr)
	domain := "aupguard.invalid"
	if a, err := netmail.ParseAddress(cfg.From); err == nil {
		if _, d, ok := strings.Cut(a.Address, "@"); ok && d != "" {
			domain = d
		}
	}
	loc := cfg.Location
	if loc == nil {
		loc = time.Local
	}
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pool, err := loadCAFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("email %s: %w", name, err)
		}
		tc.RootCAs = pool
	}
	e := &Email{
		name: name, cfg: cfg, host: host, port: port, domain: domain, loc: loc, tlsConf: tc,
		policy: DeliveryPolicy{BatchSize: 1, BackoffMin: cfg.BackoffMin, BackoffMax: cfg.BackoffMax},
		log:    logger,
	}
	if err := e.Reload(); err != nil {
		return nil, err
	}
	return e, nil
}

// Name returns the sink's name (its cursor and metric label).
func (e *Email) Name() string { return e.name }

// Delivery is one alert per call, so the cursor moves after each message.
func (e *Email) Delivery() DeliveryPolicy { return e.policy }

// Reload re-reads the relay password file (SIGHUP). On error the previous
// password stays in use.
func (e *Email) Reload() error {
	if e.cfg.PasswordFile == "" {
		return nil
	}
	b, err := readSecretFile(e.cfg.PasswordFile)
	if err != nil {
		return fmt.Errorf("email %s: password_file: %w", e.name, err)
	}
	s := string(b)
	e.password.Store(&s)
	return nil
}

// Deliver sends one message per alert in the batch (the batch is one
// alert: see Delivery).
func (e *Email) Deliver(ctx context.Context, batch []Event) error {
	for i := range batch {
		ev := &batch[i]
		m, err := e.alertMessage(ev)
		if err != nil {
			return fmt.Errorf("email %s: building alert %s: %w", e.name, ev.ID, err)
		}
		if err := e.send(ctx, m); err != nil {
			return fmt.Errorf("email %s: alert %s: %w", e.name, ev.ID, err)
		}
	}
	return nil
}

// recipients are the union of the routes the alert matches, or To.
func (e *Email) recipients(ev *Event) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range e.cfg.Routes {
		if len(r.Severities) > 0 && !containsSev(r.Severities, sevOf(ev)) {
			continue
		}
		if len(r.Categories) > 0 && !containsFold(r.Categories, ev.Category) {
			continue
		}
		for _, to := range r.To {
			if k := strings.ToLower(to); !seen[k] {
				seen[k] = true
				out = append(out, to)
			}
		}
	}
	if len(out) == 0 {
		return e.cfg.To
	}
	return out
}

func sevOf(ev *Event) verdict.Severity {
	if ev.Severity == "" {
		return verdict.SeverityInfo
	}
	return ev.Severity
}

func containsSev(list []verdict.Severity, s verdict.Severity) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// who names the learner: the user, or the device address when there is
// no user.
func who(ev *Event) string {
	switch {
	case ev.User != "":
		return ev.User
	case ev.ClientIP != "":
		return ev.ClientIP
	}
	return "unknown device"
}

// alertSubject is what a person triages from in an inbox list:
// "[aupguard] high · gambling · jsmith".
func alertSubject(ev *Event) string {
	cat := ev.Category
	if cat == "" {
		cat = ev.Rule
	}
	if cat == "" {
		cat = "uncategorised"
	}
	return oneLine("[aupguard] "+string(sevOf(ev))+" · "+cat+" · "+who(ev), 200)
}

// maxSitePath bounds the path shown: enough to tell pages apart, not a
// whole URL that may carry identifiers.
const maxSitePath = 60

// site is host and path at most: never the query string or fragment, and
// the path truncated.
func site(ev *Event) string {
	if ev.URL != "" {
		if u, err := url.Parse(ev.URL); err == nil && u.Host != "" {
			p := u.Path
			if r := []rune(p); len(r) > maxSitePath {
				p = string(r[:maxSitePath]) + "…"
			}
			if p == "/" {
				p = ""
			}
			return u.Host + p
		}
	}
	if ev.Host != "" {
		return ev.Host
	}
	return strings.TrimSuffix(ev.QName, ".")
}

// alertView is what the message shows, each value one safe line.
type alertView struct {
	Intro      string
	Rows       [][2]string
	Suppressed string
	Link       string
	Reference  string
}

func (e *Email) alertView(ev *Event) alertView {
	v := alertView{Reference: ev.ID}
	if ev.Kind == KindAlert {
		v.Intro = "The policy allowed this request but marked it for a safeguarding look."
	} else {
		v.Intro = "A request was blocked and needs a safeguarding look."
	}
	add := func(k, val string) {
		if val != "" {
			v.Rows = append(v.Rows, [2]string{k, oneLine(val, 300)})
		}
	}
	add("Learner", ev.User)
	add("Group", strings.Join(ev.Groups, ", "))
	add("Device", ev.ClientIP)
	add("Category", ev.Category)
	add("Site", site(ev))
	add("Rule", ev.Rule)
	add("Reason", ev.Reason)
	add("Severity", string(sevOf(ev)))
	add("Action", string(ev.Action))
	add("Time", ev.Time.In(e.loc).Format("Mon 2 Jan 2006 15:04:05 MST"))
	add("Reference", ev.ID)
	if ev.Suppressed > 0 {
		v.Suppressed = fmt.Sprintf("%d more alert(s) for this learner and category were held back since the previous e-mail.", ev.Suppressed)
	}
	if e.cfg.ConsoleURL != "" {
		v.Link = strings.TrimRight(e.cfg.ConsoleURL, "/") + "/events/" + url.PathEscape(ev.ID)
	}
	return v
}

func (v alertView) text() string {
	var b strings.Builder
	b.WriteString(v.Intro + "\n\n")
	for _, r := range v.Rows {
		fmt.Fprintf(&b, "%-10s %s\n", r[0]+":", r[1])
	}
	if v.Suppressed != "" {
		b.WriteString("\n" + v.Suppressed + "\n")
	}
	if v.Link != "" {
		b.WriteString("\nOpen in the console: " + v.Link + "\n")
	}
	b.WriteString("\nThe learner sees the reference " + v.Reference + " on the block page.\n-- \naupguard\n")
	return b.String()
}

// alertHTML escapes every value (they are attacker-controlled: host names,
// paths, user names) through html/template.
var alertHTML = template.Must(template.New("alert").Parse(`<!DOCTYPE html>
<html><body style="font-family:sans-serif">
<p>{{.Intro}}</p>
<table cellpadding="4" style="border-collapse:collapse">
{{range .Rows}}<tr><th align="left" style="padding-right:1em">{{index . 0}}</th><td>{{index . 1}}</td></tr>
{{end}}</table>
{{if .Suppressed}}<p>{{.Suppressed}}</p>{{end}}
{{if .Link}}<p><a href="{{.Link}}">Open in the console</a></p>{{end}}
<p style="color:#555">The learner sees the reference <b>{{.Reference}}</b> on the block page.</p>
</body></html>
`))

func (v alertView) html() (string, error) {
	var b bytes.Buffer
	if err := alertHTML.Execute(&b, v); err != nil {
		return "", err
	}
	return b.String(), nil
}

// alertMessageID is the same for every copy of one alert.
func (e *Email) alertMessageID(id string) string {
	return "aupguard.alert." + id + "@" + e.domain
}

func (e *Email) alertMessage(ev *Event) (*mail.Msg, error) {
	v := e.alertView(ev)
	h, err := v.html()
	if err != nil {
		return nil, err
	}
	m, err := e.newMsg(e.recipients(ev), alertSubject(ev), e.alertMessageID(ev.ID))
	if err != nil {
		return nil, err
	}
	m.SetGenHeader(mail.Header("X-Aupguard-Event-Id"), ev.ID)
	m.SetBodyString(mail.TypeTextPlain, v.text())
	m.AddAlternativeString(mail.TypeTextHTML, h)
	return m, nil
}

func (e *Email) newMsg(to []string, subject, msgID string) (*mail.Msg, error) {
	m := mail.NewMsg()
	if err := m.From(e.cfg.From); err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	if err := m.To(to...); err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	m.Subject(subject)
	m.SetMessageIDWithValue(msgID)
	m.SetDate()
	m.SetUserAgent("aupguard")
	// Auto-Submitted keeps vacation responders from answering alerts.
	m.SetGenHeader(mail.Header("Auto-Submitted"), "auto-generated")
	return m, nil
}

// client builds an SMTP client with the current password.
func (e *Email) client() (*mail.Client, error) {
	opts := []mail.Option{
		mail.WithPort(e.port),
		mail.WithTimeout(e.cfg.Timeout),
		mail.WithTLSConfig(e.tlsConf),
	}
	switch {
	case e.cfg.TLS:
		opts = append(opts, mail.WithSSL())
	case e.cfg.StartTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	}
	if e.cfg.Username != "" {
		pw := ""
		if p := e.password.Load(); p != nil {
			pw = *p
		}
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(e.cfg.Username), mail.WithPassword(pw))
	}
	c, err := mail.NewClient(e.host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp client for %s: %w", e.cfg.SMTP, err)
	}
	return c, nil
}

// send delivers one message. A message the relay accepted counts as sent
// even if the connection then fails, so it is not sent again.
func (e *Email) send(ctx context.Context, m *mail.Msg) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	err = c.DialAndSendWithContext(ctx, m)
	if err == nil {
		return nil
	}
	if m.IsDelivered() {
		e.log.Warn("events: the relay accepted the e-mail but the connection failed afterwards; counted as sent",
			"sink", e.name, "relay", e.cfg.SMTP, "message_id", m.GetMessageID(), "err", err)
		return nil
	}
	return classifySMTP(e.cfg.SMTP, err)
}

// SMTPError is a failed SMTP delivery. A permanent refusal (5xx) wraps
// ErrRejected: the stage logs it loudly and retries slowly, never drops it.
type SMTPError struct {
	// Relay is the configured host:port.
	Relay string
	// Code is the relay's reply code, 0 when it did not answer one.
	Code int
	// Err is the underlying error (never holds the password).
	Err error
}

// Error names the relay and the reply.
func (e *SMTPError) Error() string { return "smtp " + e.Relay + ": " + e.Err.Error() }

// Unwrap makes errors.Is(err, ErrRejected) true for 5xx refusals.
func (e *SMTPError) Unwrap() []error {
	if e.Code >= 500 {
		return []error{e.Err, ErrRejected}
	}
	return []error{e.Err}
}

func classifySMTP(relay string, err error) error {
	out := &SMTPError{Relay: relay, Err: err}
	var se *mail.SendError
	if errors.As(err, &se) && !se.IsTemp() {
		out.Code = se.ErrorCode()
	}
	return out
}

// oneLine makes an attacker-controlled value safe for one header or text
// line: control characters become spaces, invalid UTF-8 is replaced, and
// it is cut at max runes.
func oneLine(s string, max int) string {
	return printable([]byte(s), max)
}

// setupEmail adds the e-mail alert stage ("alerts-email": filtered and
// de-duplicated like the webhook's alerts, with its own cursor and its
// own de-duplication state) and, when configured, the daily digest.
func (p *Pipeline) setupEmail(cfg AlertsConfig) error {
	em, err := NewEmail("alerts-email", cfg.Email, p.log)
	if err != nil {
		return err
	}
	p.email = em
	p.emailAlerts = &alertStage{
		minSeverity: cfg.MinSeverity,
		window:      cfg.Window,
		dedup:       NewMemDeduper(cfg.MaxKeys, nil),
		log:         p.log,
	}
	p.emailStage = p.newStage(em)
	p.emailStage.prepare = p.emailAlerts.prepare
	// As for the webhook: no replay of the spool's history.
	p.emailStage.fromEnd = true
	p.stages = append(p.stages, p.emailStage)
	if !cfg.Email.DigestEnabled() {
		return nil
	}
	dg, err := newDigest(em, cfg.Email, cfg.MinSeverity, p.dir, p.log)
	if err != nil {
		return err
	}
	p.digest = dg
	st := p.newStage(dg)
	st.fromEnd = true
	p.stages = append(p.stages, st)
	return nil
}

// Reload re-reads the credential files the pipeline holds (the SMTP relay
// password) on SIGHUP; on error the previous ones stay in use.
func (p *Pipeline) Reload() error {
	if p.email == nil {
		return nil
	}
	return p.email.Reload()
}

// prefixDeduper gives one stage its own keys in a shared Deduper.
type prefixDeduper struct {
	d      Deduper
	prefix string
}

func (x prefixDeduper) Admit(ctx context.Context, key string, window time.Duration) (bool, int, error) {
	return x.d.Admit(ctx, x.prefix+key, window)
}
