package categories

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aupguard/aupguard/internal/testutil"
)

// publisher serves the shared data's files over HTTP as the publishers do
// (ETag, If-None-Match, 304), and can be made to misbehave per file: an
// error status, a truncated body, an HTML page instead of the list, or a
// server too slow for the fetch timeout.
type publisher struct {
	dir  string
	srv  *httptest.Server
	mu   sync.Mutex
	mode map[string]string // file → "500", "truncated", "garbage", "slow"
	gen  int               // bumped to make every ETag new
	seen map[string][]http.Header
}

func newPublisher(t *testing.T, dir string) *publisher {
	p := &publisher{dir: dir, mode: map[string]string{}, seen: map[string][]http.Header{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *publisher) serve(w http.ResponseWriter, r *http.Request) {
	file := strings.TrimPrefix(r.URL.Path, "/")
	p.mu.Lock()
	mode, gen := p.mode[file], p.gen
	p.seen[file] = append(p.seen[file], r.Header.Clone())
	p.mu.Unlock()
	body, err := os.ReadFile(filepath.Join(p.dir, filepath.FromSlash(file)))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:8]) + "-" + strconv.Itoa(gen) + `"`
	switch mode {
	case "500":
		http.Error(w, "upstream broke", http.StatusInternalServerError)
		return
	case "garbage":
		w.Header().Set("ETag", `"maintenance"`)
		w.Write([]byte("<!doctype html>\n<html>\n<body>\n<h1>Down for maintenance</h1>\n</body>\n</html>\n"))
		return
	case "slow":
		select {
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
		return
	}
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", etag)
	if mode == "truncated" {
		// Promise the whole file, send a third of it, hang up.
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body[:len(body)/3])
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
			}
		}
		return
	}
	w.Write(body)
}

func (p *publisher) set(file, mode string) {
	p.mu.Lock()
	p.mode[file] = mode
	p.mu.Unlock()
}

func (p *publisher) bump() {
	p.mu.Lock()
	p.gen++
	p.mu.Unlock()
}

func (p *publisher) requests(file string) []http.Header {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[file]
}

// publishedAt rewrites the default sources so that each is fetched from
// base (by its mirror file name) instead of its publisher: configured
// sources with the defaults' names, which replace them. A multi-file source
// gets its mirror file as its first part and a file that does not exist
// as its second, as when a publisher removes one of its files.
func publishedAt(base string) []Source {
	var out []Source
	for _, d := range DefaultSources() {
		s := d.Source
		s.URL, s.URLs = "", nil
		if len(d.URLs) > 1 {
			s.URLs = []string{base + "/" + d.Mirror, base + "/gone/" + d.Name}
		} else {
			s.URL = base + "/" + d.Mirror
		}
		out = append(out, s)
	}
	return out
}

