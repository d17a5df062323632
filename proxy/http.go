package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/elazarl/goproxy"

	"github.com/aupguard/aupguard/verdict"
)

// onRequest decides a plain-HTTP request at phase request, before anything
// is sent to the origin.
func (s *Server) onRequest(r *http.Request, ctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
	t := txnFrom(r.Context())
	s.stats.requests.Add(1)
	if r.URL.Scheme != "http" && r.URL.Scheme != "https" {
		return r, s.final(t, textResponse(r, http.StatusBadRequest, "aupguard: only http and https URLs can be fetched through this proxy.\n"))
	}
	req, err := requestFromHTTP(r)
	if err != nil {
		return r, s.final(t, textResponse(r, http.StatusBadRequest, "aupguard: bad request: "+err.Error()+"\n"))
	}
	t.req = req
	in := verdict.Input{Source: verdict.SourceProxy, Phase: verdict.PhaseRequest, Client: t.client(), Request: req}
	d, evID := s.decide(r.Context(), &in)
	if d.Blocked() {
		return r, s.final(t, s.blockResponse(r, &in, &d, evID))
	}
	ws := isWebSocket(r.Header)
	if ws {
		if !s.tunnels.acquire(t.ip) {
			s.stats.tunnelsRejected.Add(1)
			return r, s.final(t, textResponse(r, http.StatusTooManyRequests, "aupguard: too many open connections from this device.\n"))
		}
		t.tunnelSlot = true
	}
	stripHopByHop(r.Header, ws)
	r.Header.Add("Via", "1.1 aupguard")
	if applySafeSearch(r, req.Host, d.SafeSearch) {
		s.log.Debug("proxy: safe search set", "host", req.Host, "level", d.SafeSearch)
	}
	// The origin must be asked for the host the policy decided on: the
	// request target wins over the client's Host header (RFC 9112 §3.2.2),
	// so a mismatched Host cannot front a blocked site behind an allowed
	// one. The host is sent in the normalised (punycode) form.
	host := req.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if p := r.URL.Port(); p != "" {
		host += ":" + p
	}
	r.URL.Host = host
	r.Host = host
	return r, nil
}

// onResponse decides the origin's answer at phase response, so a download
// the request phase could not see (a .torrent from an allowed host) is
// still blocked. It also turns transport errors into answers.
func (s *Server) onResponse(resp *http.Response, ctx *goproxy.ProxyCtx) *http.Response {
	r := ctx.Req
	t := txnFrom(r.Context())
	if t == nil {
		return resp
	}
	if resp != nil && resp == t.final {
		return resp
	}
	if resp == nil {
		return s.final(t, s.upstreamError(r, t, ctx.Error))
	}
	in := verdict.Input{
		Source:  verdict.SourceProxy,
		Phase:   verdict.PhaseResponse,
		Client:  t.client(),
		Request: t.req,
		Response: &verdict.Response{
			Status:      resp.StatusCode,
			ContentType: mediaType(resp.Header.Get("Content-Type")),
			Filename:    dispositionFilename(resp.Header.Get("Content-Disposition")),
		},
	}
	d, evID := s.decide(r.Context(), &in)
	if d.Blocked() {
		// Closing without reading drops the origin connection instead of
		// downloading the rest of a body nobody will see.
		_ = resp.Body.Close()
		return s.final(t, s.blockResponse(r, &in, &d, evID))
	}
	stripHopByHop(resp.Header, resp.StatusCode == http.StatusSwitchingProtocols && isWebSocket(resp.Header))
	return resp
}

// final marks a response the proxy made itself.
func (s *Server) final(t *txn, resp *http.Response) *http.Response {
	if t != nil {
		t.final = resp
	}
	return resp
}

