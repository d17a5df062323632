package dnsfilter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"
)

// stopWithin is how long a cancelled start-up, or a shutdown with a
// deadline, may take before the test calls it a hang. The server's own
// bounds are far shorter; this only leaves room for a loaded machine.
const stopWithin = 5 * time.Second

// wrappedPC is a PacketConn that is not a *net.UDPConn, so the server
// gives it miekg/dns's generic UDP server instead of its own reader: both
// kinds of serve loop must stop.
type wrappedPC struct{ net.PacketConn }

// TestCancelledStartReturnsAndFreesPorts cancels Start at many points —
// before it begins, while it binds, while its serve loops are still
// starting — and requires Start to return, Shutdown (after a start that
// won the race) to return, and every port to be free again, each within a
// few seconds. A server whose serve loop started after it was told to
// stop once kept its TCP port open for ever and Shutdown waiting on it.
func TestCancelledStartReturnsAndFreesPorts(t *testing.T) {
	up := startUpstream(t)
	delays := []time.Duration{-1, 0, 10 * time.Microsecond, 50 * time.Microsecond, 200 * time.Microsecond,
		time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond}
	for _, inherited := range []bool{true, false} {
		for _, delay := range delays {
			for round := range 8 {
				name := fmt.Sprintf("inherited=%v/delay=%v/%d", inherited, delay, round)
				cfg := testConfig(up.addr)
				opts := Options{Decider: realCore(t), Identifier: loopbackLearners, Logger: quietLogger()}
				if inherited {
					pcs, ls, err := listen(context.Background(), "127.0.0.1:0", 2)
					if err != nil {
						t.Fatal(err)
					}
					pcs[1] = wrappedPC{pcs[1]}
					opts.PacketConns, opts.Listeners = pcs, ls
				}
				s, err := New(cfg, opts)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				switch {
				case delay < 0:
					cancel() // cancelled before Start is even called
				case delay == 0:
					go cancel()
				default:
					time.AfterFunc(delay, cancel)
				}
				startErr := make(chan error, 1)
				go func() { startErr <- s.Start(ctx) }()
				var started error
				select {
				case started = <-startErr:
				case <-time.After(stopWithin):
					t.Fatalf("%s: Start still running %v after its context was cancelled", name, stopWithin)
				}
				cancel()
				if started == nil {
					shutdownWithin(t, name, s)
				} else if !errors.Is(started, context.Canceled) {
					t.Errorf("%s: Start: %v, want a cancellation", name, started)
				}
				udp, tcp := s.Addr()
				requireFree(t, name, udp, tcp)
				// Shutdown after a cancelled start is harmless and quick.
				shutdownWithin(t, name, s)
			}
		}
	}
}

// shutdownWithin calls Shutdown with a deadline and requires it to come
// back soon after.
func shutdownWithin(t *testing.T, name string, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stopWithin/2)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s: Shutdown: %v", name, err)
		}
	case <-time.After(stopWithin):
		t.Fatalf("%s: Shutdown with a %v deadline still running after %v", name, stopWithin/2, stopWithin)
	}
}

// requireFree waits until the addresses can be bound again: nothing of
// the server holds them any more.
func requireFree(t *testing.T, name string, udp, tcp net.Addr) {
	t.Helper()
	deadline := time.Now().Add(stopWithin)
	for _, a := range []net.Addr{udp, tcp} {
		if a == nil {
			continue
		}
		for {
			var err error
			if a == tcp {
				var l net.Listener
				if l, err = net.Listen("tcp", a.String()); err == nil {
					_ = l.Close()
				}
			} else {
				var pc net.PacketConn
				if pc, err = net.ListenPacket("udp", a.String()); err == nil {
					_ = pc.Close()
				}
			}
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s %s still in use %v after the server stopped: %v", name, a.Network(), a, stopWithin, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
