package dnsfilter

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/verdict"
)

func TestAllowedAnswersMatchUpstream(t *testing.T) {
	e := startEnv(t, nil)
	for _, qtype := range []string{"A", "AAAA", "MX", "TXT"} {
		t.Run("dig "+qtype, func(t *testing.T) {
			want := digShort(t, e.up.addr, "allowed.test", qtype)
			if len(want) == 0 {
				t.Fatalf("upstream has no %s for allowed.test", qtype)
			}
			got := digShort(t, e.udp, "allowed.test", qtype)
			if !slices.Equal(got, want) {
				t.Errorf("filter answered %q, upstream %q", got, want)
			}
			gotK := strings.Fields(kdig(t, e.udp, "+short", "allowed.test", qtype))
			wantK := strings.Fields(kdig(t, e.up.addr, "+short", "allowed.test", qtype))
			slices.Sort(gotK)
			slices.Sort(wantK)
			if !slices.Equal(gotK, wantK) {
				t.Errorf("kdig: filter answered %q, upstream %q", gotK, wantK)
			}
		})
	}
	t.Run("go resolver", func(t *testing.T) {
		r := resolverFor(e.udp)
		ctx := context.Background()
		addrs, err := r.LookupHost(ctx, "allowed.test")
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(addrs)
		if want := []string{"192.0.2.10", "2001:db8::10"}; !slices.Equal(addrs, want) {
			t.Errorf("LookupHost = %v, want %v", addrs, want)
		}
		mx, err := r.LookupMX(ctx, "allowed.test")
		if err != nil || len(mx) != 1 || mx[0].Host != "mail.allowed.test." || mx[0].Pref != 10 {
			t.Errorf("LookupMX = %+v, %v", mx, err)
		}
		txt, err := r.LookupTXT(ctx, "allowed.test")
		if err != nil || strings.Join(txt, "") != "hello worldsecond string" {
			t.Errorf("LookupTXT = %q, %v", txt, err)
		}
	})
	if evs := e.rec.events(); len(evs) != 0 {
		t.Errorf("allowed queries produced events: %+v", evs)
	}
}

func TestBlockedNameGetsBlockAnswerEDEAndEvent(t *testing.T) {
	e := startEnv(t, nil)
	resp := exchange(t, "udp", e.udp, edns(question("casino.test", dns.TypeA), 1232))
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Fatalf("block answer = %s", resp)
	}
	if a, ok := resp.Answer[0].(*dns.A); !ok || !a.A.IsUnspecified() || a.Hdr.Ttl != 60 {
		t.Errorf("answer %s, want casino.test. 60 A 0.0.0.0", resp.Answer[0])
	}
	x := edeOf(resp)
	if x == nil || x.InfoCode != dns.ExtendedErrorCodeBlocked || !strings.Contains(x.ExtraText, "gambling") {
		t.Errorf("EDE = %+v, want 15 (Blocked) naming the category", x)
	}
	if n := e.up.count("casino.test", dns.TypeA); n != 0 {
		t.Errorf("a blocked name reached the upstream %d times", n)
	}
	// The event carries exactly what the core decided about this query.
	d := realCore(t).Decide(context.Background(), &verdict.Input{
		Source: verdict.SourceDNS, Phase: verdict.PhaseQuery,
		Client:  verdict.Client{IP: "127.0.0.1", Groups: []string{"learners"}},
		Request: verdict.Request{Host: "casino.test"}, DNS: &verdict.DNSQuestion{QName: "casino.test", QType: "A"},
	})
	if d.Action != verdict.ActionBlock || d.Category != "gambling" || d.PolicyRevision == "" || d.ListsRevision == "" {
		t.Fatalf("the core does not block the test gambling domain: %+v", d)
	}
	evs := e.rec.waitEvents(t, 1)
	ev := evs[0]
	want := events.Event{
		ID: "ev-1", Kind: events.KindBlock, Source: "dns", Phase: "query", Action: "block",
		Category: d.Category, Rule: d.Rule, Reason: d.Reason, Severity: d.Severity, Alert: d.Alert,
		ClientIP: "127.0.0.1", Groups: []string{"learners"}, Host: "casino.test", QName: "casino.test", QType: "A",
		PolicyRevision: d.PolicyRevision, ListsRevision: d.ListsRevision,
	}
	if ev.Time.IsZero() {
		t.Error("event without time")
	}
	ev.Time = time.Time{}
	if !eventEqual(ev, want) {
		t.Errorf("event\n got %+v\nwant %+v", ev, want)
	}
	// dig shows the same: 0.0.0.0 and the EDE.
	out := dig(t, e.udp, "casino.test", "A")
	if !strings.Contains(out, "0.0.0.0") || !strings.Contains(out, "EDE: 15 (Blocked)") {
		t.Errorf("dig output lacks the block answer or EDE:\n%s", out)
	}
	if st := e.srv.Stats(); st.Blocked != 2 {
		t.Errorf("Stats.Blocked = %d, want 2", st.Blocked)
	}
}

