package proxy

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/net/websocket"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/verdict"
)

func TestAllowedGetSmallByteForByte(t *testing.T) {
	h := start(t, nil)
	want := patternSum(smallSize)

	resp := get(t, h.client(""), h.url(hostAllowed, "/small"))
	body := readAll(t, resp)
	if resp.StatusCode != 200 || len(body) != smallSize || sum(body) != want {
		t.Fatalf("Go client: status %d, %d bytes, sha %s; want 200, %d bytes, %s", resp.StatusCode, len(body), sum(body), smallSize, want)
	}

	out, errOut, code := h.curl(t, h.url(hostAllowed, "/small"))
	if code != 0 || len(out) != smallSize || sum(out) != want {
		t.Fatalf("curl: exit %d (%s), %d bytes, sha %s", code, errOut, len(out), sum(out))
	}
	if evs := h.emit.all(); len(evs) != 0 {
		t.Errorf("allowed requests emitted events: %+v", evs)
	}
	// Two requests, each decided at phase request and at phase response.
	if n := len(h.inputs.find(verdict.PhaseRequest, hostAllowed)); n != 2 {
		t.Errorf("%d request-phase decisions, want 2", n)
	}
	if n := len(h.inputs.find(verdict.PhaseResponse, hostAllowed)); n != 2 {
		t.Errorf("%d response-phase decisions, want 2", n)
	}
}

