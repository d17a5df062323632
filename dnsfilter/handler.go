package dnsfilter

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/miekg/dns"

	"github.com/aupguard/aupguard/events"
)

// ServeDNS answers one request; it makes *Server a dns.Handler. It never
// panics on any request: malformed ones get FORMERR, NOTIMP, BADVERS or
// REFUSED, and an internal panic is recovered, counted and answered
// SERVFAIL.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	s.stats.queries.Add(1)
	if n := s.inflight.Add(1); n > int64(s.cfg.MaxInflight) {
		s.inflight.Add(-1)
		s.stats.overloaded.Add(1)
		return
	}
	defer s.inflight.Add(-1)
	tcp := isTCP(w)
	defer func() {
		if v := recover(); v != nil {
			s.stats.panics.Add(1)
			s.log.Error("dns handler panic", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			s.writeError(w, r, dns.RcodeServerFailure)
		}
	}()
	if r == nil || r.Response {
		// Replies sent to a server are either confusion or reflection;
		// answering would only feed the loop.
		return
	}
	if rcode, ok := checkRequest(r); !ok {
		s.stats.malformed.Add(1)
		s.writeError(w, r, rcode)
		return
	}

	start := time.Now()
	q := newQuery(r, clientAddr(w))
	if fw, ok := w.(*udpWriter); ok {
		q.admitted = fw.admitted
	}
	ctx, cancel := context.WithTimeout(s.base, s.cfg.Timeout)
	defer cancel()
	ans, err := s.chain.resolve(ctx, q)
	if err != nil || ans == nil || (!ans.drop && ans.msg == nil) {
		s.stats.servFail.Add(1)
		s.log.Debug("dns query failed", "client", q.client, "qname", q.name, "qtype", dns.Type(q.qtype).String(), "err", err)
		ans = &answer{
			msg:  reply(q, dns.RcodeServerFailure),
			ede:  ede(dns.ExtendedErrorCodeNoReachableAuthority, "aupguard: no upstream answered"),
			from: "servfail",
		}
	}
	if ans.drop {
		if tcp {
			// Over TCP the source is not spoofed; closing frees the
			// connection instead of leaving it to the idle timeout.
			_ = w.Close()
		}
		s.emit(q.events)
		return
	}
	resp := s.finish(r, ans, tcp)
	if err := s.write(w, q, ans, resp); err != nil {
		s.log.Debug("dns reply not sent", "client", q.client, "qname", q.name, "err", err)
	}
	s.log.Debug("dns query", "client", q.client, "qname", q.name, "qtype", dns.Type(q.qtype).String(),
		"rcode", dns.RcodeToString[resp.Rcode], "from", ans.from, "tcp", tcp, "took", time.Since(start))
	s.emit(q.events)
}

// write sends resp; when the fast path could read the request, it also
// stores the packed reply for the fast path to reuse.
func (s *Server) write(w dns.ResponseWriter, q *query, ans *answer, resp *dns.Msg) error {
	fw, ok := w.(*udpWriter)
	if !ok || fw.key == nil || s.fast == nil {
		return w.WriteMsg(resp)
	}
	b, err := resp.Pack()
	if err != nil {
		return err
	}
	s.fast.remember(fw.key, q, ans, resp, b, s.now())
	_, err = w.Write(b)
	return err
}

// checkRequest returns the error rcode for a request the chain must not
// see, or ok.
func checkRequest(r *dns.Msg) (rcode int, ok bool) {
	if r.Opcode != dns.OpcodeQuery {
		return dns.RcodeNotImplemented, false
	}
	if len(r.Question) != 1 {
		return dns.RcodeFormatError, false
	}
	opts := 0
	for _, rr := range r.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			opts++
		}
	}
	if opts > 1 {
		return dns.RcodeFormatError, false // RFC 6891 section 6.1.1
	}
	if o := r.IsEdns0(); o != nil && o.Version() != 0 {
		return dns.RcodeBadVers, false // RFC 6891 section 6.1.3
	}
	q := r.Question[0]
	switch q.Qtype {
	case 0, dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY:
		// Pseudo-types that are never questions.
		return dns.RcodeFormatError, false
	case dns.TypeAXFR, dns.TypeIXFR:
		// A forwarder holds no zones to transfer.
		return dns.RcodeRefused, false
	case dns.TypeMAILA, dns.TypeMAILB:
		return dns.RcodeNotImplemented, false
	}
	if q.Qclass != dns.ClassINET {
		// CHAOS, HESIOD, NONE and ANY are well-formed but not served: the
		// policy and the upstreams only know the Internet class.
		return dns.RcodeRefused, false
	}
	return dns.RcodeSuccess, true
}

