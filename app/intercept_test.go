package app

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aupguard/aupguard/config"
	"github.com/aupguard/aupguard/intercept"
	"github.com/aupguard/aupguard/internal/testutil"
)

// The CA is loaded once at start: without it one Info line says intercept
// decisions are tunnelled untouched; with it interception is on; a CA that
// exists but cannot be used stops the start instead of silently turning
// interception off.
func TestInterceptionWiring(t *testing.T) {
	dataDir := t.TempDir()
	cfg, err := config.Parse("aupguard.yaml", []byte("data_dir: "+dataDir+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	logs := &testutil.SyncBuffer{}
	leaves, refusals, err := interception(cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil || leaves != nil || refusals != nil {
		t.Fatalf("without a CA: %v, %v, %v", leaves, refusals, err)
	}
	if n := strings.Count(logs.String(), "TLS interception off"); n != 1 {
		t.Errorf("%d lines about interception being off, want 1:\n%s", n, logs.String())
	}

	if _, err := intercept.CreateCA(cfg.Intercept.CACert, cfg.Intercept.CAKey, "Northfield", false, time.Now()); err != nil {
		t.Fatal(err)
	}
	leaves, refusals, err = interception(cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil || leaves == nil || refusals == nil {
		t.Fatalf("with a CA: %v, %v, %v", leaves, refusals, err)
	}
	if c, err := leaves.Certificate("www.facebook.com"); err != nil || c.Leaf.Issuer.Organization[0] != "Northfield" {
		t.Errorf("leaf: %v", err)
	}

	if err := os.Chmod(filepath.Join(dataDir, "ca", "ca.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := interception(cfg, slog.New(slog.NewTextHandler(logs, nil))); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a world-readable CA key: %v", err)
	}
}
