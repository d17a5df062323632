package events

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aupguard/aupguard/config/field"
	"github.com/aupguard/aupguard/verdict"
)

// EmailConfig is `events.alerts.email`: safeguarding alerts as e-mail
// through an SMTP relay. Off while SMTP is empty.
type EmailConfig struct {
	// SMTP is the relay's host:port (587 for STARTTLS, 465 for tls: true,
	// 25 for a local relay); empty turns e-mail alerts off.
	SMTP string `yaml:"smtp"`
	// From is the sender address, e.g. "aupguard <aupguard@school.example>".
	From string `yaml:"from"`
	// To receives every alert no route claims.
	To []string `yaml:"to"`
	// Username, with PasswordFile, authenticates to the relay (AUTH); the
	// mechanism is the strongest both sides offer.
	Username string `yaml:"username"`
	// PasswordFile holds the relay password (trailing newline ignored). It
	// is read at start and on SIGHUP and never logged.
	PasswordFile string `yaml:"password_file"`
	// StartTLS upgrades the connection with STARTTLS and refuses a relay
	// that does not offer it. Turning it off (with tls off) sends in clear,
	// which is allowed only to a loopback relay or one in TrustedRelays.
	StartTLS bool `yaml:"starttls"`
	// TLS connects with TLS from the first byte (implicit TLS, port 465);
	// starttls is then ignored.
	TLS bool `yaml:"tls"`
	// CAFile is a PEM bundle trusted for the relay's certificate, in
	// addition to the system roots (a school's own CA).
	CAFile string `yaml:"ca_file"`
	// TrustedRelays are relay host names or addresses that may be reached
	// without TLS (a relay on the same trusted segment); loopback relays
	// always may.
	TrustedRelays []string `yaml:"trusted_relays"`
	// ConsoleURL is the staff console's base URL; each alert links to
	// ConsoleURL/events/<id>. Empty leaves the link out.
	ConsoleURL string `yaml:"console_url"`
	// Routes send alerts of some severities and/or categories to other
	// recipients. An alert goes to the union of the routes it matches, or
	// to To when it matches none.
	Routes []EmailRoute `yaml:"routes"`
	// Digest is a daily e-mail of lower-severity events that were not
	// e-mailed one by one; off while digest.at is empty.
	Digest DigestConfig `yaml:"digest"`
	// Timeout bounds one delivery: connect, TLS, AUTH and the message.
	Timeout time.Duration `yaml:"timeout"`
	// BackoffMin and BackoffMax bound the retry delay while the relay is
	// down or answers 4xx; a 5xx refusal waits BackoffMax.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`

	// Location is the time zone of the times in messages and of digest.at
	// (the policy time zone); set by the program, not the file.
	Location *time.Location `yaml:"-"`
}

// EmailRoute sends matching alerts to its own recipients.
type EmailRoute struct {
	// Severities the route matches (any when empty).
	Severities []verdict.Severity `yaml:"severities"`
	// Categories the route matches (any when empty).
	Categories []string `yaml:"categories"`
	// To receives the matching alerts.
	To []string `yaml:"to"`
}

// DigestConfig is the daily digest of lower-severity events.
type DigestConfig struct {
	// At is the local time (policy time zone) the digest is sent, "HH:MM";
	// empty turns the digest off.
	At string `yaml:"at"`
	// MinSeverity is the least severity listed; events at or above
	// alerts.min_severity (or marked alert) are e-mailed one by one instead.
	MinSeverity verdict.Severity `yaml:"min_severity"`
	// To receives the digest; the e-mail section's to when empty.
	To []string `yaml:"to"`
}

func defaultEmail() EmailConfig {
	return EmailConfig{
		StartTLS:   true,
		Timeout:    30 * time.Second,
		BackoffMin: 5 * time.Second,
		BackoffMax: 5 * time.Minute,
		Digest:     DigestConfig{MinSeverity: verdict.SeverityLow},
	}
}

// Enabled reports whether e-mail alerts are on.
func (c *EmailConfig) Enabled() bool { return c.SMTP != "" }

// DigestEnabled reports whether the daily digest is on.
func (c *EmailConfig) DigestEnabled() bool { return c.Enabled() && c.Digest.At != "" }

