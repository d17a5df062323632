package dnsfilter

import (
	"context"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/verdict"
)

// resolver is one link of the chain. A link either answers the query
// itself or asks the next link and may rewrite what comes back. buildChain
// lays the links out top-down and says why each sits where it does; the
// fast path (fastpath.go) answers repeats of the commonest questions
// without walking the chain, but shares its steps: client network, then
// rate limit, then policy input (dnsInput) and judgement (policyJudge).
//
// Links return an error only when no answer could be made (the handler turns
// it into SERVFAIL).
type resolver interface {
	resolve(ctx context.Context, q *query) (*answer, error)
}

// link is a resolver that hands what it does not answer to the next one.
type link interface {
	resolver
	setNext(resolver)
}

// linkNext is embedded by every link but the last: chainOf sets it.
type linkNext struct{ next resolver }

func (l *linkNext) setNext(r resolver) { l.next = r }

// chainOf wires links in order, each to the one after it and the last to
// end, and returns the head.
func chainOf(end resolver, links ...link) resolver {
	next := end
	for i := len(links) - 1; i >= 0; i-- {
		links[i].setNext(next)
		next = links[i]
	}
	return next
}

// buildChain is the one place the chain's order is decided. It is read top
// down, the way a query travels:
func (s *Server) buildChain(opts Options, hosts map[string][]netip.Addr, special map[string]specialName) resolver {
	localTTL := ttlSeconds(s.cfg.LocalTTL)
	links := []link{
		// clientNet: who may use the server at all. The cheapest refusal
		// comes first, so an outsider costs nothing and the server is never
		// an open resolver. It also learns the client's groups.
		&clientNetResolver{identify: opts.Identifier, stats: &s.stats},
	}
	if s.limiter != nil {
		// rateLimit: one budget per client (the fast path draws on the same
		// buckets, at the same point: right after the client check), before
		// any link that costs work — policy, cache, upstream.
		links = append(links, &rateLimitResolver{limiter: s.limiter, stats: &s.stats})
	}
	links = append(links,
		// special: DoH canary and Private Relay names are signals to
		// clients, answered whatever the policy says.
		&specialResolver{names: special, ttl: localTTL, ev: s.ev, stats: &s.stats},
		// hosts: the operator's own names are never filtered and never
		// forwarded.
		&hostsResolver{hosts: hosts, ttl: localTTL, stats: &s.stats},
		// policy: the decision on the query name, then on every name of the
		// answer's CNAME chain; a block is answered here and never reaches
		// the cache or the upstreams.
		&policyResolver{judge: s.judge, blocker: newBlocker(s.cfg.Block)},
		// rfc8482: ANY gets a minimal answer — after the policy, so blocked
		// names stay blocked whatever the type.
		&rfc8482Resolver{stats: &s.stats},
		// safeSearch: rewrites search engines to their safe targets; it
		// needs the decision's safe-search mode, so it follows the policy.
		&safeSearchResolver{table: safeSearchTable(), vips: safeSearchVIPs(), ttl: localTTL, stats: &s.stats, log: s.log},
	)
	if s.cache != nil {
		// cache: upstream answers shared by every client. It sits below
		// every rewrite and below the policy, so it holds only real,
		// unfiltered answers and one client's policy never leaks into
		// another's answer.
		links = append(links, s.cache)
	}
	// upstream: the configured resolvers, with failover; it answers
	// whatever reaches it.
	return chainOf(s.ups, links...)
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
	// at is when the query arrived by the server's clock, when the caller
	// has read it already (the fast path reads it once per batch); zero
	// means read it when needed.
	at time.Time
	// admitted says the query's rate-limit token was already taken: the
	// fast path takes it right after the client check, as the chain does,
	// before it hands over what it cannot answer.
	admitted bool
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
