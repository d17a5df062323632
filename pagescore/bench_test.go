package pagescore

import (
	"bytes"
	"runtime"
	"sort"
	"testing"
)

// measureCPU reports CPU time per op and the throughput it implies, next
// to the wall-clock figures, which on a loaded machine mostly measure the
// neighbours. Call it before the loop and run the returned func after.
func measureCPU(b *testing.B, bytesPerOp int) func() {
	runtime.LockOSThread()
	c0 := threadCPU()
	return func() {
		cpu := threadCPU() - c0
		runtime.UnlockOSThread()
		if cpu <= 0 {
			return
		}
		perOp := float64(cpu) / float64(b.N)
		b.ReportMetric(perOp, "cpu-ns/op")
		if bytesPerOp > 0 {
			b.ReportMetric(float64(bytesPerOp)/(1<<20)/(perOp/1e9), "cpu-MiB/s")
		}
	}
}

// benchPage is the test pages concatenated and repeated to the default
// cap: a mix of markup, scripts and matching text.
func benchPage(b *testing.B) []byte {
	pages := allPages(b)
	names := make([]string, 0, len(pages))
	for n := range pages {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	for buf.Len() < DefaultMaxBytes {
		for _, n := range names {
			buf.Write(pages[n])
		}
	}
	return buf.Bytes()[:DefaultMaxBytes]
}

// BenchmarkWrite is the cost per byte of page: 256 KiB written in 32 KiB
// chunks (io.Copy's buffer), the run reused.
func BenchmarkWrite(b *testing.B) {
	s := newScorer(b, Options{})
	page := benchPage(b)
	r := s.Start()
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	defer measureCPU(b, len(page))()
	for b.Loop() {
		r.Reset()
		for p := page; len(p) > 0; p = p[min(len(p), 32<<10):] {
			r.Write(p[:min(len(p), 32<<10)])
		}
	}
}

// BenchmarkPage is the whole cost of one page as the proxy would pay it:
// Start, 256 KiB of writes, Result.
func BenchmarkPage(b *testing.B) {
	s := newScorer(b, Options{})
	page := benchPage(b)
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	defer measureCPU(b, len(page))()
	for b.Loop() {
		r := s.Start()
		r.Write(page)
		_ = r.Result()
	}
}

// BenchmarkPlainText is text with no markup, the worst case for the
// matcher (every byte goes through the automaton).
func BenchmarkPlainText(b *testing.B) {
	s := newScorer(b, Options{})
	text := bytes.Repeat([]byte("The quick brown fox reads the news about an online casino and free spins, then goes to the sexual health clinic. "), 2400)[:DefaultMaxBytes]
	r := s.Start()
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	defer measureCPU(b, len(text))()
	for b.Loop() {
		r.Reset()
		r.Write(text)
	}
}

// BenchmarkNew is the cost of compiling the embedded lists (once at start).
func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	defer measureCPU(b, 0)()
	for b.Loop() {
		if _, err := New(Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
