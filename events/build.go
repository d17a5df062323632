package events

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aupguard/aupguard/verdict"
)

// BuildOptions are an enforcement point's settings for the events it
// builds. The zero value is valid.
type BuildOptions struct {
	// IncludeQuery keeps the URL's query string in the event. Set it only
	// when the policy asked for it: queries carry search terms and tokens,
	// and an event holds the least data that makes it attributable.
	IncludeQuery bool
	// NewID makes event IDs (tests give a sequence); nil uses a ULID at
	// the event's time.
	NewID func() string
	// Instance names the enforcing instance; "" leaves it to Emit, which
	// fills in the pipeline's.
	Instance string
}

// KindOf is the kind of event decision d calls for: a block, an alert, or
// none (ok false).
func KindOf(d *verdict.Decision) (kind Kind, ok bool) {
	switch {
	case d == nil:
		return "", false
	case d.Blocked():
		return KindBlock, true
	case d.Alert:
		return KindAlert, true
	}
	return "", false
}

// FromDecision builds the misuse event for a decision, and reports whether
// the decision is one: a block, or an allowed request the policy marked
// alert. It is the one builder of decision events: the proxy, the DNS
// filter and any later enforcement point call it, so an event means the
// same whoever emitted it. The event gets a new ID (print it on the block
// page as the reference) and the input's time, or now.
func FromDecision(d *verdict.Decision, in *verdict.Input, opts BuildOptions) (Event, bool) {
	kind, ok := KindOf(d)
	if !ok {
		return Event{}, false
	}
	t := time.Now()
	if in != nil && !in.Time.IsZero() {
		t = in.Time
	}
	ev := Event{
		ID:             opts.id(t),
		Time:           t.UTC(),
		Instance:       opts.Instance,
		Kind:           kind,
		Action:         d.Action,
		Category:       d.Category,
		Rule:           d.Rule,
		Reason:         d.Reason,
		Severity:       d.Severity,
		Alert:          d.Alert,
		PolicyRevision: d.PolicyRevision,
		ListsRevision:  d.ListsRevision,
		Error:          d.Error,
	}
	if in == nil {
		return ev, true
	}
	ev.Source = in.Source
	ev.Phase = in.Phase
	// What the content scorers saw, for the safeguarding reviewer: the
	// name model's scores and the page's scores and matched phrases.
	if len(in.Model) > 0 {
		ev.Model = slices.Clone(in.Model)
	}
	ev.Page = in.Page
	ev.ClientIP = in.Client.IP
	ev.User = in.Client.User
	if len(in.Client.Groups) > 0 {
		ev.Groups = slices.Clone(in.Client.Groups)
	}
	if in.DNS != nil {
		ev.QName = in.DNS.QName
		ev.QType = in.DNS.QType
		// Host is the one field every event names a site by, so the console
		// can group DNS and proxy events for the same site; a DNS decision
		// on a CNAME target names the target in Request.Host.
		ev.Host = strings.TrimSuffix(strings.ToLower(in.DNS.QName), ".")
		if in.Request.Host != "" {
			ev.Host = in.Request.Host
		}
		return ev, true
	}
	if in.Request.Host != "" {
		ev.Host = in.Request.Host
		ev.Method = in.Request.Method
		ev.URL = requestURL(&in.Request, opts.IncludeQuery)
	}
	return ev, true
}

// ReviewRequest builds the event of a learner asking, from the block page,
// for the block whose event ID is ref to be reviewed. disputed is that
// block's event when this instance still knows it (nil otherwise): the
// request then names what it disputes, so staff need not look it up.
func ReviewRequest(ref string, source verdict.Source, client verdict.Client, disputed *Event, opts BuildOptions) Event {
	t := time.Now()
	ev := Event{
		ID:       opts.id(t),
		Time:     t.UTC(),
		Instance: opts.Instance,
		Kind:     KindReviewRequest,
		Source:   source,
		Severity: verdict.SeverityInfo,
		ClientIP: client.IP,
		User:     client.User,
		Ref:      ref,
	}
	if len(client.Groups) > 0 {
		ev.Groups = slices.Clone(client.Groups)
	}
	if disputed != nil && disputed.ID != "" {
		ev.Phase, ev.Category, ev.Rule = disputed.Phase, disputed.Category, disputed.Rule
		ev.Host, ev.URL, ev.Method = disputed.Host, disputed.URL, disputed.Method
	}
	return ev
}

func (o *BuildOptions) id(t time.Time) string {
	if o.NewID != nil {
		return o.NewID()
	}
	return newIDAt(t)
}

// requestURL rebuilds the URL the client asked for. A CONNECT without a
// known scheme is written in authority form (host:port), as the client sent
// it.
func requestURL(r *verdict.Request, withQuery bool) string {
	host := r.Host
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]" // a bare IPv6 literal
	}
	if r.Scheme == "" {
		if r.Port > 0 {
			return net.JoinHostPort(r.Host, strconv.Itoa(r.Port))
		}
		return r.Host
	}
	if r.Port > 0 && !defaultPort(r.Scheme, r.Port) {
		host = net.JoinHostPort(r.Host, strconv.Itoa(r.Port))
	}
	var sb strings.Builder
	sb.WriteString(r.Scheme)
	sb.WriteString("://")
	sb.WriteString(host)
	path := r.Path
	// Defensive: a caller that put the request-URI into Path must not leak
	// its query (or a fragment) into the event.
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	if path != "" && path[0] != '/' {
		sb.WriteByte('/')
	}
	sb.WriteString(path)
	if withQuery && r.Query != "" {
		sb.WriteByte('?')
		sb.WriteString(strings.TrimPrefix(r.Query, "?"))
	}
	return sb.String()
}

func defaultPort(scheme string, port int) bool {
	return (scheme == "http" && port == 80) || (scheme == "https" && port == 443)
}
