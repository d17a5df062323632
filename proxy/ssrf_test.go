package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/aupguard/aupguard/events"
)

// zone is a DNS server on 127.0.0.1 the proxy is configured to resolve
// with (proxy.nameservers), so these tests go through the proxy's real
// resolution path rather than the static hosts map.
type zone struct {
	addr string

	mu      sync.Mutex
	records map[string][]netip.Addr
	// rebind names answer their first A query with first and every later
	// one with then.
	rebind  map[string][2][]netip.Addr
	queries map[string]int // by "name type"
}

func newZone(t *testing.T) *zone {
	t.Helper()
	z := &zone{records: map[string][]netip.Addr{}, rebind: map[string][2][]netip.Addr{}, queries: map[string]int{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z.addr = pc.LocalAddr().String()
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(z.serve)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ActivateAndServe()
	}()
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
	})
	return z
}

// add points name at addrs (A and AAAA records as the addresses are).
func (z *zone) add(name string, addrs ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, a := range addrs {
		z.records[dns.Fqdn(name)] = append(z.records[dns.Fqdn(name)], netip.MustParseAddr(a))
	}
}

// addRebind makes name answer first at its first A query, then after.
func (z *zone) addRebind(name, first, then string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.rebind[dns.Fqdn(name)] = [2][]netip.Addr{{netip.MustParseAddr(first)}, {netip.MustParseAddr(then)}}
}

func (z *zone) count(name string, qtype uint16) int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.queries[dns.Fqdn(name)+" "+dns.TypeToString[qtype]]
}

func (z *zone) serve(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	z.mu.Lock()
	key := name + " " + dns.TypeToString[q.Qtype]
	n := z.queries[key]
	z.queries[key]++
	addrs, known := z.records[name]
	if rb, ok := z.rebind[name]; ok {
		known = true
		addrs = rb[0]
		if q.Qtype == dns.TypeA && n > 0 {
			addrs = rb[1]
		}
	}
	z.mu.Unlock()
	if !known {
		m.Rcode = dns.RcodeNameError
	}
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: 0}
	for _, a := range addrs {
		switch {
		case q.Qtype == dns.TypeA && a.Is4():
			hdr.Rrtype = dns.TypeA
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: a.AsSlice()})
		case q.Qtype == dns.TypeAAAA && a.Is6():
			hdr.Rrtype = dns.TypeAAAA
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
		}
	}
	_ = w.WriteMsg(m)
}

// twin is two origins on the same port: "internal" on 127.0.0.1, which
// every test must fail to reach, and "public" on 127.0.0.2, the stand-in
// for an internet origin (the proxy is configured to allow 127.0.0.2 only,
// since no real public origin can run in a test).
type twin struct {
	port           string
	internalHits   atomic.Int64
	publicHits     atomic.Int64
	internal, publ *httptest.Server
}

func newTwin(t *testing.T) *twin {
	t.Helper()
	tw := &twin{}
	h := func(name string, hits *atomic.Int64) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			// Close after each answer, so every request through the
			// proxy resolves and dials afresh.
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, name)
		})
	}
	for try := 0; ; try++ {
		pl, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Skipf("cannot listen on 127.0.0.2 (loopback is not 127.0.0.0/8 here): %v", err)
		}
		_, port, _ := net.SplitHostPort(pl.Addr().String())
		il, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			pl.Close()
			if try < 20 {
				continue
			}
			t.Fatalf("no port free on both 127.0.0.1 and 127.0.0.2: %v", err)
		}
		tw.port = port
		tw.publ = &httptest.Server{Listener: pl, Config: &http.Server{Handler: h("public", &tw.publicHits)}}
		tw.internal = &httptest.Server{Listener: il, Config: &http.Server{Handler: h("internal", &tw.internalHits)}}
		break
	}
	tw.publ.Start()
	tw.internal.Start()
	t.Cleanup(tw.publ.Close)
	t.Cleanup(tw.internal.Close)
	return tw
}