func eventEqual(a, b events.Event) bool {
	return reflect.DeepEqual(a, b)
}

func TestCNAMEChainIntoBlockedNameIsBlocked(t *testing.T) {
	e := startEnv(t, nil)
	// The upstream really serves cloak.test → hop.test → tracker.blocked.test.
	if out := digShort(t, e.up.addr, "cloak.test", "A"); !slices.Contains(out, "192.0.2.66") {
		t.Fatalf("upstream chain broken: %q", out)
	}
	// Over TCP, which has no fast path: over UDP, a decision another test
	// left in the shared core's cache would let the fast path ask first.
	resp := exchange(t, "tcp", e.tcp, edns(question("cloak.test", dns.TypeA), 1232))
	if len(resp.Answer) != 1 {
		t.Fatalf("answer = %s", resp)
	}
	if a, ok := resp.Answer[0].(*dns.A); !ok || !a.A.IsUnspecified() || a.Hdr.Name != "cloak.test." {
		t.Errorf("answer %s, want cloak.test. A 0.0.0.0 (the tracker's address must not leak)", resp.Answer[0])
	}
	if x := edeOf(resp); x == nil || x.InfoCode != dns.ExtendedErrorCodeBlocked || !strings.Contains(x.ExtraText, "tracker.blocked.test") {
		t.Errorf("EDE = %+v", x)
	}
	evs := e.rec.waitEvents(t, 1)
	if ev := evs[0]; ev.Host != "tracker.blocked.test" || ev.QName != "cloak.test" || ev.Category != "malware" || ev.Kind != events.KindBlock {
		t.Errorf("event = %+v", ev)
	}
	// The core was asked about the query name and then each name of the chain.
	if got, want := e.decider.hosts(), []string{"cloak.test", "hop.test", "tracker.blocked.test"}; !slices.Equal(got, want) {
		t.Errorf("decided on %q, want %q", got, want)
	}
	e.decider.mu.Lock()
	for _, in := range e.decider.inputs {
		if in.Source != verdict.SourceDNS || in.Phase != verdict.PhaseQuery || in.DNS == nil || in.DNS.QType != "A" ||
			in.DNS.QName != in.Request.Host || in.Client.IP != "127.0.0.1" || !slices.Equal(in.Client.Groups, []string{"learners"}) {
			t.Errorf("input %+v", in)
		}
	}
	e.decider.mu.Unlock()
	if st := e.srv.Stats(); st.CNAMEBlocked != 1 {
		t.Errorf("Stats.CNAMEBlocked = %d", st.CNAMEBlocked)
	}
}

