package dnsfilter

import (
	"context"
	"testing"

	"github.com/miekg/dns"

	"github.com/aupguard/aupguard/events"
)

// FuzzHandle feeds raw bytes through the request path the way miekg's
// server does (header check, accept filter, unpack) into the handler, with
// a real upstream behind it, and checks that every reply is a well-formed
// answer to the request that fits the client.
func FuzzHandle(f *testing.F) {
	up := startUpstream(f)
	cfg := testConfig(up.addr)
	d := newRecordingDecider(f)
	d.forget = true
	s, err := New(cfg, Options{Decider: d, Identifier: loopbackLearners, Emitter: discardEmitter{}, Logger: quietLogger()})
	if err != nil {
		f.Fatal(err)
	}
	for _, m := range fuzzSeeds() {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req := new(dns.Msg)
		if err := req.Unpack(data); err != nil {
			return // miekg's server drops or FORMERRs these before any handler
		}
		if req.Response {
			return // ignored by the server's accept filter
		}
		tcp := len(data)%2 == 1
		w := newCaptureWriter(tcp)
		s.ServeDNS(w, req)
		if s.Stats().Panics != 0 {
			t.Fatalf("handler panicked on %x", data)
		}
		w.mu.Lock()
		wire := w.wire
		w.mu.Unlock()
		if len(wire) > 1 {
			t.Fatalf("%d replies to one request", len(wire))
		}
		if len(wire) == 0 {
			return
		}
		resp := new(dns.Msg)
		if err := resp.Unpack(wire[0]); err != nil {
			t.Fatalf("reply does not unpack: %v", err)
		}
		if resp.Id != req.Id || !resp.Response {
			t.Fatalf("reply id %d QR %v, request id %d", resp.Id, resp.Response, req.Id)
		}
		limit := dns.MinMsgSize
		if o := req.IsEdns0(); o != nil {
			limit = max(limit, min(int(o.UDPSize()), cfg.EDNSMaxSize))
		}
		if !tcp && len(wire[0]) > limit {
			t.Fatalf("UDP reply of %d bytes exceeds the client's %d", len(wire[0]), limit)
		}
		if resp.Rcode == dns.RcodeSuccess && (len(resp.Question) != 1 || resp.Question[0] != req.Question[0]) {
			t.Fatalf("reply question %v, request %v", resp.Question, req.Question)
		}
	})
}

// fuzzSeeds are requests covering every link and every error path; the
// same messages are in testdata/fuzz/FuzzHandle.
func fuzzSeeds() []*dns.Msg {
	q := func(name string, qtype uint16, size uint16, do bool) *dns.Msg {
		m := question(name, qtype)
		if size > 0 {
			m.SetEdns0(size, do)
		}
		return m
	}
	chaos := q("version.bind", dns.TypeTXT, 0, false)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	v1 := q("allowed.test", dns.TypeA, 1232, false)
	v1.IsEdns0().SetVersion(1)
	twoOPT := q("allowed.test", dns.TypeA, 1232, false)
	twoOPT.Extra = append(twoOPT.Extra, dns.Copy(twoOPT.Extra[0]))
	noQ := q("allowed.test", dns.TypeA, 0, false)
	noQ.Question = nil
	notify := q("test", dns.TypeSOA, 0, false)
	notify.Opcode = dns.OpcodeNotify
	cd := q("AlLoWeD.tEsT", dns.TypeAAAA, 4096, true)
	cd.CheckingDisabled = true
	return []*dns.Msg{
		q("allowed.test", dns.TypeA, 1232, false),
		q("casino.test", dns.TypeA, 0, false),
		q("cloak.test", dns.TypeA, 1232, false),
		q("www.google.co.uk", dns.TypeAAAA, 1232, false),
		q("www.youtube.com", dns.TypeHTTPS, 1232, false),
		q("ya.ru", dns.TypeA, 0, false),
		q("use-application-dns.net", dns.TypeA, 1232, false),
		q("big.test", dns.TypeTXT, 1232, false),
		q("big.test", dns.TypeTXT, 0, false),
		q("allowed.test", dns.TypeANY, 1232, false),
		q("test", dns.TypeAXFR, 0, false),
		q("a\\.b.test", dns.TypeMX, 512, false),
		q(".", dns.TypeNS, 1232, false),
		chaos, v1, twoOPT, noQ, notify, cd,
	}
}

type discardEmitter struct{}

func (discardEmitter) Emit(context.Context, events.Event) error { return nil }
