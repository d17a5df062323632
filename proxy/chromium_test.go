package proxy

import (
	"context"
	"github.com/aupguard/aupguard/internal/testutil"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aupguard/aupguard/events"
)

const chromiumPath = "/usr/bin/chromium"

// artifactsDir is where screenshots are kept: $AUPGUARD_ARTIFACTS, or
// proxy/testdata/artifacts (gitignored).
func artifactsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("AUPGUARD_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("testdata", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// chromium runs headless Chromium with a fresh profile, through the proxy
// when proxy is not "", and returns its stdout.
func chromium(t testing.TB, proxy string, args ...string) string {
	t.Helper()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(),
	}
	if proxy != "" {
		base = append(base, "--proxy-server="+proxy)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromiumPath, append(base, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

// newBlocks returns the block events for path that appeared since before.
func newBlocks(evs []events.Event, before int, path string) []events.Event {
	var out []events.Event
	for _, ev := range evs[before:] {
		if ev.Kind == events.KindBlock && strings.HasSuffix(ev.URL, path) {
			out = append(out, ev)
		}
	}
	return out
}

func TestBlockPageInChromium(t *testing.T) {
	_, err := os.Stat(chromiumPath)
	testutil.Require(t, err == nil, "chromium is not installed (apt-get install -y chromium)")
	h := start(t, nil)
	target := h.url(hostCasino, "/slots")

	// The DOM, as the browser built it from the page the proxy served.
	before := len(h.emit.all())
	dom := chromium(t, h.proxy.String(), "--dump-dom", target)
	blocks := newBlocks(h.emit.all(), before, "/slots")
	if len(blocks) != 1 {
		t.Fatalf("%d block events for one page load", len(blocks))
	}
	ref := blocks[0].ID
	for _, want := range []string{
		`<html lang="en">`,
		"This page is blocked",
		"Online gambling is not permitted on the provider's network",
		`<span class="ref" id="reference">` + ref + `</span>`,
		`<button type="submit">Request a review</button>`,
		`<label for="review-message">Why do you need this site?`,
		`<textarea id="review-message" name="message" rows="3" maxlength="500"`,
		"Designated Safeguarding Lead",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}

	// Screenshots at phone size and desktop size, kept as artifacts.
	dir := artifactsDir(t)
	for _, shot := range []struct{ name, size string }{
		{"blockpage-phone.png", "412,915"},
		{"blockpage-desktop.png", "1280,900"},
	} {
		file := filepath.Join(dir, shot.name)
		_ = os.Remove(file)
		chromium(t, h.proxy.String(), "--screenshot="+file, "--window-size="+shot.size, "--hide-scrollbars", target)
		if st, err := os.Stat(file); err != nil || st.Size() < 10<<10 {
			t.Fatalf("screenshot %s missing or empty: %v", file, err)
		}
		t.Logf("block page screenshot (%s): %s", shot.size, file)
	}

	// The review confirmation, rendered the same way the proxy serves it.
	req, _ := http.NewRequest(http.MethodPost, "http://aupguard.block/review", nil)
	req.Header.Set("Accept", "text/html")
	data := h.srv.pages.data("Review requested", time.Now())
	data.Reference, data.Host = ref, hostCasino
	resp := h.srv.pages.render(req, http.StatusOK, "review", data)
	page := filepath.Join(t.TempDir(), "review.html")
	mustWrite(t, page, readAll(t, resp))
	file := filepath.Join(dir, "review-phone.png")
	chromium(t, "", "--screenshot="+file, "--window-size=412,915", "--hide-scrollbars", "file://"+page)
	t.Logf("review confirmation screenshot: %s", file)
}
