package console

import (
	"errors"
	"net/netip"
	"os"
	"time"

	"github.com/aupguard/aupguard/config/field"
)

// Config is the console's section of the configuration (console.*).
type Config struct {
	// Listen is the address of the staff's web console; "" turns it off.
	// Keep it on loopback or a staff network: the proxy never lets learners
	// reach it.
	Listen string `yaml:"listen"`
	// TLS serves the console over HTTPS with this certificate and key (PEM
	// files); then the session cookie is Secure. Without it, put the
	// console behind a TLS-terminating reverse proxy unless it is on
	// loopback.
	TLS TLS `yaml:"tls"`
	// Retention is how long events are kept before they are purged. The
	// default, 400 days, covers a whole academic year plus the start of
	// the next, so a concern raised in September can be traced back
	// through the previous year; keeping filter logs much longer adds risk
	// (UK GDPR storage limitation) without a safeguarding use: what becomes
	// a concern belongs in the DSL's own case record. The audit log is
	// never purged.
	Retention time.Duration `yaml:"retention"`
	// SessionIdle ends a session nobody has used for this long.
	SessionIdle time.Duration `yaml:"session_idle"`
	// SessionMax ends any session this long after login.
	SessionMax time.Duration `yaml:"session_max"`
	// ExceptionDays is the exception length the approval form offers
	// first; staff may choose up to a year.
	ExceptionDays int `yaml:"exception_days"`
}

// TLS names the console's certificate and key.
type TLS struct {
	// Cert is the PEM certificate chain file.
	Cert string `yaml:"cert"`
	// Key is the PEM private key file.
	Key string `yaml:"key"`
}

// Enabled reports whether TLS is configured.
func (t TLS) Enabled() bool { return t.Cert != "" || t.Key != "" }

// DefaultConfig is the console on loopback, plain HTTP.
func DefaultConfig() Config {
	return Config{
		Listen:        "127.0.0.1:9091",
		Retention:     400 * 24 * time.Hour,
		SessionIdle:   30 * time.Minute,
		SessionMax:    12 * time.Hour,
		ExceptionDays: 7,
	}
}

// Validate checks the section; errors name their key.
func (c Config) Validate() error {
	var errs []error
	if c.Listen != "" {
		if _, err := netip.ParseAddrPort(c.Listen); err != nil {
			errs = append(errs, field.Errorf("listen", "%q is not an address:port (%v)", c.Listen, err))
		}
	}
	if c.TLS.Enabled() {
		if c.TLS.Cert == "" || c.TLS.Key == "" {
			errs = append(errs, field.Errorf("tls", "needs both cert and key"))
		}
		for k, p := range map[string]string{"tls.cert": c.TLS.Cert, "tls.key": c.TLS.Key} {
			if p == "" {
				continue
			}
			if _, err := os.Stat(p); err != nil {
				errs = append(errs, field.Errorf(k, "%v", err))
			}
		}
	}
	if c.Retention < 24*time.Hour {
		errs = append(errs, field.Errorf("retention", "%s is less than a day", c.Retention))
	}
	if c.SessionIdle <= 0 || c.SessionMax < c.SessionIdle {
		errs = append(errs, field.Errorf("session_idle", "must be positive and at most session_max (%s, %s)", c.SessionIdle, c.SessionMax))
	}
	if c.ExceptionDays < 1 || c.ExceptionDays > 366 {
		errs = append(errs, field.Errorf("exception_days", "%d is not 1 to 366", c.ExceptionDays))
	}
	return errors.Join(errs...)
}
