// Package loadgen is the measuring loop shared by the benchmarks' Go load
// clients: workers repeat an operation for a warm-up and then a measured
// window; only operations that finish inside the window count, and their
// latencies give the percentiles.
package loadgen

import (
	"context"
	"encoding/json"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one operation (a request, a tunnel set-up). It returns the bytes
// it moved (for throughput) and an error when it failed; a failed
// operation counts as an error, not as a latency.
type Op func(ctx context.Context) (bytes int64, err error)

// Result is what a run measured.
type Result struct {
	// Rate is completed operations per second in the measured window.
	Rate float64 `json:"rate"`
	// P50Ms and P99Ms are latency percentiles in milliseconds.
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	// MBps is payload megabytes (10^6) per second.
	MBps float64 `json:"mbps"`
	// Ops and Errors are counts in the measured window.
	Ops    int64 `json:"ops"`
	Errors int64 `json:"errors"`
	// FirstError describes the first failure, to say why errors happened.
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"`
}

// Run drives workers copies of newOp's operation: warm-up first (nothing
// recorded), then the measured window. Each worker gets its own Op so it
// can keep per-connection state. Run returns when the window ends or ctx
// is cancelled.
func Run(ctx context.Context, workers int, warmup, window time.Duration, newOp func() Op) Result {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var measuring atomic.Bool
	var wg sync.WaitGroup
	lat := make([][]time.Duration, workers)
	bytes := make([]int64, workers)
	errs := make([]int64, workers)
	var firstErr atomic.Value
	for w := range workers {
		op := newOp()
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				n, err := op(ctx)
				if !measuring.Load() || ctx.Err() != nil {
					continue
				}
				if err != nil {
					errs[w]++
					firstErr.CompareAndSwap(nil, err.Error())
					// A peer that refuses everything must not turn the
					// worker into a busy loop.
					time.Sleep(time.Millisecond)
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
				bytes[w] += n
			}
		})
	}
	sleep(ctx, warmup)
	start := time.Now()
	measuring.Store(true)
	sleep(ctx, window)
	measuring.Store(false)
	took := time.Since(start)
	cancel()
	wg.Wait()

	var all []time.Duration
	var r Result
	for w := range workers {
		all = append(all, lat[w]...)
		r.Errors += errs[w]
		r.MBps += float64(bytes[w])
	}
	slices.Sort(all)
	r.Ops = int64(len(all))
	r.Seconds = took.Seconds()
	r.Rate = float64(r.Ops) / r.Seconds
	r.MBps = r.MBps / 1e6 / r.Seconds
	r.P50Ms = pct(all, 0.50)
	r.P99Ms = pct(all, 0.99)
	if s, ok := firstErr.Load().(string); ok {
		r.FirstError = s
	}
	return r
}

func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return float64(sorted[i]) / float64(time.Millisecond)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Print writes r as one JSON object, the format bench/run.sh records.
func Print(w io.Writer, r Result) error {
	return json.NewEncoder(w).Encode(r)
}
