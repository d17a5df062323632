package events

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aupguard/aupguard/config/field"
	"github.com/aupguard/aupguard/verdict"
)

// FsyncMode says when spool appends are forced to stable storage.
type FsyncMode string

// The fsync modes.
const (
	// FsyncAlways fsyncs after every batch the writer takes from the queue
	// (group commit: concurrent Emits share one fsync).
	FsyncAlways FsyncMode = "always"
	// FsyncInterval fsyncs at most every fsync_interval, and always on
	// rotation and Close.
	FsyncInterval FsyncMode = "interval"
	// FsyncNever leaves flushing to the operating system, except on rotation
	// and Close.
	FsyncNever FsyncMode = "never"
)

// Config is the `events` section of the configuration.
type Config struct {
	// DataDir is the state directory; the spool and sink cursors live in
	// DataDir/events.
	DataDir string `yaml:"data_dir"`
	// Fsync is the spool's fsync policy: always, interval or never.
	Fsync FsyncMode `yaml:"fsync"`
	// FsyncInterval is the longest time an appended event waits for its
	// fsync under fsync: interval.
	FsyncInterval time.Duration `yaml:"fsync_interval"`
	// MaxFileSize rotates the spool file before it would grow past this.
	MaxFileSize ByteSize `yaml:"max_file_size"`
	// Retention is how long a fully delivered spool file is kept.
	Retention time.Duration `yaml:"retention"`
	// QueueSize bounds the queue between Emit and the spool writer.
	QueueSize int `yaml:"queue_size"`
	// EmitTimeout is the longest an enforcement point waits for room in a
	// full queue before the event is refused and counted
	// (aupguard_events_emit_timeouts_total): back-pressure from a slow disk
	// slows requests by at most this much, never stalls them.
	EmitTimeout time.Duration `yaml:"emit_timeout"`
	// Webhook is the event sink; off while its URL is empty.
	Webhook WebhookConfig `yaml:"webhook"`
	// Alerts are the safeguarding alerts; off while alerts.webhook.url is
	// empty.
	Alerts AlertsConfig `yaml:"alerts"`
}

// WebhookConfig configures a signed HTTP POST sink.
type WebhookConfig struct {
	// URL receives the POSTs; empty turns the webhook off.
	URL string `yaml:"url"`
	// Secret is the HMAC-SHA256 key for X-Aupguard-Signature.
	Secret Secret `yaml:"secret"`
	// SecretFile names a file holding the secret (trailing newline
	// ignored); use it instead of Secret to keep the key out of the config.
	SecretFile string `yaml:"secret_file"`
	// Timeout bounds one request, connection to response body.
	Timeout time.Duration `yaml:"timeout"`
	// BatchSize is the most events in one POST.
	BatchSize int `yaml:"batch_size"`
	// BackoffMin and BackoffMax bound the retry delay, which doubles per
	// failed attempt (with jitter) from min to max. Rejections (4xx other
	// than 408/429) wait BackoffMax.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
}

// AlertsConfig configures the safeguarding alert stage.
type AlertsConfig struct {
	// MinSeverity is the least severity that raises an alert; events the
	// policy marked alert raise one whatever their severity.
	MinSeverity verdict.Severity `yaml:"min_severity"`
	// Window de-duplicates alerts per (user or client IP, category): after
	// an alert is sent, others for the same key within Window are counted,
	// not sent. 0 sends every alert.
	Window time.Duration `yaml:"window"`
	// MaxKeys bounds the in-process de-duplication memory.
	MaxKeys int `yaml:"max_keys"`
	// Webhook receives the alerts (a safeguarding tool or chat bridge).
	Webhook WebhookConfig `yaml:"webhook"`
	// Email sends each alert as an e-mail to safeguarding staff, and an
	// optional daily digest; off while email.smtp is empty.
	Email EmailConfig `yaml:"email"`
}

// Enabled reports whether any alert destination is configured.
func (c *AlertsConfig) Enabled() bool { return c.Webhook.Enabled() || c.Email.Enabled() }

// DefaultConfig returns every default: the spool is on, the webhook and
// alerts are off until their URLs are set.
func DefaultConfig() Config {
	return Config{
		DataDir:       "/var/lib/aupguard",
		Fsync:         FsyncInterval,
		FsyncInterval: 200 * time.Millisecond,
		MaxFileSize:   64 << 20,
		Retention:     7 * 24 * time.Hour,
		QueueSize:     4096,
		EmitTimeout:   2 * time.Second,
		Webhook:       defaultWebhook(100),
		Alerts: AlertsConfig{
			MinSeverity: verdict.SeverityHigh,
			Window:      10 * time.Minute,
			MaxKeys:     100000,
			// One alert per request suits chat bridges and keeps an
			// alert from waiting for others.
			Webhook: defaultWebhook(1),
			Email:   defaultEmail(),
		},
	}
}

func defaultWebhook(batch int) WebhookConfig {
	return WebhookConfig{
		Timeout:    10 * time.Second,
		BatchSize:  batch,
		BackoffMin: time.Second,
		BackoffMax: 5 * time.Minute,
	}
}

// minFileSize keeps rotation from degenerating into one file per event.
const minFileSize = 1 << 10

// maxLineSize is the longest spool line a reader accepts; events are a few
// hundred bytes, so anything longer is corruption.
const maxLineSize = 1 << 20