func TestBlockAnswerModes(t *testing.T) {
	for _, tc := range []struct {
		mode      BlockAnswer
		addrs     []string
		rcode     int
		a, aaaa   string // expected single answer, "" for none
		negSOA    bool   // NODATA/NXDOMAIN carry an SOA
		mxNoError bool
	}{
		{mode: BlockZero, rcode: dns.RcodeSuccess, a: "0.0.0.0", aaaa: "::", negSOA: true},
		{mode: BlockNXDomain, rcode: dns.RcodeNameError, negSOA: true},
		{mode: BlockRefused, rcode: dns.RcodeRefused},
		{mode: BlockAddress, addrs: []string{"192.0.2.99", "2001:db8::99"}, rcode: dns.RcodeSuccess, a: "192.0.2.99", aaaa: "2001:db8::99", negSOA: true},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			e := startEnv(t, func(c *Config, _ *Options) {
				c.Block.Answer = tc.mode
				c.Block.Addresses = tc.addrs
				c.Block.TTL = 42 * time.Second
				c.EventFoldWindow = 0 // one event per query (fold_test.go folds them)
			})
			for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX} {
				resp := exchange(t, "udp", e.udp, edns(question("casino.test", qt), 1232))
				if resp.Rcode != tc.rcode {
					t.Errorf("%s: rcode %s, want %s", dns.Type(qt), dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.rcode])
				}
				want := map[uint16]string{dns.TypeA: tc.a, dns.TypeAAAA: tc.aaaa}[qt]
				switch {
				case want == "" && len(resp.Answer) != 0:
					t.Errorf("%s: unexpected answer %v", dns.Type(qt), resp.Answer)
				case want != "":
					if len(resp.Answer) != 1 || !strings.HasSuffix(resp.Answer[0].String(), "\t"+want) || resp.Answer[0].Header().Ttl != 42 {
						t.Errorf("%s: answer %v, want %s with TTL 42", dns.Type(qt), resp.Answer, want)
					}
				}
				if len(resp.Answer) == 0 && tc.negSOA {
					if len(resp.Ns) != 1 || resp.Ns[0].Header().Rrtype != dns.TypeSOA || resp.Ns[0].(*dns.SOA).Minttl != 42 {
						t.Errorf("%s: authority %v, want an SOA with minimum 42", dns.Type(qt), resp.Ns)
					}
				}
				if x := edeOf(resp); x == nil || x.InfoCode != dns.ExtendedErrorCodeBlocked {
					t.Errorf("%s: EDE %+v, want 15", dns.Type(qt), x)
				}
			}
			if got := len(e.rec.waitEvents(t, 3)); got != 3 {
				t.Errorf("%d events, want 3", got)
			}
		})
	}
}