// upstreamError explains why the origin could not be reached. A refused
// destination is a block with an event (someone tried to reach an internal
// address); the rest are gateway errors.
func (s *Server) upstreamError(r *http.Request, t *txn, err error) *http.Response {
	if err == nil {
		err = errors.New("no response")
	}
	if ref, ok := isRefused(err); ok {
		in, d, evID := s.refusal(r.Context(), t, t.req, ref)
		return s.blockResponse(r, &in, &d, evID)
	}
	s.stats.upstreamErr.Add(1)
	status, msg := gatewayError(err)
	if problem, ok := certProblem(err); ok {
		// The learner is told what is wrong, inside our own TLS when
		// intercepted, and never sees the origin's content: an origin
		// whose certificate does not verify is not vouched for by ours.
		s.upstreamCertRefused(t)
		msg = "The site's security certificate could not be verified (" + problem + "), so the connection was not made."
	}
	s.log.Info("proxy: origin unreachable", "client_ip", t.ipStr, "user", t.user, "host", t.req.Host, "status", status, "err", err)
	return s.pages.errorResponse(r, status, t.req.Host, msg)
}

// refusal records a refused destination as a block.
func (s *Server) refusal(ctx context.Context, t *txn, req verdict.Request, ref *RefusedError) (verdict.Input, verdict.Decision, string) {
	s.stats.refused.Add(1)
	s.log.Info("proxy: destination refused", "client_ip", t.ipStr, "user", t.user, "host", ref.Host, "addr", ref.Addr.String(), "why", ref.Why)
	in := verdict.Input{Source: verdict.SourceProxy, Phase: verdict.PhaseConnect, Client: t.client(), Request: req}
	if req.Method != http.MethodConnect {
		in.Phase = verdict.PhaseRequest
	}
	d := verdict.Decision{
		Action:   verdict.ActionBlock,
		Category: "internal_destination",
		Rule:     "proxy.destination",
		Reason:   "This address is inside a private or protected network (" + ref.Why + "), which cannot be reached through the learner network.",
		Severity: verdict.SeverityLow,
	}
	evID := s.record(ctx, &in, &d, 0)
	return in, d, evID
}

// gatewayError maps a transport error to a status and a sentence a learner
// can act on.
func gatewayError(err error) (int, string) {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr):
		return http.StatusBadGateway, "The site's name could not be found. Check the address for typing mistakes."
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr):
		return http.StatusBadGateway, "The site's security certificate could not be verified, so the connection was not made."
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return http.StatusGatewayTimeout, "The site took too long to answer. Try again in a moment."
	default:
		return http.StatusBadGateway, "The site could not be reached. Try again in a moment."
	}
}

// hopByHop are the headers RFC 9110 §7.6.1 says a proxy must not forward,
// besides those the Connection header names, in canonical form (the map
// keys http.Header uses), so they are deleted without canonicalising
// each name on every request.
var hopByHop = func() []string {
	names := []string{
		"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
	}
	for i, n := range names {
		names[i] = textproto.CanonicalMIMEHeaderKey(n)
	}
	return names
}()

// stripHopByHop removes hop-by-hop headers. For a WebSocket handshake the
// Upgrade and Connection: Upgrade pair is what the next hop needs, so it is
// kept (and Connection reduced to just that).
func stripHopByHop(h http.Header, websocket bool) {
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			name = textproto.TrimString(name)
			if name == "" || (websocket && strings.EqualFold(name, "Upgrade")) {
				continue
			}
			h.Del(name)
		}
	}
	for _, name := range hopByHop {
		if websocket && (name == "Connection" || name == "Upgrade") {
			continue
		}
		delete(h, name)
	}
	if websocket {
		h.Set("Connection", "Upgrade")
	}
}

func isWebSocket(h http.Header) bool {
	return headerHasToken(h, "Connection", "upgrade") && headerHasToken(h, "Upgrade", "websocket")
}

// headerHasToken reports whether a comma-separated header (name in
// canonical form) lists token.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h[name] {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(t), token) {
				return true
			}
		}
	}
	return false
}

// textResponse is a short plain-text answer made by the proxy.
func textResponse(r *http.Request, status int, body string) *http.Response {
	resp := goproxy.NewResponse(r, "text/plain; charset=utf-8", status, body)
	resp.Header.Set("Cache-Control", "no-store")
	resp.Header.Set("X-Content-Type-Options", "nosniff")
	return resp
}