// ssrfHarness is a proxy resolving through a test zone, in front of a
// twin, allowed to reach 127.0.0.2 and nothing else internal.
func ssrfHarness(t *testing.T) (*harness, *zone, *twin) {
	t.Helper()
	z := newZone(t)
	tw := newTwin(t)
	h := start(t, func(s *setup) {
		s.cfg.Nameservers = []string{z.addr}
		s.cfg.AllowDestinations = []string{"127.0.0.2/32"}
		// Refused destinations are never dialled; this only bounds how
		// long a test waits when a guard is broken and one is.
		s.cfg.Timeouts.Dial = 3 * time.Second
	})
	z.add("public.ssrf.test", "127.0.0.2")
	return h, z, tw
}

// noKeepAlive makes the client open a connection to the proxy per
// request, so each request is its own.
func noKeepAlive(c *http.Client) *http.Client {
	c.Transport.(*http.Transport).DisableKeepAlives = true
	return c
}

// connectStatus asks the proxy for a tunnel to target and returns the
// answer's status and, when the tunnel was refused, its body.
func connectStatus(t *testing.T, h *harness, target string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", h.proxy.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	_, _ = io.WriteString(c, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, ""
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// expectRefused checks that GET u was refused as an internal destination,
// naming why, with an event.
func expectRefused(t *testing.T, h *harness, c *http.Client, u, why string) {
	t.Helper()
	resp := get(t, c, u)
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Internal destination") || !strings.Contains(body, why) {
		t.Errorf("GET %s: status %d, body %q; want 403 internal destination (%s)", u, resp.StatusCode, short(body), why)
		return
	}
	ev := h.emit.byID(t, resp.Header.Get("X-Aupguard-Reference"))
	if ev.Rule != "proxy.destination" || ev.Category != "internal_destination" || ev.Kind != events.KindBlock {
		t.Errorf("GET %s: event %+v", u, ev)
	}
}