// TestDefaultsFromPublishers: every default source fetched over HTTP from
// a local server holding the real files; conditional refreshes; and a
// publisher that fails in each way leaves its last good copy in force and
// says why.
func TestDefaultsFromPublishers(t *testing.T) {
	ctx := t.Context()
	pub := newPublisher(t, dataDir(t))
	cfg := DefaultConfig()
	cfg.CacheDir = t.TempDir()
	cfg.FetchTimeout = 3 * time.Second
	cfg.Sources = publishedAt(pub.srv.URL)
	m, err := NewManager(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	startCtx, stop := context.WithCancel(ctx)
	if err := m.Start(startCtx); err != nil {
		t.Fatal(err)
	}
	stop()
	<-m.Done()
	// Start's background fetch may or may not have gone out before stop:
	// count the requests from here on.
	before := map[string]int{}
	for _, d := range DefaultSources() {
		before[d.Name] = len(pub.requests(d.Mirror))
	}
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	ix := m.Current()
	if ix.Len() < 500_000 {
		t.Fatalf("%d names after fetching every default source, want 500k+", ix.Len())
	}
	for _, s := range withoutSeed(ix.Stats()) {
		want, ok := expectedCounts[s.Label]
		if !ok {
			want, ok = mirrorCounts[s.Label]
		}
		if !ok || [3]int{s.Domains, s.IPs, s.URLs} != want || s.Errors != 0 {
			t.Errorf("%s: %+v, want %v", s.Label, s, want)
		}
	}
	for _, st := range m.Sources() {
		d := defaultByName(st.Name)
		switch {
		case st.Name == SeedName:
		case len(d.URLs) > 1:
			if st.State != "partial" || !strings.Contains(st.Error, "404") {
				t.Errorf("%s: %+v, want partial (one file gone)", st.Name, st)
			}
		case st.State != "ok":
			t.Errorf("%s: %+v", st.Name, st)
		}
	}

	// Unchanged: every request conditional, answered 304, nothing rebuilt.
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if m.Current() != ix {
		t.Error("a round of 304s rebuilt the index")
	}
	for _, d := range DefaultSources() {
		all := pub.requests(d.Mirror)
		reqs := all[before[d.Name]:]
		// The first fetch ever is plain (whether Start's or Refresh's);
		// the last, after a copy is cached, is conditional.
		if len(reqs) != 2 || all[0].Get("If-None-Match") != "" || reqs[1].Get("If-None-Match") == "" {
			t.Errorf("%s: requests %v (%d before the refreshes), want a plain first fetch and a conditional last", d.Name, all, before[d.Name])
		}
	}

	// Every publisher has something new, and four of them fail: the new
	// lists load, the failing ones keep their last good copy.
	broken := map[string]string{
		"ut1-blacklists.tar.gz":              "truncated",
		"lists/shadowwhisperer-adult.txt.gz": "garbage",
		"lists/estonia-gambling.txt.gz":      "500",
		"lists/tiuxo-porn.txt.gz":            "slow",
	}
	for f, mode := range broken {
		pub.set(f, mode)
	}
	pub.bump()
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	after := m.Current()
	for _, probe := range []struct{ host, cat string }{
		{"pokerstars.com", "gambling"},    // ut1, truncated
		{"www.facebook.com", "social"},    // fresh
		{"thepiratebay.org", "piracy"},    // fresh and seed
		{"www.betfair.com", "gambling"},   // seed
		{"www.pornhub.com", "adult"},      // several
		{"www.bet365.com", "gambling"},    // seed
		{"www.xvideos.com", "adult"},      // several
		{"www.youporn.com", "adult"},      // several
		{"www.1337x.to", "piracy"},        // several
		{"www.888casino.com", "gambling"}, // several
	} {
		if probe.cat != "" && !after.Lookup(probe.host).Has(probe.cat) {
			t.Errorf("%s not %s after the failed refresh", probe.host, probe.cat)
		}
	}
	for name, count := range map[string]int{"shadowwhisperer-adult": 219522, "estonia-gambling": 1893, "tiuxo-porn": 369} {
		if got := statsFor(after, name).Domains; got != count {
			t.Errorf("%s: %d domains after its publisher failed, want the last good %d", name, got, count)
		}
	}
	if got := statsFor(after, "ut1:gambling").Domains; got != expectedCounts["ut1:gambling"][0] {
		t.Errorf("ut1:gambling: %d domains after a truncated download", got)
	}
	why := map[string]string{"ut1": "unexpected EOF", "shadowwhisperer-adult": "failed to parse", "estonia-gambling": "500", "tiuxo-porn": "deadline"}
	for name, msg := range why {
		st := sourceStatus(m, name)
		if st.State != "cache" || !strings.Contains(st.Error, msg) {
			t.Errorf("%s: %+v, want state cache and %q", name, st, msg)
		}
	}
	if missing := m.Missing(); len(missing) != 0 {
		t.Errorf("missing = %v", missing)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(cfg.CacheDir, ".*.part")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func defaultByName(name string) DefaultSource {
	for _, d := range DefaultSources() {
		if d.Name == name {
			return d
		}
	}
	return DefaultSource{}
}

func statsFor(ix *Index, label string) SourceStats {
	for _, s := range ix.Stats() {
		if s.Label == label {
			return s
		}
	}
	return SourceStats{}
}

// TestStartOffline: with nothing cached and every publisher unreachable,
// Start returns at once with the seed in force, each source is reported
// missing with one WARN naming it and why (not one per retry), and the
// manager keeps retrying.
func TestStartOffline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close() // connection refused from now on
	cfg := DefaultConfig()
	cfg.CacheDir = t.TempDir()
	cfg.Sources = publishedAt(dead)
	logs := &testutil.SyncBuffer{}
	m, err := NewManager(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	m.cfg.Retry = 20 * time.Millisecond // Validate insists on 1s; the test needs several retries
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ix := m.Current()
	for host, cat := range map[string]string{"www.bet365.com": "gambling", "pornhub.com": "adult", "thepiratebay.org": "piracy",
		"www.instagram.com": "social", "nordvpn.com": "circumvention"} {
		if got := ix.Lookup(host).ByCategory()[cat]; len(got) != 1 || got[0] != SeedName {
			t.Errorf("%s: %v, want %s from the seed", host, ix.Lookup(host).ByCategory(), cat)
		}
	}
	n := len(DefaultSources())
	waitFor(t, "every default source reported missing", func() bool { return len(m.Missing()) == n })
	waitFor(t, "a few retries", func() bool { return strings.Count(logs.String(), `msg="lists unchanged"`) >= 3 })
	out := logs.String()
	for _, d := range DefaultSources() {
		line := `msg="list source unavailable" source=` + d.Name + " "
		if c := strings.Count(out, line); c != 1 {
			t.Errorf("%s: %d WARN lines, want 1", d.Name, c)
		}
		st := sourceStatus(m, d.Name)
		if st.State != "missing" || !strings.Contains(st.Error, "connection refused") {
			t.Errorf("%s: %+v", d.Name, st)
		}
	}
	if st := sourceStatus(m, SeedName); st.State != "ok" {
		t.Errorf("seed: %+v", st)
	}
	cancel()
	<-m.Done()
}