// Validate checks the section; error paths are relative to it.
func (c *Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.DataDir) == "" {
		errs = append(errs, field.Errorf("data_dir", "must be set"))
	}
	switch c.Fsync {
	case FsyncAlways, FsyncNever:
	case FsyncInterval:
		if c.FsyncInterval <= 0 {
			errs = append(errs, field.Errorf("fsync_interval", "must be positive with fsync: interval, got %s", c.FsyncInterval))
		}
	default:
		errs = append(errs, field.Errorf("fsync", "must be always, interval or never, got %q", c.Fsync))
	}
	if c.MaxFileSize < minFileSize {
		errs = append(errs, field.Errorf("max_file_size", "must be at least %s, got %s", ByteSize(minFileSize), c.MaxFileSize))
	}
	if c.Retention < 0 {
		errs = append(errs, field.Errorf("retention", "must not be negative, got %s", c.Retention))
	}
	if c.QueueSize < 1 {
		errs = append(errs, field.Errorf("queue_size", "must be at least 1, got %d", c.QueueSize))
	}
	if c.EmitTimeout < time.Millisecond || c.EmitTimeout > time.Minute {
		errs = append(errs, field.Errorf("emit_timeout", "must be between 1ms and 1m, got %s", c.EmitTimeout))
	}
	if err := c.Webhook.Validate(); err != nil {
		errs = append(errs, field.Prefix("webhook", err))
	}
	if err := c.Alerts.Validate(); err != nil {
		errs = append(errs, field.Prefix("alerts", err))
	}
	return errors.Join(errs...)
}

// Validate checks the alerts section.
func (c *AlertsConfig) Validate() error {
	var errs []error
	switch c.MinSeverity {
	case verdict.SeverityInfo, verdict.SeverityLow, verdict.SeverityMedium, verdict.SeverityHigh, verdict.SeverityCritical:
	default:
		errs = append(errs, field.Errorf("min_severity", "must be info, low, medium, high or critical, got %q", c.MinSeverity))
	}
	if c.Window < 0 {
		errs = append(errs, field.Errorf("window", "must not be negative, got %s", c.Window))
	}
	if c.MaxKeys < 1 {
		errs = append(errs, field.Errorf("max_keys", "must be at least 1, got %d", c.MaxKeys))
	}
	if err := c.Webhook.Validate(); err != nil {
		errs = append(errs, field.Prefix("webhook", err))
	}
	if err := c.Email.Validate(); err != nil {
		errs = append(errs, field.Prefix("email", err))
	}
	return errors.Join(errs...)
}

// Enabled reports whether the webhook has a URL.
func (c *WebhookConfig) Enabled() bool { return c.URL != "" }

// Validate checks a webhook section; an empty URL (off) needs nothing else.
func (c *WebhookConfig) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		// url.Parse errors quote the URL, which may hold a token.
		errs = append(errs, field.Errorf("url", "not a valid URL"))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, field.Errorf("url", "scheme must be http or https, got %q", u.Scheme))
	case u.Host == "":
		errs = append(errs, field.Errorf("url", "has no host"))
	}
	switch {
	case c.Secret != "" && c.SecretFile != "":
		errs = append(errs, field.Errorf("secret_file", "set either secret or secret_file, not both"))
	case c.Secret == "" && c.SecretFile == "":
		errs = append(errs, field.Errorf("secret", "must be set (or secret_file) when url is set: receivers verify the signature"))
	case c.SecretFile != "":
		if _, err := readSecretFile(c.SecretFile); err != nil {
			errs = append(errs, field.Errorf("secret_file", "%v", err))
		}
	}
	if c.Timeout <= 0 {
		errs = append(errs, field.Errorf("timeout", "must be positive, got %s", c.Timeout))
	}
	if c.BatchSize < 1 || c.BatchSize > 10000 {
		errs = append(errs, field.Errorf("batch_size", "must be between 1 and 10000, got %d", c.BatchSize))
	}
	if c.BackoffMin <= 0 {
		errs = append(errs, field.Errorf("backoff_min", "must be positive, got %s", c.BackoffMin))
	}
	if c.BackoffMax < c.BackoffMin {
		errs = append(errs, field.Errorf("backoff_max", "must be at least backoff_min (%s), got %s", c.BackoffMin, c.BackoffMax))
	}
	return errors.Join(errs...)
}

// secret returns the HMAC key from Secret or SecretFile.
func (c *WebhookConfig) secret() ([]byte, error) {
	if c.SecretFile != "" {
		return readSecretFile(c.SecretFile)
	}
	if c.Secret == "" {
		return nil, errors.New("no secret configured")
	}
	return []byte(c.Secret), nil
}

func readSecretFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading secret: %w", err)
	}
	b = []byte(strings.TrimRight(string(b), "\r\n"))
	if len(b) == 0 {
		return nil, fmt.Errorf("secret file %s is empty", path)
	}
	return b, nil
}

// Secret is a string that never prints: fmt, slog and JSON show
// "[redacted]", so a logged config cannot leak the webhook key.
type Secret string

const redacted = "[redacted]"

// String hides the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString hides the value from %#v.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// LogValue hides the value from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText hides the value from encoders (JSON, YAML).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// ByteSize is a size in bytes, written in YAML as a number or with a unit:
// "64MiB", "512KiB", "1GiB", "10MB" (powers of ten), "4096".
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30},
	{"B", 1},
}

// UnmarshalText parses a size with an optional unit.
func (b *ByteSize) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("invalid size %q: want a number of bytes, optionally with KiB, MiB or GiB", string(text))
	}
	*b = ByteSize(n * mult)
	return nil
}

// MarshalText writes the size with the largest exact binary unit.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// String writes the size with the largest exact binary unit.
func (b ByteSize) String() string {
	switch n := int64(b); {
	case n != 0 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n != 0 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n != 0 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	default:
		return strconv.FormatInt(n, 10)
	}
}
