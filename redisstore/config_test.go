package redisstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/aupguard/aupguard/config/field"
	"github.com/aupguard/aupguard/verdict"
)

func TestDefaultConfigValidates(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults (redis off): %v", err)
	}
	c.Enabled = true
	c.Addrs = []string{"redis.internal:6379"}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults with one address: %v", err)
	}
	if _, err := New(DefaultConfig(), Options{}); !errors.Is(err, ErrDisabled) {
		t.Fatalf("New with redis off: got %v, want ErrDisabled", err)
	}
}

func TestConfigFromYAML(t *testing.T) {
	src := `
enabled: true
addrs: ["10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"]
master_name: aupguard
password: s3cret
db: 2
key_prefix: "college:"
dial_timeout: 3s
cache:
  timeout: 15ms
  breaker: {failures: 5, open_for: 10s}
stream:
  maxlen: 5000
fanout:
  channel: reloads
`
	c := DefaultConfig()
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if mode(&c) != "sentinel" || c.DB != 2 || c.DialTimeout != 3*time.Second || c.Cache.Timeout != 15*time.Millisecond ||
		c.Cache.Breaker.Failures != 5 || c.Cache.Breaker.OpenFor != 10*time.Second || c.Stream.MaxLen != 5000 ||
		c.Fanout.Channel != "reloads" || string(c.Password) != "s3cret" {
		t.Fatalf("decoded %+v", c)
	}
	// Keys left out keep their defaults.
	if c.Cache.WriteBuffer != 10000 || c.Stream.Key != "events" || !c.Dedupe.Enabled || c.ReadTimeout != time.Second {
		t.Fatalf("defaults lost: %+v", c)
	}
}

func TestValidateNamesTheKey(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	must(t, os.WriteFile(empty, []byte("\n"), 0o600))
	notPEM := filepath.Join(dir, "ca.pem")
	must(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))

	cases := []struct {
		name string
		edit func(c *Config)
		path string
		msg  string
	}{
		{"no addrs", func(c *Config) { c.Addrs = nil }, "addrs", "at least one"},
		{"bad addr", func(c *Config) { c.Addrs = []string{"a:6379", "redis"} }, "addrs[1]", "not host:port"},
		{"bad port", func(c *Config) { c.Addrs = []string{"redis:http"} }, "addrs[0]", "port must be"},
		{"cluster db", func(c *Config) { c.Addrs = []string{"a:1", "b:1"}; c.DB = 1 }, "db", "Cluster has only database 0"},
		{"both passwords", func(c *Config) { c.Password = "x"; c.PasswordFile = empty }, "password_file", "not both"},
		{"empty password file", func(c *Config) { c.PasswordFile = empty }, "password_file", "is empty"},
		{"missing password file", func(c *Config) { c.PasswordFile = filepath.Join(dir, "nope") }, "password_file", "no such file"},
		{"username alone", func(c *Config) { c.Username = "aupguard" }, "password", "when username is set"},
		{"sentinel creds without sentinel", func(c *Config) { c.SentinelPassword = "x" }, "master_name", "only used with Sentinel"},
		{"tls keys without tls", func(c *Config) { c.TLS.CAFile = notPEM }, "tls.enabled", "must be true"},
		{"bad CA", func(c *Config) { c.TLS.Enabled = true; c.TLS.CAFile = notPEM }, "tls.ca_file", "no PEM certificate"},
		{"cert without key", func(c *Config) { c.TLS.Enabled = true; c.TLS.CertFile = notPEM }, "tls.key_file", "go together"},
		{"prefix with hash tag", func(c *Config) { c.KeyPrefix = "{x}:" }, "key_prefix", "braces"},
		{"zero read timeout", func(c *Config) { c.ReadTimeout = 0 }, "read_timeout", "positive"},
		{"slow cache", func(c *Config) { c.Cache.Timeout = 2 * time.Second }, "cache.timeout", "at most 1s"},
		{"no write buffer", func(c *Config) { c.Cache.WriteBuffer = 0 }, "cache.write_buffer", "between"},
		{"breaker failures", func(c *Config) { c.Cache.Breaker.Failures = 0 }, "cache.breaker.failures", "at least 1"},
		{"breaker window", func(c *Config) { c.Cache.Breaker.OpenFor = 0 }, "cache.breaker.open_for", "positive"},
		{"stream key", func(c *Config) { c.Stream.Key = "" }, "stream.key", "must be set"},
		{"stream maxlen", func(c *Config) { c.Stream.MaxLen = -1 }, "stream.maxlen", "0 (no trimming)"},
		{"stream dedupe ttl", func(c *Config) { c.Stream.DedupeTTL = time.Second }, "stream.dedupe_ttl", "at least 1m"},
		{"stream backoff", func(c *Config) { c.Stream.BackoffMax = time.Millisecond }, "stream.backoff_max", "at least backoff_min"},
		{"fanout channel", func(c *Config) { c.Fanout.Channel = "a b" }, "fanout.channel", "white space"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Enabled = true
			c.Addrs = []string{"127.0.0.1:6379"}
			tc.edit(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			var found []string
			for _, e := range field.Flatten(err) {
				var fe *field.Error
				if !errors.As(e, &fe) {
					t.Fatalf("error without a key path: %v", e)
				}
				found = append(found, fe.Path)
				if fe.Path == tc.path && !strings.Contains(fe.Msg, tc.msg) {
					t.Errorf("%s: message %q does not say %q", fe.Path, fe.Msg, tc.msg)
				}
			}
			if !slices.Contains(found, tc.path) {
				t.Fatalf("got errors at %v (%v), want one at %s", found, err, tc.path)
			}
		})
	}
}

