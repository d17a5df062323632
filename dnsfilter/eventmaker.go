package dnsfilter

import (
	"context"
	"log/slog"
	"time"

	"github.com/miekg/dns"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/verdict"
)

// eventMaker turns a decision about a query into a misuse event, through
// the one builder every enforcement point uses (events.FromDecision).
type eventMaker struct {
	newID    func() string
	now      func() time.Time
	instance string
	// log receives the canonical decision line of every event's decision.
	log *slog.Logger
}

// make builds the event; host is the name the decision was about, which
// differs from the query name when a CNAME in the answer was blocked. The
// kind follows from d (a block, or an alert), as for every event. It is
// where the DNS filter learns an event's ID, so it writes the decision's
// canonical log line too (verdict.LogDecision, at Info): a DNS event's
// reference finds its line in the log.
func (e *eventMaker) make(q *query, _ events.Kind, d *verdict.Decision, host string) events.Event {
	in := verdict.Input{
		Source:  verdict.SourceDNS,
		Phase:   verdict.PhaseQuery,
		Client:  verdict.Client{IP: q.client.String(), Groups: q.groups},
		Request: verdict.Request{Host: host},
		DNS:     &verdict.DNSQuestion{QName: q.name, QType: dns.Type(q.qtype).String()},
		Time:    e.now(),
	}
	ev, _ := events.FromDecision(d, &in, events.BuildOptions{NewID: e.newID, Instance: e.instance})
	verdict.LogDecision(context.Background(), e.log, &in, d, 0, ev.ID, false)
	return ev
}
