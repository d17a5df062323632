package events

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aupguard/aupguard/verdict"
)

// BuildOptions tune FromDecision.
type BuildOptions struct {
	// IncludeQuery keeps the URL's query string in the event. Set it only
	// when the policy asked for it: queries carry search terms and tokens,
	// and an event holds the least data that makes it attributable.
	IncludeQuery bool
}

// FromDecision builds the misuse event for a decision, and reports whether
// the decision is one: a block, or an allowed request the policy marked
// alert. The event gets a new ID (print it on the block page as the
// reference) and the input's time, or now; Emit fills in the instance.
func FromDecision(d *verdict.Decision, in *verdict.Input, opts BuildOptions) (Event, bool) {
	if d == nil {
		return Event{}, false
	}
	var kind Kind
	switch {
	case d.Blocked():
		kind = KindBlock
	case d.Alert:
		kind = KindAlert
	default:
		return Event{}, false
	}
	t := time.Now()
	if in != nil && !in.Time.IsZero() {
		t = in.Time
	}
	ev := Event{
		ID:             newIDAt(t),
		Time:           t.UTC(),
		Kind:           kind,
		Action:         string(d.Action),
		Category:       d.Category,
		Rule:           d.Rule,
		Reason:         d.Reason,
		Severity:       string(d.Severity),
		Alert:          d.Alert,
		PolicyRevision: d.PolicyRevision,
		ListsRevision:  d.ListsRevision,
		Error:          d.Error,
	}
	if in == nil {
		return ev, true
	}
	ev.Source = string(in.Source)
	ev.Phase = string(in.Phase)
	ev.ClientIP = in.Client.IP
	ev.User = in.Client.User
	if len(in.Client.Groups) > 0 {
		ev.Groups = slices.Clone(in.Client.Groups)
	}
	if in.DNS != nil {
		ev.QName = in.DNS.QName
		ev.QType = in.DNS.QType
		// Host is the one field every event names a site by, so the console
		// can group DNS and proxy events for the same site.
		ev.Host = strings.TrimSuffix(strings.ToLower(in.DNS.QName), ".")
	}
	if in.Request.Host != "" {
		ev.Host = in.Request.Host
		ev.Method = in.Request.Method
		ev.URL = requestURL(&in.Request, opts.IncludeQuery)
	}
	return ev, true
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
