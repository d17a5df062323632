package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/aupguard/aupguard/config"
)

// TestStartCancelledQuicklyExits cancels Server.Start at several points of
// start-up, then shuts down as `serve` does after a failed start, and
// requires both to return within a few seconds with the proxy and DNS
// ports free again. A DNS serve loop that started after its shutdown was
// asked for once held `serve` (and ports 3128 and 5353) for ever.
func TestStartCancelledQuicklyExits(t *testing.T) {
	const within = 5 * time.Second
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, delay := range []time.Duration{-1, 0, 100 * time.Microsecond, time.Millisecond, 5 * time.Millisecond} {
		t.Run(fmt.Sprint(delay), func(t *testing.T) {
			yaml := fmt.Sprintf(`data_dir: %s
admin: {listen: ""}
console: {listen: ""}
proxy: {listen: "127.0.0.1:0"}
dns: {enabled: true, listen: "127.0.0.1:0", udp_sockets: 2, upstreams: ["127.0.0.1:9"]}
`, t.TempDir())
			cfg, err := config.Parse("lifecycle.yaml", []byte(yaml))
			if err != nil {
				t.Fatal(err)
			}
			s, err := NewServer(context.Background(), cfg, log)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			switch {
			case delay < 0:
				cancel()
			case delay == 0:
				go cancel()
			default:
				time.AfterFunc(delay, cancel)
			}
			startErr := make(chan error, 1)
			go func() { startErr <- s.Start(ctx) }()
			select {
			case <-startErr:
			case <-time.After(within):
				t.Fatalf("Start still running %v after its context was cancelled", within)
			}
			sctx, scancel := context.WithTimeout(context.Background(), within/2)
			defer scancel()
			stopped := make(chan error, 1)
			go func() { stopped <- s.Shutdown(sctx) }()
			select {
			case err := <-stopped:
				if err != nil {
					t.Errorf("Shutdown: %v", err)
				}
			case <-time.After(within):
				t.Fatalf("Shutdown with a %v deadline still running after %v", within/2, within)
			}
			var addrs []net.Addr
			if a := s.Proxy.Addr(); a != nil {
				addrs = append(addrs, a)
			}
			if udp, tcp := s.DNS.Addr(); udp != nil {
				addrs = append(addrs, udp, tcp)
			}
			for _, a := range addrs {
				if err := bindable(a); err != nil {
					t.Errorf("%s %s still held after Shutdown: %v", a.Network(), a, err)
				}
			}
		})
	}
}

// bindable says whether a can be bound again (nothing holds it).
func bindable(a net.Addr) error {
	if a.Network() == "udp" {
		pc, err := net.ListenPacket("udp", a.String())
		if err == nil {
			_ = pc.Close()
		}
		return err
	}
	l, err := net.Listen("tcp", a.String())
	if err == nil {
		_ = l.Close()
	}
	return err
}
