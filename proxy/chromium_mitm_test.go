package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/internal/testutil"
)

// nssHome makes a HOME whose NSS database (the one Chromium on Linux
// reads) trusts the given CA files, as an MDM would install them.
func nssHome(t testing.TB, cas ...string) string {
	t.Helper()
	_, err := exec.LookPath("certutil")
	testutil.Require(t, err == nil, "certutil is not installed (apt-get install -y libnss3-tools)")
	home := t.TempDir()
	db := filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(db, 0o700); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) {
		if out, err := exec.Command("certutil", args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
	}
	run("-d", "sql:"+db, "-N", "--empty-password")
	for i, ca := range cas {
		run("-d", "sql:"+db, "-A", "-t", "C,,", "-n", fmt.Sprintf("aupguard-%d", i), "-i", ca)
	}
	return home
}

// chromiumAt runs headless Chromium with HOME set (its NSS database),
// through proxy, and returns its stdout. A virtual-time budget lets a
// page's script submit its form and the answer load before the DOM or
// screenshot is taken.
func chromiumAt(t testing.TB, home, proxy string, args ...string) string {
	t.Helper()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--proxy-server=" + proxy, "--virtual-time-budget=10000",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromiumPath, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+home)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

// composeOrigin is an HTTPS www.facebook.com whose /compose page posts its
// form to /share as soon as it loads, as a learner pressing "Post" would.
func composeOrigin(t testing.TB, h *harness) (*httptest.Server, *atomic.Int64) {
	var posts atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/compose", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, `<!doctype html><html><body><h1>Social compose page</h1>
<form method="post" action="/share"><textarea name="msg">provider materials</textarea><button>Post</button></form>
<script>document.forms[0].submit()</script></body></html>`)
	})
	mux.HandleFunc("/share", func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<!doctype html><html><body><h1>Posted to the timeline</h1></body></html>")
	})
	mux.HandleFunc("/feed", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<!doctype html><html><body><h1>Your news feed</h1></body></html>")
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{h.ca.leaf(t, hostSocial)}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, &posts
}

// TestInterceptInChromium: a real browser trusting the interception CA
// (imported into a fresh NSS database) browses www.facebook.com through the
// proxy. A learner's form post is answered with the block page inside TLS
// and never reaches the origin; reading works; a client in the
// approved-publishers group posts.
func TestInterceptInChromium(t *testing.T) {
	_, err := os.Stat(chromiumPath)
	testutil.Require(t, err == nil, "chromium is not installed (apt-get install -y chromium)")
	m := startMITM(t, nil)
	home := nssHome(t, m.icaPEM, m.ca.pemPath)
	origin, posts := composeOrigin(t, m.harness)

	// Reading.
	dom := chromiumAt(t, home, m.proxy.String(), "--dump-dom", at(origin, hostSocial, "/feed"))
	if !strings.Contains(dom, "Your news feed") {
		t.Fatalf("reading the feed: %s", dom)
	}

	// Posting, as a learner: the block page, inside TLS.
	before := len(m.emit.all())
	dom = chromiumAt(t, home, m.proxy.String(), "--dump-dom", at(origin, hostSocial, "/compose"))
	if !strings.Contains(dom, "This page is blocked") || !strings.Contains(dom, "Posting or uploading to social media") {
		t.Fatalf("learner's post: the browser shows %s", dom)
	}
	var blocks []events.Event
	for _, ev := range m.emit.all()[before:] {
		if ev.Kind == events.KindBlock && strings.HasSuffix(ev.URL, "/share") {
			blocks = append(blocks, ev)
		}
	}
	if len(blocks) != 1 || !strings.Contains(dom, blocks[0].ID) {
		t.Errorf("%d block events for one post; the page names %v", len(blocks), blocks)
	}
	file := filepath.Join(artifactsDir(t), "intercepted-post-blocked.png")
	_ = os.Remove(file)
	chromiumAt(t, home, m.proxy.String(), "--screenshot="+file, "--window-size=1280,900", "--hide-scrollbars", at(origin, hostSocial, "/compose"))
	if st, err := os.Stat(file); err != nil || st.Size() < 10<<10 {
		t.Errorf("screenshot %s missing or empty: %v", file, err)
	}
	t.Logf("blocked post screenshot: %s", file)
	if n := posts.Load(); n != 0 {
		t.Fatalf("the origin received %d learner posts", n)
	}

	// An approved publisher (group approved-publishers, the shipped
	// approval) posts: not intercepted, and the origin gets the post.
	pub := startMITM(t, func(s *setup) {
		s.identity.Groups["127.0.0.0/8"] = []string{"learners", "approved-publishers"}
	})
	pubOrigin, pubPosts := composeOrigin(t, pub.harness)
	home = nssHome(t, pub.icaPEM, pub.ca.pemPath)
	dom = chromiumAt(t, home, pub.proxy.String(), "--dump-dom", at(pubOrigin, hostSocial, "/compose"))
	if !strings.Contains(dom, "Posted to the timeline") || pubPosts.Load() != 1 {
		t.Errorf("approved publisher's post (%d reached the origin): %s", pubPosts.Load(), dom)
	}
}
