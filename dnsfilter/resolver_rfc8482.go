package dnsfilter

import (
	"context"

	"github.com/miekg/dns"
)

// rfc8482Resolver is the sixth link: ANY queries get the minimal answer of
// RFC 8482 (one synthesized HINFO "RFC8482"), which denies amplification
// attacks their large answers and tells nothing about the name. It sits
// after the policy so that a blocked name still gets its block answer and
// event, and before safe search and the cache so ANY never reaches the
// upstreams.
type rfc8482Resolver struct {
	linkNext
	stats *counters
}

// rfc8482TTL is the TTL RFC 8482 implementations conventionally use.
const rfc8482TTL = 8482

func (r *rfc8482Resolver) resolve(ctx context.Context, q *query) (*answer, error) {
	if q.qtype != dns.TypeANY {
		return r.next.resolve(ctx, q)
	}
	r.stats.anyMinimal.Add(1)
	m := reply(q, dns.RcodeSuccess)
	m.Answer = []dns.RR{&dns.HINFO{
		Hdr: dns.RR_Header{Name: q.fqdn, Rrtype: dns.TypeHINFO, Class: dns.ClassINET, Ttl: rfc8482TTL},
		Cpu: "RFC8482",
	}}
	return &answer{msg: m, from: "rfc8482"}, nil
}