// Every range the README lists, named in DNS (A and AAAA records from the
// zone the proxy resolves with) and as literal hosts, is refused. A name
// that resolves to a public address works, so a refusal is the guard's and
// not a resolution failure; for the addresses that lead back to this host
// (loopback, unspecified, mapped and NAT64 forms of them) the internal
// origin is listening, and a broken guard lets the request reach it.
func TestSSRFRangesThroughResolver(t *testing.T) {
	h, z, tw := ssrfHarness(t)
	c := noKeepAlive(h.client(""))

	resp := get(t, c, "http://public.ssrf.test:"+tw.port+"/")
	if body := readAll(t, resp); resp.StatusCode != 200 || body != "public" {
		t.Fatalf("public name: status %d, body %q; the resolution path does not work", resp.StatusCode, short(body))
	}
	if z.count("public.ssrf.test", dns.TypeA) == 0 {
		t.Fatal("the proxy did not ask the configured nameserver")
	}

	cases := []struct {
		name, addr, why string
		// nameOnly: the literal is in a real list (hosts-format lists
		// carry "255.255.255.255 broadcasthost"), so the policy blocks it
		// before any dial; only the name tests the guard.
		nameOnly bool
	}{
		{"loopback", "127.0.0.1", "loopback", false},
		{"loopback-other", "127.3.2.1", "loopback", false},
		{"loopback6", "::1", "loopback", false},
		{"rfc1918-10", "10.1.2.3", "private", false},
		{"rfc1918-172", "172.16.5.4", "private", false},
		{"rfc1918-192", "192.168.1.1", "private", false},
		{"linklocal", "169.254.10.20", "link-local", false},
		{"linklocal6", "fe80::1", "link-local", false},
		{"cgnat", "100.64.0.1", "carrier-grade NAT", false},
		{"cgnat-top", "100.127.255.254", "carrier-grade NAT", false},
		{"metadata", "169.254.169.254", "cloud metadata", false},
		{"metadata6", "fd00:ec2::254", "cloud metadata", false},
		{"unspecified", "0.0.0.0", "unspecified", false},
		{"this-network", "0.1.2.3", "unspecified", false},
		{"unspecified6", "::", "unspecified", false},
		{"multicast", "224.0.0.1", "multicast", false},
		{"multicast-global", "239.1.2.3", "multicast", false},
		{"multicast6", "ff02::1", "multicast", false},
		{"multicast6-global", "ff0e::1", "multicast", false},
		{"ula", "fd12:3456::1", "private", false},
		{"ula-fc", "fc00::1", "private", false},
		{"reserved", "240.0.0.1", "reserved", false},
		{"broadcast", "255.255.255.255", "reserved", true},
		{"benchmarking", "198.18.0.1", "benchmarking", false},
		{"ietf", "192.0.0.8", "IETF", false},
		{"discard6", "100::1", "discard", false},
		{"mapped-loopback", "::ffff:127.0.0.1", "loopback", false},
		{"mapped-unspecified", "::ffff:0.0.0.0", "unspecified", false},
		{"mapped-private", "::ffff:10.0.0.1", "private", false},
		{"mapped-cgnat", "::ffff:100.64.0.1", "carrier-grade NAT", false},
		{"mapped-metadata", "::ffff:169.254.169.254", "cloud metadata", false},
		{"nat64-loopback", "64:ff9b::7f00:1", "NAT64 form of an internal address: loopback", false},
		{"nat64-private", "64:ff9b::a00:1", "NAT64 form of an internal address: private", false},
		{"nat64-metadata", "64:ff9b::a9fe:a9fe", "NAT64 form of an internal address: cloud metadata", false},
		{"nat64-unspecified", "64:ff9b::", "NAT64 form of an internal address: unspecified", false},
		{"nat64-local-use", "64:ff9b:1::a00:1", "local-use NAT64", false},
		{"6to4-loopback", "2002:7f00:1::1", "6to4 form of an internal address: loopback", false},
		{"6to4-metadata", "2002:a9fe:a9fe::1", "6to4 form of an internal address: cloud metadata", false},
	}
	for _, tc := range cases {
		z.add(tc.name+".ssrf.test", tc.addr)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := tc.name + ".ssrf.test"
			expectRefused(t, h, c, "http://"+name+":"+tw.port+"/", tc.why)
			if z.count(name, dns.TypeA)+z.count(name, dns.TypeAAAA) == 0 {
				t.Errorf("%s was not resolved through the configured nameserver", name)
			}
			targets := []string{name + ":" + tw.port}
			if !tc.nameOnly {
				lit := tc.addr
				if strings.Contains(lit, ":") {
					lit = "[" + lit + "]"
				}
				expectRefused(t, h, c, "http://"+lit+":"+tw.port+"/", tc.why)
				targets = append(targets, lit+":"+tw.port)
			}
			// The same through CONNECT, which dials with the same checks.
			for _, target := range targets {
				if status, body := connectStatus(t, h, target); status != http.StatusForbidden || !strings.Contains(body, tc.why) {
					t.Errorf("CONNECT %s: status %d, body %q; want 403 (%s)", target, status, short(body), tc.why)
				}
			}
		})
	}
	if n := tw.internalHits.Load(); n != 0 {
		t.Errorf("the internal origin was reached %d times", n)
	}
}

// A name with both a public and an internal address reaches only the
// public one, whichever order the server gives them in; a name with only
// internal addresses is refused.
func TestSSRFMixedAnswers(t *testing.T) {
	h, z, tw := ssrfHarness(t)
	c := noKeepAlive(h.client(""))
	z.add("internal-first.ssrf.test", "127.0.0.1", "127.0.0.2")
	z.add("public-first.ssrf.test", "127.0.0.2", "127.0.0.1")
	z.add("mapped-internal.ssrf.test", "::ffff:0.0.0.0", "127.0.0.2")
	z.add("all-internal.ssrf.test", "127.0.0.1", "::ffff:0.0.0.0", "::1")
	for _, name := range []string{"internal-first", "public-first", "mapped-internal"} {
		for range 3 {
			resp := get(t, c, "http://"+name+".ssrf.test:"+tw.port+"/")
			if body := readAll(t, resp); resp.StatusCode != 200 || body != "public" {
				t.Errorf("%s: status %d, body %q; want the public origin", name, resp.StatusCode, short(body))
			}
		}
	}
	expectRefused(t, h, c, "http://all-internal.ssrf.test:"+tw.port+"/", "loopback")
	if n := tw.internalHits.Load(); n != 0 {
		t.Errorf("the internal origin was reached %d times", n)
	}
}

