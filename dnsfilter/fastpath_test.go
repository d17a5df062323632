package dnsfilter

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/aupguard/aupguard/events"
)

// The fast path must answer exactly as the full path does. These tests ask
// each question twice (or more): the first answer comes from the chain, the
// repeats from stored replies, and Stats.FastAnswers tells which is which.

// twoGroups serves 127.0.0.1 as a learner and 127.0.0.2 as staff.
type twoGroups struct{}

func (twoGroups) Identify(ip netip.Addr) ([]string, bool) {
	switch ip {
	case netip.MustParseAddr("127.0.0.1"):
		return []string{"learners"}, true
	case netip.MustParseAddr("127.0.0.2"):
		return []string{"staff"}, true
	}
	return nil, false
}

// exchangeFrom asks addr over UDP from the loopback address src.
func exchangeFrom(t testing.TB, src, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: "udp", Timeout: 10 * time.Second, UDPSize: 65535,
		Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(src)}}}
	resp, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("exchange from %s %s: %v", src, m.Question[0].String(), err)
	}
	return resp
}

// same says whether two replies are equal but for their IDs.
func same(a, b *dns.Msg) bool {
	a, b = a.Copy(), b.Copy()
	a.Id, b.Id = 0, 0
	return a.String() == b.String()
}

func TestFastPathAnswersRepeatsLikeTheFullPath(t *testing.T) {
	clock := newFakeClock()
	e := startEnv(t, func(_ *Config, o *Options) { o.Now = clock.Now })
	withDO := func(m *dns.Msg) *dns.Msg { m.SetEdns0(1232, true); return m }
	noRD := func(m *dns.Msg) *dns.Msg { m.RecursionDesired = false; return m }
	withCD := func(m *dns.Msg) *dns.Msg { m.CheckingDisabled = true; return m }
	cases := []struct {
		name string
		req  func() *dns.Msg
	}{
		{"A", func() *dns.Msg { return question("allowed.test", dns.TypeA) }},
		{"AAAA with EDNS", func() *dns.Msg { return edns(question("allowed.test", dns.TypeAAAA), 1232) }},
		{"MX", func() *dns.Msg { return question("allowed.test", dns.TypeMX) }},
		{"TXT with DO", func() *dns.Msg { return withDO(question("allowed.test", dns.TypeTXT)) }},
		{"mixed case", func() *dns.Msg { return question("MaIl.AlLoWeD.TeSt", dns.TypeA) }},
		{"no RD", func() *dns.Msg { return noRD(question("mail.allowed.test", dns.TypeA)) }},
		{"CD", func() *dns.Msg { return withCD(question("long.test", dns.TypeA)) }},
		{"NXDOMAIN", func() *dns.Msg { return edns(question("nothing-here.test", dns.TypeA), 1232) }},
		{"NODATA", func() *dns.Msg { return question("mail.allowed.test", dns.TypeSRV) }},
		{"CNAME chain", func() *dns.Msg { return question("alias.test", dns.TypeAAAA) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			first := exchange(t, "udp", e.udp, c.req())
			before := e.srv.Stats().FastAnswers
			second := exchange(t, "udp", e.udp, c.req())
			if got := e.srv.Stats().FastAnswers - before; got != 1 {
				t.Errorf("repeat: %d fast answers, want 1", got)
			}
			if !same(first, second) {
				t.Errorf("fast answer differs from the full path's:\nfull:\n%s\nfast:\n%s", first, second)
			}
			if second.Question[0].Name != c.req().Question[0].Name {
				t.Errorf("question %q, want the client's %q", second.Question[0].Name, c.req().Question[0].Name)
			}
		})
	}
	// The upstream was asked once per question: the repeats did not reach it.
	if n := e.up.count("allowed.test", dns.TypeA); n != 1 {
		t.Errorf("upstream asked %d times for allowed.test A", n)
	}
}

func TestFastPathBlockRepeatsAreEventsEachTime(t *testing.T) {
	// Without folding (fold_test.go), every repeat is an event.
	e := startEnv(t, func(c *Config, _ *Options) { c.EventFoldWindow = 0 })
	var replies []*dns.Msg
	for range 3 {
		replies = append(replies, exchange(t, "udp", e.udp, edns(question("Casino.Test", dns.TypeA), 1232)))
	}
	for i, r := range replies {
		if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "0.0.0.0" {
			t.Fatalf("reply %d is not the block answer: %s", i, r)
		}
		if x := edeOf(r); x == nil || x.InfoCode != dns.ExtendedErrorCodeBlocked || !strings.Contains(x.ExtraText, "gambling") {
			t.Errorf("reply %d EDE: %v", i, x)
		}
		if i > 0 && !same(replies[0], r) {
			t.Errorf("reply %d differs:\n%s\nvs\n%s", i, replies[0], r)
		}
	}
	if st := e.srv.Stats(); st.FastAnswers != 2 || st.Blocked != 3 {
		t.Errorf("FastAnswers %d, Blocked %d; want 2 and 3", st.FastAnswers, st.Blocked)
	}
	evs := e.rec.waitEvents(t, 3)
	for i, ev := range evs {
		if ev.Kind != events.KindBlock || ev.Host != "casino.test" || ev.QName != "casino.test" || ev.QType != "A" ||
			ev.ClientIP != "127.0.0.1" || ev.Category != "gambling" || ev.Rule == "" || !slices.Equal(ev.Groups, []string{"learners"}) {
			t.Errorf("event %d: %+v", i, ev)
		}
		if i > 0 && (ev.ID == evs[0].ID || ev.Rule != evs[0].Rule || ev.PolicyRevision != evs[0].PolicyRevision) {
			t.Errorf("event %d does not match the first: %+v vs %+v", i, ev, evs[0])
		}
	}
}