// writeError answers r with rcode, echoing its question and (when r had a
// single OPT) an OPT, as RFC 6891 asks even for errors.
func (s *Server) writeError(w dns.ResponseWriter, r *dns.Msg, rcode int) {
	if r == nil {
		return
	}
	m := new(dns.Msg)
	m.SetRcode(r, rcode)
	m.RecursionAvailable = true
	if rcode == dns.RcodeFormatError && len(r.Question) != 1 {
		m.Question = nil
	}
	if o := r.IsEdns0(); o != nil && countOPT(r) == 1 {
		opt := new(dns.OPT)
		opt.Hdr.Name = "."
		opt.Hdr.Rrtype = dns.TypeOPT
		opt.SetUDPSize(uint16(s.cfg.EDNSMaxSize))
		m.Extra = []dns.RR{opt}
	} else if rcode > 0xF {
		// An extended rcode cannot be expressed without OPT.
		m.Rcode = dns.RcodeFormatError
	}
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("dns error reply not sent", "rcode", dns.RcodeToString[rcode], "err", err)
	}
}

func countOPT(r *dns.Msg) int {
	n := 0
	for _, rr := range r.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			n++
		}
	}
	return n
}

// finish turns the chain's answer into the reply for r: the client's ID,
// question (with its letter case) and flags, an OPT echoing the client's
// DO bit and carrying the EDE, and a size that fits the client: 512 bytes
// without EDNS, the client's EDNS size capped at edns_max_size with it,
// 64 KiB over TCP. Records that do not fit are dropped and TC is set.
func (s *Server) finish(r *dns.Msg, ans *answer, tcp bool) *dns.Msg {
	m := ans.msg
	m.Id = r.Id
	m.Response = true
	m.Opcode = dns.OpcodeQuery
	m.Authoritative = false
	m.RecursionDesired = r.RecursionDesired
	m.RecursionAvailable = true
	m.CheckingDisabled = r.CheckingDisabled
	m.Zero = false
	m.Question = []dns.Question{r.Question[0]}
	stripOPT(m)

	reqOpt := r.IsEdns0()
	if !r.AuthenticatedData && (reqOpt == nil || !reqOpt.Do()) {
		// RFC 6840 section 5.8: AD only for clients that asked for it.
		m.AuthenticatedData = false
	}
	size := dns.MinMsgSize
	if reqOpt != nil {
		opt := new(dns.OPT)
		opt.Hdr.Name = "."
		opt.Hdr.Rrtype = dns.TypeOPT
		opt.SetUDPSize(uint16(s.cfg.EDNSMaxSize))
		if reqOpt.Do() {
			opt.SetDo()
		}
		if ans.ede != nil {
			opt.Option = append(opt.Option, ans.ede)
		}
		m.Extra = append(m.Extra, opt)
		size = min(max(int(reqOpt.UDPSize()), dns.MinMsgSize), s.cfg.EDNSMaxSize)
	}
	if tcp {
		size = dns.MaxMsgSize
	}
	if m.Rcode > 0xF && reqOpt == nil {
		// An upstream's extended rcode cannot reach a client without EDNS.
		m.Rcode = dns.RcodeServerFailure
	}
	wasTC := m.Truncated
	m.Truncate(size)
	if m.Truncated && !wasTC {
		s.stats.truncated.Add(1)
	}
	m.Compress = true
	return m
}

// emit hands the query's events to the Emitter after the reply is out,
// folding repeats (fold.go). It may reuse evs's storage.
func (s *Server) emit(evs []events.Event) {
	if len(evs) == 0 || s.emitter == nil {
		return
	}
	if s.fold != nil {
		evs = s.fold.filter(evs)
	}
	s.send(evs)
}

// send hands events to the Emitter. It outlives a shutdown's
// cancellation, so an event is never dropped silently; how long it may
// wait for room in a full queue is the pipeline's one rule
// (events.emit_timeout), as for the proxy.
func (s *Server) send(evs []events.Event) {
	if len(evs) == 0 || s.emitter == nil {
		return
	}
	ctx := context.WithoutCancel(s.base)
	for _, ev := range evs {
		if err := s.emitter.Emit(ctx, ev); err != nil {
			s.stats.eventErrors.Add(1)
			s.log.Warn("dns misuse event not accepted", "id", ev.ID, "kind", ev.Kind, "rule", ev.Rule, "qname", ev.QName, "err", err)
		}
	}
}

func newQuery(r *dns.Msg, client netip.Addr) *query {
	rq := r.Question[0]
	fqdn := dns.CanonicalName(rq.Name)
	q := &query{
		fqdn: fqdn, name: trimDot(fqdn), qtype: rq.Qtype, qclass: rq.Qclass,
		cd: r.CheckingDisabled, client: client,
	}
	if o := r.IsEdns0(); o != nil {
		q.do = o.Do()
	}
	return q
}

// clientAddr is the request's source address; an unknown one is the zero
// Addr, which no Identifier serves.
func clientAddr(w dns.ResponseWriter) netip.Addr {
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	case nil:
		return netip.Addr{}
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.Addr{}
		}
		return ap.Addr().Unmap()
	}
}

func isTCP(w dns.ResponseWriter) bool {
	a := w.LocalAddr()
	if a == nil {
		return false
	}
	_, ok := a.(*net.TCPAddr)
	return ok || a.Network() == "tcp"
}
