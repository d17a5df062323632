package dnsfilter

import (
	"slices"
	"time"

	"github.com/miekg/dns"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/verdict"
)

// eventMaker turns a decision about a query into a misuse event.
type eventMaker struct {
	newID    func() string
	now      func() time.Time
	instance string
}

// make builds the event; host is the name the decision was about, which
// differs from the query name when a CNAME in the answer was blocked.
func (e *eventMaker) make(q *query, kind events.Kind, d *verdict.Decision, host string) events.Event {
	return events.Event{
		ID:             e.newID(),
		Time:           e.now().UTC(),
		Instance:       e.instance,
		Kind:           kind,
		Source:         string(verdict.SourceDNS),
		Phase:          string(verdict.PhaseQuery),
		Action:         string(d.Action),
		Category:       d.Category,
		Rule:           d.Rule,
		Reason:         d.Reason,
		Severity:       string(d.Severity),
		Alert:          d.Alert,
		ClientIP:       q.client.String(),
		Groups:         slices.Clone(q.groups),
		Host:           host,
		QName:          q.name,
		QType:          dns.Type(q.qtype).String(),
		PolicyRevision: d.PolicyRevision,
		ListsRevision:  d.ListsRevision,
		Error:          d.Error,
	}
}
