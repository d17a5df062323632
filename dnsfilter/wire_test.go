package dnsfilter

import (
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// wireSeeds are packed requests of the kinds clients send, plain and odd.
func wireSeeds(t testing.TB) [][]byte {
	var out [][]byte
	add := func(m *dns.Msg) {
		b, err := m.Pack()
		if err != nil {
			t.Fatalf("pack seed: %v", err)
		}
		out = append(out, b)
	}
	add(question("allowed.test", dns.TypeA))
	add(question("AlLoWeD.TeSt", dns.TypeAAAA))
	add(edns(question("www.example.co.uk", dns.TypeHTTPS), 1232))
	do := question("dnssec.test", dns.TypeA)
	do.SetEdns0(4096, true)
	do.CheckingDisabled = true
	do.AuthenticatedData = true
	add(do)
	cookie := edns(question("cookie.test", dns.TypeA), 1232)
	cookie.IsEdns0().Option = append(cookie.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	add(cookie)
	add(question("_sip._udp.example.test", dns.TypeSRV))
	add(question("escaped\\.dot.test", dns.TypeA))
	add(question(".", dns.TypeNS))
	add(question("any.test", dns.TypeANY))
	v1 := edns(question("v1.test", dns.TypeA), 1232)
	v1.IsEdns0().SetVersion(1)
	add(v1)
	two := edns(question("two.test", dns.TypeA), 1232)
	two.Extra = append(two.Extra, two.Extra[0])
	add(two)
	ch := question("version.bind", dns.TypeTXT)
	ch.Question[0].Qclass = dns.ClassCHAOS
	add(ch)
	notify := question("zone.test", dns.TypeSOA)
	notify.Opcode = dns.OpcodeNotify
	add(notify)
	add(question(strings.Repeat("a", 63)+"."+strings.Repeat("b", 63)+"."+strings.Repeat("c", 63)+"."+strings.Repeat("d", 61), dns.TypeA))
	return out
}

// FuzzParseWireQuery checks that the fast path's reading of a request
// never disagrees with miekg/dns's and only ever accepts requests the full
// path would answer normally: everything else must be left to it.
func FuzzParseWireQuery(f *testing.F) {
	for _, b := range wireSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q, name, ok := parseWireQuery(b, make([]byte, 0, maxNameWire))
		if !ok {
			return
		}
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			t.Fatalf("fast path read a request miekg/dns rejects (%v): %x", err, b)
		}
		if rcode, ok := checkRequest(m); !ok {
			t.Fatalf("fast path read a request the full path answers %s: %s", dns.RcodeToString[rcode], m)
		}
		if dns.DefaultMsgAcceptFunc(dns.Header{Bits: binary.BigEndian.Uint16(b[2:]), Qdcount: 1, Arcount: uint16(len(m.Extra))}) != dns.MsgAccept {
			t.Fatalf("fast path read a request miekg/dns's server would not accept: %s", m)
		}
		mq := m.Question[0]
		if want := trimDot(dns.CanonicalName(mq.Name)); string(name) != want {
			t.Fatalf("name %q, miekg/dns reads %q", name, want)
		}
		if q.qtype != mq.Qtype || q.id != m.Id || q.rd() != m.RecursionDesired || q.cd() != m.CheckingDisabled || q.ad() != m.AuthenticatedData {
			t.Fatalf("header or type differ: %+v vs %s", q, m)
		}
		if want := len(b) - headerLen - 4 - optLen(m); q.qnameLen != want {
			t.Fatalf("qnameLen %d, want %d", q.qnameLen, want)
		}
		o := m.IsEdns0()
		if q.edns != (o != nil) {
			t.Fatalf("edns %v, miekg/dns OPT %v", q.edns, o)
		}
		if o != nil && (q.udpSize != o.UDPSize() || q.do != o.Do() || o.Version() != 0) {
			t.Fatalf("OPT read as size %d do %v, miekg/dns: %s", q.udpSize, q.do, o)
		}
		if strings.ContainsAny(string(name), "\\ ") {
			t.Fatalf("name %q needs escaping", name)
		}
	})
}

// optLen is the packed length of m's OPT record, 0 without one.
func optLen(m *dns.Msg) int {
	if o := m.IsEdns0(); o != nil {
		return dns.Len(o)
	}
	return 0
}

func TestParseWireQuerySeeds(t *testing.T) {
	want := []bool{true, true, true, true, true, true, false, false, false, false, false, false, false, true}
	seeds := wireSeeds(t)
	for i, b := range seeds {
		_, name, ok := parseWireQuery(b, nil)
		if ok != want[i] {
			m := new(dns.Msg)
			_ = m.Unpack(b)
			t.Errorf("seed %d (%v): ok=%v, want %v (name %q)", i, m.Question, ok, want[i], name)
		}
	}
	if _, name, _ := parseWireQuery(seeds[1], nil); string(name) != "allowed.test" {
		t.Errorf("mixed case read as %q", name)
	}
}

