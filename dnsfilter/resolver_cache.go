package dnsfilter

import (
	"context"
	"strconv"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"
)

// cacheResolver is the eighth link: it keeps upstream answers for their
// TTL (clamped to cache.min_ttl/max_ttl; negative answers per RFC 2308 for
// min(SOA TTL, SOA MINIMUM), capped by cache.negative_ttl) in an LRU of
// cache.size entries, and collapses concurrent identical misses into one
// upstream query. It sits directly above the upstream link and below every
// rewrite, so it only ever holds real, unfiltered answers that are correct
// for every client; the policy above it is asked on every query, hit or
// miss.
type cacheResolver struct {
	linkNext
	entries *lru.Cache[string, *cacheEntry]
	flight  singleflight.Group
	cfg     CacheConfig
	now     func() time.Time
	stats   *counters
}

// cacheEntry is one stored answer. Its records already carry the clamped
// TTLs, counted from stored.
type cacheEntry struct {
	msg     *dns.Msg
	stored  time.Time
	expires time.Time
}

// newCacheResolver returns nil when the cache is off (size 0).
func newCacheResolver(cfg CacheConfig, now func() time.Time, stats *counters) (*cacheResolver, error) {
	if cfg.Size == 0 {
		return nil, nil
	}
	c, err := lru.New[string, *cacheEntry](cfg.Size)
	if err != nil {
		return nil, err
	}
	return &cacheResolver{entries: c, cfg: cfg, now: now, stats: stats}, nil
}

// cacheKey is everything the upstream answer depends on.
func cacheKey(q *query) string {
	b := make([]byte, 0, len(q.fqdn)+16)
	b = append(b, q.fqdn...)
	b = append(b, '/')
	b = strconv.AppendUint(b, uint64(q.qtype), 10)
	b = append(b, '/')
	b = strconv.AppendUint(b, uint64(q.qclass), 10)
	if q.do {
		b = append(b, "/do"...)
	}
	if q.cd {
		b = append(b, "/cd"...)
	}
	return string(b)
}

func (r *cacheResolver) resolve(ctx context.Context, q *query) (*answer, error) {
	key := cacheKey(q)
	if m, ok := r.lookup(key); ok {
		r.stats.cacheHits.Add(1)
		return &answer{msg: m, from: fromCache}, nil
	}
	r.stats.cacheMisses.Add(1)

	// The shared call runs without the first caller's cancellation (but
	// with the longest deadline a query has) so that one client giving up
	// does not fail the others waiting on the same name.
	ch := r.flight.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeoutOf(ctx))
		defer cancel()
		ans, err := r.next.resolve(fctx, q)
		if err != nil {
			return nil, err
		}
		r.store(key, ans.msg)
		return ans.msg, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		// Every caller gets its own copy: links above rewrite messages.
		return &answer{msg: res.Val.(*dns.Msg).Copy(), from: fromUpstream}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// timeoutOf is the time left before ctx's deadline, or a safe bound.
func timeoutOf(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d > 0 {
			return d
		}
		return time.Millisecond
	}
	return 30 * time.Second
}

// lookup returns a copy of a live entry with its TTLs aged.
func (r *cacheResolver) lookup(key string) (*dns.Msg, bool) {
	e, ok := r.entries.Get(key)
	if !ok {
		return nil, false
	}
	now := r.now()
	if !now.Before(e.expires) {
		// Left for the refetch to overwrite: removing it here could race
		// with that store and drop the fresh entry.
		return nil, false
	}
	age := uint32(now.Sub(e.stored) / time.Second)
	m := e.msg.Copy()
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			if h.Ttl > age {
				h.Ttl -= age
			} else {
				h.Ttl = 0
			}
		}
	}
	return m, true
}

// store keeps m if it is cacheable. It clamps m's TTLs in place, so the
// first client sees the same TTLs as later ones.
func (r *cacheResolver) store(key string, m *dns.Msg) {
	ttl, ok := r.ttl(m)
	if !ok || ttl == 0 {
		return
	}
	now := r.now()
	r.entries.Add(key, &cacheEntry{msg: m.Copy(), stored: now, expires: now.Add(time.Duration(ttl) * time.Second)})
}

// ttl decides how long m may be cached and clamps its records' TTLs to
// that policy. Truncated answers, server failures and referrals are not
// cached; negative answers only with an SOA (RFC 2308 section 5).
func (r *cacheResolver) ttl(m *dns.Msg) (uint32, bool) {
	if m == nil || m.Truncated {
		return 0, false
	}
	minTTL, maxTTL := ttlSeconds(r.cfg.MinTTL), ttlSeconds(r.cfg.MaxTTL)
	clamp := func(t uint32) uint32 { return min(max(t, minTTL), maxTTL) }
	switch {
	case m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0:
		lowest := uint32(0)
		for i, rr := range m.Answer {
			h := rr.Header()
			h.Ttl = clamp(h.Ttl)
			if i == 0 || h.Ttl < lowest {
				lowest = h.Ttl
			}
		}
		for _, sec := range [][]dns.RR{m.Ns, m.Extra} {
			for _, rr := range sec {
				rr.Header().Ttl = clamp(rr.Header().Ttl)
			}
		}
		return lowest, true
	case m.Rcode == dns.RcodeNameError || (m.Rcode == dns.RcodeSuccess && len(m.Answer) == 0):
		for _, rr := range m.Ns {
			if s, ok := rr.(*dns.SOA); ok {
				neg := min(s.Hdr.Ttl, s.Minttl, ttlSeconds(r.cfg.NegativeTTL))
				s.Hdr.Ttl = neg
				return neg, true
			}
		}
	}
	return 0, false
}

// len reports the number of entries, for Stats.
func (r *cacheResolver) len() int { return r.entries.Len() }
