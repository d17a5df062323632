package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"github.com/aupguard/aupguard/internal/testutil"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// smokeRecord is the part of a bench/run.sh result record the smoke test
// checks.
type smokeRecord struct {
	Area   string  `json:"area"`
	Test   string  `json:"test"`
	Peer   string  `json:"peer"`
	Rate   float64 `json:"rate"`
	MBps   float64 `json:"mbps"`
	Errors int64   `json:"errors"`
	Note   string  `json:"note"`
}

// TestSmoke runs `bench/run.sh --smoke`: aupguard and the bare goproxy
// ceiling, built from this tree, each measured for a couple of seconds
// for plain HTTP, tunnel set-up and tunnel throughput, through the same
// local origin. It checks that every measurement happened and moved
// traffic without errors — the harness works end to end — and never
// judges the numbers: they depend on the machine.
//
// It runs when AUPGUARD_BENCH_SMOKE=1 or when wrk is installed (CI
// installs it), and needs bash and curl; it takes about 30 s plus the
// build of cmd/aupguard.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark smoke run skipped in -short mode")
	}
	for _, tool := range []string{"bash", "curl", "go", "wrk"} {
		_, err := exec.LookPath(tool)
		testutil.Require(t, err == nil, "benchmark smoke run needs %s (.ci/run installs it): %v", tool, err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "run.sh", "--smoke", "--dir", dir)
	// run.sh stops what it started from its EXIT trap, which SIGTERM
	// reaches and SIGKILL would not; its own process group lets the test
	// clean up should the script hang anyway.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	out, err := cmd.CombinedOutput()
	if cmd.Process != nil {
		// Nothing of the group should be left; if something is, end it.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil {
		t.Fatalf("run.sh --smoke: %v\n%s", err, tail(string(out), 60))
	}
	recs := readResults(t, filepath.Join(dir, "results.jsonl"))
	want := []struct {
		test      string
		bytesOnly bool
	}{{"http-1k", false}, {"connect-rate", false}, {"tunnel-stream", true}}
	for _, peer := range []string{"aupguard", "bare-goproxy"} {
		for _, w := range want {
			r, ok := recs[peer+"/"+w.test]
			switch {
			case !ok:
				t.Errorf("%s %s: no result\n%s", peer, w.test, tail(string(out), 40))
			case r.Errors != 0:
				t.Errorf("%s %s: %d errors (%s)", peer, w.test, r.Errors, r.Note)
			case w.bytesOnly && r.MBps <= 0:
				t.Errorf("%s %s: no bytes moved", peer, w.test)
			case !w.bytesOnly && r.Rate <= 0:
				t.Errorf("%s %s: no requests completed", peer, w.test)
			}
		}
	}
	report, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"### http-1k", "aupguard ÷ peer", "## targets"} {
		if !strings.Contains(string(report), s) {
			t.Errorf("report.md lacks %q:\n%s", s, report)
		}
	}
}

func readResults(t *testing.T, path string) map[string]smokeRecord {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs := map[string]smokeRecord{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		var r smokeRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		recs[r.Peer+"/"+r.Test] = r
	}
	if err := sc.Err(); err != nil && !errors.Is(err, os.ErrClosed) {
		t.Fatal(err)
	}
	return recs
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
