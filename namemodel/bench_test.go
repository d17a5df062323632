package namemodel

import (
	"context"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// benchModel is a small model trained on a handful of names: scoring cost
// does not depend on what the weights are.
func benchModel(b *testing.B) *Model {
	ts := TrainingSet{Lists: []List{
		{Source: "g", Category: "gambling", Names: []string{"bestcasino.com", "22bet.com", "slots-win.net"}},
		{Source: "a", Category: "adult", Names: []string{"freeporn.com", "xxxvideos.net"}},
		{Source: "p", Category: "piracy", Names: []string{"thepiratebay.org", "torrentz.eu"}},
		{Source: "b", Category: Benign, Names: []string{"bbc.co.uk", "tesco.com"}},
	}}
	m, err := Train(context.Background(), ts, Options{})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// threadCPU is the CPU time the calling OS thread has used: on a machine
// shared with other builds, wall time per operation says more about the
// neighbours than about the code.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkScore(b *testing.B) {
	m := benchModel(b)
	for _, host := range []string{"bengalwincasino.com", "www.bbc.co.uk", "pin-up-casino-5ion4.cfd", "a.b.c.d.some-very-long-label-with-many-words-in-it.example.co.uk"} {
		b.Run(host, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ReportAllocs()
			c0 := threadCPU()
			for b.Loop() {
				m.Score(host)
			}
			b.ReportMetric(float64(threadCPU()-c0)/float64(b.N), "cpu-ns/op")
		})
	}
}
