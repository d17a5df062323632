//go:build unix

package events

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// crashChildEnv makes the test binary run crashChild instead of the tests:
// its value is the data directory, crashFsyncEnv the fsync mode.
const (
	crashChildEnv = "AUPGUARD_EVENTS_CRASH_CHILD_DIR"
	crashFsyncEnv = "AUPGUARD_EVENTS_CRASH_CHILD_FSYNC"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		os.Exit(crashChild(dir, FsyncMode(os.Getenv(crashFsyncEnv))))
	}
	os.Exit(m.Run())
}

// crashChild emits events until it is killed: 16 goroutines call
// EmitDurable with events of up to 64 KiB and print "ACK <id>" once it
// returns nil. The writer's batches are then large and back to back, so a
// kill is likely to land inside a write or an fsync; and what the child
// writes is bounded by the acknowledgements the parent waits for.
func crashChild(dir string, mode FsyncMode) int {
	cfg := DefaultConfig()
	cfg.DataDir = dir
	cfg.Fsync = mode
	cfg.FsyncInterval = 5 * time.Millisecond
	cfg.MaxFileSize = 4 << 20
	p, err := New(cfg, "crash-child", quiet())
	if err != nil {
		fmt.Fprintln(os.Stderr, "New:", err)
		return 2
	}
	if err := p.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "Start:", err)
		return 2
	}
	var outMu sync.Mutex
	say := func(s string) {
		outMu.Lock()
		defer outMu.Unlock()
		_, _ = os.Stdout.WriteString(s + "\n")
	}
	say("READY")
	// Each acknowledgement lets the fillers queue two more large events
	// with Emit, so the writer stays busy with big writes while what the
	// child writes stays bounded by what the parent waits for.
	budget := make(chan struct{}, 1024)
	for range 16 {
		go func() {
			for {
				ev := testEvent("jsmith", "gambling", "medium")
				ev.ID = NewID()
				ev.Reason = strings.Repeat("x", rand.N(64<<10))
				if err := p.EmitDurable(context.Background(), ev); err != nil {
					say("ERR " + err.Error())
					continue
				}
				say("ACK " + ev.ID)
				for range 2 {
					select {
					case budget <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	for range 4 {
		go func() {
			for range budget {
				ev := testEvent("jsmith", "gambling", "medium")
				ev.Reason = strings.Repeat("y", rand.N(256<<10))
				_ = p.Emit(context.Background(), ev)
			}
		}()
	}
	select {}
}

// runAndKill starts a crash child on dir, waits for acks acknowledged
// events, kills it with SIGKILL and returns every ID it acknowledged
// before dying.
func runAndKill(t *testing.T, dir string, mode FsyncMode, acks int) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashFsyncEnv+"="+string(mode))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var ids []string
	killed := false
	kill := func() {
		if !killed {
			killed = true
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Errorf("SIGKILL: %v", err)
			}
		}
	}
	deadline := time.After(60 * time.Second)
	for done := false; !done; {
		select {
		case l, ok := <-lines:
			switch {
			case !ok:
				done = true
			case strings.HasPrefix(l, "ACK "):
				// Acknowledgements still in the pipe after the kill were
				// given before it: they count.
				ids = append(ids, strings.TrimPrefix(l, "ACK "))
				if len(ids) >= acks {
					kill()
				}
			case strings.HasPrefix(l, "ERR "):
				t.Errorf("child: EmitDurable failed: %s", l)
			}
		case <-deadline:
			kill()
			t.Errorf("the child acknowledged %d of %d events in time; stderr:\n%s", len(ids), acks, stderr.String())
			deadline = nil
		}
	}
	err = cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the child was not killed by SIGKILL: %v; stderr:\n%s", err, stderr.String())
	}
	return ids
}

// A process emitting events is killed with SIGKILL (no Close, no deferred
// code) while its writer is busy, three times on the same spool: every
// event EmitDurable acknowledged before a kill is in the spool afterwards,
// once, and a restarted pipeline reads it back and delivers it. The torn
// line a kill can leave is skipped, never taken for an event.
func TestSpoolKeepsAcknowledgedEventsAfterSIGKILL(t *testing.T) {
	for _, mode := range []FsyncMode{FsyncAlways, FsyncInterval, FsyncNever} {
		t.Run(string(mode), func(t *testing.T) {
			dir := t.TempDir()
			var acked []string
			const kills = 3
			for i := range kills {
				acked = append(acked, runAndKill(t, dir, mode, 60+20*i)...)
			}

			cfg := testConfig(t)
			cfg.DataDir = dir
			logger, logs := newLogger(t)
			p, err := New(cfg, "test-1", logger)
			if err != nil {
				t.Fatalf("restart after the kills: %v", err)
			}
			sink := newRecSink("store")
			if err := p.AddSink(sink); err != nil {
				t.Fatal(err)
			}
			if err := p.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { closeP(t, p) })
			marker := testEvent("jsmith", "gambling", "medium")
			marker.ID = NewID()
			if err := p.EmitDurable(context.Background(), marker); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the sink to read the whole spool", func() bool { return sink.count(marker.ID) > 0 })

			ids, bad := spoolContents(t, p.Dir())
			if missing := notExactlyOnce(t, ids, sink, acked, "acknowledged"); missing > 0 {
				t.Fatalf("%d of %d acknowledged events not in the spool exactly once after SIGKILL", missing, len(acked))
			}
			corrupt := p.Stats().Sinks["store"].CorruptLines
			if len(bad) > kills || int(corrupt) != len(bad) {
				t.Errorf("%d bad lines in the spool (%v), %d skipped by the reader: want at most one torn line per kill, each skipped", len(bad), bad, corrupt)
			}
			if len(bad) > 0 && !strings.Contains(logs.String(), "skipping bad spool line") {
				t.Errorf("torn lines skipped silently:\n%s", logs.String())
			}
			t.Logf("%d kills: %d acknowledged events, %d events in the spool in all, %d torn lines", kills, len(acked), len(ids), len(bad))
		})
	}
}
