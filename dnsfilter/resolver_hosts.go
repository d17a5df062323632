package dnsfilter

import (
	"context"
	"net/netip"

	"github.com/miekg/dns"
)

// hostsResolver is the fourth link: names in aupguard's hosts file are the
// operator's own (the block page, internal services) and are answered
// locally, unfiltered and never forwarded, so an internal name cannot leak
// upstream nor be blocked by a list that happens to match it. Special names
// come first so the hosts file cannot undo the DoH canary.
type hostsResolver struct {
	linkNext
	hosts map[string][]netip.Addr // lowercased FQDN → addresses
	ttl   uint32
	stats *counters
}

// normalizeHosts keys the operator's map by lowercased FQDN.
func normalizeHosts(in map[string][]netip.Addr) map[string][]netip.Addr {
	out := make(map[string][]netip.Addr, len(in))
	for name, addrs := range in {
		fqdn := dns.CanonicalName(name)
		out[fqdn] = append(out[fqdn], addrs...)
	}
	return out
}

func (r *hostsResolver) resolve(ctx context.Context, q *query) (*answer, error) {
	addrs, ok := r.hosts[q.fqdn]
	if !ok {
		return r.next.resolve(ctx, q)
	}
	r.stats.hosts.Add(1)
	return &answer{msg: addressAnswer(q, addrs, r.ttl), from: "hosts"}, nil
}
