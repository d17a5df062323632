package proxy

import (
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aupguard/aupguard/events"
)

// csp parses a Content-Security-Policy header into its directives.
func csp(t *testing.T, header string) map[string][]string {
	t.Helper()
	if header == "" {
		t.Fatal("no Content-Security-Policy header")
	}
	out := map[string][]string{}
	for _, d := range strings.Split(header, ";") {
		f := strings.Fields(d)
		if len(f) == 0 {
			continue
		}
		name := strings.ToLower(f[0])
		if _, dup := out[name]; dup {
			t.Fatalf("directive %q given twice in %q", name, header)
		}
		out[name] = f[1:]
	}
	return out
}

// checkPageHeaders checks the headers the README promises on every page
// the proxy makes (block page, review confirmation, gateway error), and
// that its CSP allows nothing but inline styles, data: images and a form
// posting to formAction ("'none'" when reviews are off).
func checkPageHeaders(t *testing.T, what string, resp *http.Response, formAction string) {
	t.Helper()
	h := resp.Header
	for k, want := range map[string]string{
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
	} {
		if got := h.Values(k); !slices.Equal(got, []string{want}) {
			t.Errorf("%s: %s = %q, want %q", what, k, got, want)
		}
	}
	if ct := h.Get("Content-Type"); !strings.HasSuffix(ct, "; charset=utf-8") {
		t.Errorf("%s: Content-Type %q without a charset", what, ct)
	}
	want := map[string][]string{
		"default-src":     {"'none'"},
		"style-src":       {"'unsafe-inline'"},
		"img-src":         {"data:"},
		"form-action":     {formAction},
		"base-uri":        {"'none'"},
		"frame-ancestors": {"'none'"},
	}
	got := csp(t, h.Get("Content-Security-Policy"))
	for name, v := range got {
		if w, ok := want[name]; !ok || !slices.Equal(v, w) {
			t.Errorf("%s: CSP %s %q, want %q (header %q)", what, name, v, w, h.Get("Content-Security-Policy"))
		}
	}
	for name := range want {
		if _, ok := got[name]; !ok {
			t.Errorf("%s: CSP lacks %s (header %q)", what, name, h.Get("Content-Security-Policy"))
		}
	}
}

var (
	scriptRe   = regexp.MustCompile(`(?i)<script|\son[a-z]+\s*=|javascript:`)
	externalRe = regexp.MustCompile(`(?i)\s(src|href)\s*=\s*"(https?:)?//`)
	formRe     = regexp.MustCompile(`(?i)<form[^>]*\saction="([^"]*)"`)
)

// checkSelfContained checks an HTML page loads nothing and runs nothing,
// and that its forms post only where the CSP lets them.
func checkSelfContained(t *testing.T, what, body string, formAction string) {
	t.Helper()
	if m := scriptRe.FindString(body); m != "" {
		t.Errorf("%s: the page has script (%q)", what, m)
	}
	if m := externalRe.FindString(body); m != "" {
		t.Errorf("%s: the page loads or links outside itself (%q)", what, m)
	}
	for _, m := range formRe.FindAllStringSubmatch(body, -1) {
		u, err := url.Parse(m[1])
		if err != nil || formAction == "'none'" || u.Scheme+"://"+u.Host != formAction {
			t.Errorf("%s: form posts to %q, the CSP allows %s", what, m[1], formAction)
		}
	}
}

// Every page the proxy makes for a browser carries the documented security
// headers: a block at the request and response phases, a refused
// destination, a gateway error and the review confirmation.
func TestBlockPageSecurityHeaders(t *testing.T) {
	h := start(t, nil)
	const formAction = "http://aupguard.block"
	html := []string{"Accept", "text/html,application/xhtml+xml"}

	// A closed port on loopback: the origin cannot be reached.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, closed, _ := net.SplitHostPort(l.Addr().String())
	l.Close()

	var ref string
	for _, tc := range []struct {
		what   string
		url    string
		status int
	}{
		{"request-phase block", h.url(hostCasino, "/"), http.StatusForbidden},
		{"response-phase block", h.url(hostFiles, "/bt"), http.StatusForbidden},
		{"refused destination", "http://" + hostMetadata + "/latest/meta-data/", http.StatusForbidden},
		{"gateway error", "http://" + hostAllowed + ":" + closed + "/", http.StatusBadGateway},
	} {
		resp := get(t, h.client(""), tc.url, html...)
		body := readAll(t, resp)
		if resp.StatusCode != tc.status {
			t.Fatalf("%s: status %d, want %d", tc.what, resp.StatusCode, tc.status)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("%s: Content-Type %q", tc.what, ct)
		}
		checkPageHeaders(t, tc.what, resp, formAction)
		checkSelfContained(t, tc.what, body, formAction)
		if tc.status == http.StatusForbidden {
			if !formRe.MatchString(body) {
				t.Errorf("%s: no review form with reviews enabled", tc.what)
			}
			ref = resp.Header.Get("X-Aupguard-Reference")
		}
	}

	// The same headers on the plain-text page (curl, apps).
	resp := get(t, h.client(""), h.url(hostCasino, "/"), "Accept", "*/*")
	readAll(t, resp)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("plain-text block: Content-Type %q", ct)
	}
	checkPageHeaders(t, "plain-text block", resp, formAction)

	// And on the review confirmation.
	req, _ := http.NewRequest(http.MethodPost, formAction+"/review", strings.NewReader(url.Values{"ref": {ref}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	resp, err = h.client("").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, ref) {
		t.Fatalf("review confirmation: %d\n%s", resp.StatusCode, body)
	}
	checkPageHeaders(t, "review confirmation", resp, formAction)
	checkSelfContained(t, "review confirmation", body, formAction)
}

// With block_page.review_enabled false the page offers no review, its CSP
// lets no form post anywhere, and the review endpoint records nothing,
// whether reached through the proxy or on the listener.
func TestReviewDisabled(t *testing.T) {
	h := start(t, func(s *setup) { s.cfg.BlockPage.ReviewEnabled = false })

	resp := get(t, h.client(""), h.url(hostCasino, "/"), "Accept", "text/html")
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
	ref := resp.Header.Get("X-Aupguard-Reference")
	if ref == "" || !strings.Contains(body, ref) {
		t.Fatalf("block page without its reference %q", ref)
	}
	for _, bad := range []string{"<form", "Request a review", "/review"} {
		if strings.Contains(body, bad) {
			t.Errorf("block page with reviews off contains %q", bad)
		}
	}
	checkPageHeaders(t, "block page, reviews off", resp, "'none'")
	checkSelfContained(t, "block page, reviews off", body, "'none'")

	out, _, code := h.curl(t, h.url(hostCasino, "/"))
	if code != 0 || !strings.Contains(out, "Reference: ") || strings.Contains(strings.ToLower(out), "review") {
		t.Errorf("plain-text block page with reviews off (curl exit %d):\n%s", code, out)
	}

	post := func(c *http.Client, u string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(url.Values{"ref": {ref}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		return resp.StatusCode
	}
	for what, code := range map[string]int{
		"through the proxy": post(h.client(""), "http://aupguard.block/review"),
		"on the listener":   post(http.DefaultClient, "http://"+h.proxy.Host+"/review"),
	} {
		if code != http.StatusNotFound {
			t.Errorf("review request %s with reviews off: status %d, want 404", what, code)
		}
	}
	if n := countKind(h.emit.all(), events.KindReviewRequest); n != 0 {
		t.Errorf("%d review events with reviews off", n)
	}
	if st := h.srv.Stats(); st.Reviews != 0 {
		t.Errorf("reviews counted with reviews off: %+v", st)
	}
}
