package watch

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunSettlesAndMatches: a burst of writes to a matched file runs fn
// once it settles; changes to other files do not; a directory made later
// under a recursive watch is watched too.
func TestRunSettlesAndMatches(t *testing.T) {
	dir := t.TempDir()
	want := filepath.Join(dir, "users.htpasswd")
	var runs atomic.Int32
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Dirs: []string{dir}, Recursive: true, Delay: 50 * time.Millisecond,
			Match: func(p string) bool { return filepath.Base(p) != "ignored.txt" }}, func() { runs.Add(1) })
	}()
	// waitFor retries cond (which writes) until it holds. Each write
	// restarts the quiet time, so the pause between tries is longer than
	// the delay, and doubles: a loaded machine gets more time.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		pause := 200 * time.Millisecond
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(pause)
			pause = min(2*pause, 5*time.Second)
		}
	}
	waitFor("a write to be seen", func() bool {
		os.WriteFile(want, []byte("alice:x\n"), 0o600)
		return runs.Load() > 0
	})
	// Let the rewrites above settle: fn stops running once they do.
	settled := func() int32 {
		for {
			n := runs.Load()
			time.Sleep(300 * time.Millisecond)
			if runs.Load() == n {
				return n
			}
		}
	}
	// Unmatched changes never run it.
	base := settled()
	for range 5 {
		os.WriteFile(filepath.Join(dir, "ignored.txt"), []byte("x"), 0o600)
	}
	time.Sleep(300 * time.Millisecond)
	if runs.Load() != base {
		t.Errorf("an unmatched file ran fn")
	}
	// A directory made later is watched.
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o700)
	waitFor("a write in a new subdirectory to be seen", func() bool {
		os.WriteFile(filepath.Join(sub, "policy.rego"), []byte("package x\n"), 0o600)
		return runs.Load() > base
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