func TestAllowedGetLargeStreamsWithBoundedMemory(t *testing.T) {
	h := start(t, nil)
	want := patternSum(largeSize)

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	baseRSS := rssBytes()

	var peakHeap atomic.Uint64
	var peakRSS atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peakHeap.Load() {
				peakHeap.Store(ms.HeapInuse)
			}
			if r := rssBytes(); r > peakRSS.Load() {
				peakRSS.Store(r)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	resp := get(t, h.client(""), h.url(hostAllowed, "/large"))
	hs := sha256.New()
	n, err := io.Copy(hs, resp.Body)
	resp.Body.Close()
	close(stop)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || n != largeSize || hex.EncodeToString(hs.Sum(nil)) != want {
		t.Fatalf("status %d, %d bytes, content mismatch=%v", resp.StatusCode, n, hex.EncodeToString(hs.Sum(nil)) != want)
	}
	heapGrowth := int64(peakHeap.Load()) - int64(base.HeapInuse)
	rssGrowth := peakRSS.Load() - baseRSS
	t.Logf("50 MiB through the proxy: peak heap growth %.1f MiB, peak RSS growth %.1f MiB (origin, proxy and client share this process)",
		float64(heapGrowth)/(1<<20), float64(rssGrowth)/(1<<20))
	// Buffering the body anywhere would grow the heap by at least 50 MiB.
	if heapGrowth > 16<<20 {
		t.Errorf("heap grew by %d bytes while streaming 50 MiB; the body is being buffered", heapGrowth)
	}
	if baseRSS > 0 && rssGrowth > 32<<20 {
		t.Errorf("RSS grew by %d bytes while streaming 50 MiB", rssGrowth)
	}

	// curl too, to a file, compared by hash.
	file := filepath.Join(t.TempDir(), "large")
	if _, errOut, code := h.curl(t, "-o", file, h.url(hostAllowed, "/large")); code != 0 {
		t.Fatalf("curl: exit %d: %s", code, errOut)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hs.Reset()
	if n, _ := io.Copy(hs, f); n != largeSize || hex.EncodeToString(hs.Sum(nil)) != want {
		t.Errorf("curl got %d bytes, content mismatch=%v", n, hex.EncodeToString(hs.Sum(nil)) != want)
	}
}

func TestBlockedGetShowsBlockPageWithEventReference(t *testing.T) {
	h := start(t, nil)

	// A browser gets the HTML page.
	resp := get(t, h.client(""), h.url(hostCasino, "/slots?user=secret-token"), "Accept", "text/html,application/xhtml+xml")
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
	if h.origin.hits.Load() != 0 {
		t.Error("a request blocked at phase request reached the origin")
	}
	ref := resp.Header.Get("X-Aupguard-Reference")
	ev := h.emit.byID(t, ref)
	if !strings.Contains(body, ref) {
		t.Errorf("block page lacks the reference %s", ref)
	}
	for _, want := range []string{`<html lang="en">`, `name="viewport"`, "Gambling", "Online gambling is not permitted",
		"Northfield Training", "safeguarding@northfield.example", `href="tel:&#43;442079460018"`, `action="http://aupguard.block/review"`} {
		if !strings.Contains(body, want) {
			t.Errorf("block page lacks %q", want)
		}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("content type %q", ct)
	}
	if ev.Kind != events.KindBlock || ev.Phase != "request" || ev.Category != "gambling" || ev.Rule != "gambling" ||
		ev.ClientIP != "127.0.0.1" || ev.Host != hostCasino || ev.Method != "GET" || ev.Source != "proxy" ||
		!slices.Equal(ev.Groups, []string{"learners"}) || ev.Instance != "test" || ev.Severity != "medium" {
		t.Errorf("event %+v", ev)
	}
	if want := h.url(hostCasino, "/slots"); ev.URL != want {
		t.Errorf("event URL %q, want %q (no query string)", ev.URL, want)
	}

	// curl gets plain text with the same kind of reference.
	out, errOut, code := h.curl(t, "-i", h.url(hostCasino, "/"))
	if code != 0 {
		t.Fatalf("curl exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(out, "HTTP/1.1 403") || !strings.Contains(out, "text/plain") {
		t.Errorf("curl answer:\n%s", out)
	}
	evs := h.emit.all()
	last := evs[len(evs)-1]
	if !strings.Contains(out, "Reference: "+last.ID) || !strings.Contains(out, "Category:  Gambling") {
		t.Errorf("plain-text block page lacks reference %s:\n%s", last.ID, out)
	}
}

func TestConnectBlocked(t *testing.T) {
	h := start(t, nil)

	resp, body := h.raw(t, "CONNECT "+hostCasino+":443 HTTP/1.1\r\nHost: "+hostCasino+":443\r\n\r\n")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("CONNECT status %d, want 403", resp.StatusCode)
	}
	evs := h.emit.all()
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	ev := evs[0]
	if ev.Phase != "connect" || ev.Method != "CONNECT" || ev.Host != hostCasino || ev.URL != "https://"+hostCasino || ev.Category != "gambling" {
		t.Errorf("event %+v", ev)
	}
	for _, want := range []string{"Category:  Gambling", "Reason:    Online gambling", "Reference: " + ev.ID} {
		if !strings.Contains(string(body), want) {
			t.Errorf("403 body lacks %q:\n%s", want, body)
		}
	}

	// The Go client reports the refused tunnel.
	_, err := h.client("").Get("https://" + hostCasino + "/")
	if err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Errorf("Go client through a blocked tunnel: %v", err)
	}
	// So does curl.
	_, errOut, code := h.curl(t, "https://"+hostCasino+"/")
	if code == 0 || !strings.Contains(errOut, "403") {
		t.Errorf("curl through a blocked tunnel: exit %d, %s", code, errOut)
	}
	if n := len(h.emit.all()); n != 3 {
		t.Errorf("%d events after three blocked tunnels", n)
	}
}

func TestConnectAllowedVerifiedTLS(t *testing.T) {
	h := start(t, nil)
	resp := get(t, h.client(""), h.secureURL("/hello"))
	body := readAll(t, resp)
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "hello over TLS from "+hostSecure) {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if resp.TLS == nil || len(resp.TLS.VerifiedChains) == 0 || resp.TLS.PeerCertificates[0].Subject.CommonName != hostSecure {
		t.Fatalf("the client did not verify the origin's certificate end to end: %+v", resp.TLS)
	}
	if n := len(h.inputs.find(verdict.PhaseConnect, hostSecure)); n != 1 {
		t.Errorf("%d connect-phase decisions", n)
	}

	out, errOut, code := h.curl(t, "--cacert", h.ca.pemPath, h.secureURL("/hello"))
	if code != 0 || !strings.HasPrefix(out, "hello over TLS") {
		t.Errorf("curl: exit %d %s: %q", code, errOut, out)
	}
	// Without the CA, curl must refuse: nothing in the path spoofs the origin.
	if _, _, code := h.curl(t, h.secureURL("/hello")); code != 60 {
		t.Errorf("curl without the CA: exit %d, want 60 (certificate problem)", code)
	}
}

func TestUpstreamTLSIsVerified(t *testing.T) {
	h := start(t, nil)
	_, up, _ := net.SplitHostPort(h.untrust.Listener.Addr().String())
	_, sp, _ := net.SplitHostPort(h.tls.Listener.Addr().String())

	// Absolute-form https through the proxy: the proxy itself speaks TLS
	// to the origin, so its own verification is what counts.
	resp, body := h.raw(t, "GET https://"+hostSecure+":"+sp+"/x HTTP/1.1\r\nHost: "+hostSecure+"\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 || !strings.Contains(string(body), "hello over TLS") {
		t.Errorf("trusted origin: %d %q", resp.StatusCode, body)
	}
	resp, body = h.raw(t, "GET https://"+hostUntrust+":"+up+"/x HTTP/1.1\r\nHost: "+hostUntrust+"\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "certificate could not be verified") {
		t.Errorf("untrusted origin: %d %q", resp.StatusCode, body)
	}
	if strings.Contains(string(body), "you should not see this") {
		t.Error("content from an unverified origin reached the client")
	}
}

func TestSocialPublishing(t *testing.T) {
	h := start(t, func(s *setup) {
		s.identity.Groups["127.0.0.2/32"] = []string{"approved-publishers"}
	})
	post := func(src string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, h.url(hostSocial, "/share"), strings.NewReader("course notes, week 3"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := h.client(src).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	resp := post("")
	readAll(t, resp)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("learner's post: status %d, want 403", resp.StatusCode)
	}
	ev := h.emit.byID(t, resp.Header.Get("X-Aupguard-Reference"))
	if ev.Rule != "social_publish_unapproved" || ev.Method != "POST" || !slices.Equal(ev.Groups, []string{"learners"}) {
		t.Errorf("event %+v", ev)
	}
	in := h.inputs.find(verdict.PhaseRequest, hostSocial)[0]
	if in.Request.Method != "POST" || in.Request.ContentLength != int64(len("course notes, week 3")) ||
		in.Request.ContentType != "application/x-www-form-urlencoded" || in.Request.Path != "/share" || in.Request.Scheme != "http" {
		t.Errorf("request input %+v", in.Request)
	}

	resp = post("127.0.0.2")
	body := readAll(t, resp)
	if resp.StatusCode != 200 || resp.Header.Get("X-Body-Length") != "20" || body != "ok" {
		t.Errorf("approved publisher's post: status %d, origin saw %s bytes", resp.StatusCode, resp.Header.Get("X-Body-Length"))
	}
	// Reading is fine for everyone.
	if resp := get(t, h.client(""), h.url(hostSocial, "/page")); resp.StatusCode != 200 {
		t.Errorf("learner reading social media: %d", resp.StatusCode)
	}
}

func TestTorrentResponseBlockedAtResponsePhase(t *testing.T) {
	h := start(t, nil)
	for _, path := range []string{"/download?id=42", "/bt"} {
		resp := get(t, h.client(""), h.url(hostFiles, path), "Accept", "text/html")
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: status %d, want 403", path, resp.StatusCode)
		}
		if strings.Contains(body, "announce") {
			t.Errorf("%s: the torrent body reached the client", path)
		}
		ev := h.emit.byID(t, resp.Header.Get("X-Aupguard-Reference"))
		if ev.Phase != "response" || ev.Rule != "piracy_torrent_download" || ev.Host != hostFiles {
			t.Errorf("%s: event %+v", path, ev)
		}
		if !strings.Contains(body, "This download is blocked") || !strings.Contains(body, ev.ID) {
			t.Errorf("%s: block page lacks title or reference", path)
		}
	}
	ins := h.inputs.find(verdict.PhaseResponse, hostFiles)
	if len(ins) != 2 || ins[0].Response.Filename != "film.torrent" || ins[0].Response.Status != 200 ||
		ins[0].Response.ContentType != "application/octet-stream" || ins[1].Response.ContentType != "application/x-bittorrent" {
		t.Errorf("response inputs %+v", ins)
	}
	if ins[0].Request.Query != "id=42" {
		t.Errorf("response phase lost the request: %+v", ins[0].Request)
	}
}

func TestClientOutsideNetworksRefused(t *testing.T) {
	h := start(t, func(s *setup) {
		s.identity.Networks = []string{"127.0.0.2/32"}
	})
	resp := get(t, h.client(""), h.url(hostAllowed, "/small"))
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "only serves") {
		t.Errorf("client outside the networks: %d %q", resp.StatusCode, body)
	}
	out, _, _ := h.curl(t, "-i", h.url(hostAllowed, "/small"))
	if !strings.HasPrefix(out, "HTTP/1.1 403") {
		t.Errorf("curl from outside the networks:\n%s", out)
	}
	resp, _ = h.raw(t, "CONNECT "+hostSecure+":443 HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("CONNECT from outside: %d", resp.StatusCode)
	}
	if h.origin.hits.Load() != 0 || len(h.inputs.find(verdict.PhaseRequest, hostAllowed)) != 0 {
		t.Error("a client outside the networks reached the policy or the origin")
	}
	if h.srv.Stats().ClientsDenied != 3 {
		t.Errorf("stats %+v", h.srv.Stats())
	}
	// From inside, it works.
	if resp := get(t, h.client("127.0.0.2"), h.url(hostAllowed, "/small")); resp.StatusCode != 200 {
		t.Errorf("client inside: %d", resp.StatusCode)
	}
}

