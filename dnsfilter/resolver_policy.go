package dnsfilter

import (
	"context"

	"github.com/miekg/dns"
)

// policyResolver is the fifth link, the reason the server exists. It asks
// the decision core about the query name; a block is answered here and
// never reaches the cache or the upstreams. When the name is allowed it
// resolves through the rest of the chain and then asks again about every
// other name in the answer's CNAME chain (and DNAME and SVCB/HTTPS
// targets): a tracker or a blocked site hidden behind an innocent alias
// ("CNAME cloaking") is blocked like the name itself.
//
// It sits after the hosts file (operator names are never filtered) and
// before safe search, which needs the decision's SafeSearch mode, and the
// cache, which holds unfiltered upstream answers shared by all clients so
// that one client's policy never leaks into another's answer.
type policyResolver struct {
	linkNext
	judge   *policyJudge
	blocker *blocker
}

// maxChainNames bounds the decisions made per answer; real CNAME chains are
// a handful of names and resolvers stop following long before this.
const maxChainNames = 16

func (r *policyResolver) resolve(ctx context.Context, q *query) (*answer, error) {
	if q.name == "" {
		// The root has no categories; priming queries pass.
		return r.next.resolve(ctx, q)
	}
	d := r.judge.decide(ctx, q, q.name)
	q.decision = &d
	if r.judge.record(q, &d, q.name) {
		a := r.blocker.answer(q, &d, q.name)
		a.block = &d
		return a, nil
	}
	ans, err := r.next.resolve(ctx, q)
	if err != nil || ans == nil || ans.msg == nil {
		return ans, err
	}
	for _, name := range chainNames(ans.msg, q.name) {
		dn := r.judge.decide(ctx, q, name)
		if r.judge.record(q, &dn, name) {
			r.judge.stats.cnameBlocked.Add(1)
			return r.blocker.answer(q, &dn, name), nil
		}
	}
	return ans, nil
}

// chainNames lists the names other than qname that the answer leads the
// client to: CNAME owners and targets, DNAME targets, and SVCB/HTTPS
// targets. Order follows the answer, duplicates are dropped.
func chainNames(m *dns.Msg, qname string) []string {
	seen := map[string]bool{qname: true}
	var out []string
	add := func(n string) {
		n = trimDot(dns.CanonicalName(n))
		if n == "" || seen[n] || len(out) >= maxChainNames {
			return
		}
		seen[n] = true
		out = append(out, n)
	}
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.CNAME:
			add(rr.Hdr.Name)
			add(rr.Target)
		case *dns.DNAME:
			add(rr.Target)
		case *dns.SVCB:
			add(rr.Target)
		case *dns.HTTPS:
			add(rr.Target)
		}
	}
	return out
}
