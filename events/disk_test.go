//go:build linux

package events

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// prerequisite skips a test that cannot run here, saying why; under CI
// (env CI set) it fails instead, so a missing prerequisite is not a pass.
func prerequisite(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set and a prerequisite is missing: "+format, args...)
	}
	t.Skipf(format, args...)
}

// smallDisk mounts a tmpfs of the given size (such as "256k") and
// unmounts it at cleanup. It needs root.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		prerequisite(t, "mounting a %s tmpfs to fill needs root", size)
	}
	mnt := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size="+size+",mode=0700"); err != nil {
		prerequisite(t, "cannot mount a %s tmpfs (a container without CAP_SYS_ADMIN?): %v", size, err)
	}
	// Cleanups run last-in first-out: this one runs after the pipeline's
	// Close and before TempDir removes the mount point.
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", mnt, err)
		}
	})
	return mnt
}

// fill writes a file in dir until the file system is full, then gives
// back leave bytes, and returns the file's path.
func fill(t *testing.T, dir string, leave int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	var n int64
	for {
		m, err := f.Write(chunk)
		n += int64(m)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(max(n-leave, 0)); err != nil {
		t.Fatal(err)
	}
	return path
}

// metricValue reads one unlabelled counter or gauge from a collector.
func metricValue(t *testing.T, c prometheus.Collector, name string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if m.Counter != nil {
			return m.Counter.GetValue()
		}
		return m.Gauge.GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// The disk under the spool fills up while events keep coming: the failed
// writes are counted, reported (metric and an error log line), callers are
// told through overflow errors once the queue is full, and when space
// returns every event Emit accepted is written once, whole, and delivered;
// nothing is lost.
func TestSpoolOnFullDiskRecoversEveryAcceptedEvent(t *testing.T) {
	mnt := smallDisk(t, "256k")
	cfg := testConfig(t)
	cfg.DataDir = mnt
	cfg.QueueSize = 64
	cfg.MaxFileSize = 8 << 10 // rotations happen on the full disk too
	logger, logs := newLogger(t)
	p, err := New(cfg, "test-1", logger)
	if err != nil {
		t.Fatal(err)
	}
	sink := newRecSink("store")
	if err := p.AddSink(sink); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeP(t, p) })

	// Room for a few events: the first writes succeed, then one is cut
	// short by ENOSPC, then none fit.
	filler := fill(t, mnt, 6<<10)

	var accepted []string
	overflows := 0
	// Emit until the full disk shows (failed writes counted, callers
	// refused), for at most a while: a pipeline that never reports it
	// fails below.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && (p.Stats().SpoolErrors == 0 || overflows < 3); {
		ev := testEvent("jsmith", "gambling", "medium")
		ev.ID = NewID()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := p.Emit(ctx, ev)
		cancel()
		switch {
		case err == nil:
			accepted = append(accepted, ev.ID)
		case errors.Is(err, ErrOverflow):
			overflows++
		default:
			t.Fatalf("Emit on a full disk: %v", err)
		}
	}

	// Counted and reported.
	st := p.Stats()
	if st.SpoolErrors == 0 || st.Overflow == 0 || overflows == 0 {
		t.Fatalf("a full disk was not counted: %d overflow errors returned, stats %+v", overflows, st)
	}
	if got := metricValue(t, p.Collector(), "aupguard_events_spool_errors_total"); got < 1 {
		t.Errorf("aupguard_events_spool_errors_total = %v", got)
	}
	if got := metricValue(t, p.Collector(), "aupguard_events_overflow_total"); got < 1 {
		t.Errorf("aupguard_events_overflow_total = %v", got)
	}
	for _, want := range []string{"level=ERROR msg=\"events: spool write failed; holding the events and retrying\"", "no space left on device",
		"level=ERROR msg=\"events: queue full, events are being refused"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if st.Spooled >= uint64(len(accepted)) {
		t.Fatalf("all %d accepted events were written although the disk was full: %+v", len(accepted), st)
	}

	// Space returns: everything accepted reaches the spool and the sink.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the held events to be written", func() bool {
		s := p.Stats()
		return s.Queued == 0 && s.Spooled == uint64(len(accepted))
	})
	marker := testEvent("jsmith", "gambling", "medium")
	marker.ID = NewID()
	if err := p.EmitDurable(context.Background(), marker); err != nil {
		t.Fatalf("EmitDurable after space returned: %v", err)
	}
	eventually(t, "the sink to read to the end", func() bool { return sink.count(marker.ID) > 0 })

	ids, bad := spoolContents(t, p.Dir())
	if len(bad) > 0 {
		t.Errorf("spool lines that are not whole events: %v", bad)
	}
	if lost := notExactlyOnce(t, ids, sink, accepted, "accepted"); lost > 0 {
		t.Errorf("%d of %d accepted events not written and delivered exactly once", lost, len(accepted))
	}
	if len(ids) != len(accepted)+1 {
		t.Errorf("spool holds %d events, want the %d accepted and the marker", len(ids), len(accepted))
	}
	st = p.Stats()
	if st.Lost != 0 || st.Sinks["store"].CorruptLines != 0 {
		t.Errorf("after recovery: %+v", st)
	}
	t.Logf("%d events accepted, %d refused while full; %d failed writes; %d spool files", len(accepted), overflows, st.SpoolErrors, st.SpoolFiles)
}
