package dnsfilter

import (
	"context"
	"log/slog"
	"time"

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
	var in verdict.Input
	var dq verdict.DNSQuestion
	dnsInput(&in, &dq, q.client.String(), q.groups, q.name, q.qtype, e.now())
	in.Request.Host = host // the name decided on: a CNAME in the answer, or the query name
	ev, _ := events.FromDecision(d, &in, events.BuildOptions{NewID: e.newID, Instance: e.instance})
	verdict.LogDecision(context.Background(), e.log, &in, d, 0, ev.ID, false)
	return ev
}
