package rego

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aupguard/aupguard/verdict"
)

// exceptionsYAML is what the console writes: one exception for jsmith to
// reach casino.example until the given day.
func exceptionsYAML(user, expires string) string {
	return "aupguard:\n  exceptions:\n    - id: \"EXC-T1\"\n      user: \"" + user + "\"\n      host: \"casino.example\"\n      expires: \"" + expires + "\"\n      approved_by: \"dsl\"\n"
}

func casinoFor(t *testing.T, e *Engine, user string) verdict.Decision {
	t.Helper()
	d, err := e.Current().Evaluate(context.Background(), &verdict.Input{
		Source: verdict.SourceProxy, Phase: verdict.PhaseRequest,
		Client:     verdict.Client{User: user, Groups: []string{"learners"}},
		Request:    verdict.Request{Method: "GET", Host: "casino.example", Path: "/"},
		Categories: map[string][]string{"gambling": {"test"}},
		Time:       time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The console's exceptions file is laid over the built-in exceptions.yaml:
// absent at first (the built-in empty list applies), then written, and a
// reload activates it as a new revision.
func TestOverlayExceptionsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console", "exceptions.yaml")
	e, err := New(context.Background(), Options{Builtin: policiesFS(t), Overlays: []string{path}})
	if err != nil {
		t.Fatal(err)
	}
	if d := casinoFor(t, e, "jsmith"); d.Rule != "gambling" {
		t.Fatalf("before any exception: %+v", d)
	}
	before := e.Current().Revision()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(exceptionsYAML("jsmith", "2026-11-30")), 0o600); err != nil {
		t.Fatal(err)
	}
	changed, err := e.Reload(context.Background(), "test")
	if err != nil || !changed {
		t.Fatalf("reload: changed=%v err=%v", changed, err)
	}
	if e.Current().Revision() == before {
		t.Fatal("the overlay is not part of the revision")
	}
	if d := casinoFor(t, e, "jsmith"); d.Action != verdict.ActionAllow || d.Rule != "exception:EXC-T1" {
		t.Fatalf("with the exception: %+v", d)
	}
	if d := casinoFor(t, e, "kjones"); d.Rule != "gambling" {
		t.Fatalf("another learner: %+v", d)
	}
}

// The set's unit tests run without the overlays: an exception for a
// learner who shares a test fixture's name (the gambling tests' learners,
// social_test's jsmith) must not stop its own activation.
func TestOverlayDataDoesNotRunInPolicyTests(t *testing.T) {
	path := filepath.Join(t.TempDir(), "exceptions.yaml")
	// A category exception for the learners group on gambling would make
	// test_gambling_blocked_for_learner fail if the tests saw it.
	data := "aupguard:\n  exceptions:\n    - id: \"EXC-T2\"\n      group: \"learners\"\n      category: \"gambling\"\n      expires: \"2099-12-31\"\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := New(context.Background(), Options{Builtin: policiesFS(t), Overlays: []string{path}})
	if err != nil {
		t.Fatalf("an exception must not fail the policy's own tests: %v", err)
	}
	if d := casinoFor(t, e, ""); d.Rule != "exception:EXC-T2" {
		t.Fatalf("the overlay is not in force: %+v", d)
	}
}

// A change to the overlay file alone wakes the watcher.
func TestWatchReloadsOnOverlayChange(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "exceptions.yaml")
	e, err := New(context.Background(), Options{Builtin: policiesFS(t), Overlays: []string{path}, Debounce: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Watch(ctx) }()
	defer func() { cancel(); <-done }()
	activated := make(chan string, 8)
	e.OnActivate(func(p *Policy) { activated <- p.Revision() })
	// As in TestWatchReloadsOnFileChange: rewrite until the watcher, which
	// registers asynchronously, has seen a change.
	deadline := time.Now().Add(20 * time.Second)
	wait := 2 * e.opts.Debounce
	for i := 0; ; i++ {
		day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i).Format("2006-01-02")
		if err := os.WriteFile(path, []byte(exceptionsYAML("jsmith", day)), 0o600); err != nil {
			t.Fatal(err)
		}
		select {
		case <-activated:
			if d := casinoFor(t, e, "jsmith"); d.Rule != "exception:EXC-T1" {
				t.Fatalf("after the watched reload: %+v", d)
			}
			return
		case <-time.After(wait):
			wait *= 2
		}
		if time.Now().After(deadline) {
			t.Fatal("watcher did not reload after the overlay changed")
		}
	}
}