func TestFastPathDecidesPerClientAndPerChainName(t *testing.T) {
	e := startEnv(t, func(c *Config, o *Options) {
		o.Identifier = twoGroups{}
		c.EventFoldWindow = 0 // every repeat is an event here
	})
	const learner, staff = "127.0.0.1", "127.0.0.2"

	// Staff may reach alert.test with an alert: every repeat is an alert,
	// through the alias too.
	for range 2 {
		r := exchangeFrom(t, staff, e.udp, question("alert.test", dns.TypeA))
		if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.14" {
			t.Fatalf("staff alert.test: %s", r)
		}
		r = exchangeFrom(t, staff, e.udp, question("via-alert.test", dns.TypeA))
		if len(r.Answer) != 2 {
			t.Fatalf("staff via-alert.test: %s", r)
		}
	}
	evs := e.rec.waitEvents(t, 4)
	for i, ev := range evs {
		if ev.Kind != events.KindAlert || ev.Host != "alert.test" || ev.ClientIP != staff {
			t.Errorf("staff event %d: %+v", i, ev)
		}
	}

	// The same names, now stored, are blocks for a learner: directly and
	// through the alias (whose stored answer staff were given).
	r := exchangeFrom(t, learner, e.udp, question("alert.test", dns.TypeA))
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "0.0.0.0" {
		t.Errorf("learner alert.test: %s", r)
	}
	r = exchangeFrom(t, learner, e.udp, question("via-alert.test", dns.TypeA))
	if x := edeOf(r); x == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 2 {
		t.Errorf("learner got staff's answer through the alias: %s", r)
	}
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "0.0.0.0" {
		t.Errorf("learner via-alert.test: %s", r)
	}
	// The reply goes out before its event is emitted, and the two queries
	// may be served by different sockets, so the events can arrive in
	// either order: match them by the name asked.
	evs = e.rec.waitEvents(t, 6)
	byQName := map[string]events.Event{}
	for _, ev := range evs[4:6] {
		byQName[ev.QName] = ev
	}
	if ev := byQName["alert.test"]; ev.Kind != events.KindBlock || ev.ClientIP != learner || ev.Host != "alert.test" {
		t.Errorf("learner event: %+v (events %+v)", ev, evs[4:6])
	}
	if ev := byQName["via-alert.test"]; ev.Kind != events.KindBlock || ev.ClientIP != learner || ev.Host != "alert.test" {
		t.Errorf("learner CNAME event: %+v (events %+v)", ev, evs[4:6])
	}
	// And staff still get their answer after the learner's blocks.
	r = exchangeFrom(t, staff, e.udp, question("alert.test", dns.TypeA))
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.14" {
		t.Errorf("staff after learner: %s", r)
	}
}

func TestFastPathAgesTTLsAndExpires(t *testing.T) {
	clock := newFakeClock()
	e := startEnv(t, func(_ *Config, o *Options) { o.Now = clock.Now })
	ask := func() *dns.Msg { return exchange(t, "udp", e.udp, question("short.test", dns.TypeA)) }
	if r := ask(); len(r.Answer) != 1 || r.Answer[0].Header().Ttl != 5 {
		t.Fatalf("first: %s", r)
	}
	clock.Add(2 * time.Second)
	if r := ask(); len(r.Answer) != 1 || r.Answer[0].Header().Ttl != 3 {
		t.Errorf("after 2 s: %s", r)
	}
	if st := e.srv.Stats(); st.FastAnswers != 1 {
		t.Errorf("FastAnswers %d, want 1", st.FastAnswers)
	}
	clock.Add(4 * time.Second)
	if r := ask(); len(r.Answer) != 1 || r.Answer[0].Header().Ttl != 5 {
		t.Errorf("after expiry: %s", r)
	}
	if n := e.up.count("short.test", dns.TypeA); n != 2 {
		t.Errorf("upstream asked %d times, want 2 (once more after expiry)", n)
	}
}

