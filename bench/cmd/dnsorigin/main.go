// Command dnsorigin is the benchmarks' DNS upstream: an authoritative
// server that answers every name (A with a documentation address, AAAA
// likewise, other types with an empty answer and an SOA), so every resolver
// under test forwards to the same, predictable upstream and caches the same
// TTL.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:15300", "UDP and TCP listen address")
	ttl := flag.Duration("ttl", time.Hour, "TTL of every answer")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen, *ttl); err != nil {
		log.Error("dnsorigin", "err", err)
		os.Exit(1)
	}
}

// answerer builds the replies; it is stateless apart from the TTL.
type answerer struct {
	ttl uint32
	a   net.IP
	aaa net.IP
}

func (h answerer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		m.SetRcode(req, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	m.SetReply(req)
	m.Authoritative = true
	q := req.Question[0]
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: h.ttl}
	switch q.Qtype {
	case dns.TypeA:
		hdr.Rrtype = dns.TypeA
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: h.a})
	case dns.TypeAAAA:
		hdr.Rrtype = dns.TypeAAAA
		m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: h.aaa})
	default:
		m.Ns = append(m.Ns, &dns.SOA{
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: h.ttl},
			Ns:  "ns.bench.invalid.", Mbox: "hostmaster.bench.invalid.",
			Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: h.ttl,
		})
	}
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(max(opt.UDPSize(), dns.MinMsgSize), false)
	}
	_ = w.WriteMsg(m)
}

func run(ctx context.Context, listen string, ttl time.Duration) error {
	h := answerer{ttl: uint32(ttl / time.Second), a: net.IPv4(192, 0, 2, 10).To4(), aaa: net.ParseIP("2001:db8::10")}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", listen)
	if err != nil {
		return fmt.Errorf("udp listen: %w", err)
	}
	ln, err := lc.Listen(ctx, "tcp", listen)
	if err != nil {
		_ = pc.Close()
		return fmt.Errorf("tcp listen: %w", err)
	}
	servers := []*dns.Server{
		{PacketConn: pc, Handler: h},
		{Listener: ln, Handler: h},
	}
	var wg sync.WaitGroup
	errc := make(chan error, len(servers))
	for _, s := range servers {
		wg.Go(func() {
			if err := s.ActivateAndServe(); err != nil && !errors.Is(err, net.ErrClosed) {
				errc <- err
			}
		})
	}
	fmt.Printf("dns %s\n", pc.LocalAddr())
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.ShutdownContext(sctx)
	}
	wg.Wait()
	return serveErr
}