func TestProxyAuthentication(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	ht := filepath.Join(dir, "htpasswd")
	ug := filepath.Join(dir, "users")
	mustWrite(t, ht, "jsmith:"+string(hash)+"\n")
	mustWrite(t, ug, "jsmith: approved-publishers\n")
	h := start(t, func(s *setup) {
		s.identity.Auth.Required = true
		s.identity.Auth.HTPasswd = ht
		s.identity.Auth.UsersGroups = ug
		s.identity.Auth.Realm = "Northfield"
		s.identity.Auth.MaxFailures = 3
	})

	out, _, _ := h.curl(t, "-i", h.url(hostAllowed, "/small"))
	if !strings.HasPrefix(out, "HTTP/1.1 407") || !strings.Contains(out, `Proxy-Authenticate: Basic realm="Northfield"`) {
		t.Fatalf("no credentials:\n%s", out)
	}
	out, _, _ = h.curl(t, "-i", "--proxy-user", "jsmith:wrong", h.url(hostAllowed, "/small"))
	if !strings.HasPrefix(out, "HTTP/1.1 407") {
		t.Fatalf("wrong password:\n%.200s", out)
	}
	out, errOut, code := h.curl(t, "--proxy-user", "jsmith:s3cret pass", h.url(hostAllowed, "/small"))
	if code != 0 || len(out) != smallSize {
		t.Fatalf("right password: exit %d %s, %d bytes", code, errOut, len(out))
	}
	// CONNECT authenticates too.
	out, errOut, code = h.curl(t, "--proxy-user", "jsmith:s3cret pass", "--cacert", h.ca.pemPath, h.secureURL("/"))
	if code != 0 || !strings.HasPrefix(out, "hello over TLS") {
		t.Fatalf("CONNECT with credentials: exit %d %s %q", code, errOut, out)
	}
	_, errOut, code = h.curl(t, "--cacert", h.ca.pemPath, h.secureURL("/"))
	if code == 0 || !strings.Contains(errOut, "407") {
		t.Errorf("CONNECT without credentials: exit %d %s", code, errOut)
	}

	// The user and their groups reach the policy and the events.
	out, _, _ = h.curl(t, "-i", "--proxy-user", "jsmith:s3cret pass", h.url(hostCasino, "/"))
	evs := h.emit.all()
	if len(evs) != 1 || evs[0].User != "jsmith" || !slices.Equal(evs[0].Groups, []string{"approved-publishers"}) || evs[0].ClientIP != "127.0.0.1" {
		t.Fatalf("events %+v\n%s", evs, out)
	}
	if strings.Contains(h.logs.String(), "s3cret") {
		t.Error("the password appears in the log")
	}

	// Two more failures make three: the next attempt is refused unchecked,
	// even with the right password.
	for range 2 {
		h.curl(t, "--proxy-user", "jsmith:guess", h.url(hostAllowed, "/small"))
	}
	out, _, _ = h.curl(t, "-i", "--proxy-user", "jsmith:s3cret pass", h.url(hostAllowed, "/small"))
	if !strings.HasPrefix(out, "HTTP/1.1 429") || !strings.Contains(out, "Retry-After:") {
		t.Errorf("after 3 failures:\n%.300s", out)
	}
	if st := h.srv.Stats(); st.AuthFailures != 3 || st.AuthLimited != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestDestinationRefusal(t *testing.T) {
	// No allow_destinations: the local origins are loopback and refused.
	h := start(t, func(s *setup) { s.cfg.AllowDestinations = nil })

	for _, u := range []string{
		h.url(hostAllowed, "/small"),          // a name that resolves to loopback
		"http://127.0.0.1:" + h.origin.port(), // a loopback literal
		"http://" + hostMetadata + "/latest/meta-data/",
		"http://169.254.169.254/latest/meta-data/",
		"http://[fd00:ec2::254]/latest/meta-data/",
		"http://10.1.2.3/",
		"http://100.64.0.1/",
		"http://[::1]:" + h.origin.port() + "/",
	} {
		resp := get(t, h.client(""), u)
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Internal destination") {
			t.Errorf("GET %s: %d\n%.300s", u, resp.StatusCode, body)
			continue
		}
		ev := h.emit.byID(t, resp.Header.Get("X-Aupguard-Reference"))
		if ev.Rule != "proxy.destination" || ev.Kind != events.KindBlock {
			t.Errorf("GET %s: event %+v", u, ev)
		}
	}
	for _, target := range []string{hostSecure + ":443", "169.254.169.254:80", hostMetadata + ":443"} {
		resp, body := h.raw(t, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "Internal destination") {
			t.Errorf("CONNECT %s: %d %s", target, resp.StatusCode, body)
		}
	}
	if h.origin.hits.Load() != 0 {
		t.Errorf("the origin on loopback was reached %d times", h.origin.hits.Load())
	}
	if !strings.Contains(h.logs.String(), "cloud metadata address") {
		t.Error("the reason for the metadata refusal is not logged")
	}
}

