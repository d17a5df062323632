package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aupguard/aupguard/internal/testcore"
	"github.com/aupguard/aupguard/policies"
	"github.com/aupguard/aupguard/rego"
	"github.com/aupguard/aupguard/verdict"
)

// Hosts the failing policy cannot evaluate, each at one phase only: the
// other phases of the same request evaluate normally, so each enforcement
// point is tested on its own.
const (
	hostErrRequest  = "request-error.test.example"
	hostErrResponse = "response-error.test.example"
	hostErrConnect  = "connect-error.test.example"
)

// failingOverlay is an admin's policy file laid over the built-in set. For
// the hosts above, at the named phase, a complete rule has two different
// values: OPA reports a conflict at evaluation time, which is exactly the
// kind of error a real policy mistake produces. Every other input is
// decided by the built-in policies as usual (their Rego tests still run
// when the set is loaded).
const failingOverlay = `package aupguard

fails_here if {
	input.request.host == "` + hostErrRequest + `"
	input.phase == "request"
}

fails_here if {
	input.request.host == "` + hostErrResponse + `"
	input.phase == "response"
}

fails_here if {
	input.request.host == "` + hostErrConnect + `"
	input.phase == "connect"
}

conflicting := "one" if fails_here

conflicting := "two" if fails_here

matches contains {"action": "allow", "rule": conflicting} if fails_here
`

// failingDecider is the real decision core (built-in policies with the
// overlay above, the test lists) with "staff" failing open, as
// policy.fail_open_groups configures it.
func failingDecider(t *testing.T) *verdict.Decider {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "zz_failing.rego"), []byte(failingOverlay), 0o644); err != nil {
		t.Fatal(err)
	}
	eng, err := rego.New(context.Background(), rego.Options{Builtin: policies.FS, Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("loading the failing overlay: %v", err)
	}
	lists := testcore.New(t, testDomains)
	return verdict.NewDecider(eng, lists, verdict.Options{CacheSize: 1000, FailOpenGroups: []string{"staff"}})
}

// startFailing runs the proxy over the failing core: 127.0.0.1 is a
// learner, 127.0.0.2 is staff. The error hosts point at the local origins.
func startFailing(t *testing.T) *harness {
	t.Helper()
	dec := failingDecider(t)
	lo := netip.MustParseAddr("127.0.0.1")
	return start(t, func(s *setup) {
		s.opts.Decider = dec
		s.identity.Groups = map[string][]string{"127.0.0.0/8": {"learners"}, "127.0.0.2/32": {"staff"}}
		for _, h := range []string{hostErrRequest, hostErrResponse, hostErrConnect} {
			s.opts.Hosts[h] = []netip.Addr{lo}
		}
	})
}

// checkFailClosedEvent finds the event of a fail-closed block and checks
// that it says why.
func checkFailClosedEvent(t *testing.T, h *harness, id, host string, phase verdict.Phase) {
	t.Helper()
	if id == "" {
		t.Fatalf("fail-closed block of %s without a reference", host)
	}
	ev := h.emit.byID(t, id)
	if ev.Kind != "block" || ev.Rule != "fail_closed" || ev.Category != "policy_error" ||
		ev.Phase != phase || ev.Host != host || !strings.Contains(ev.Error, "conflict") {
		t.Fatalf("fail-closed event = %+v", ev)
	}
}

// A learner whose request cannot be decided is blocked at phase request
// (block page, event), and the origin is never asked; staff, in a
// fail-open group, get through.
func TestFailClosedAtRequestPhase(t *testing.T) {
	h := startFailing(t)

	resp := get(t, h.client(""), h.url(hostErrRequest, "/page"), "Accept", "text/html")
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "could not be checked") {
		t.Fatalf("learner: status %d, body %q; want the 403 block page", resp.StatusCode, short(body))
	}
	if n := h.origin.hits.Load(); n != 0 {
		t.Fatalf("the origin was asked %d times for a request that failed closed", n)
	}
	checkFailClosedEvent(t, h, resp.Header.Get("X-Aupguard-Reference"), hostErrRequest, verdict.PhaseRequest)

	resp = get(t, h.client("127.0.0.2"), h.url(hostErrRequest, "/page"))
	body = readAll(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "hello from") {
		t.Fatalf("fail-open group: status %d, body %q; want the origin's page", resp.StatusCode, body)
	}
	if n := len(h.emit.all()); n != 1 {
		t.Fatalf("%d events; want only the learner's block", n)
	}
}

