// Package testcore builds the real decision core for other packages'
// tests: the built-in policies and the default lists (read from the shared
// test data through lists.mirror, never from the internet), plus extra test
// names per category, so that tests can point real-looking names at local
// servers and get the verdicts the product would give.
package testcore

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aupguard/aupguard/categories"
	"github.com/aupguard/aupguard/categories/modeltrain"
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
	// Model is the domain-name model's trainer (NewWithModel only).
	Model *modeltrain.Trainer
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

// NewWithModel is New with the domain-name model in the decider, trained
// from the default lists of the mirror (without the extra names, so that
// the model is trained once per test process and shared: training takes
// seconds).
func NewWithModel(t testing.TB, extra map[string][]string) *Core {
	t.Helper()
	return buildWith(t, extra, ephemeralPortsData(t), SharedModel(t))
}

var model struct {
	once sync.Once
	tr   *modeltrain.Trainer
	err  error
}

// SharedModel returns a Trainer holding a model of the default lists of
// the mirror, trained on first use.
func SharedModel(t testing.TB) *modeltrain.Trainer {
	t.Helper()
	data := testutil.SharedData(t)
	model.once.Do(func() {
		cfg := categories.DefaultConfig()
		cfg.Mirror, cfg.SampleNames = data, modeltrain.DefaultSampleNames
		ix, errs := categories.Build(context.Background(), cfg, slog.New(slog.DiscardHandler))
		if len(errs) > 0 {
			model.err = errors.Join(errs...)
			return
		}
		model.tr = modeltrain.New(modeltrain.Options{})
		_, model.err = model.tr.Train(context.Background(), ix)
	})
	if model.err != nil {
		t.Fatalf("testcore: model: %v", model.err)
	}
	return model.tr
}

func build(t testing.TB, extra map[string][]string, policyDir string) *Core {
	t.Helper()
	return buildWith(t, extra, policyDir, nil)
}

func buildWith(t testing.TB, extra map[string][]string, policyDir string, tr *modeltrain.Trainer) *Core {
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
	c := &Core{Engine: eng, Lists: idx, Model: tr}
	opts := verdict.Options{CacheSize: 10000}
	if tr != nil {
		opts.Model = tr
	}
	c.Decider = verdict.NewDecider(eng, c, opts)
	return c
}

// NewDecider is New for callers that only need Decide.
func NewDecider(t testing.TB, extra map[string][]string) *Core { return New(t, extra) }
