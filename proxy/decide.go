package proxy

import (
	"context"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/verdict"
)

// txn is one client request (or tunnel) as it passes the proxy's phases.
type txn struct {
	start  time.Time
	ip     netip.Addr
	ipStr  string
	user   string
	groups []string
	// req is the request part of the policy input, reused at phase
	// response so both decisions describe the same request.
	req verdict.Request
	// final is a response the proxy made itself (a block page); goproxy
	// runs response handlers on it too, and they must let it pass.
	final *http.Response
	// tunnelSlot is set when the transaction holds a tunnel slot.
	tunnelSlot bool
	// rw is the client's writer, which knows about a hijack.
	rw *respWriter
	// alerted is the rule of an alert already emitted for this request.
	alerted string
	// dialHost, when set, is dialled instead of req.Host: the search
	// engine's safe-search host.
	dialHost string
	// mode is how a CONNECT tunnel is carried when it is not intercepted.
	mode tunnelMode
	// failClosed: the client must not fall back to a plain tunnel when it
	// rejects the interception certificate.
	failClosed bool
	// mitm is set for a request read inside an intercepted connection.
	mitm *mitmState
}

type txnKey struct{}

func txnFrom(ctx context.Context) *txn {
	t, _ := ctx.Value(txnKey{}).(*txn)
	return t
}

// blockRecord remembers a recent block so a review request can name what
// it disputes.
type blockRecord struct {
	ev       events.Event
	reviewed bool
}

func (t *txn) client() verdict.Client {
	return verdict.Client{IP: t.ipStr, User: t.user, Groups: t.groups}
}

// requestFromHTTP builds the policy's view of a plain-HTTP request, with
// the URL read as `aupguard check` reads it (verdict.URLRequest).
func requestFromHTTP(r *http.Request) (verdict.Request, error) {
	req, err := verdict.URLRequest(r.URL)
	if err != nil {
		return verdict.Request{}, &badRequest{err.Error()}
	}
	req.Method = r.Method
	req.ContentType = mediaType(r.Header.Get("Content-Type"))
	req.ContentLength = r.ContentLength // -1 when chunked: unknown
	return req, nil
}

// requestFromConnect builds the policy's view of a CONNECT: only the host
// and port are known.
func requestFromConnect(hostport string) (verdict.Request, error) {
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return verdict.Request{}, &badRequest{"CONNECT needs host:port, got " + strconv.Quote(hostport)}
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return verdict.Request{}, &badRequest{"bad port " + strconv.Quote(p)}
	}
	req, err := verdict.ConnectRequest(h, port)
	if err != nil {
		return verdict.Request{}, &badRequest{err.Error()}
	}
	return req, nil
}

type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

// mediaType is the lower-case type/subtype of a Content-Type value,
// without parameters. It is what mime.ParseMediaType returns for a valid
// value and what a browser sniffs by for an invalid one, without the
// parameter map ParseMediaType builds: this runs on every request and
// response.
func mediaType(v string) string {
	if v == "" {
		return ""
	}
	mt, _, _ := strings.Cut(v, ";")
	// ToLower returns its argument, unallocated, when nothing changes.
	return strings.ToLower(strings.TrimSpace(mt))
}

// dispositionFilename is the filename a Content-Disposition header gives
// (filename* included), or "".
func dispositionFilename(v string) string {
	if v == "" {
		return ""
	}
	if _, params, err := mime.ParseMediaType(v); err == nil {
		return params["filename"]
	}
	// A malformed header still names a file the browser will save.
	if i := strings.Index(strings.ToLower(v), "filename="); i >= 0 {
		f := strings.TrimSpace(v[i+len("filename="):])
		f, _, _ = strings.Cut(f, ";")
		return strings.Trim(f, "\" ")
	}
	return ""
}

// decide asks the decision core and records the outcome: the canonical log
// line, and a misuse event for a block or an alert. It returns the event
// ID ("" when there is none).
func (s *Server) decide(ctx context.Context, in *verdict.Input) (verdict.Decision, string) {
	began := time.Now()
	d := s.opts.Decider.Decide(ctx, in)
	took := time.Since(began)
	t := txnFrom(ctx)
	if t == nil {
		return d, s.record(ctx, in, &d, took)
	}
	if t.groups == nil {
		// Keep the groups the decider defaulted to, so later phases and
		// the proxy's own refusals name the same groups.
		t.groups = in.Client.Groups
	}
	if !d.Blocked() && d.Alert && d.Rule != "" && d.Rule == t.alerted {
		// The same alert at the response phase of a request already
		// alerted at the request phase: one event per request is enough.
		s.logDecision(ctx, in, &d, took, "")
		return d, ""
	}
	if !d.Blocked() && d.Alert {
		t.alerted = d.Rule
	}
	return d, s.record(ctx, in, &d, took)
}

// record logs one decision and emits its event, if any.
func (s *Server) record(ctx context.Context, in *verdict.Input, d *verdict.Decision, took time.Duration) string {
	var evID string
	if d.Blocked() || d.Alert {
		ev := s.event(in, d)
		evID = ev.ID
		if d.Blocked() {
			s.stats.blocked.Add(1)
			s.recent.Add(ev.ID, &blockRecord{ev: ev})
		} else {
			s.stats.alerts.Add(1)
		}
		// A client that hangs up must not cancel its own misuse event.
		if err := s.opts.Emitter.Emit(context.WithoutCancel(ctx), ev); err != nil {
			s.stats.emitErr.Add(1)
			s.log.Error("proxy: emitting misuse event", "event_id", ev.ID, "err", err)
		}
	}
	s.logDecision(ctx, in, d, took, evID)
	return evID
}

// logDecision writes the canonical decision line, with the helper and
// keys every enforcement point uses (verdict.LogDecision).
func (s *Server) logDecision(ctx context.Context, in *verdict.Input, d *verdict.Decision, took time.Duration, evID string) {
	verdict.LogDecision(ctx, s.log, in, d, took, evID, s.cfg.LogAllows)
}

// event builds the misuse event for a decision, with the builder every
// enforcement point uses. The URL carries no query string: an event holds
// the least data that makes it attributable.
func (s *Server) event(in *verdict.Input, d *verdict.Decision) events.Event {
	ev, _ := events.FromDecision(d, in, s.buildOptions())
	return ev
}

// buildOptions are the proxy's settings for the events it builds.
func (s *Server) buildOptions() events.BuildOptions {
	return events.BuildOptions{NewID: s.opts.NewID, Instance: s.opts.Instance}
}
