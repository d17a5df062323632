package dnsfilter

import (
	"context"
	"net/netip"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// rateLimitResolver is the second link: once a client is known to be
// served, it gets a token bucket so one device (or a spoofed flood from
// inside the network) cannot starve the others or the upstreams. It sits
// before every link that costs work: policy evaluation, cache, upstream.
//
// Queries beyond the budget are dropped without a reply: answering them,
// even with REFUSED, would still let a spoofed source aim traffic at a
// victim. Buckets live in an LRU bounded by rate_limit.clients, so memory
// stays bounded whatever the number of sources.
type rateLimitResolver struct {
	linkNext
	limiter *clientLimiter
	stats   *counters
}

// clientLimiter keeps the token buckets; the fast path draws on the same
// ones, so a client's budget is one whichever path answers it.
type clientLimiter struct {
	limit   rate.Limit
	burst   int
	buckets *lru.Cache[netip.Prefix, *rate.Limiter]
}

// newClientLimiter returns nil when rate limiting is off.
func newClientLimiter(cfg RateLimitConfig) (*clientLimiter, error) {
	if cfg.QPS <= 0 {
		return nil, nil
	}
	c, err := lru.New[netip.Prefix, *rate.Limiter](cfg.Clients)
	if err != nil {
		return nil, err
	}
	return &clientLimiter{limit: rate.Limit(cfg.QPS), burst: cfg.Burst, buckets: c}, nil
}

// allow takes a token from client's bucket, if there is one.
func (l *clientLimiter) allow(client netip.Addr) bool {
	key := clientKey(client)
	lim, ok := l.buckets.Get(key)
	if !ok {
		// Two first queries racing may each create a bucket; the loser's
		// single token is a negligible leak compared to a lock here.
		lim = rate.NewLimiter(l.limit, l.burst)
		if prev, found, _ := l.buckets.PeekOrAdd(key, lim); found {
			lim = prev
		}
	}
	return lim.Allow()
}

func (r *rateLimitResolver) resolve(ctx context.Context, q *query) (*answer, error) {
	if !q.admitted && !r.limiter.allow(q.client) {
		r.stats.rateLimited.Add(1)
		return &answer{drop: true, from: "ratelimit"}, nil
	}
	return r.next.resolve(ctx, q)
}

// clientKey is the unit a budget is kept for: one IPv4 address, or one
// IPv6 /64, since a single IPv6 host may use any address in its /64.
func clientKey(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}
