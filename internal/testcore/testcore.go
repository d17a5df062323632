// Package testcore builds the real decision core for other packages'
// tests: the built-in policies and the default lists (read from the shared
// test data through lists.mirror, never from the internet), plus extra test
// names per category, so that tests can point real-looking names at local
// servers and get the verdicts the product would give.
package testcore

import (
	"context"
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
// mirror, and, for
// each category in extra, a domain list of the given names (source
// "test-<category>").
func New(t testing.TB, extra map[string][]string) *Core {
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
	eng, err := rego.New(ctx, rego.Options{Builtin: policies.FS, Logger: log})
	if err != nil {
		t.Fatalf("testcore: policies: %v", err)
	}
	c := &Core{Engine: eng, Lists: idx}
	c.Decider = verdict.NewDecider(eng, c, verdict.Options{CacheSize: 10000})
	return c
}

// NewDecider is New for callers that only need Decide.
func NewDecider(t testing.TB, extra map[string][]string) *Core { return New(t, extra) }