// FuzzRRTTLs: the TTL walker never panics, never points outside the
// message, and on what miekg/dns packs it finds exactly the records' TTLs.
func FuzzRRTTLs(f *testing.F) {
	f.Add(packedReply(f))
	f.Add([]byte{})
	f.Add(make([]byte, headerLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		offs, ok := rrTTLs(b, nil)
		if !ok {
			return
		}
		for _, o := range offs {
			if int(o)+4 > len(b) {
				t.Fatalf("offset %d outside a %d-byte message", o, len(b))
			}
		}
	})
}

func packedReply(t testing.TB) []byte {
	m := question("www.example.test", dns.TypeA)
	m.Response = true
	m.Answer = []dns.RR{
		mustRR(t, "www.example.test. 300 IN CNAME web.example.test."),
		mustRR(t, "web.example.test. 60 IN A 192.0.2.1"),
	}
	m.Ns = []dns.RR{mustRR(t, "example.test. 3600 IN NS ns.example.test.")}
	m.Extra = []dns.RR{mustRR(t, "ns.example.test. 7 IN A 192.0.2.53")}
	m.SetEdns0(1232, true)
	m.Compress = true
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRRTTLsFindsEveryRecordButOPT(t *testing.T) {
	b := packedReply(t)
	offs, ok := rrTTLs(b, nil)
	if !ok {
		t.Fatal("packed reply did not walk")
	}
	var got []uint32
	for _, o := range offs {
		got = append(got, binary.BigEndian.Uint32(b[o:]))
	}
	if want := []uint32{300, 60, 3600, 7}; len(got) != len(want) || got[0] != 300 || got[1] != 60 || got[2] != 3600 || got[3] != 7 {
		t.Errorf("TTLs %v, want %v", got, want)
	}
	if _, ok := rrTTLs(b[:len(b)-1], nil); ok {
		t.Error("a cut message walked")
	}
}

func TestWireEntryReplyPatchesIDCaseRDAndAge(t *testing.T) {
	now := time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)
	stored := packedReply(t)
	e := newWireEntry([]byte("k"), stored, now)
	if e == nil || !e.expires.Equal(now.Add(7*time.Second)) {
		t.Fatalf("entry %+v: want expiry at the lowest TTL (7 s)", e)
	}
	req := question("WWW.Example.TEST", dns.TypeA)
	req.Id = 0xBEEF
	req.RecursionDesired = false
	rb, _ := req.Pack()
	q, _, ok := parseWireQuery(rb, nil)
	if !ok {
		t.Fatal("request not read")
	}
	out := e.reply(nil, rb, &q, now.Add(5*time.Second+900*time.Millisecond))
	m := new(dns.Msg)
	if err := m.Unpack(out); err != nil {
		t.Fatal(err)
	}
	if m.Id != 0xBEEF || m.RecursionDesired || m.Question[0].Name != "WWW.Example.TEST." {
		t.Errorf("header/question not patched: %s", m)
	}
	ttls := []uint32{m.Answer[0].Header().Ttl, m.Answer[1].Header().Ttl, m.Ns[0].Header().Ttl, m.Extra[0].Header().Ttl}
	if ttls[0] != 295 || ttls[1] != 55 || ttls[2] != 3595 || ttls[3] != 2 {
		t.Errorf("TTLs after 5.9 s: %v", ttls)
	}
	if o := m.IsEdns0(); o == nil || !o.Do() || o.UDPSize() != 1232 {
		t.Errorf("OPT changed: %v", o)
	}
	if string(stored) != string(e.msg) {
		t.Error("reply wrote into the stored entry")
	}
}

func TestWireCacheKeepsItsWorkingSet(t *testing.T) {
	now := time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)
	const n = 20000
	c := newWireCache(n)
	key := func(i int) []byte { return []byte("name-" + strconv.Itoa(i) + ".test") }
	for i := range n {
		c.put(&wireEntry{key: string(key(i)), expires: now.Add(time.Hour)})
	}
	lost := 0
	for i := range n {
		if c.get(key(i), now) == nil {
			lost++
		}
	}
	// Four ways at half load: losing more than a handful means the sets
	// are not working.
	if lost > n/1000 {
		t.Errorf("%d of %d entries lost to collisions", lost, n)
	}
	if c.get(key(1), now.Add(time.Hour)) != nil {
		t.Error("an expired entry was returned")
	}
	c.put(&wireEntry{key: string(key(1)), msg: []byte("new"), expires: now.Add(2 * time.Hour)})
	if e := c.get(key(1), now); e == nil || string(e.msg) != "new" {
		t.Errorf("replacing a key: %+v", e)
	}
	if got := c.len(); got > n {
		t.Errorf("%d slots in use for %d keys: a replacement took a second slot", got, n)
	}

	// A full set gives up the entry that expires first.
	small := newWireCache(1)
	for i := range wireWays {
		small.put(&wireEntry{key: string(key(i)), expires: now.Add(time.Duration(10-i) * time.Minute)})
	}
	small.put(&wireEntry{key: "newcomer", expires: now.Add(time.Hour)})
	if small.get(key(wireWays-1), now) != nil || small.get([]byte("newcomer"), now) == nil || small.get(key(0), now) == nil {
		t.Error("the full set did not evict the entry expiring first")
	}
}
