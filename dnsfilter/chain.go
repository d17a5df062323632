package dnsfilter

import (
	"context"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/verdict"
)

// resolver is one link of the chain. A link either answers the query
// itself or asks the next link and may rewrite what comes back. The order,
// built in buildChain, is:
//
//	clientNet  → who may use the server at all (cheapest refusal first)
//	rateLimit  → per-client budget, before anything costs work
//	special    → DoH canary and Private Relay names: answered whatever the policy says
//	hosts      → the operator's own names: never filtered, never forwarded
//	policy     → the decision on the query name, then on the answer's CNAME chain
//	rfc8482    → ANY gets a minimal answer (after policy, so blocked names stay blocked)
//	safeSearch → rewrites search engines to their safe targets (needs the decision)
//	cache      → upstream answers, shared by every client (policy is above it)
//	upstream   → the configured resolvers, with failover
//
// Links return an error only when no answer could be made (the handler turns
// it into SERVFAIL).
type resolver interface {
	resolve(ctx context.Context, q *query) (*answer, error)
}

// query is one client question on its way down the chain.
type query struct {
	// name is the question name, lowercased, without the trailing dot
	// ("" for the root); fqdn is the same with the dot.
	name   string
	fqdn   string
	qtype  uint16
	qclass uint16
	// do and cd are the client's DNSSEC OK and Checking Disabled bits; they
	// change the upstream answer, so they are part of the cache key.
	do, cd bool
	client netip.Addr
	// groups is set by the clientNet link.
	groups []string
	// decision is set by the policy link for the query name; safe search
	// reads it.
	decision *verdict.Decision
	// events are emitted after the reply is written, so a slow sink never
	// delays an answer.
	events []events.Event
}

// derive returns a query for another name with the same type and client,
// for links that resolve a rewrite target through the rest of the chain.
func (q *query) derive(fqdn string) *query {
	fqdn = dns.CanonicalName(fqdn)
	return &query{
		name: trimDot(fqdn), fqdn: fqdn, qtype: q.qtype, qclass: q.qclass,
		do: q.do, cd: q.cd, client: q.client, groups: q.groups, decision: q.decision,
	}
}

// answer is what a link produced: a message whose header, question and OPT
// the handler fills in from the request.
type answer struct {
	msg *dns.Msg
	// ede is the Extended DNS Error (RFC 8914) attached when the client
	// speaks EDNS.
	ede *dns.EDNS0_EDE
	// drop means send nothing at all (rate limiting, overload).
	drop bool
	// from names the link that made the answer, for logs.
	from string
	// block is the decision behind a block of the query name itself (not
	// of a name in its CNAME chain): such a reply can be stored for the
	// fast path and reused for the same decision.
	block *verdict.Decision
}

// The links whose answers are real upstream data, the same for every
// client the policy allows.
const (
	fromCache    = "cache"
	fromUpstream = "upstream"
)

func trimDot(s string) string {
	if len(s) > 0 && s[len(s)-1] == '.' {
		return s[:len(s)-1]
	}
	return s
}