// Disabled features are not validated: an operator turning the stream
// off need not fix its keys.
func TestValidateSkipsDisabledFeatures(t *testing.T) {
	c := DefaultConfig()
	c.Enabled = true
	c.Addrs = []string{"127.0.0.1:6379"}
	c.Cache = CacheConfig{}
	c.Stream = StreamConfig{}
	c.Fanout = FanoutConfig{}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestPasswordIsNeverPrinted(t *testing.T) {
	c := DefaultConfig()
	c.Password = "hunter2-secret"
	c.SentinelPassword = "sentinel-secret"
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "redis", c, "pw", c.Password)
	j, _ := json.Marshal(c)
	y, _ := yaml.Marshal(c)
	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c),
		"slog": logged.String(), "json": string(j), "yaml": string(y),
	} {
		if strings.Contains(out, "hunter2") || strings.Contains(out, "sentinel-secret") {
			t.Errorf("%s shows a password: %s", name, out)
		}
	}
}

func TestPasswordFileIsUsed(t *testing.T) {
	srv := startRedis(t, false)
	admin := srv.Client()
	ctx := t.Context()
	must(t, admin.ConfigSet(ctx, "requirepass", "file-secret").Err())
	pwFile := filepath.Join(t.TempDir(), "redis.pw")
	must(t, os.WriteFile(pwFile, []byte("file-secret\n"), 0o600))

	c := testConfig(srv)
	s := newStore(t, c, "nopw")
	if err := s.Ping(ctx); err == nil {
		t.Fatal("ping without the password succeeded")
	}
	c.PasswordFile = pwFile
	s = newStore(t, c, "withpw")
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("ping with the password file: %v", err)
	}
}

func TestTLS(t *testing.T) {
	tf := newTLSFiles(t)
	srv := startRedisWith(t, false, tf)
	ctx := t.Context()
	base := testConfig(srv)
	base.DialTimeout = time.Second
	base.TLS.Enabled = true

	cases := []struct {
		name string
		edit func(c *Config)
		ok   bool
	}{
		{"our CA", func(c *Config) { c.TLS.CAFile = tf.ca }, true},
		{"our CA, certificate name", func(c *Config) { c.TLS.CAFile = tf.ca; c.TLS.ServerName = "redis.test" }, true},
		{"our CA, wrong name", func(c *Config) { c.TLS.CAFile = tf.ca; c.TLS.ServerName = "other.test" }, false},
		{"system roots", func(c *Config) {}, false},
		{"verification off", func(c *Config) { c.TLS.InsecureSkipVerify = true }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.edit(&c)
			s := newStore(t, c, "tls")
			err := s.Ping(ctx)
			if tc.ok != (err == nil) {
				t.Fatalf("ping: %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok {
				return
			}
			// Verdict reads use their own client: it speaks TLS too.
			s.VerdictCache().Set(ctx, "k", verdict.Decision{Action: verdict.ActionAllow}, time.Minute)
			eventually(t, "the write", func() bool { return s.CacheStats().Writes == 1 })
			if _, ok := s.VerdictCache().Get(ctx, "k"); !ok {
				t.Fatalf("no hit over TLS: %+v", s.CacheStats())
			}
		})
	}
	// Plain TCP to a TLS-only server fails rather than hangs.
	plain := newStore(t, testConfig(srv), "plain")
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := plain.Ping(pctx); err == nil {
		t.Fatal("plain TCP ping to a TLS-only server succeeded")
	}
}

func TestLibraryLoggerWritesToSlog(t *testing.T) {
	var buf bytes.Buffer
	l := LibraryLogger{Logger: slog.New(slog.NewTextHandler(&buf, nil))}
	l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %s\n", 1, "refused")
	if out := buf.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, `msg="redis: connection pool: failed to dial after 1 attempts: refused"`) ||
		!strings.Contains(out, "component=go-redis") {
		t.Fatalf("logged %q", out)
	}
}
