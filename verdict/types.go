// Package verdict holds the decision contract shared by every enforcement
// point (the policy input and the decision that comes back) and the cache
// that sits in front of policy evaluation.
package verdict

import (
	"time"
)

// Source names the enforcement point that asks for a decision.
type Source string

// The enforcement points.
const (
	SourceProxy Source = "proxy"
	SourceDNS   Source = "dns"
	SourceCheck Source = "check"
)

// Phase names the moment in a transaction at which a decision is asked for.
type Phase string

// The phases, in the order a proxied transaction meets them.
const (
	PhaseConnect  Phase = "connect"
	PhaseRequest  Phase = "request"
	PhaseResponse Phase = "response"
	PhaseQuery    Phase = "query"
)

// Action is what the enforcement point must do.
type Action string

// The actions a policy may return.
const (
	ActionAllow     Action = "allow"
	ActionBlock     Action = "block"
	ActionIntercept Action = "intercept"
)

// Severity grades a decision for the safeguarding team; the order matters.
type Severity string

// The severities, least to most serious.
const (
	SeverityInfo     Severity = "info"
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// Rank orders severities so thresholds can be compared; unknown ranks lowest.
func (s Severity) Rank() int {
	switch s {
	case SeverityLow:
		return 1
	case SeverityMedium:
		return 2
	case SeverityHigh:
		return 3
	case SeverityCritical:
		return 4
	default:
		return 0
	}
}

// Client is who is asking. Empty fields are unknown and left out of the
// policy input.
type Client struct {
	IP     string
	User   string
	Groups []string
}

// Request is what is asked for. Port 0 and negative ContentLength mean
// unknown.
type Request struct {
	Method        string
	Scheme        string
	Host          string
	Port          int
	Path          string
	Query         string
	ContentType   string
	ContentLength int64
}

// Response describes the origin's answer, at phase response.
type Response struct {
	Status      int
	ContentType string
	Filename    string
}

// DNSQuestion is the question at phase query.
type DNSQuestion struct {
	QName string
	QType string
}

// Input is one decision's policy input, built in Go by the enforcement
// point. Categories is filled in by the decider from the lists, not by the
// caller.
type Input struct {
	Source     Source
	Phase      Phase
	Client     Client
	Request    Request
	Response   *Response
	DNS        *DNSQuestion
	Categories map[string][]string
	// Time is the wall-clock moment of the request; the zero value means
	// "now" and is filled in by the decider.
	Time time.Time
}

// Decision is the policy's answer together with the revisions that produced
// it, so that an event or a block page can say exactly which policy and
// which lists were in force.
type Decision struct {
	Action   Action   `json:"action"`
	Category string   `json:"category,omitempty"`
	Rule     string   `json:"rule,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	Severity Severity `json:"severity,omitempty"`
	Alert    bool     `json:"alert"`
	// CacheTTL is how long the verdict may be reused; negative when the
	// policy did not say (the cache's default applies), 0 for never.
	CacheTTL   time.Duration `json:"-"`
	SafeSearch string        `json:"safesearch,omitempty"`
	// InterceptFailClosed, on an intercept decision, says the client must
	// not fall back to a plain tunnel when it rejects the proxy's
	// certificate (policies: groups.<name>.intercept_fail_closed).
	InterceptFailClosed bool                `json:"intercept_fail_closed,omitempty"`
	Categories          map[string][]string `json:"categories,omitempty"`
	// PolicyRevision and ListsRevision identify the content hashes in force.
	PolicyRevision string `json:"policy_revision"`
	ListsRevision  string `json:"lists_revision"`
	// Error is set when the policy could not be evaluated and the decision
	// is the fail-closed (or fail-open, for groups configured so) default.
	Error string `json:"error,omitempty"`
	// Cached tells where the decision came from: "" (evaluated), "l1" or "l2".
	Cached string `json:"cached,omitempty"`
}

// Blocked reports whether the decision stops the request.
func (d *Decision) Blocked() bool { return d.Action == ActionBlock }