// A response that cannot be decided is replaced by the block page for a
// learner, though the request phase allowed it; staff get the body.
func TestFailClosedAtResponsePhase(t *testing.T) {
	h := startFailing(t)

	resp := get(t, h.client(""), h.url(hostErrResponse, "/small"), "Accept", "text/html")
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "could not be checked") {
		t.Fatalf("learner: status %d, body %q; want the 403 block page", resp.StatusCode, short(body))
	}
	if n := h.origin.hits.Load(); n != 1 {
		t.Fatalf("origin hits = %d; want 1 (the request phase allowed it)", n)
	}
	checkFailClosedEvent(t, h, resp.Header.Get("X-Aupguard-Reference"), hostErrResponse, verdict.PhaseResponse)

	resp = get(t, h.client("127.0.0.2"), h.url(hostErrResponse, "/small"))
	body = readAll(t, resp)
	if resp.StatusCode != http.StatusOK || sum(body) != patternSum(smallSize) {
		t.Fatalf("fail-open group: status %d, %d bytes; want the origin's body", resp.StatusCode, len(body))
	}
	if n := len(h.emit.all()); n != 1 {
		t.Fatalf("%d events; want only the learner's block", n)
	}
}

// A CONNECT that cannot be decided is refused for a learner with the
// CONNECT 403, before anything is dialled; staff get a working tunnel.
func TestFailClosedAtConnect(t *testing.T) {
	h := startFailing(t)
	_, port, _ := net.SplitHostPort(h.tls.Listener.Addr().String())
	target := net.JoinHostPort(hostErrConnect, port)

	connect := func(src string) (*http.Response, net.Conn, *bufio.Reader) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", h.proxy.Host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		_, _ = io.WriteString(c, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil {
			t.Fatalf("CONNECT from %s: %v", src, err)
		}
		return resp, c, br
	}

	resp, _, _ := connect("127.0.0.1")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("learner: CONNECT status %d; want 403", resp.StatusCode)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "could not be checked") {
		t.Fatalf("learner: CONNECT status %d, body %q; want 403", resp.StatusCode, body)
	}
	evs := h.emit.all()
	if len(evs) != 1 {
		t.Fatalf("%d events after the learner's CONNECT; want 1", len(evs))
	}
	checkFailClosedEvent(t, h, evs[0].ID, hostErrConnect, verdict.PhaseConnect)
	if !strings.Contains(string(body), evs[0].ID) {
		t.Errorf("CONNECT refusal %q does not name the reference %s", body, evs[0].ID)
	}

	resp, c, br := connect("127.0.0.2")
	if resp.StatusCode != http.StatusOK || br.Buffered() != 0 {
		t.Fatalf("fail-open group: CONNECT status %d (%d bytes after it); want 200", resp.StatusCode, br.Buffered())
	}
	// Speak TLS through the tunnel to show it reaches the origin.
	tc := tls.Client(c, &tls.Config{RootCAs: h.ca.pool, ServerName: hostSecure})
	if _, err := io.WriteString(tc, "GET / HTTP/1.1\r\nHost: "+hostSecure+"\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatalf("through the tunnel: %v", err)
	}
	tr, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		t.Fatalf("through the tunnel: %v", err)
	}
	if got := readAll(t, tr); !strings.Contains(got, "hello over TLS") {
		t.Fatalf("through the tunnel: %q", got)
	}
	if n := len(h.emit.all()); n != 1 {
		t.Fatalf("%d events; want only the learner's block", n)
	}
}

// short is the start of a body, for failure messages.
func short(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
