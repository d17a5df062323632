package events

import (
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

	"github.com/aupguard/aupguard/config/field"
	"gopkg.in/yaml.v3"
)

func TestDefaultConfigIsValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Webhook.Enabled() || c.Alerts.Webhook.Enabled() {
		t.Error("webhook and alerts must be off by default")
	}
	if c.FsyncInterval != 200*time.Millisecond || c.Retention != 7*24*time.Hour || c.Alerts.Window != 10*time.Minute ||
		c.Alerts.MinSeverity != "high" || c.Fsync != FsyncInterval {
		t.Errorf("defaults = %+v", c)
	}
}

func TestConfigFromYAML(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "alerts.key")
	if err := os.WriteFile(secretFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`
data_dir: %s
fsync: always
max_file_size: 16MiB
retention: 72h
queue_size: 100
webhook:
  url: https://siem.example.test/aupguard
  secret: s3cret
  timeout: 3s
  batch_size: 50
  backoff_min: 500ms
  backoff_max: 1m
alerts:
  min_severity: medium
  window: 15m
  webhook:
    url: https://chat.example.test/hooks/abc
    secret_file: %s
`, dir, secretFile)
	c := DefaultConfig()
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.MaxFileSize != 16<<20 || c.Retention != 72*time.Hour || c.Webhook.BackoffMin != 500*time.Millisecond ||
		c.Webhook.Secret != "s3cret" || c.Alerts.Window != 15*time.Minute || c.Alerts.Webhook.BatchSize != 1 ||
		c.FsyncInterval != 200*time.Millisecond {
		t.Errorf("decoded %+v", c)
	}
	key, err := c.Alerts.Webhook.secret()
	if err != nil || string(key) != "from-file" {
		t.Errorf("secret_file: %q, %v", key, err)
	}
}

func TestConfigValidateNamesTheKey(t *testing.T) {
	c := DefaultConfig()
	c.DataDir = ""
	c.Fsync = "sometimes"
	c.MaxFileSize = 10
	c.Retention = -time.Hour
	c.QueueSize = 0
	c.EmitTimeout = 0
	c.Webhook.URL = "ftp://x"
	c.Webhook.BatchSize = 0
	c.Alerts.MinSeverity = "urgent"
	c.Alerts.Window = -1
	c.Alerts.Webhook.URL = "https://chat.example.test/hook"
	c.Alerts.Webhook.BackoffMax = time.Millisecond
	c.Alerts.Webhook.SecretFile = "/nonexistent/key"
	err := c.Validate()
	var paths []string
	for _, e := range field.Flatten(err) {
		var fe *field.Error
		if !errors.As(e, &fe) {
			t.Errorf("not a field error: %v", e)
			continue
		}
		paths = append(paths, fe.Path)
	}
	want := []string{"data_dir", "fsync", "max_file_size", "retention", "queue_size", "emit_timeout", "webhook.url", "webhook.secret",
		"webhook.batch_size", "alerts.min_severity", "alerts.window", "alerts.webhook.secret_file", "alerts.webhook.backoff_max"}
	slices.Sort(paths)
	slices.Sort(want)
	if !slices.Equal(paths, want) {
		t.Errorf("error paths\n got %v\nwant %v\n(%v)", paths, want, err)
	}

	c = DefaultConfig()
	c.Webhook.URL = "https://x.test/"
	c.Webhook.Secret = "a"
	c.Webhook.SecretFile = "/b"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "webhook.secret_file: set either") {
		t.Errorf("both secrets: %v", err)
	}
	c = DefaultConfig()
	c.Fsync = FsyncInterval
	c.FsyncInterval = 0
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "fsync_interval") {
		t.Errorf("fsync_interval 0: %v", err)
	}
	if _, err := New(c, "x", nil); err == nil {
		t.Error("New accepted an invalid config")
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"4096": 4096, "64MiB": 64 << 20, "512 KiB": 512 << 10, "1GiB": 1 << 30,
		"10MB": 10e6, "2K": 2048, "7B": 7} {
		var b ByteSize
		if err := b.UnmarshalText([]byte(in)); err != nil || b != want {
			t.Errorf("%q: %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5MiB", "lots", "99999999999GiB"} {
		var b ByteSize
		if err := b.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("%q accepted as %d", in, b)
		}
	}
	if s := ByteSize(64 << 20).String(); s != "64MiB" {
		t.Errorf("String = %s", s)
	}
}

func TestSecretIsRedacted(t *testing.T) {
	c := DefaultConfig()
	c.Webhook.Secret = "hunter2"
	var sb strings.Builder
	logger := slog.New(slog.NewJSONHandler(&sb, nil))
	logger.Info("cfg", "webhook", c.Webhook, "secret", c.Webhook.Secret)
	logger.Info("cfg", "text", fmt.Sprintf("%v %+v %#v %s", c, c.Webhook, c.Webhook, c.Webhook.Secret))
	j, _ := json.Marshal(c)
	y, _ := yaml.Marshal(c)
	for name, out := range map[string]string{"slog/fmt": sb.String(), "json": string(j), "yaml": string(y)} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("%s shows the secret: %s", name, out)
		}
		if !strings.Contains(out, "[redacted]") {
			t.Errorf("%s does not show the placeholder: %s", name, out)
		}
	}
}
