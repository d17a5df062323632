package categories

import (
	"bufio"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aupguard/aupguard/internal/testutil"
)

// defaultIndex builds the default sources, read from the shared data as
// a mirror, once per test binary.
func defaultIndex(tb testing.TB) *Index {
	tb.Helper()
	data := testutil.SharedData(tb)
	defaultOnce.Do(func() {
		defaultIx, defaultErrs = Build(context.Background(), Config{Defaults: true, Mirror: data}, nil)
	})
	if len(defaultErrs) > 0 {
		tb.Fatalf("default sources: %v", defaultErrs)
	}
	return defaultIx
}

func BenchmarkLookup(b *testing.B) {
	ix := defaultIndex(b)
	cases := []struct{ name, host string }{
		{"hit", "pokerstars.com"},
		{"hit-www", "www.pokerstars.com"},
		{"miss", "www.example-school.ac.uk"},
		{"deep-subdomain", "a.b.c.d.e.f.cdn.static.pokerstars.com"},
		{"deep-miss", "a.b.c.d.e.f.g.h.i.j.example.org"},
		{"uppercase-port", "WWW.PokerStars.COM:443"},
		{"ipv4", "178.128.25.172"},
		{"multi-list", "www.facebook.com"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = ix.Lookup(c.host)
			}
		})
	}
}

func BenchmarkLookupURL(b *testing.B) {
	ix := defaultIndex(b)
	cases := []struct{ name, host, path string }{
		{"host-hit", "www.pokerstars.com", "/poker/index.html"},
		{"url-hit", "178.128.25.172", "/watch/123"},
		{"miss", "www.example-school.ac.uk", "/courses/maths/week1?x=1"},
		{"many-rules-host", "docs.google.com", "/forms/d/e/1FAIpQLSdy/viewform?usp=sf_link"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = ix.LookupURL(c.host, c.path)
			}
		})
	}
}

// writeGeneratedList writes n distinct, realistic-looking domains (2 to 4
// labels, a spread of TLDs) and returns the path and one listed name.
func writeGeneratedList(tb testing.TB, n int) (string, string) {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "generated-domains.txt")
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	tlds := []string{"com", "net", "org", "info", "co.uk", "de", "fr", "xyz", "io", "ru"}
	words := []string{"casino", "bet", "poker", "slots", "stream", "free", "movie", "game", "cdn", "shop", "news", "tube"}
	var line []byte
	var sample string
	w.WriteString("# generated test list\n")
	for i := range n {
		line = line[:0]
		if i%3 == 0 {
			line = append(line, words[r.IntN(len(words))]...)
			line = append(line, '.')
		}
		line = append(line, words[r.IntN(len(words))]...)
		line = append(line, '-')
		line = strconv.AppendInt(line, int64(i), 36)
		line = append(line, '.')
		line = append(line, tlds[r.IntN(len(tlds))]...)
		if i == n/2 {
			sample = string(line)
		}
		line = append(line, '\n')
		w.Write(line)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return p, sample
}

// peakRSS resets the kernel's high-water mark (Linux clear_refs "5") and
// returns a function reading VmHWM in MiB; ok is false where unsupported.
func peakRSS() (read func() float64, ok bool) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return nil, false
	}
	return func() float64 {
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return 0
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmHWM:") {
				kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
				return kb / 1024
			}
		}
		return 0
	}, true
}

type build5MResult struct {
	seconds, cpuSeconds, peakMiB, heapMiB float64
	ix                                    *Index
	sample                                string
}

// build5M builds an index of a generated 5-million-domain list and
// measures the wall time, the peak RSS during the build and the live heap
// after it.
func build5M(tb testing.TB) build5MResult {
	tb.Helper()
	path, sample := writeGeneratedList(tb, 5_000_000)
	runtime.GC()
	debug.FreeOSMemory()
	read, ok := peakRSS()
	cfg := Config{Sources: []Source{{Name: "generated", Category: "gambling", Format: FormatDomains, Path: path}}}
	cpu0 := cpuTime()
	start := time.Now()
	ix, errs := Build(context.Background(), cfg, nil)
	secs := time.Since(start).Seconds()
	cpu := cpuTime() - cpu0
	if len(errs) > 0 {
		tb.Fatal(errs)
	}
	res := build5MResult{seconds: secs, cpuSeconds: cpu, ix: ix, sample: sample}
	if ok {
		res.peakMiB = read()
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.heapMiB = float64(ms.HeapAlloc) / (1 << 20)
	return res
}

var big struct {
	once sync.Once
	res  build5MResult
}

func bigIndex(tb testing.TB) build5MResult {
	big.once.Do(func() { big.res = build5M(tb) })
	return big.res
}

// cpuTime is the process's user+system CPU time in seconds: on a shared
// machine it says more about the build's cost than wall time does.
func cpuTime() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// BenchmarkBuild5M reports the build of a generated 5-million-domain list:
// s/build (wall time), cpu-s/build (CPU time, all threads), peak-RSS-MiB (VmHWM during the build, the test
// binary included) and live-heap-MiB (after the build, index included).
func BenchmarkBuild5M(b *testing.B) {
	var last build5MResult
	for b.Loop() {
		last = build5M(b)
	}
	b.ReportMetric(last.seconds, "s/build")
	b.ReportMetric(last.cpuSeconds, "cpu-s/build")
	b.ReportMetric(last.peakMiB, "peak-RSS-MiB")
	b.ReportMetric(last.heapMiB, "live-heap-MiB")
}

func BenchmarkLookup5M(b *testing.B) {
	res := bigIndex(b)
	cases := []struct{ name, host string }{
		{"hit", res.sample},
		{"hit-subdomain", "www.cdn." + res.sample},
		{"miss", "www.example-school.ac.uk"},
		{"deep-miss", "a.b.c.d.e.f.g.h.not-listed.example.com"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = res.ix.Lookup(c.host)
			}
		})
	}
}

// TestBuild5MBudget holds the index to its memory budget: a generated
// 5-million-domain list loads within 200 MiB peak RSS. (Its time is
// reported by BenchmarkBuild5M, not asserted.)
func TestBuild5MBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 5-million-domain list")
	}
	res := bigIndex(t)
	t.Logf("5M domains: %.2fs (%.2fs CPU), peak RSS %.0f MiB, live heap %.0f MiB, %d entries", res.seconds, res.cpuSeconds, res.peakMiB, res.heapMiB, res.ix.Len())
	seedOnly, _ := Build(t.Context(), Config{}, nil)
	if res.ix.Len() != 5_000_000+seedOnly.Len() {
		t.Errorf("Len = %d, want 5000000 + the seed's %d", res.ix.Len(), seedOnly.Len())
	}
	if res.peakMiB > 200 {
		t.Errorf("peak RSS %.0f MiB, budget 200 MiB", res.peakMiB)
	}
	if !res.ix.Lookup("www." + res.sample).Has("gambling") {
		t.Errorf("%s not found", res.sample)
	}
	if res.ix.Lookup("not-listed.example").Has("gambling") {
		t.Error("unlisted name matched")
	}
}
