package dnsfilter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// upstreamResolver is the last link: it forwards the question to the
// configured resolvers. Each upstream gets upstream_timeout; a network
// error, a timeout, a REFUSED answer or a mismatched reply moves on to the
// next one, within the query's overall timeout. An upstream that failed is
// tried last for upstreamBackoff, so one dead server costs one timeout, not
// one per query. UDP answers with TC set are retried over TCP to the same
// upstream.
//
// It sends its own question (lowercased, RD set, the client's DO and CD
// bits, EDNS at edns_max_size and no other options), so nothing of the
// client's EDNS options (client subnet, cookies) leaks upstream, and the
// answer is the same whichever client asked: that is what lets the cache
// above share it.
type upstreamResolver struct {
	ups     []*upstream
	timeout time.Duration
	udpSize uint16
	now     func() time.Time
	stats   *counters
	log     *slog.Logger
}

// upstreamBackoff is how long a failed upstream is tried after the others.
const upstreamBackoff = 30 * time.Second

// upstream is one resolver and its health.
type upstream struct {
	addr string // host:port
	net  string // "udp" (TCP on truncation) or "tcp"
	// downUntil is a UnixNano time before which the upstream is tried last.
	downUntil atomic.Int64
}

func (u *upstream) String() string {
	if u.net == "tcp" {
		return "tcp://" + u.addr
	}
	return u.addr
}

// resolveUpstreams expands the configured specs, reading resolvConf for
// "system".
func resolveUpstreams(specs []string, resolvConf string) ([]*upstream, error) {
	var out []*upstream
	seen := map[string]bool{}
	add := func(netw, addr string) {
		if k := netw + " " + addr; !seen[k] {
			seen[k] = true
			out = append(out, &upstream{addr: addr, net: netw})
		}
	}
	for i, s := range specs {
		spec, err := parseUpstream(s)
		if err != nil {
			return nil, fmt.Errorf("upstreams[%d]: %w", i, err)
		}
		if !spec.system {
			add(spec.net, spec.addr)
			continue
		}
		cc, err := dns.ClientConfigFromFile(resolvConf)
		if err != nil {
			return nil, fmt.Errorf("upstreams[%d]: system: reading %s: %w", i, resolvConf, err)
		}
		if len(cc.Servers) == 0 {
			return nil, fmt.Errorf("upstreams[%d]: system: %s lists no nameserver", i, resolvConf)
		}
		for _, srv := range cc.Servers {
			add("udp", net.JoinHostPort(srv, cc.Port))
		}
	}
	return out, nil
}

func (r *upstreamResolver) resolve(ctx context.Context, q *query) (*answer, error) {
	m := new(dns.Msg)
	m.Id = dns.Id()
	m.RecursionDesired = true
	m.CheckingDisabled = q.cd
	m.Question = []dns.Question{{Name: q.fqdn, Qtype: q.qtype, Qclass: q.qclass}}
	m.SetEdns0(r.udpSize, q.do)

	var errs []error
	for _, u := range r.order() {
		if ctx.Err() != nil {
			break
		}
		resp, err := r.exchange(ctx, u, m)
		if err != nil {
			r.stats.upstreamErrors.Add(1)
			errs = append(errs, fmt.Errorf("%s: %w", u, err))
			if u.downUntil.Swap(r.now().Add(upstreamBackoff).UnixNano()) <= r.now().UnixNano() {
				r.log.Warn("upstream failed, trying it last for a while", "upstream", u.String(), "err", err, "for", upstreamBackoff)
			}
			continue
		}
		u.downUntil.Store(0)
		stripOPT(resp)
		return &answer{msg: resp, from: fromUpstream}, nil
	}
	if ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	return nil, fmt.Errorf("all upstreams failed for %s %s: %w", q.name, dns.Type(q.qtype), errors.Join(errs...))
}

// order lists healthy upstreams in configured order, then the ones in
// backoff, soonest back first.
func (r *upstreamResolver) order() []*upstream {
	now := r.now().UnixNano()
	out := make([]*upstream, 0, len(r.ups))
	var down []*upstream
	for _, u := range r.ups {
		if u.downUntil.Load() > now {
			down = append(down, u)
		} else {
			out = append(out, u)
		}
	}
	for len(down) > 0 {
		best := 0
		for i, u := range down {
			if u.downUntil.Load() < down[best].downUntil.Load() {
				best = i
			}
		}
		out = append(out, down[best])
		down = append(down[:best], down[best+1:]...)
	}
	return out
}

// exchange asks one upstream, retrying over TCP when a UDP answer was
// truncated, and rejects answers that are not answers to m.
func (r *upstreamResolver) exchange(ctx context.Context, u *upstream, m *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	r.stats.upstreamQueries.Add(1)
	c := &dns.Client{Net: u.net, UDPSize: r.udpSize, Timeout: r.timeout}
	resp, _, err := c.ExchangeContext(ctx, m, u.addr)
	if err == nil && resp.Truncated && u.net == "udp" {
		r.stats.upstreamTCP.Add(1)
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, m, u.addr)
	}
	if err != nil {
		return nil, err
	}
	if err := checkReply(m, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// checkReply rejects replies that cannot be the answer to m: a wrong or
// missing question (an off-path spoof or a confused server), or REFUSED,
// which means this upstream will not serve us and another might.
func checkReply(m, resp *dns.Msg) error {
	if !resp.Response {
		return errors.New("reply without QR bit")
	}
	if len(resp.Question) != 1 || !equalQuestion(resp.Question[0], m.Question[0]) {
		return errors.New("reply does not match the question")
	}
	switch resp.Rcode {
	case dns.RcodeRefused:
		return errors.New("upstream REFUSED the query")
	case dns.RcodeFormatError, dns.RcodeNotImplemented:
		return fmt.Errorf("upstream answered %s", dns.RcodeToString[resp.Rcode])
	}
	return nil
}

func equalQuestion(a, b dns.Question) bool {
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && dns.CanonicalName(a.Name) == dns.CanonicalName(b.Name)
}

// stripOPT removes OPT records: the handler adds its own for the client.
func stripOPT(m *dns.Msg) {
	out := m.Extra[:0]
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, rr)
		}
	}
	m.Extra = out
}

// upstreamAddrs returns the upstreams as addresses, for the forwarding loop
// check at start.
func (r *upstreamResolver) upstreamAddrs() []string {
	out := make([]string, len(r.ups))
	for i, u := range r.ups {
		out[i] = u.addr
	}
	return out
}