func TestOwnListenersAlwaysRefused(t *testing.T) {
	admin := newOrigin(t)
	h := start(t, func(s *setup) {
		// Loopback is allowed (as in every other test) ...
		s.cfg.AllowDestinations = []string{"127.0.0.0/8", "::1/128"}
		// ... but never the admin console or the proxy itself.
		s.opts.ProtectedAddrs = []string{admin.srv.Listener.Addr().String()}
	})
	_, adminPort, _ := net.SplitHostPort(admin.srv.Listener.Addr().String())
	_, proxyPort, _ := net.SplitHostPort(h.proxy.Host)
	for _, u := range []string{
		"http://127.0.0.1:" + adminPort + "/small",
		"http://127.0.0.1:" + proxyPort + "/",
		"http://0.0.0.0:" + proxyPort + "/",
	} {
		resp := get(t, h.client(""), u)
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "own listeners") {
			t.Errorf("GET %s: %d %.200s", u, resp.StatusCode, body)
		}
	}
	resp, _ := h.raw(t, "CONNECT 127.0.0.1:"+adminPort+" HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("CONNECT to the admin port: %d", resp.StatusCode)
	}
	if admin.hits.Load() != 0 {
		t.Error("the admin listener was reached through the proxy")
	}
	// The ordinary origin on loopback still works.
	if resp := get(t, h.client(""), h.url(hostAllowed, "/small")); resp.StatusCode != 200 {
		t.Errorf("allowed loopback origin: %d", resp.StatusCode)
	}
}

