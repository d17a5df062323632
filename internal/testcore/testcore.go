// Package testcore builds the real decision core for other packages'
// tests: the built-in policies and the default lists (read from the shared
// test data through lists.mirror, never from the internet), plus extra test
// names per category, so that tests can point real-looking names at local
// servers and get the verdicts the product would give.
package testcore

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aupguard/aupguard/categories"
	"github.com/aupguard/aupguard/internal/testutil"
	"github.com/aupguard/aupguard/policies"
	"github.com/aupguard/aupguard/rego"
	"github.com/aupguard/aupguard/verdict"
)

// Core is the real decision core with its parts exposed for assertions.
type Core struct {
	*verdict.Decider
	Engine *rego.Engine
	Lists  *categories.Index
}

// Current returns the lists, so Core is a verdict.ListSource.
func (c *Core) Current() *categories.Index { return c.Lists }

// New builds the core: built-in policies, the default lists from the
// mirror, and, for each category in extra, a domain list of the given names
// (source "test-<category>"). Test origins listen on ephemeral ports, so
// the policy data also lets CONNECT tunnels reach ports 1024-65535 (the
// shipped data allows 443 and a few others); NewShipped keeps the data as
// shipped.
func New(t testing.TB, extra map[string][]string) *Core {
	t.Helper()
	return build(t, extra, ephemeralPortsData(t))
}

// NewEdited is New with further edits to data.yaml: each pair replaces
// the first occurrence of its old text with its new text (a test group, a
// never-intercept entry), and must match.
func NewEdited(t testing.TB, extra map[string][]string, edits ...[2]string) *Core {
	t.Helper()
	dir := ephemeralPortsData(t)
	p := filepath.Join(dir, "data.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range edits {
		if !bytes.Contains(b, []byte(e[0])) {
			t.Fatalf("testcore: policies/data.yaml has no %q to edit", e[0])
		}
		b = bytes.Replace(b, []byte(e[0]), []byte(e[1]), 1)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return build(t, extra, dir)
}

// NewShipped is New with the policy data exactly as shipped.
func NewShipped(t testing.TB, extra map[string][]string) *Core {
	t.Helper()
	return build(t, extra, "")
}

// ephemeralPortsData writes an admin policy directory whose data.yaml is
// the shipped one with the test origins' ports added to connect_ports.
func ephemeralPortsData(t testing.TB) string {
	t.Helper()
	b, err := fs.ReadFile(policies.FS, "data.yaml")
	if err != nil {
		t.Fatalf("testcore: %v", err)
	}
	const shipped = "  connect_ports: [443, 8443, 5223, 5228]\n"
	if !bytes.Contains(b, []byte(shipped)) {
		t.Fatalf("testcore: policies/data.yaml has no line %q to extend", shipped)
	}
	b = bytes.Replace(b, []byte(shipped), []byte("  connect_ports: [443, 8443, 5223, 5228, \"1024-65535\"]\n"), 1)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func build(t testing.TB, extra map[string][]string, policyDir string) *Core {
	t.Helper()
	ctx := context.Background()
	cfg := categories.DefaultConfig()
	cfg.Mirror = testutil.SharedData(t)
	dir := t.TempDir()
	for cat, names := range extra {
		p := filepath.Join(dir, cat+".txt")
		if err := os.WriteFile(p, []byte(strings.Join(names, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg.Sources = append(cfg.Sources, categories.Source{Name: "test-" + cat, Category: cat, Format: "domains", Path: p})
	}
	log := slog.New(slog.DiscardHandler)
	idx, errs := categories.Build(ctx, cfg, log)
	if len(errs) > 0 {
		t.Fatalf("testcore: lists: %v", errs)
	}
	eng, err := rego.New(ctx, rego.Options{Builtin: policies.FS, Dir: policyDir, Logger: log})
	if err != nil {
		t.Fatalf("testcore: policies: %v", err)
	}
	c := &Core{Engine: eng, Lists: idx}
	c.Decider = verdict.NewDecider(eng, c, verdict.Options{CacheSize: 10000})
	return c
}

// NewDecider is New for callers that only need Decide.
func NewDecider(t testing.TB, extra map[string][]string) *Core { return New(t, extra) }
