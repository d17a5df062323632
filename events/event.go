// Package events turns blocks and alerts into misuse events: it spools
// them durably to disk as JSON lines, delivers them to sinks (webhook,
// Redis stream) with retries, and raises de-duplicated alerts for the
// safeguarding team.
package events

import (
	"time"

	"github.com/aupguard/aupguard/verdict"
)

// Kind says why an event exists.
type Kind string

// The kinds of event.
const (
	// KindBlock is a request the policy blocked.
	KindBlock Kind = "block"
	// KindAlert is a request the policy allowed but marked for attention.
	KindAlert Kind = "alert"
	// KindReviewRequest is a learner asking, from the block page, for a
	// block to be reviewed; Ref names the event being disputed.
	KindReviewRequest Kind = "review_request"
)

// Event is one misuse event. The field set is the design's schema and is
// the same in the spool, on the webhook and in the Redis stream. It holds
// the least data that makes an event attributable: the URL carries no query
// string unless the policy asked for it.
type Event struct {
	ID             string           `json:"id"`
	Time           time.Time        `json:"time"`
	Instance       string           `json:"instance"`
	Kind           Kind             `json:"kind"`
	Source         verdict.Source   `json:"source"`
	Phase          verdict.Phase    `json:"phase"`
	Action         verdict.Action   `json:"action"`
	Category       string           `json:"category,omitempty"`
	Rule           string           `json:"rule,omitempty"`
	Reason         string           `json:"reason,omitempty"`
	Severity       verdict.Severity `json:"severity,omitempty"`
	Alert          bool             `json:"alert"`
	ClientIP       string           `json:"client_ip,omitempty"`
	User           string           `json:"user,omitempty"`
	Groups         []string         `json:"groups,omitempty"`
	Host           string           `json:"host,omitempty"`
	URL            string           `json:"url,omitempty"`
	Method         string           `json:"method,omitempty"`
	QName          string           `json:"qname,omitempty"`
	QType          string           `json:"qtype,omitempty"`
	PolicyRevision string           `json:"policy_revision,omitempty"`
	ListsRevision  string           `json:"lists_revision,omitempty"`
	// Ref is the event a review request is about.
	Ref string `json:"ref,omitempty"`
	// Message is what the learner wrote on a review request ("Why do you
	// need this site?"); no other kind carries it. It is plain text the
	// learner controls, already bounded and stripped of control
	// characters by the proxy, never HTML-escaped: every reader escapes it
	// for its own output.
	Message string `json:"message,omitempty"`
	// Suppressed counts alerts for the same learner and category that were
	// de-duplicated since the previous alert that was sent.
	Suppressed int `json:"suppressed,omitempty"`
	// Repeats counts identical events (same client, names and decision)
	// the DNS filter folded into the event named by Ref within its
	// event_fold_window; only the follow-up that reports them has it.
	Repeats int `json:"repeats,omitempty"`
	// Error records why the policy could not be evaluated, when the action
	// is the fail-closed default.
	Error string `json:"error,omitempty"`
	// Model holds the domain-name model's scores of a host no list named;
	// Page the page's content scores and matched phrases (phase response).
	// They are for the safeguarding reviewer, never the learner's page.
	Model []verdict.ModelScore `json:"model,omitempty"`
	Page  *verdict.Page        `json:"page,omitempty"`
}
