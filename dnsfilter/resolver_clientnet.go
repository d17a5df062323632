package dnsfilter

import (
	"context"

	"github.com/miekg/dns"
)

// clientNetResolver is the first link: a filtering resolver that answered
// anyone would be an open resolver (amplification, and a way around the
// policy for outsiders), so clients outside the configured networks are
// refused before any other work. It also records the client's groups for
// the policy link.
type clientNetResolver struct {
	linkNext
	identify Identifier
	stats    *counters
}

func (r *clientNetResolver) resolve(ctx context.Context, q *query) (*answer, error) {
	groups, ok := r.identify.Identify(q.client)
	if !ok {
		r.stats.refused.Add(1)
		return &answer{
			msg:  reply(q, dns.RcodeRefused),
			ede:  ede(dns.ExtendedErrorCodeProhibited, "client network not served"),
			from: "clientnet",
		}, nil
	}
	q.groups = groups
	return r.next.resolve(ctx, q)
}
