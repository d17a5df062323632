package dnsfilter

import "sync/atomic"

// Stats is a snapshot of the server's counters since it was created.
type Stats struct {
	// Queries counts every request the handler saw.
	Queries uint64
	// Refused counts clients outside the served networks.
	Refused uint64
	// RateLimited counts queries dropped by the per-client limit.
	RateLimited uint64
	// Overloaded counts queries dropped because max_inflight was reached.
	Overloaded uint64
	// Malformed counts requests answered FORMERR, NOTIMP, BADVERS or
	// REFUSED for their form (no question, odd class or type).
	Malformed uint64
	// Blocked counts block answers from the policy; CNAMEBlocked is the
	// part of them blocked for a name in the answer's CNAME chain.
	Blocked      uint64
	CNAMEBlocked uint64
	// Alerts counts allowed queries the policy marked for attention.
	Alerts uint64
	// DecisionErrors counts decisions made without a working policy.
	DecisionErrors uint64
	// Special counts DoH canary and Private Relay answers.
	Special uint64
	// Hosts counts answers from the hosts file.
	Hosts uint64
	// SafeSearch counts safe-search rewrites.
	SafeSearch uint64
	// AnyMinimal counts ANY queries given the RFC 8482 answer.
	AnyMinimal uint64
	// CacheHits, CacheMisses and CacheEntries describe the response cache.
	CacheHits    uint64
	CacheMisses  uint64
	CacheEntries int
	// FastAnswers counts queries answered on the fast path, from a stored
	// reply (they are counted in CacheHits or Blocked as well).
	FastAnswers uint64
	// UpstreamQueries counts exchanges with upstreams, UpstreamErrors the
	// failed ones, UpstreamTCP the TCP retries after truncation.
	UpstreamQueries uint64
	UpstreamErrors  uint64
	UpstreamTCP     uint64
	// ServFail counts queries answered SERVFAIL (all upstreams failed, or
	// an internal error).
	ServFail uint64
	// Truncated counts UDP responses cut to the client's size with TC set.
	Truncated uint64
	// EventErrors counts events the Emitter refused.
	EventErrors uint64
	// EventsFolded counts events not sent because they repeated one sent
	// within event_fold_window (their count goes out in a follow-up).
	EventsFolded uint64
	// Panics counts handler panics recovered (each is a bug).
	Panics uint64
}

// counters are the live counters behind Stats.
type counters struct {
	queries, refused, rateLimited, overloaded, malformed atomic.Uint64
	blocked, cnameBlocked, alerts, decisionErrors        atomic.Uint64
	special, hosts, safeSearch, anyMinimal               atomic.Uint64
	cacheHits, cacheMisses, fast                         atomic.Uint64
	upstreamQueries, upstreamErrors, upstreamTCP         atomic.Uint64
	servFail, truncated, eventErrors, panics             atomic.Uint64
	eventsFolded                                         atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Queries: c.queries.Load(), Refused: c.refused.Load(), RateLimited: c.rateLimited.Load(),
		Overloaded: c.overloaded.Load(), Malformed: c.malformed.Load(),
		Blocked: c.blocked.Load(), CNAMEBlocked: c.cnameBlocked.Load(), Alerts: c.alerts.Load(),
		DecisionErrors: c.decisionErrors.Load(),
		Special:        c.special.Load(), Hosts: c.hosts.Load(), SafeSearch: c.safeSearch.Load(),
		AnyMinimal: c.anyMinimal.Load(),
		CacheHits:  c.cacheHits.Load(), CacheMisses: c.cacheMisses.Load(), FastAnswers: c.fast.Load(),
		UpstreamQueries: c.upstreamQueries.Load(), UpstreamErrors: c.upstreamErrors.Load(),
		UpstreamTCP: c.upstreamTCP.Load(),
		ServFail:    c.servFail.Load(), Truncated: c.truncated.Load(), EventErrors: c.eventErrors.Load(),
		Panics: c.panics.Load(), EventsFolded: c.eventsFolded.Load(),
	}
}
