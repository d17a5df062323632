package dnsfilter

import (
	"context"

	"github.com/miekg/dns"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/verdict"
)

// specialResolver is the third link: names that are signals to clients
// rather than content. A negative answer for use-application-dns.net tells
// Firefox not to turn on DNS-over-HTTPS by default (which would bypass this
// filter), and one for mask.icloud.com / mask-h2.icloud.com tells Apple
// devices that the network opts out of iCloud Private Relay. These answers
// must hold for every client whatever the policy says, so the link sits
// before the policy; it sits after the network check and rate limit like
// any other work.
//
// The answer is a plain NXDOMAIN with an SOA and no Extended DNS Error: it
// is a signal the client reads, not a failure to diagnose. Each attempt is
// a low-severity circumvention event.
type specialResolver struct {
	linkNext
	names map[string]specialName
	ttl   uint32
	ev    *eventMaker
	stats *counters
}

// specialName is one signal name and the event it produces.
type specialName struct {
	rule   string
	reason string
}

// specialNames returns the signal names, from the shared data's
// doh-canary-and-special.tsv (../shared/data beside the repository;
// Mozilla's canary documentation; Apple's network guidance for Private
// Relay).
func specialNames() map[string]specialName {
	relay := specialName{rule: "private_relay", reason: "iCloud Private Relay is not available on this network"}
	return map[string]specialName{
		"use-application-dns.net": {rule: "doh_canary", reason: "DNS-over-HTTPS by default is disabled on this network"},
		"mask.icloud.com":         relay,
		"mask-h2.icloud.com":      relay,
	}
}

func (r *specialResolver) resolve(ctx context.Context, q *query) (*answer, error) {
	sp, ok := r.names[q.name]
	if !ok {
		return r.next.resolve(ctx, q)
	}
	r.stats.special.Add(1)
	d := verdict.Decision{
		Action:   verdict.ActionBlock,
		Category: "circumvention",
		Rule:     sp.rule,
		Reason:   sp.reason,
		Severity: verdict.SeverityLow,
	}
	q.events = append(q.events, r.ev.make(q, events.KindBlock, &d, q.name))
	return &answer{msg: negative(q, dns.RcodeNameError, r.ttl), from: "special"}, nil
}