// DNS rebinding: a name whose first answer is public and whose every
// later answer is internal. The proxy dials the address it checked (one
// resolution per connection), so the first request reaches the public
// origin, and the next one, resolving afresh, is refused.
func TestSSRFRebinding(t *testing.T) {
	h, z, tw := ssrfHarness(t)
	c := noKeepAlive(h.client(""))

	z.addRebind("rebind.ssrf.test", "127.0.0.2", "127.0.0.1")
	u := "http://rebind.ssrf.test:" + tw.port + "/"
	resp := get(t, c, u)
	if body := readAll(t, resp); resp.StatusCode != 200 || body != "public" {
		t.Fatalf("first request: status %d, body %q; want the public origin it was checked for", resp.StatusCode, short(body))
	}
	if n := z.count("rebind.ssrf.test", dns.TypeA); n != 1 {
		t.Fatalf("%d A queries for one request; want 1 (resolve, check, dial the checked address)", n)
	}
	expectRefused(t, h, c, u, "loopback")

	// The same through a tunnel.
	z.addRebind("rebind-tunnel.ssrf.test", "127.0.0.2", "127.0.0.1")
	target := "rebind-tunnel.ssrf.test:" + tw.port
	conn, err := net.Dial("tcp", h.proxy.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	_, _ = io.WriteString(conn, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n")
	br := bufio.NewReader(conn)
	cr, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || cr.StatusCode != 200 {
		t.Fatalf("CONNECT %s: %v %v", target, cr, err)
	}
	_, _ = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: "+target+"\r\n\r\n")
	tr, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("through the tunnel: %v", err)
	}
	if body := readAll(t, tr); body != "public" {
		t.Fatalf("through the tunnel: %q; want the public origin", short(body))
	}
	if status, body := connectStatus(t, h, target); status != http.StatusForbidden || !strings.Contains(body, "loopback") {
		t.Errorf("second CONNECT %s: %d %q; want 403", target, status, short(body))
	}
	if n := tw.internalHits.Load(); n != 0 {
		t.Errorf("the internal origin was reached %d times", n)
	}
}

func TestNameserversValidated(t *testing.T) {
	for _, ok := range []string{"127.0.0.1", "127.0.0.1:5300", "[::1]:53", "::1", "fe80::1%eth0"} {
		cfg := DefaultConfig()
		cfg.Nameservers = []string{ok}
		if err := cfg.Validate(); err != nil {
			t.Errorf("nameservers [%s]: %v", ok, err)
		}
	}
	for _, bad := range []string{"dns.example", "dns.example:53", "127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1:dns", ""} {
		cfg := DefaultConfig()
		cfg.Nameservers = []string{bad}
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "nameservers[0]") {
			t.Errorf("nameservers [%q] accepted (%v)", bad, err)
		}
	}
}

// The NAT64 and 6to4 forms are refused for what they carry, not for their
// prefix: a public IPv4 address behind them stays reachable, as it is on
// an IPv6-only network with NAT64.
func TestEmbeddedPublicAddressesAllowed(t *testing.T) {
	for _, a := range []string{"64:ff9b::808:808", "64:ff9b::5db8:d822", "2002:808:808::1", "8.8.8.8", "2606:4700::1111"} {
		if why := classify(netip.MustParseAddr(a)); why != "" {
			t.Errorf("%s refused as %q; it is public", a, why)
		}
	}
}