func TestChunkedUploadPasses(t *testing.T) {
	h := start(t, nil)
	const size = 3<<20 + 17
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, &pattern{n: size})
		pw.CloseWithError(err)
	}()
	req, _ := http.NewRequest(http.MethodPost, h.url(hostAllowed, "/echo"), pr)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := h.client("").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != 200 || resp.Header.Get("X-Body-Sha256") != patternSum(size) || resp.Header.Get("X-Body-Length") != fmt.Sprint(size) {
		t.Errorf("chunked upload: %d, origin saw %s bytes", resp.StatusCode, resp.Header.Get("X-Body-Length"))
	}
	if te := resp.Header.Get("X-Transfer-Encoding"); te != "chunked" {
		t.Errorf("origin saw transfer encoding %q, want chunked", te)
	}
	in := h.inputs.find(verdict.PhaseRequest, hostAllowed)[0]
	if in.Request.ContentLength != -1 || in.Request.ContentType != "application/octet-stream" {
		t.Errorf("chunked request input: length %d type %q (length must be unknown)", in.Request.ContentLength, in.Request.ContentType)
	}

	file := filepath.Join(t.TempDir(), "up")
	f, _ := os.Create(file)
	_, _ = io.Copy(f, &pattern{n: size})
	f.Close()
	out, errOut, code := h.curl(t, "-i", "-H", "Transfer-Encoding: chunked", "--data-binary", "@"+file, h.url(hostAllowed, "/echo"))
	if code != 0 || !strings.Contains(out, "X-Body-Sha256: "+patternSum(size)) || !strings.Contains(out, "X-Transfer-Encoding: chunked") {
		t.Errorf("curl chunked upload: exit %d %s\n%.600s", code, errOut, out)
	}
}

