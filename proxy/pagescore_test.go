package proxy

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hostPages serves the page scorer's test pages; no list names it.
const hostPages = "pages.test.example"

// pageOrigin serves the test pages (../pagescore/testdata/pages and
// testdata/pages) at /NAME (gzipped
// at /gz/NAME), and at /hang/NAME the page padded past 8 KiB after which
// it never finishes until the test ends.
func pageOrigin(t *testing.T) (*httptest.Server, map[string][]byte) {
	t.Helper()
	// The page scorer's own test pages, and this package's (a PSHE
	// lesson on pornography and gambling harm, which must pass).
	files, err := filepath.Glob(filepath.Join("..", "pagescore", "testdata", "pages", "*.html"))
	own, _ := filepath.Glob(filepath.Join("testdata", "pages", "*.html"))
	files = append(files, own...)
	if err != nil || len(files) < 10 || len(own) == 0 {
		t.Fatalf("test pages: %v (%d)", err, len(files))
	}
	pages := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pages[filepath.Base(f)] = b
	}
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := filepath.Base(r.URL.Path)
		b, ok := pages[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch {
		case strings.HasPrefix(r.URL.Path, "/gz/"):
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			_, _ = zw.Write(b)
			_ = zw.Close()
		case strings.HasPrefix(r.URL.Path, "/hang/"):
			_, _ = w.Write(b)
			_, _ = w.Write(bytes.Repeat([]byte("<!-- padding -->\n"), 8<<10/17+1))
			w.(http.Flusher).Flush()
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		default:
			_, _ = w.Write(b)
		}
	}))
	t.Cleanup(func() { close(hang); srv.Close() })
	return srv, pages
}

func startPages(t *testing.T, maxBytes int64) (*harness, string) {
	t.Helper()
	origin, _ := pageOrigin(t)
	h := start(t, func(s *setup) {
		s.opts.Hosts[hostPages] = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
		s.identity.Groups["127.0.0.4/32"] = []string{"staff"}
		cfg := DefaultPageScoreConfig()
		cfg.MaxBytes = maxBytes
		ps, err := NewPageScorer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		s.opts.PageScorer = ps
	})
	return h, "http://" + hostPages + ":" + strings.TrimPrefix(origin.URL[strings.LastIndex(origin.URL, ":"):], ":")
}

// Page scoring through the real proxy, decision core and policies: the
// gambling, adult and piracy test pages (English, Portuguese, Vietnamese,
// Hinglish, Indonesian, Spanish) are replaced by the block page for a
// learner, with an event naming the matched phrases that the block page
// does not show; the health, sex-education, news, charity, encyclopedia
// and Linux-torrent pages pass byte for byte, gzipped or not.
func TestPageScoringThroughProxy(t *testing.T) {
	h, base := startPages(t, 256<<10)
	_, pages := pageOrigin(t)
	c := h.client("")
	for name, want := range pages {
		for _, prefix := range []string{"/", "/gz/"} {
			resp := get(t, c, base+prefix+name)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			positive := strings.HasPrefix(name, "positive-")
			switch {
			case positive && resp.StatusCode != http.StatusForbidden:
				t.Errorf("%s%s: status %d, want the block page", prefix, name, resp.StatusCode)
			case positive:
				ev := h.emit.byID(t, resp.Header.Get("X-Aupguard-Reference"))
				if !strings.HasSuffix(ev.Rule, "_page") || ev.Page == nil || len(ev.Page.Phrases[ev.Category]) == 0 || !ev.Alert {
					t.Errorf("%s%s: event %s %s alert=%v page %+v", prefix, name, ev.Rule, ev.Category, ev.Alert, ev.Page)
					continue
				}
				for _, ph := range ev.Page.Phrases[ev.Category] {
					if bytes.Contains(bytes.ToLower(body), []byte(strings.ToLower(ph))) {
						t.Errorf("%s%s: the block page shows the matched phrase %q", prefix, name, ph)
					}
				}
			case resp.StatusCode != http.StatusOK:
				t.Errorf("%s%s: status %d, want the page", prefix, name, resp.StatusCode)
			case prefix == "/" && !bytes.Equal(body, want):
				t.Errorf("%s: the page was changed on the way (%d bytes, want %d)", name, len(body), len(want))
			case prefix == "/gz/":
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Errorf("%s%s: %v", prefix, name, err)
					continue
				}
				got, err := io.ReadAll(zr)
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s%s: gzipped page changed on the way: %v", prefix, name, err)
				}
			}
		}
	}
	st := h.srv.opts.PageScorer.Stats()
	if st.Scored != uint64(2*len(pages)) || st.Blocked == 0 {
		t.Errorf("stats %+v, want %d scored", st, 2*len(pages))
	}
}

// Staff see a scored page (with an alert for the reviewer).
func TestPageScoringStaffAlertOnly(t *testing.T) {
	h, base := startPages(t, 256<<10)
	resp := get(t, h.client("127.0.0.4"), base+"/positive-casino-en.html")
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "casino") {
		t.Fatalf("staff: status %d", resp.StatusCode)
	}
	var found bool
	for _, ev := range h.emit.all() {
		if ev.Rule == "gambling_page_alert" && ev.Alert && ev.Action == "allow" && ev.Page != nil {
			found = true
		}
	}
	if !found {
		t.Errorf("no gambling_page_alert event: %+v", h.emit.all())
	}
}

// Nothing of a page is forwarded before it is scored: the origin sends a
// casino page and more than the held bytes, then stalls; the learner
// gets the block page at once, not the casino's first bytes.
func TestPageHeldUntilScored(t *testing.T) {
	h, base := startPages(t, 4<<10)
	c := h.client("")
	c.Timeout = time.Minute // a proxy that streamed the page would hang here
	resp := get(t, c, base+"/hang/positive-casino-en.html")
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusForbidden || strings.Contains(strings.ToLower(body), "casino royale") || strings.Contains(body, "padding") {
		t.Fatalf("status %d, body %q", resp.StatusCode, body[:min(len(body), 200)])
	}
	// A benign page longer than the held bytes arrives whole once the
	// origin is done (the held part, then the rest, unscored).
	long := strings.Repeat("<p>Our opening hours and the bus timetable.</p>\n", 20<<10/48)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, long)
	}))
	defer origin.Close()
	u := "http://" + hostPages + ":" + origin.URL[strings.LastIndex(origin.URL, ":")+1:] + "/long"
	resp = get(t, c, u)
	if got := readAll(t, resp); resp.StatusCode != 200 || got != long {
		t.Errorf("long benign page: status %d, %d bytes, want %d", resp.StatusCode, len(got), len(long))
	}
}
