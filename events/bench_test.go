package events

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// BenchmarkEmit measures the proxy's cost of reporting a block: encode and
// queue, with the writer spooling concurrently under each fsync mode.
func BenchmarkEmit(b *testing.B) {
	for _, mode := range []FsyncMode{FsyncInterval, FsyncAlways, FsyncNever} {
		b.Run(string(mode), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.DataDir = b.TempDir()
			cfg.Fsync = mode
			p, err := New(cfg, "bench", slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			if err := p.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			ev := testEvent("jsmith", "gambling", "high")
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := p.Emit(ctx, ev); err != nil {
						b.Fatal(err)
					}
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := p.Close(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if st := p.Stats(); st.Spooled != st.Emitted {
				b.Fatalf("spooled %d of %d", st.Spooled, st.Emitted)
			}
		})
	}
}

// BenchmarkDeliverWebhook measures spool-to-webhook throughput (events per
// second through a real HTTP receiver on loopback) at the default batch
// size.
func BenchmarkDeliverWebhook(b *testing.B) {
	rcv := &receiver{secret: []byte(testSecret), counts: map[string]int{}}
	rcv.srv = newBenchServer(b, rcv)
	cfg := DefaultConfig()
	cfg.DataDir = b.TempDir()
	cfg.Webhook.URL, cfg.Webhook.Secret = rcv.srv.URL, testSecret
	p, err := New(cfg, "bench", slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ev := testEvent("jsmith", "gambling", "high")
	for i := 0; i < b.N; i++ {
		ev.ID = ""
		if err := p.Emit(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
		if (i+1)%cfg.QueueSize == 0 {
			break
		}
	}
	b.ResetTimer()
	if err := p.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	for i := cfg.QueueSize; i < b.N; i++ {
		ev.ID = ""
		if err := p.Emit(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
	}
	for rcv.unique() < b.N {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p.Close(ctx)
}