func TestSafeSearchRewrites(t *testing.T) {
	e := startEnv(t, nil)
	t.Run("google country domain", func(t *testing.T) {
		got := digShort(t, e.udp, "www.google.co.uk", "A")
		want := []string{"192.0.2.120", "forcesafesearch.google.com."}
		if !slices.Equal(got, want) {
			t.Errorf("dig +short www.google.co.uk = %q, want %q", got, want)
		}
		resp := exchange(t, "udp", e.udp, edns(question("www.google.co.uk", dns.TypeAAAA), 1232))
		if len(resp.Answer) != 2 || resp.Answer[0].(*dns.CNAME).Target != "forcesafesearch.google.com." ||
			resp.Answer[1].(*dns.AAAA).AAAA.String() != "2001:db8::120" {
			t.Errorf("AAAA answer %v", resp.Answer)
		}
		if x := edeOf(resp); x == nil || x.InfoCode != dns.ExtendedErrorCodeForgedAnswer {
			t.Errorf("EDE %+v, want 4 (Forged Answer)", x)
		}
		cname, err := resolverFor(e.udp).LookupCNAME(context.Background(), "www.google.co.uk")
		if err != nil || cname != "forcesafesearch.google.com." {
			t.Errorf("Go LookupCNAME = %q, %v", cname, err)
		}
	})
	t.Run("youtube strict", func(t *testing.T) {
		got := digShort(t, e.udp, "www.youtube.com", "A")
		if want := []string{"192.0.2.121", "restrict.youtube.com."}; !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("fallback to the published VIP", func(t *testing.T) {
		// strict.bing.com is not in the test zone: the upstream says
		// NXDOMAIN, and the published address keeps search working.
		got := digShort(t, e.udp, "www.bing.com", "A")
		if want := []string{"204.79.197.220", "strict.bing.com."}; !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("address rewrite", func(t *testing.T) {
		if got := digShort(t, e.udp, "ya.ru", "A"); !slices.Equal(got, []string{"213.180.193.56"}) {
			t.Errorf("ya.ru = %q", got)
		}
	})
	if n := e.up.count("www.google.co.uk", dns.TypeA); n != 0 {
		t.Errorf("the rewritten name reached the upstream %d times", n)
	}

	t.Run("youtube moderate for staff", func(t *testing.T) {
		staff := startEnv(t, func(_ *Config, o *Options) {
			o.Identifier = prefixIdentifier{prefix: netip.MustParsePrefix("127.0.0.0/8"), groups: []string{"staff"}}
		})
		got := digShort(t, staff.udp, "www.youtube.com", "A")
		if want := []string{"192.0.2.122", "restrictmoderate.youtube.com."}; !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("off when the decision does not ask", func(t *testing.T) {
		// The built-in data gives no group "off"; the core's decision is
		// passed through with that one field changed.
		off := startEnv(t, func(_ *Config, o *Options) { o.Decider = safeSearchOff{realCore(t)} })
		if got := digShort(t, off.udp, "www.google.co.uk", "A"); !slices.Equal(got, []string{"192.0.2.200"}) {
			t.Errorf("got %q, want the real address", got)
		}
	})
}

func TestCanaryAndPrivateRelayAnswerNXDOMAIN(t *testing.T) {
	e := startEnv(t, nil)
	for i, tc := range []struct{ name, rule string }{
		{"use-application-dns.net", "doh_canary"},
		{"mask.icloud.com", "private_relay"},
		{"mask-h2.icloud.com", "private_relay"},
	} {
		out := dig(t, e.udp, tc.name, "A")
		if !strings.Contains(out, "status: NXDOMAIN") {
			t.Errorf("%s: dig says\n%s", tc.name, out)
		}
		evs := e.rec.waitEvents(t, i+1)
		ev := evs[i]
		if ev.Category != "circumvention" || ev.Rule != tc.rule || ev.Severity != "low" || ev.Alert || ev.QName != tc.name || ev.Source != "dns" {
			t.Errorf("%s: event %+v", tc.name, ev)
		}
	}
	// The upstream does have an address for the canary; it was never asked.
	if n := e.up.count("use-application-dns.net", dns.TypeA); n != 0 {
		t.Errorf("canary forwarded %d times", n)
	}
}

func TestTCPAndTruncation(t *testing.T) {
	e := startEnv(t, nil)
	if e.tcp != e.udp {
		t.Errorf("UDP %s and TCP %s differ; port 0 should give both the same port", e.udp, e.tcp)
	}
	if got := digShort(t, e.tcp, "+tcp", "allowed.test", "A"); !slices.Equal(got, []string{"192.0.2.10"}) {
		t.Errorf("dig +tcp = %q", got)
	}

	// 4 KB over UDP with EDNS 1232: TC and no partial record.
	resp := exchange(t, "udp", e.udp, edns(question("big.test", dns.TypeTXT), 1232))
	if !resp.Truncated || len(resp.Answer) != 0 {
		t.Errorf("UDP/1232: TC=%v with %d answers, want TC and none", resp.Truncated, len(resp.Answer))
	}
	// Without EDNS the limit is 512.
	resp = exchange(t, "udp", e.udp, question("big.test", dns.TypeTXT))
	if !resp.Truncated || resp.IsEdns0() != nil {
		t.Errorf("UDP/no EDNS: TC=%v OPT=%v", resp.Truncated, resp.IsEdns0())
	}
	// Over TCP it is complete.
	resp = exchange(t, "tcp", e.tcp, edns(question("big.test", dns.TypeTXT), 1232))
	if resp.Truncated || len(resp.Answer) != 1 || len(resp.Answer[0].(*dns.TXT).Txt) != 16 {
		t.Fatalf("TCP: TC=%v answer %d records", resp.Truncated, len(resp.Answer))
	}
	// The upstream's own UDP answer was truncated too; the filter retried
	// over TCP to get the whole record.
	if st := e.srv.Stats(); st.UpstreamTCP == 0 || st.Truncated < 2 {
		t.Errorf("Stats = %+v, want TCP retries upstream and truncations counted", st)
	}

	out := kdig(t, e.udp, "+notcp", "+bufsize=1232", "+ignore", "big.test", "TXT")
	if !strings.Contains(out, " tc") && !strings.Contains(out, "tc;") && !strings.Contains(out, "TC") {
		t.Errorf("kdig over UDP shows no TC flag:\n%s", out)
	}
	out = kdig(t, e.tcp, "+tcp", "+short", "big.test", "TXT")
	if strings.Count(out, strings.Repeat("x", 248)) != 16 {
		t.Errorf("kdig +tcp did not get all 16 strings:\n%s", out)
	}
	txt, err := resolverFor(e.udp).LookupTXT(context.Background(), "big.test")
	if err != nil || len(strings.Join(txt, "")) != 16*250 {
		t.Errorf("Go LookupTXT: %d bytes, %v", len(strings.Join(txt, "")), err)
	}
}

func TestUpstreamFailover(t *testing.T) {
	for _, tc := range []struct {
		name string
		dead func(testing.TB) string
	}{
		{"closed port", closedPort},
		{"never answers", blackhole},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dead := tc.dead(t)
			e := startEnv(t, func(c *Config, _ *Options) {
				c.Upstreams = append([]string{dead}, c.Upstreams...)
				c.UpstreamTimeout = 500 * time.Millisecond
			})
			if got := digShort(t, e.udp, "allowed.test", "A"); !slices.Equal(got, []string{"192.0.2.10"}) {
				t.Errorf("got %q", got)
			}
			if st := e.srv.Stats(); st.UpstreamErrors == 0 {
				t.Errorf("the dead upstream's failure was not counted: %+v", st)
			}
			// The dead upstream is now tried last: the next query is
			// answered without another failure.
			before := e.srv.Stats().UpstreamErrors
			if got := digShort(t, e.udp, "mail.allowed.test", "A"); !slices.Equal(got, []string{"192.0.2.11"}) {
				t.Errorf("got %q", got)
			}
			if after := e.srv.Stats().UpstreamErrors; after != before {
				t.Errorf("dead upstream tried again first (%d → %d errors)", before, after)
			}
		})
	}
}

func TestAllUpstreamsDeadServfail(t *testing.T) {
	a, b := blackhole(t), closedPort(t)
	e := startEnv(t, func(c *Config, _ *Options) {
		c.Upstreams = []string{a, b, blackhole(t)}
		c.Timeout = time.Second
		c.UpstreamTimeout = 400 * time.Millisecond
	})
	// The client waits 10s; the filter must give up first, at its own
	// timeout, with an answer rather than silence.
	resp := exchange(t, "udp", e.udp, edns(question("allowed.test", dns.TypeA), 1232))
	if resp.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
	if x := edeOf(resp); x == nil || x.InfoCode != dns.ExtendedErrorCodeNoReachableAuthority {
		t.Errorf("EDE %+v, want 22", x)
	}
	if st := e.srv.Stats(); st.ServFail != 1 {
		t.Errorf("Stats.ServFail = %d", st.ServFail)
	}
}

func TestClientOutsideNetworksRefused(t *testing.T) {
	e := startEnv(t, func(_ *Config, o *Options) {
		o.Identifier = prefixIdentifier{prefix: netip.MustParsePrefix("10.0.0.0/8")}
	})
	out := dig(t, e.udp, "allowed.test", "A")
	if !strings.Contains(out, "status: REFUSED") {
		t.Errorf("dig:\n%s", out)
	}
	if st := e.srv.Stats(); st.Refused != 1 || e.up.total.Load() != 0 {
		t.Errorf("Refused = %d, upstream queries = %d", st.Refused, e.up.total.Load())
	}
	if e.decider.calls.Load() != 0 {
		t.Errorf("the policy was asked about an outsider's query")
	}
}

func TestRateLimitDropsBeyondBurst(t *testing.T) {
	e := startEnv(t, func(c *Config, _ *Options) {
		c.RateLimit = RateLimitConfig{QPS: 0.001, Burst: 3, Clients: 16}
	})
	c := &dns.Client{Net: "udp", Timeout: 10 * time.Second}
	for i := range 3 {
		if _, _, err := c.Exchange(question("allowed.test", dns.TypeA), e.udp); err != nil {
			t.Fatalf("query %d within the burst: %v", i, err)
		}
	}
	c.Timeout = 500 * time.Millisecond
	_, _, err := c.Exchange(question("allowed.test", dns.TypeA), e.udp)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("query beyond the burst: err %v, want a timeout (silently dropped)", err)
	}
	if st := e.srv.Stats(); st.RateLimited != 1 {
		t.Errorf("Stats.RateLimited = %d, want 1", st.RateLimited)
	}
}

func TestHostsFileAnswersLocally(t *testing.T) {
	e := startEnv(t, func(_ *Config, o *Options) {
		o.Hosts = map[string][]netip.Addr{
			"Intranet.Example.": {netip.MustParseAddr("10.1.1.1"), netip.MustParseAddr("fd00::1")},
			"casino.test":       {netip.MustParseAddr("10.1.1.2")},
		}
	})
	if got := digShort(t, e.udp, "intranet.example", "A"); !slices.Equal(got, []string{"10.1.1.1"}) {
		t.Errorf("A = %q", got)
	}
	if got := digShort(t, e.udp, "INTRANET.example", "AAAA"); !slices.Equal(got, []string{"fd00::1"}) {
		t.Errorf("AAAA = %q", got)
	}
	resp := exchange(t, "udp", e.udp, question("intranet.example", dns.TypeMX))
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 0 || len(resp.Ns) != 1 {
		t.Errorf("MX: want NODATA with SOA, got %s", resp)
	}
	// The operator's hosts file wins over the lists.
	if got := digShort(t, e.udp, "casino.test", "A"); !slices.Equal(got, []string{"10.1.1.2"}) {
		t.Errorf("casino.test = %q", got)
	}
	if e.up.total.Load() != 0 || e.decider.calls.Load() != 0 {
		t.Errorf("hosts names reached upstream (%d) or policy (%d)", e.up.total.Load(), e.decider.calls.Load())
	}
}

func TestAlertIsAnsweredNormallyWithEvent(t *testing.T) {
	// Staff may reach hacking sites; the policy records the visit.
	e := startEnv(t, func(_ *Config, o *Options) {
		o.Identifier = prefixIdentifier{prefix: netip.MustParsePrefix("127.0.0.0/8"), groups: []string{"staff"}}
	})
	resp := exchange(t, "udp", e.udp, edns(question("alert.test", dns.TypeA), 1232))
	if len(resp.Answer) != 1 || resp.Answer[0].(*dns.A).A.String() != "192.0.2.14" || edeOf(resp) != nil {
		t.Errorf("alert-only answer changed: %s", resp)
	}
	ev := e.rec.waitEvents(t, 1)[0]
	if ev.Kind != events.KindAlert || !ev.Alert || ev.Action != "allow" || ev.Category != "hacking" || ev.Host != "alert.test" ||
		!slices.Equal(ev.Groups, []string{"staff"}) {
		t.Errorf("event %+v", ev)
	}
}

func TestANYGetsRFC8482Answer(t *testing.T) {
	e := startEnv(t, nil)
	out := digShort(t, e.udp, "allowed.test", "ANY")
	if !slices.Equal(out, []string{`"RFC8482" ""`}) {
		t.Errorf("ANY = %q", out)
	}
	if e.up.count("allowed.test", dns.TypeANY) != 0 {
		t.Error("ANY forwarded upstream")
	}
	// A blocked name stays blocked for ANY.
	resp := exchange(t, "udp", e.udp, edns(question("casino.test", dns.TypeANY), 1232))
	if x := edeOf(resp); x == nil || x.InfoCode != dns.ExtendedErrorCodeBlocked {
		t.Errorf("ANY for a blocked name: %s", resp)
	}
}

func TestProtocolHygiene(t *testing.T) {
	e := startEnv(t, nil)
	t.Run("id, question case, DO and OPT echoed", func(t *testing.T) {
		m := question("AlLoWeD.TeSt", dns.TypeA)
		m.Id = 4242
		m.SetEdns0(1400, true)
		resp := exchange(t, "udp", e.udp, m)
		o := resp.IsEdns0()
		if resp.Id != 4242 || resp.Question[0].Name != "AlLoWeD.TeSt." || o == nil || !o.Do() || o.UDPSize() != 1232 || !resp.RecursionAvailable {
			t.Errorf("reply header/question/OPT not as asked: %s", resp)
		}
	})
	t.Run("CHAOS class refused", func(t *testing.T) {
		if out := dig(t, e.udp, "-c", "CH", "version.bind", "TXT"); !strings.Contains(out, "status: REFUSED") {
			t.Errorf("dig:\n%s", out)
		}
	})
	t.Run("EDNS version 1 gets BADVERS", func(t *testing.T) {
		if out := dig(t, e.udp, "+edns=1", "+noednsneg", "allowed.test"); !strings.Contains(out, "status: BADVERS") {
			t.Errorf("dig:\n%s", out)
		}
	})
	t.Run("AXFR refused over TCP", func(t *testing.T) {
		resp := exchange(t, "tcp", e.tcp, question("test", dns.TypeAXFR))
		if resp.Rcode != dns.RcodeRefused {
			t.Errorf("rcode %s", dns.RcodeToString[resp.Rcode])
		}
	})
	t.Run("raw packets", func(t *testing.T) {
		conn, err := net.Dial("udp", e.udp)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// No question at all: FORMERR, not a crash.
		noQ := []byte{0x12, 0x34, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0}
		// Garbage and a truncated header: dropped.
		for _, p := range [][]byte{{0xff, 0x00, 0x13}, []byte("GET / HTTP/1.1\r\n\r\n")} {
			if _, err := conn.Write(p); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := conn.Write(noQ); err != nil {
			t.Fatal(err)
		}
		// The HTTP line parses as a header with an unknown opcode and may
		// get NOTIMP first; read until the question-less query's reply.
		buf := make([]byte, 512)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		var m dns.Msg
		for m.Id != 0x1234 {
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Unpack(buf[:n]); err != nil {
				t.Fatalf("unparsable reply: %v", err)
			}
		}
		if m.Rcode != dns.RcodeFormatError {
			t.Errorf("reply to a question-less query: %s", &m)
		}
		// The server still answers afterwards.
		if got := digShort(t, e.udp, "allowed.test", "A"); !slices.Equal(got, []string{"192.0.2.10"}) {
			t.Errorf("after garbage: %q", got)
		}
	})
}

// failingDecider fails closed, as the real core does when the policy cannot
// be evaluated; the real core cannot be made to fail on demand.
type failingDecider struct{}

func (failingDecider) Decide(context.Context, *verdict.Input) verdict.Decision {
	return verdict.Decision{Action: verdict.ActionBlock, Error: "rego: evaluation failed", Severity: verdict.SeverityInfo, PolicyRevision: "p-bad"}
}

func TestFailClosedDecisionBlocks(t *testing.T) {
	e := startEnv(t, func(_ *Config, o *Options) { o.Decider = failingDecider{} })
	resp := exchange(t, "udp", e.udp, edns(question("allowed.test", dns.TypeA), 1232))
	if x := edeOf(resp); x == nil || x.InfoCode != dns.ExtendedErrorCodeBlocked || !strings.Contains(x.ExtraText, "failing closed") {
		t.Errorf("EDE %+v", x)
	}
	ev := e.rec.waitEvents(t, 1)[0]
	if ev.Error != "rego: evaluation failed" || ev.PolicyRevision != "p-bad" {
		t.Errorf("event %+v", ev)
	}
	if st := e.srv.Stats(); st.DecisionErrors != 1 {
		t.Errorf("Stats.DecisionErrors = %d", st.DecisionErrors)
	}
}

func TestEmitterErrorIsCountedNotFatal(t *testing.T) {
	rec := &recorder{err: errors.New("spool full")}
	e := startEnv(t, func(_ *Config, o *Options) { o.Emitter = rec })
	if got := digShort(t, e.udp, "casino.test", "A"); !slices.Equal(got, []string{"0.0.0.0"}) {
		t.Errorf("got %q", got)
	}
	rec.waitEvents(t, 1)
	deadline := time.Now().Add(10 * time.Second)
	for e.srv.Stats().EventErrors != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := e.srv.Stats().EventErrors; n != 1 {
		t.Errorf("Stats.EventErrors = %d", n)
	}
}

func TestNewRejectsMissingCollaborators(t *testing.T) {
	cfg := testConfig("127.0.0.1:53")
	if _, err := New(cfg, Options{Identifier: loopbackLearners}); err == nil {
		t.Error("no Decider accepted")
	}
	if _, err := New(cfg, Options{Decider: failingDecider{}}); err == nil || !strings.Contains(err.Error(), "open resolver") {
		t.Errorf("no Identifier: %v", err)
	}
	if _, err := New(cfg, Options{Decider: failingDecider{}, Identifier: loopbackLearners,
		Hosts: map[string][]netip.Addr{"ok.example": {{}}}}); err == nil {
		t.Error("hosts entry without address accepted")
	}
	bad := cfg
	bad.Timeout = 0
	if _, err := New(bad, Options{Decider: failingDecider{}, Identifier: loopbackLearners}); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("bad config: %v", err)
	}
}

func TestStartRefusesForwardingLoop(t *testing.T) {
	for _, tc := range []struct{ listen, upstream string }{
		{"127.0.0.1:5399", "127.0.0.1:5399"},
		{"0.0.0.0:5399", "127.0.0.1:5399"},
		{"[::]:5399", "[::1]:5399"},
	} {
		cfg := testConfig(tc.upstream)
		cfg.Listen = tc.listen
		s, err := New(cfg, Options{Decider: failingDecider{}, Identifier: loopbackLearners, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Start(context.Background())
		if err == nil {
			_ = s.Shutdown(context.Background())
			t.Fatalf("listen %s: Start accepted upstream %s, its own address", tc.listen, tc.upstream)
		}
		if !strings.Contains(err.Error(), "forwarding loop") {
			t.Errorf("listen %s: error %v", tc.listen, err)
		}
	}
}

func TestSystemUpstreamReadsResolvConf(t *testing.T) {
	conf := t.TempDir() + "/resolv.conf"
	writeFile(t, conf, "# test\nnameserver 192.0.2.53\nnameserver 2001:db8::53\noptions timeout:1\n")
	ups, err := resolveUpstreams([]string{"system", "192.0.2.53", "tcp://192.0.2.54:5300"}, conf)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range ups {
		got = append(got, u.String())
	}
	// The duplicate of the first system server is dropped.
	if want := []string{"192.0.2.53:53", "[2001:db8::53]:53", "tcp://192.0.2.54:5300"}; !slices.Equal(got, want) {
		t.Errorf("upstreams = %q, want %q", got, want)
	}
	if _, err := resolveUpstreams([]string{"system"}, t.TempDir()+"/missing"); err == nil {
		t.Error("missing resolv.conf accepted")
	}
	writeFile(t, conf, "# no servers\n")
	if _, err := resolveUpstreams([]string{"system"}, conf); err == nil || !strings.Contains(err.Error(), "no nameserver") {
		t.Errorf("empty resolv.conf: %v", err)
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReusePortSocketsAndShutdown(t *testing.T) {
	up := startUpstream(t)
	cfg := testConfig(up.addr)
	cfg.UDPSockets = 3
	s, err := New(cfg, Options{Decider: realCore(t), Identifier: loopbackLearners, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if nu, nt := len(s.udp), len(s.servers); nu != 3 || nt != 1 {
		t.Errorf("%d UDP and %d other servers, want 3 UDP sockets and 1 TCP listener", nu, nt)
	}
	// After Shutdown no UDP socket answers either: each is closed.
	defer func() {
		for i, u := range s.udp {
			if _, err := u.conn.WriteToUDPAddrPort([]byte{0}, netip.MustParseAddrPort("127.0.0.1:9")); !errors.Is(err, net.ErrClosed) {
				t.Errorf("UDP socket %d after Shutdown: write gave %v, want net.ErrClosed", i, err)
			}
		}
	}()
	udp, _ := s.Addr()
	// Several source ports spread over the sockets; every query is answered.
	for i := range 12 {
		resp := exchange(t, "udp", udp.String(), question("allowed.test", dns.TypeA))
		if len(resp.Answer) != 1 {
			t.Fatalf("query %d: %s", i, resp)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	if _, _, err := c.Exchange(question("allowed.test", dns.TypeA), udp.String()); err == nil {
		t.Error("still answering over TCP after Shutdown")
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if err := s.Start(ctx); err == nil {
		t.Error("restart after Shutdown accepted")
	}
}

func TestServesInheritedSockets(t *testing.T) {
	// As systemd socket activation hands them over.
	pcs, ls, err := listen(context.Background(), "127.0.0.1:0", 1)
	if err != nil {
		t.Fatal(err)
	}
	up := startUpstream(t)
	cfg := testConfig(up.addr)
	cfg.Listen = "127.0.0.1:1" // not bound: the inherited sockets are used
	s := startServer(t, cfg, Options{Decider: realCore(t), Identifier: loopbackLearners,
		Logger: quietLogger(), PacketConns: pcs, Listeners: ls})
	udp, tcp := s.Addr()
	if udp.String() != pcs[0].LocalAddr().String() || tcp.String() != ls[0].Addr().String() {
		t.Errorf("Addr() = %s, %s", udp, tcp)
	}
	if got := digShort(t, udp.String(), "allowed.test", "A"); !slices.Equal(got, []string{"192.0.2.10"}) {
		t.Errorf("UDP: %q", got)
	}
	if got := digShort(t, tcp.String(), "+tcp", "allowed.test", "A"); !slices.Equal(got, []string{"192.0.2.10"}) {
		t.Errorf("TCP: %q", got)
	}
}

// safeSearchOff is the real core with safe search turned off in its
// decisions.
type safeSearchOff struct{ Decider }

func (s safeSearchOff) Decide(ctx context.Context, in *verdict.Input) verdict.Decision {
	d := s.Decider.Decide(ctx, in)
	d.SafeSearch = "off"
	return d
}
