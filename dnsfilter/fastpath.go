package dnsfilter

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/miekg/dns"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/verdict"
)

// The fast path answers, on the socket's reading goroutine, the two
// questions that make up nearly all of a learner network's DNS traffic: a
// name answered recently, and a blocked name asked again. It does exactly
// what the chain would — client network, rate limit, a decision on the
// name and on every name its answer leads to, the block event — but reads
// the request in wire form, takes decisions only from the decision core's
// in-process cache (which never waits), and sends a stored reply by
// patching a copy. Whatever it cannot answer that way (an uncached
// decision or answer, alerts, local and safe-search names, any unusual
// request) goes to the full path, which stores its reply for next time.

// CachedDecider is a Decider that can also answer from its in-process
// cache without evaluating or waiting; *verdict.Decider is one. With it
// the server has a fast path.
type CachedDecider interface {
	Decider
	DecideCached(in *verdict.Input) (verdict.Decision, bool)
}

// blockEntryLife is how long a stored block reply is reused. The reply
// does not age (its TTL is block.ttl every time); the bound only lets a
// changed block configuration or rule text take over.
const blockEntryLife = time.Minute

// fastPath is the server's fast path: the decider, the stored replies and
// the names it must leave to the chain.
type fastPath struct {
	decider CachedDecider
	// answers holds upstream answers as sent (nil when the response cache
	// is off); blocks holds block replies.
	answers, blocks *wireCache
	// local are names answered by the special, hosts or safe-search links:
	// the chain's business, whatever the decision.
	local map[string]struct{}
}

func newFastPath(d Decider, cacheSize int, special map[string]specialName, hosts map[string][]netip.Addr, safe map[string]safeSearchRule) *fastPath {
	cd, ok := d.(CachedDecider)
	if !ok {
		return nil
	}
	f := &fastPath{decider: cd, answers: newWireCache(cacheSize), blocks: newWireCache(16 << 10), local: map[string]struct{}{}}
	for name := range special {
		f.local[name] = struct{}{}
	}
	for fqdn := range hosts {
		f.local[trimDot(fqdn)] = struct{}{}
	}
	for fqdn := range safe {
		f.local[trimDot(fqdn)] = struct{}{}
	}
	return f
}

// fastState is one reading goroutine's scratch space, reused for every
// packet so the fast path allocates almost nothing.
type fastState struct {
	name, key []byte
	// wq and eligible describe the last packet: eligible means it was read
	// and key is its wire-cache key, so the full path can store its reply.
	wq       wireQuery
	eligible bool
	// admitted says the last packet's rate-limit token is taken.
	admitted bool
	in       verdict.Input
	dnsq     verdict.DNSQuestion
	// The last client's address as a string: a device asks many names in a
	// row, and the decision input wants the string.
	lastClient    netip.Addr
	lastClientStr string
	// pending are the events of the reply just made; the loop emits them
	// once the reply is sent.
	pending []events.Event
	// now is the server's clock and wall the real time, both read once
	// per batch of packets (reading the clock costs more than a cached
	// decision on some virtual machines).
	now, wall time.Time
}

// tick reads the clocks for the next batch.
func (s *Server) tick(fs *fastState) {
	fs.wall = time.Now()
	fs.now = fs.wall
	if !s.realClock {
		fs.now = s.now()
	}
}

func newFastState() *fastState {
	return &fastState{name: make([]byte, 0, maxNameWire), key: make([]byte, 0, maxNameWire+4)}
}