func TestFastPathRespectsTheClientsBufferSize(t *testing.T) {
	e := startEnv(t, nil)
	ask := func(size uint16) *dns.Msg {
		return exchange(t, "udp", e.udp, edns(question("medium.test", dns.TypeTXT), size))
	}
	if r := ask(1232); r.Truncated || len(r.Answer) != 1 {
		t.Fatalf("1232-byte client: %s", r)
	}
	if r := ask(512); !r.Truncated || len(r.Answer) != 0 {
		t.Errorf("512-byte client got a reply that does not fit: TC=%v, %d answers", r.Truncated, len(r.Answer))
	}
	before := e.srv.Stats().FastAnswers
	if r := ask(1232); r.Truncated || len(r.Answer) != 1 {
		t.Errorf("1232-byte client again: %s", r)
	}
	if got := e.srv.Stats().FastAnswers - before; got != 1 {
		t.Errorf("%d fast answers, want 1", got)
	}
}

func TestFastPathKeepsTheRateLimit(t *testing.T) {
	e := startEnv(t, func(c *Config, _ *Options) {
		c.RateLimit = RateLimitConfig{QPS: 0.01, Burst: 2, Clients: 16}
	})
	c := &dns.Client{Net: "udp", Timeout: 300 * time.Millisecond}
	answered := 0
	for range 4 {
		if _, _, err := c.Exchange(question("allowed.test", dns.TypeA), e.udp); err == nil {
			answered++
		}
	}
	st := e.srv.Stats()
	if answered != 2 || st.RateLimited != 2 || st.FastAnswers != 1 {
		t.Errorf("answered %d, RateLimited %d, FastAnswers %d; want 2, 2, 1", answered, st.RateLimited, st.FastAnswers)
	}
}

func TestFastPathOnWildcardAddress(t *testing.T) {
	for _, c := range []struct{ listen, ask string }{{"0.0.0.0:0", "127.0.0.1"}, {"[::]:0", "::1"}} {
		t.Run(c.listen, func(t *testing.T) {
			if c.ask == "::1" {
				if l, err := net.ListenPacket("udp6", "[::1]:0"); err != nil {
					t.Skipf("no IPv6 loopback: %v", err)
				} else {
					_ = l.Close()
				}
			}
			e := startEnv(t, func(cfg *Config, o *Options) {
				cfg.Listen = c.listen
				o.Identifier = anyLoopback{}
			})
			_, port, _ := net.SplitHostPort(e.udp)
			addr := net.JoinHostPort(c.ask, port)
			// miekg/dns's client uses a connected socket: a reply from any
			// other source address than the one asked would never arrive.
			for range 2 {
				if r := exchange(t, "udp", addr, question("allowed.test", dns.TypeA)); len(r.Answer) != 1 {
					t.Fatalf("reply: %s", r)
				}
			}
			if st := e.srv.Stats(); st.FastAnswers != 1 {
				t.Errorf("FastAnswers %d, want 1", st.FastAnswers)
			}
		})
	}
}

func TestFastPathWithRealClients(t *testing.T) {
	e := startEnv(t, nil)
	want := map[string][]string{}
	for _, qtype := range []string{"A", "AAAA", "MX", "TXT"} {
		want[qtype] = digShort(t, e.up.addr, "allowed.test", qtype)
	}
	// Each client sends its own flags and options (dig: AD and a cookie;
	// kdig: neither), so each has its own stored replies.
	for _, tool := range []string{"dig", "kdig"} {
		for _, qtype := range []string{"A", "AAAA", "MX", "TXT"} {
			for i := range 2 {
				before := e.srv.Stats().FastAnswers
				got := shortLines(runTool(t, tool, e.udp, "+short", "allowed.test", qtype))
				if !slices.Equal(got, want[qtype]) {
					t.Errorf("%s %s #%d: %v, upstream says %v", tool, qtype, i+1, got, want[qtype])
				}
				if fast := e.srv.Stats().FastAnswers - before; fast != uint64(i) {
					t.Errorf("%s %s #%d: %d fast answers, want %d", tool, qtype, i+1, fast, i)
				}
			}
		}
	}
	before := e.srv.Stats().FastAnswers
	for range 2 {
		addrs, err := resolverFor(e.udp).LookupHost(t.Context(), "allowed.test")
		slices.Sort(addrs)
		if err != nil || !slices.Equal(addrs, []string{"192.0.2.10", "2001:db8::10"}) {
			t.Errorf("Go resolver: %v, %v", addrs, err)
		}
	}
	if e.srv.Stats().FastAnswers == before {
		t.Error("Go resolver's repeats were not answered on the fast path")
	}
}

// anyLoopback serves IPv4 and IPv6 loopback clients as learners.
type anyLoopback struct{}

func (anyLoopback) Identify(ip netip.Addr) ([]string, bool) {
	return []string{"learners"}, ip.IsLoopback()
}

// shortLines is the sorted non-empty lines of +short output.
func shortLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	slices.Sort(lines)
	return lines
}
