package dnsfilter

import (
	"context"
	"time"

	"github.com/miekg/dns"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/verdict"
)

// The policy step exists once, for the chain's policy link and for the
// fast path alike: dnsInput is the question the decision core is asked,
// and policyJudge.record turns its answer into counters and an event. A
// field added to the input, or a change to what a block counts, reaches
// both paths or neither.

// dnsInput fills in (and dq, which in points to) with the policy input for
// a question about name of type qtype from a client with address clientIP
// and groups, asked at. The caller owns the storage, so the fast path can
// reuse its own for every packet. The host goes through the normaliser
// every input builder uses (verdict.NormalizeHost); names from the wire
// are already in its form, which it returns without allocating.
func dnsInput(in *verdict.Input, dq *verdict.DNSQuestion, clientIP string, groups []string, name string, qtype uint16, at time.Time) {
	host := name
	if h, err := verdict.NormalizeHost(name); err == nil {
		host = h
	}
	*dq = verdict.DNSQuestion{QName: name, QType: dns.Type(qtype).String()}
	*in = verdict.Input{
		Source:  verdict.SourceDNS,
		Phase:   verdict.PhaseQuery,
		Client:  verdict.Client{IP: clientIP, Groups: groups},
		Request: verdict.Request{Host: host},
		DNS:     dq,
		Time:    at,
	}
}

// policyJudge asks the decision core and records what its decisions call
// for.
type policyJudge struct {
	decider Decider
	ev      *eventMaker
	stats   *counters
	// fold, when set, knows repeats of an attempt whose event went out
	// (fold.go): they are counted there and make no event.
	fold *folder
	now  func() time.Time
}

// decide asks the decision core about name (the query name or a name in
// its answer) for q's client. The decider never fails: an evaluation
// error is a fail-closed decision, counted here.
func (j *policyJudge) decide(ctx context.Context, q *query, name string) verdict.Decision {
	var in verdict.Input
	var dq verdict.DNSQuestion
	dnsInput(&in, &dq, q.client.String(), q.groups, name, q.qtype, time.Now())
	d := j.decider.Decide(ctx, &in)
	if d.Error != "" {
		j.stats.decisionErrors.Add(1)
	}
	return d
}

// record counts a decision about name and adds the event it calls for to
// q.events; it says whether the decision blocks.
func (j *policyJudge) record(q *query, d *verdict.Decision, name string) (blocked bool) {
	switch {
	case d.Blocked():
		j.stats.blocked.Add(1)
		j.event(q, events.KindBlock, d, name)
		return true
	case d.Alert:
		j.stats.alerts.Add(1)
		j.event(q, events.KindAlert, d, name)
	}
	return false
}

// event adds the event of a decision to q.events, unless it repeats one
// sent within the fold window.
func (j *policyJudge) event(q *query, kind events.Kind, d *verdict.Decision, name string) {
	if j.fold != nil {
		at := q.at
		if at.IsZero() {
			at = j.now()
		}
		if j.fold.repeat(decisionKey(q, kind, d, name), at) {
			return
		}
	}
	q.events = append(q.events, j.ev.make(q, kind, d, name))
}