// safeFastAnswer is fastAnswer on the socket's only reading goroutine,
// where a panic (a bug in the decision cache, say) would end the process:
// it is recovered and counted, as the handler does, and the packet goes to
// the chain, which answers it (SERVFAIL should the same bug strike again).
func (s *Server) safeFastAnswer(fs *fastState, out, pkt []byte, client netip.Addr) (reply []byte, handled bool) {
	defer func() {
		if v := recover(); v != nil {
			s.stats.panics.Add(1)
			s.log.Error("dns fast path panic", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			reply, handled = nil, false
		}
	}()
	return s.fastAnswer(fs, out, pkt, client)
}

// fastAnswer tries to answer pkt from client on the fast path, appending
// the reply to out. handled says it did (reply nil: the query is dropped
// by the rate limit); when it did not, the packet goes to the full path.
func (s *Server) fastAnswer(fs *fastState, out, pkt []byte, client netip.Addr) (reply []byte, handled bool) {
	fs.eligible, fs.admitted = false, false
	f := s.fast
	if f == nil {
		return nil, false
	}
	wq, name, ok := parseWireQuery(pkt, fs.name)
	if !ok {
		return nil, false
	}
	fs.name = name
	if _, local := f.local[string(name)]; local {
		return nil, false
	}
	fs.wq = wq
	fs.key = appendWireKey(fs.key[:0], name, &wq)
	fs.eligible = true
	// The chain's order: client network, then the rate limit, then the
	// policy (buildChain).
	groups, served := s.identify.Identify(client)
	if !served {
		return nil, false
	}
	if s.limiter != nil {
		if !s.limiter.allow(client) {
			s.stats.queries.Add(1)
			s.stats.rateLimited.Add(1)
			return nil, true
		}
		// The full path must not take a second token for this query.
		fs.admitted = true
	}
	if client != fs.lastClient || fs.lastClientStr == "" {
		fs.lastClient, fs.lastClientStr = client, client.String()
	}
	qname := string(name)
	d, ok := s.fastDecide(fs, groups, qname, wq.qtype)
	if !ok || d.Error != "" || (!d.Blocked() && d.Alert) {
		return nil, false
	}
	now := fs.now
	limit := wq.maxReply(s.cfg.EDNSMaxSize)
	var e *wireEntry
	if d.Blocked() {
		e = f.blocks.get(fs.key, now)
		if e == nil || !e.block.matches(&d) {
			return nil, false
		}
	} else {
		if f.answers == nil {
			return nil, false
		}
		e = f.answers.get(fs.key, now)
		if e == nil {
			return nil, false
		}
		for _, name := range e.chain {
			dc, ok := s.fastDecide(fs, groups, name, wq.qtype)
			if !ok || dc.Blocked() || dc.Alert || dc.Error != "" {
				return nil, false
			}
		}
	}
	if len(e.msg) > limit {
		return nil, false // the full path truncates
	}

	s.stats.queries.Add(1)
	s.stats.fast.Add(1)
	reply = e.reply(out, pkt, &wq, now)
	if d.Blocked() {
		q := &query{name: qname, qtype: wq.qtype, qclass: dns.ClassINET, client: client, groups: groups, at: now}
		s.judge.record(q, &d, qname)
		fs.pending = append(fs.pending, q.events...)
	} else {
		s.stats.cacheHits.Add(1)
	}
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("dns query", "client", client, "qname", qname, "qtype", dns.Type(wq.qtype).String(),
			"blocked", d.Blocked(), "from", "fast")
	}
	return reply, true
}

// fastDecide asks the decision cache about name for the client in fs,
// with the input the chain's policy link would build (dnsInput).
func (s *Server) fastDecide(fs *fastState, groups []string, name string, qtype uint16) (verdict.Decision, bool) {
	dnsInput(&fs.in, &fs.dnsq, fs.lastClientStr, groups, name, qtype, fs.wall)
	return s.fast.decider.DecideCached(&fs.in)
}

// matches says whether a block reply made for m fits decision d.
func (m *blockMark) matches(d *verdict.Decision) bool {
	return m != nil && m.category == d.Category && m.rule == d.Rule && m.failClosed == (d.Error != "")
}

// remember stores the reply b, just made by the full path for q, for the
// fast path: an upstream answer the client was allowed, or a block of the
// query name itself.
func (f *fastPath) remember(key []byte, q *query, ans *answer, resp *dns.Msg, b []byte, now time.Time) {
	switch {
	case ans.block != nil:
		f.blocks.put(&wireEntry{
			key: string(key), msg: b, stored: now, expires: now.Add(blockEntryLife),
			block: &blockMark{category: ans.block.Category, rule: ans.block.Rule, failClosed: ans.block.Error != ""},
		})
	case f.answers != nil && (ans.from == fromCache || ans.from == fromUpstream) && ans.ede == nil &&
		!resp.Truncated && (resp.Rcode == dns.RcodeSuccess || resp.Rcode == dns.RcodeNameError) &&
		q.decision != nil && !q.decision.Blocked() && !q.decision.Alert && q.decision.Error == "":
		if e := newWireEntry(key, b, now); e != nil {
			e.chain = chainNames(resp, q.name)
			f.answers.put(e)
		}
	}
}
