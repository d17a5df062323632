package dnsfilter

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/miekg/dns"
)

// safeSearchResolver is the seventh link: when the decision for the query
// name asks for safe search ("strict" or "moderate") and the name is a
// search engine's front door, the answer becomes a CNAME to the engine's
// safe-search host plus that host's addresses, so the engine itself
// enforces SafeSearch whatever the browser's settings. The target's
// addresses come from the rest of the chain (cache, upstream); when that
// fails, the engine's published virtual IPs keep search working.
//
// It needs the policy link's decision, so it comes after it; it comes
// before the cache so that the cache only ever holds real upstream answers
// and one group's rewrite never reaches a group without safe search.
// Rewritten answers carry Extended DNS Error 4 (Forged Answer), which
// RFC 8914 names for exactly this kind of policy rewrite.
type safeSearchResolver struct {
	linkNext
	table map[string]safeSearchRule
	vips  map[string][]netip.Addr
	ttl   uint32
	stats *counters
	log   *slog.Logger
}

// The safe-search modes a decision may ask for; anything else is "off".
const (
	safeSearchStrict   = "strict"
	safeSearchModerate = "moderate"
)

func (r *safeSearchResolver) resolve(ctx context.Context, q *query) (*answer, error) {
	if q.decision == nil {
		return r.next.resolve(ctx, q)
	}
	mode := q.decision.SafeSearch
	if mode != safeSearchStrict && mode != safeSearchModerate {
		return r.next.resolve(ctx, q)
	}
	rule, ok := r.table[q.fqdn]
	if !ok {
		return r.next.resolve(ctx, q)
	}
	r.stats.safeSearch.Add(1)
	forged := ede(dns.ExtendedErrorCodeForgedAnswer, "aupguard: safe search enforced ("+rule.engine+")")
	if len(rule.addrs) > 0 {
		return &answer{msg: addressAnswer(q, rule.addrs, r.ttl), ede: forged, from: "safesearch"}, nil
	}

	target := rule.target(mode)
	m := reply(q, dns.RcodeSuccess)
	m.Answer = []dns.RR{&dns.CNAME{
		Hdr:    dns.RR_Header{Name: q.fqdn, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: r.ttl},
		Target: target,
	}}
	ta, err := r.next.resolve(ctx, q.derive(target))
	switch {
	case err == nil && ta != nil && ta.msg != nil && ta.msg.Rcode == dns.RcodeSuccess && len(ta.msg.Answer) > 0:
		m.Answer = append(m.Answer, ta.msg.Answer...)
	case q.qtype == dns.TypeA || q.qtype == dns.TypeAAAA:
		if err != nil {
			r.log.Debug("safe-search target unresolved, answering its virtual IPs", "target", target, "err", err)
		}
		m.Answer = append(m.Answer, addrRRs(target, q.qtype, r.vips[target], r.ttl)...)
	case err == nil && ta != nil && ta.msg != nil && ta.msg.Rcode == dns.RcodeSuccess:
		// NODATA for the target: keep its SOA so the client can cache that.
		m.Ns = ta.msg.Ns
	}
	return &answer{msg: m, ede: forged, from: "safesearch"}, nil
}