// Validate checks the section; an empty smtp (off) needs nothing else.
func (c *EmailConfig) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	host, port, err := net.SplitHostPort(c.SMTP)
	if err != nil || host == "" {
		errs = append(errs, field.Errorf("smtp", "%q is not host:port", c.SMTP))
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		errs = append(errs, field.Errorf("smtp", "port %q is not a number from 1 to 65535", port))
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		errs = append(errs, field.Errorf("from", "%q is not an e-mail address (%v)", c.From, err))
	}
	errs = append(errs, checkAddrs("to", c.To)...)
	if len(c.To) == 0 {
		errs = append(errs, field.Errorf("to", "must name at least one recipient (alerts no route claims go there)"))
	}
	if (c.Username == "") != (c.PasswordFile == "") {
		errs = append(errs, field.Errorf("password_file", "username and password_file go together"))
	} else if c.PasswordFile != "" {
		if _, err := readSecretFile(c.PasswordFile); err != nil {
			errs = append(errs, field.Errorf("password_file", "%v", err))
		}
	}
	if c.CAFile != "" {
		if _, err := loadCAFile(c.CAFile); err != nil {
			errs = append(errs, field.Errorf("ca_file", "%v", err))
		}
	}
	if host != "" && !c.TLS && !c.StartTLS && !c.relayTrusted(host) {
		errs = append(errs, field.Errorf("starttls",
			"false (and tls false) would send learners' names and the relay password in clear to %s: plain SMTP is allowed only to a loopback relay or one listed in trusted_relays", host))
	}
	if c.ConsoleURL != "" {
		u, err := url.Parse(c.ConsoleURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, field.Errorf("console_url", "%q is not an http(s) URL", c.ConsoleURL))
		}
	}
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		if len(r.To) == 0 {
			errs = append(errs, field.Errorf(p+".to", "must name at least one recipient"))
		}
		errs = append(errs, checkAddrs(p+".to", r.To)...)
		for j, s := range r.Severities {
			if !validSeverity(s) {
				errs = append(errs, field.Errorf(fmt.Sprintf("%s.severities[%d]", p, j), "must be info, low, medium, high or critical, got %q", s))
			}
		}
		if len(r.Severities) == 0 && len(r.Categories) == 0 {
			errs = append(errs, field.Errorf(p, "matches every alert: give severities or categories (or use to)"))
		}
	}
	if c.Digest.At != "" {
		if _, _, err := parseClock(c.Digest.At); err != nil {
			errs = append(errs, field.Errorf("digest.at", "%v", err))
		}
		if !validSeverity(c.Digest.MinSeverity) {
			errs = append(errs, field.Errorf("digest.min_severity", "must be info, low, medium, high or critical, got %q", c.Digest.MinSeverity))
		}
		errs = append(errs, checkAddrs("digest.to", c.Digest.To)...)
	}
	if c.Timeout <= 0 {
		errs = append(errs, field.Errorf("timeout", "must be positive, got %s", c.Timeout))
	}
	if c.BackoffMin <= 0 {
		errs = append(errs, field.Errorf("backoff_min", "must be positive, got %s", c.BackoffMin))
	}
	if c.BackoffMax < c.BackoffMin {
		errs = append(errs, field.Errorf("backoff_max", "must be at least backoff_min (%s), got %s", c.BackoffMin, c.BackoffMax))
	}
	return errors.Join(errs...)
}

// relayTrusted reports whether plain SMTP to host is allowed: a loopback
// address, "localhost", or a name or address listed in TrustedRelays.
func (c *EmailConfig) relayTrusted(host string) bool {
	if a, err := netip.ParseAddr(host); err == nil && a.Unmap().IsLoopback() {
		return true
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	return slices.ContainsFunc(c.TrustedRelays, func(t string) bool { return strings.EqualFold(t, host) })
}

func validSeverity(s verdict.Severity) bool {
	switch s {
	case verdict.SeverityInfo, verdict.SeverityLow, verdict.SeverityMedium, verdict.SeverityHigh, verdict.SeverityCritical:
		return true
	}
	return false
}

func checkAddrs(path string, addrs []string) []error {
	var errs []error
	for i, a := range addrs {
		if _, err := mail.ParseAddress(a); err != nil {
			errs = append(errs, field.Errorf(fmt.Sprintf("%s[%d]", path, i), "%q is not an e-mail address (%v)", a, err))
		}
	}
	return errs
}

// parseClock parses "HH:MM".
func parseClock(s string) (hour, minute int, err error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, 0, fmt.Errorf("%q is not a time of day as HH:MM", s)
	}
	return t.Hour(), t.Minute(), nil
}

// loadCAFile reads a PEM bundle into a pool holding the system roots too.
func loadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}