func TestWebSocketPasses(t *testing.T) {
	h := start(t, nil)
	c, err := net.Dial("tcp", h.proxy.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	host := hostAllowed + ":" + h.origin.port()
	cfg := &websocket.Config{
		// Absolute-form request line, as a client speaking to a proxy sends.
		Location: &url.URL{Scheme: "http", Opaque: "//" + host + "/ws", Host: host},
		Origin:   &url.URL{Scheme: "http", Host: host},
		Version:  websocket.ProtocolVersionHybi13,
	}
	ws, err := websocket.NewClient(cfg, c)
	if err != nil {
		t.Fatalf("WebSocket handshake through the proxy: %v", err)
	}
	for _, msg := range []string{"hello", strings.Repeat("x", 100<<10), "bye"} {
		if err := websocket.Message.Send(ws, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := websocket.Message.Receive(ws, &got); err != nil {
			t.Fatal(err)
		}
		if got != msg {
			t.Fatalf("echo of %d bytes came back as %d bytes", len(msg), len(got))
		}
	}
	if st := h.srv.Stats(); st.TunnelsActive != 1 {
		t.Errorf("an open WebSocket should hold a tunnel slot: %+v", st)
	}
	ws.Close()
	waitFor(t, "the WebSocket's tunnel slot to be released", func() bool { return h.srv.Stats().TunnelsActive == 0 })
}

func TestHopByHopHeadersStripped(t *testing.T) {
	h := start(t, nil)
	req, _ := http.NewRequest(http.MethodGet, h.url(hostAllowed, "/headers"), nil)
	req.Header.Set("Connection", "X-Secret-Hop")
	req.Header.Set("X-Secret-Hop", "do not forward")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("TE", "trailers")
	req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
	req.Header.Set("Upgrade", "h2c")
	req.Header.Set("X-End-To-End", "forward me")
	resp, err := h.client("").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	seen := readAll(t, resp)
	for _, bad := range []string{"X-Secret-Hop", "Keep-Alive", "Te:", "Proxy-Authorization", "Upgrade"} {
		if strings.Contains(seen, bad) {
			t.Errorf("origin received hop-by-hop header %s:\n%s", bad, seen)
		}
	}
	if !strings.Contains(seen, "X-End-To-End: forward me") || !strings.Contains(seen, "Via: 1.1 aupguard") {
		t.Errorf("origin headers:\n%s", seen)
	}
	if resp.Header.Get("X-Hop") != "" || resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("client received hop-by-hop response headers: %v", resp.Header)
	}
	if resp.Header.Get("X-End") == "" {
		t.Errorf("end-to-end response header lost: %v", resp.Header)
	}
}

func TestTunnelCapPerClient(t *testing.T) {
	h := start(t, func(s *setup) { s.cfg.MaxTunnelsPerClient = 2 })
	open := func() (net.Conn, int) {
		c, _, status := h.connect(t)
		return c, status
	}
	c1, s1 := open()
	_, s2 := open()
	_, s3 := open()
	if s1 != 200 || s2 != 200 || s3 != http.StatusTooManyRequests {
		t.Fatalf("statuses %d %d %d; want 200 200 429", s1, s2, s3)
	}
	c1.Close()
	waitFor(t, "a tunnel slot to be freed", func() bool { return h.srv.Stats().TunnelsActive == 1 })
	_, s4 := open()
	if s4 != 200 {
		t.Errorf("after one tunnel closed: %d", s4)
	}
	// Another client has its own allowance.
	resp := get(t, h.client("127.0.0.3"), h.secureURL("/"))
	if resp.StatusCode != 200 {
		t.Errorf("another client: %d", resp.StatusCode)
	}
	readAll(t, resp)
}

func TestReviewRequest(t *testing.T) {
	h := start(t, nil)
	resp := get(t, h.client(""), h.url(hostCasino, "/"), "Accept", "text/html")
	readAll(t, resp)
	ref := resp.Header.Get("X-Aupguard-Reference")

	// The form posts to http://aupguard.block/review through the proxy.
	post := func(c *http.Client, u, ref string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(url.Values{"ref": {ref}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "text/html")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, readAll(t, resp)
	}
	resp, body := post(h.client(""), "http://aupguard.block/review", ref)
	if resp.StatusCode != 200 || !strings.Contains(body, "Review requested") || !strings.Contains(body, ref) {
		t.Fatalf("review: %d\n%s", resp.StatusCode, body)
	}
	var review events.Event
	for _, ev := range h.emit.all() {
		if ev.Kind == events.KindReviewRequest {
			review = ev
		}
	}
	if review.Ref != ref || review.ClientIP != "127.0.0.1" || review.Host != hostCasino || review.Category != "gambling" || review.ID == ref {
		t.Errorf("review event %+v", review)
	}
	// A second click records nothing new.
	resp, body = post(h.client(""), "http://aupguard.block/review", ref)
	if resp.StatusCode != 200 || !strings.Contains(body, "already been requested") {
		t.Errorf("repeat review: %d %s", resp.StatusCode, body)
	}
	if n := countKind(h.emit.all(), events.KindReviewRequest); n != 1 {
		t.Errorf("%d review events after a double click", n)
	}
	// Straight to the listener works too (a client not using the proxy for
	// that name), and bad references are refused.
	resp, _ = post(http.DefaultClient, "http://"+h.proxy.Host+"/review", "01OTHERINSTANCE")
	if resp.StatusCode != 200 || countKind(h.emit.all(), events.KindReviewRequest) != 2 {
		t.Errorf("direct review: %d", resp.StatusCode)
	}
	resp, _ = post(h.client(""), "http://aupguard.block/review", "<script>")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad reference: %d", resp.StatusCode)
	}
	if out, _, _ := h.curl(t, "-d", "ref="+ref+"x", "http://aupguard.block/review"); !strings.Contains(out, "Review requested") {
		t.Errorf("curl review: %q", out)
	}
}

func TestCanonicalLogLine(t *testing.T) {
	h := start(t, nil)
	readAll(t, get(t, h.client(""), h.url(hostAllowed, "/small")))
	block := get(t, h.client(""), h.url(hostCasino, "/"))
	readAll(t, block)
	lines := decisionLines(t, h.logs.String())
	if len(lines) != 1 {
		t.Fatalf("%d decision lines at Info, want only the block:\n%s", len(lines), h.logs.String())
	}
	l := lines[0]
	// The block page's reference finds the line.
	if ref := block.Header.Get("X-Aupguard-Reference"); ref == "" || l["event_id"] != ref {
		t.Errorf("decision line's event_id %v, block page's reference %q", l["event_id"], ref)
	}
	if l["source"] != "proxy" {
		t.Errorf("decision line's source %v", l["source"])
	}
	for _, k := range verdict.DecisionLogKeys {
		if _, ok := l[k]; !ok {
			t.Errorf("canonical line lacks %q: %v", k, l)
		}
	}
	if l["level"] != "INFO" || l["action"] != "block" || l["host"] != hostCasino || l["client_ip"] != "127.0.0.1" || l["event_id"] == "" {
		t.Errorf("canonical line %v", l)
	}

	h2 := start(t, func(s *setup) { s.cfg.LogAllows = true })
	readAll(t, get(t, h2.client(""), h2.url(hostAllowed, "/small")))
	if n := len(decisionLines(t, h2.logs.String())); n != 2 {
		t.Errorf("log_allows: %d decision lines for one allowed request, want 2 (request and response)", n)
	}
}

func TestAlertIsAllowedAndRecorded(t *testing.T) {
	h := start(t, func(s *setup) {
		s.identity.Groups["127.0.0.4/32"] = []string{"staff"}
	})
	resp := get(t, h.client("127.0.0.4"), h.url(hostHacking, "/page"))
	readAll(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("staff on a hacking site: %d", resp.StatusCode)
	}
	evs := h.emit.all()
	if len(evs) != 1 || evs[0].Kind != events.KindAlert || !evs[0].Alert || evs[0].Action != "allow" || evs[0].Category != "hacking" ||
		!slices.Equal(evs[0].Groups, []string{"staff"}) {
		t.Errorf("want one alert event for one request, got %+v", evs)
	}
	if resp := get(t, h.client(""), h.url(hostHacking, "/page")); resp.StatusCode != 403 {
		t.Errorf("learner on a hacking site: %d", resp.StatusCode)
	}
}

func TestShutdownDrainsInFlightRequest(t *testing.T) {
	h := start(t, nil)
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := h.client("").Get(h.url(hostAllowed, "/slow"))
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{string(b), err}
	}()
	<-h.origin.slowHit // the request is in flight, half answered

	shut := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() { shut <- h.srv.Shutdown(ctx) }()

	// New connections are refused once shutdown has begun.
	waitFor(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", h.proxy.Host)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	default:
	}
	close(h.origin.release)
	r := <-done
	if r.err != nil || r.body != "first half;second half" {
		t.Fatalf("in-flight request: %q, %v", r.body, r.err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func TestShutdownDeadlineClosesTunnels(t *testing.T) {
	h := start(t, nil)
	c, br, status := h.connect(t)
	if status != 200 {
		t.Fatalf("CONNECT: %d", status)
	}
	// The tunnel stays open; a shutdown whose time runs out must cut it
	// rather than hang. (Idle tunnels are cut early during a drain; that is
	// switched off here to look at the deadline alone.)
	h.srv.drainIdle = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := h.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with an open tunnel: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Error("the tunnel is still open after a forced shutdown")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("the tunnel was not closed by the forced shutdown")
	}
}

func TestShutdownClosesIdleTunnelsEarly(t *testing.T) {
	h := start(t, nil)
	// A browser-like client with a kept-alive tunnel, idle between requests.
	c := h.client("")
	readAll(t, get(t, c, h.secureURL("/hello")))
	if h.srv.Stats().TunnelsActive != 1 {
		t.Fatalf("the kept-alive tunnel is not open: %+v", h.srv.Stats())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown with only an idle tunnel open: %v (it should drain without waiting for the deadline)", err)
	}
	if n := h.srv.Stats().TunnelsActive; n != 0 {
		t.Errorf("%d tunnels still open", n)
	}
}

func TestTunnelIdleTimeout(t *testing.T) {
	h := start(t, func(s *setup) { s.cfg.Timeouts.TunnelIdle = 200 * time.Millisecond })
	c, br, status := h.connect(t)
	if status != 200 {
		t.Fatalf("CONNECT: %d", status)
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("unexpected data on an idle tunnel")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the idle tunnel was never closed by the proxy")
	}
	waitFor(t, "the idle tunnel's slot to be released", func() bool { return h.srv.Stats().TunnelsActive == 0 })
}

// A tunnel carrying traffic outlives its idle timeout, however its bytes
// move (on Linux they are spliced past the connection's Read and Write,
// and the socket's own clock must see them).
func TestBusyTunnelOutlivesIdleTimeout(t *testing.T) {
	const idle = time.Second
	h := start(t, func(s *setup) { s.cfg.Timeouts.TunnelIdle = idle })
	c, br, status := h.connect(t)
	if status != 200 {
		t.Fatalf("CONNECT: %d", status)
	}
	if br.Buffered() != 0 {
		t.Fatal("bytes after the CONNECT answer")
	}
	tc := tls.Client(c, &tls.Config{RootCAs: h.ca.pool, ServerName: hostSecure})
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
	tr := bufio.NewReader(tc)
	began := time.Now()
	for n := 0; time.Since(began) < 3*idle; n++ {
		if _, err := io.WriteString(tc, "GET /hello HTTP/1.1\r\nHost: "+hostSecure+"\r\n\r\n"); err != nil {
			t.Fatalf("request %d, %v into a busy tunnel: %v", n, time.Since(began), err)
		}
		resp, err := http.ReadResponse(tr, nil)
		if err != nil {
			t.Fatalf("answer %d, %v into a busy tunnel (cut as idle?): %v", n, time.Since(began), err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		time.Sleep(idle / 10)
	}
}

func TestMalformedRequestsAnsweredAndServerStaysUp(t *testing.T) {
	h := start(t, nil)
	for _, tc := range []struct {
		req    string
		status int
	}{
		{"CONNECT " + hostSecure + " HTTP/1.1\r\nHost: x\r\n\r\n", 400},         // no port
		{"CONNECT " + hostSecure + ":99999 HTTP/1.1\r\nHost: x\r\n\r\n", 400},   // bad port
		{"GET ftp://" + hostAllowed + "/file HTTP/1.1\r\nHost: x\r\n\r\n", 400}, // unsupported scheme
		{"GET http://" + hostAllowed + ":0/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},  // port 0
		{"GET http://bad_host^name/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},          // not a URL
		{"GARBAGE\r\n\r\n", 400}, // not HTTP
		{"GET /not-a-proxy-request HTTP/1.1\r\nHost: x\r\n\r\n", 404}, // origin-form
		{"GET http://" + hostAllowed + "/ HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Big: "+strings.Repeat("a", 1000)+"\r\n", 300) + "\r\n", 431},
	} {
		resp, body := h.raw(t, tc.req)
		if resp.StatusCode != tc.status {
			t.Errorf("%.60q: %d %q, want %d", tc.req, resp.StatusCode, body, tc.status)
		}
	}
	if resp := get(t, h.client(""), h.url(hostAllowed, "/small")); resp.StatusCode != 200 {
		t.Errorf("after malformed input: %d", resp.StatusCode)
	}
}

func TestInternationalHostNormalised(t *testing.T) {
	h := start(t, func(s *setup) {
		s.opts.Hosts["xn--bcher-kva.test.example"] = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	})
	resp, body := h.raw(t, "GET http://BÜCHER.test.example.:"+h.origin.port()+"/page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 || string(body) != "<p>hello from xn--bcher-kva.test.example:"+h.origin.port()+"</p>" {
		t.Fatalf("status %d, origin answered %q", resp.StatusCode, body)
	}
	if n := len(h.inputs.find(verdict.PhaseRequest, "xn--bcher-kva.test.example")); n != 1 {
		t.Errorf("the policy did not see the punycode host")
	}
}

func TestHostHeaderCannotFrontAnotherSite(t *testing.T) {
	h := start(t, nil)
	// The request target is an allowed host; the Host header names a
	// blocked one. The policy decides on the target, so the origin must be
	// asked for the target too.
	resp, body := h.raw(t, "GET "+h.url(hostAllowed, "/page")+" HTTP/1.1\r\nHost: "+hostCasino+"\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 || string(body) != "<p>hello from "+hostAllowed+":"+h.origin.port()+"</p>" {
		t.Errorf("status %d, origin answered %q", resp.StatusCode, body)
	}
}

func TestConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	c.Listen = "nope"
	c.AllowDestinations = []string{"10.0.0.0/8", "bad"}
	c.Timeouts.Dial = 0
	c.MaxTunnelsPerClient = 0
	c.BlockPage.Organisation = " "
	c.BlockPage.Contacts = []Contact{{Name: "", Email: "not an email"}, {Name: "x"}, {Name: "y", Phone: "call me"}}
	c.BlockPage.ReviewHost = "has space"
	err := c.Validate()
	for _, want := range []string{"listen:", "allow_destinations[1]:", "timeouts.dial:", "max_tunnels_per_client:",
		"block_page.organisation:", "block_page.contacts[0].name:", "block_page.contacts[0].email:",
		"block_page.contacts[1]: needs an email or a phone", "block_page.contacts[2].phone:", "block_page.review_host:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate lacks %q: %v", want, err)
		}
	}
	if _, err := New(c, Options{}); err == nil {
		t.Error("New accepted an invalid config")
	}
	if _, err := New(DefaultConfig(), Options{Decider: allowAll{}, Emitter: &recorder{}, NewID: events.NewID}); err == nil ||
		!strings.Contains(err.Error(), "Identity") {
		t.Errorf("New without an Identity: %v", err)
	}
	d := DefaultConfig()
	d.UpstreamCAFile = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := New(d, Options{Decider: allowAll{}, Emitter: &recorder{}, NewID: events.NewID, Identity: staticIdentity{}}); err == nil ||
		!strings.Contains(err.Error(), "upstream_ca_file") {
		t.Errorf("missing CA file: %v", err)
	}
}

func TestClassify(t *testing.T) {
	for ip, want := range map[string]string{
		"169.254.169.254": "cloud metadata address",
		"fd00:ec2::254":   "cloud metadata address",
		"127.0.0.1":       "loopback address",
		"::1":             "loopback address",
		"10.0.0.1":        "private address",
		"172.16.5.4":      "private address",
		"192.168.0.1":     "private address",
		"fd12::1":         "private address",
		"169.254.1.1":     "link-local address",
		"fe80::1":         "link-local address",
		"100.64.0.1":      "carrier-grade NAT (shared) address",
		"100.127.255.254": "carrier-grade NAT (shared) address",
		"0.0.0.0":         "unspecified (\"this network\") address",
		"::":              "unspecified address",
		"224.0.0.1":       "multicast address",
		"ff02::1":         "multicast address",
		"255.255.255.255": "reserved or broadcast address",
		"8.8.8.8":         "",
		"2606:4700::1111": "",
		"100.128.0.1":     "",
	} {
		if got := classify(netip.MustParseAddr(ip)); got != want {
			t.Errorf("classify(%s) = %q, want %q", ip, got, want)
		}
	}
}

// allowAll is a decider for tests that never reach a decision.
type allowAll struct{}

func (allowAll) Decide(context.Context, *verdict.Input) verdict.Decision {
	return verdict.Decision{Action: verdict.ActionAllow}
}

// staticIdentity allows everyone (used only where no request is served).
type staticIdentity struct{}

func (staticIdentity) Identify(netip.Addr) ([]string, bool) { return nil, true }
func (staticIdentity) AuthRequired() bool                   { return false }
func (staticIdentity) AuthEnabled() bool                    { return false }
func (staticIdentity) Realm() string                        { return "" }
func (staticIdentity) Verify(netip.Addr, string, string) ([]string, error) {
	return nil, errors.New("no auth")
}

func decisionLines(t testing.TB, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			continue
		}
		if m["msg"] == "decision" {
			out = append(out, m)
		}
	}
	return out
}

func countKind(evs []events.Event, k events.Kind) int {
	n := 0
	for _, ev := range evs {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func mustWrite(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds; it fails the test only after a long
// deadline, so it asserts an outcome, not a duration.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rssBytes is the process's resident set size, or 0 where /proc is absent.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
