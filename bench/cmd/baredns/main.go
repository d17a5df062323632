// Command baredns is miekg/dns's own server at its leanest, as bareproxy
// is goproxy's: the same sockets aupguard binds (one UDP socket per CPU
// with SO_REUSEPORT), a map of blocked names (suffix match, answered
// 0.0.0.0) and a cache of upstream answers kept packed (a hit is a copy of
// bytes and a new ID). No policy, no events, no chain. It was the ceiling
// of aupguard's DNS stack until aupguard's UDP fast path (dnsfilter/udp.go)
// stopped going through miekg/dns's server for repeated questions; the gap
// between it and unbound is what a goroutine, an unpack and a pack per
// query cost.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:15400", "UDP listen address")
	upstream := flag.String("upstream", "127.0.0.1:15300", "upstream resolver")
	block := flag.String("block", "", "file of blocked domains, one per line")
	sockets := flag.Int("sockets", 0, "UDP sockets (SO_REUSEPORT); 0 = one per CPU, as aupguard")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	blocked, err := readList(*block)
	if err != nil {
		log.Error("baredns: -block", "err", err)
		os.Exit(2)
	}
	if err := run(ctx, *listen, *upstream, blocked, *sockets); err != nil {
		log.Error("baredns", "err", err)
		os.Exit(1)
	}
}

func readList(path string) (map[string]struct{}, error) {
	m := map[string]struct{}{}
	if path == "" {
		return m, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		d := strings.TrimSpace(sc.Text())
		if d != "" && d[0] != '#' {
			m[dns.Fqdn(strings.ToLower(d))] = struct{}{}
		}
	}
	return m, sc.Err()
}

type handler struct {
	blocked  map[string]struct{}
	upstream string
	client   *dns.Client

	mu    sync.RWMutex
	cache map[cacheKey]cached
}

type cacheKey struct {
	name  string
	qtype uint16
}

type cached struct {
	packed  []byte
	expires time.Time
}

func (h *handler) isBlocked(name string) bool {
	for {
		if _, ok := h.blocked[name]; ok {
			return true
		}
		i := strings.IndexByte(name, '.')
		if i < 0 || i == len(name)-1 {
			return false
		}
		name = name[i+1:]
	}
}

func (h *handler) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	if h.isBlocked(name) {
		m := new(dns.Msg)
		m.SetReply(req)
		if q.Qtype == dns.TypeA {
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4zero.To4()}}
		}
		_ = w.WriteMsg(m)
		return
	}
	k := cacheKey{name, q.Qtype}
	h.mu.RLock()
	c, ok := h.cache[k]
	h.mu.RUnlock()
	if ok && time.Now().Before(c.expires) {
		b := make([]byte, len(c.packed))
		copy(b, c.packed)
		b[0], b[1] = byte(req.Id>>8), byte(req.Id)
		_, _ = w.Write(b)
		return
	}
	up := new(dns.Msg)
	up.SetQuestion(name, q.Qtype)
	resp, _, err := h.client.Exchange(up, h.upstream)
	if err != nil {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeServerFailure)
		_ = w.WriteMsg(m)
		return
	}
	resp.Id = req.Id
	resp.Question = req.Question
	packed, err := resp.Pack()
	if err != nil {
		return
	}
	ttl := time.Minute
	if len(resp.Answer) > 0 {
		ttl = time.Duration(resp.Answer[0].Header().Ttl) * time.Second
	}
	h.mu.Lock()
	h.cache[k] = cached{packed: packed, expires: time.Now().Add(ttl)}
	h.mu.Unlock()
	_, _ = w.Write(packed)
}

func run(ctx context.Context, listen, upstream string, blocked map[string]struct{}, n int) error {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	h := &handler{blocked: blocked, upstream: upstream, client: &dns.Client{Timeout: 2 * time.Second}, cache: map[cacheKey]cached{}}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	var servers []*dns.Server
	for range n {
		pc, err := lc.ListenPacket(ctx, "udp", listen)
		if err != nil {
			for _, s := range servers {
				_ = s.PacketConn.Close()
			}
			return fmt.Errorf("udp listen: %w", err)
		}
		servers = append(servers, &dns.Server{PacketConn: pc, Handler: h})
	}
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for _, s := range servers {
		wg.Go(func() {
			if err := s.ActivateAndServe(); err != nil && !errors.Is(err, net.ErrClosed) {
				errc <- err
			}
		})
	}
	fmt.Printf("dns %s (%d sockets, %d blocked names)\n", listen, n, len(blocked))
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
