package categories

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// listServer serves one list with ETag and Last-Modified, answering
// conditional requests with 304, and can be switched to fail.
type listServer struct {
	mu       sync.Mutex
	body     []byte
	etag     string
	mode     string // "", "500", "garbage"
	requests []http.Header
	srv      *httptest.Server
}

func newListServer(t *testing.T, body, etag string) *listServer {
	ls := &listServer{body: []byte(body), etag: etag}
	ls.srv = httptest.NewServer(http.HandlerFunc(ls.serve))
	t.Cleanup(ls.srv.Close)
	return ls
}

const lastModified = "Mon, 02 Jan 2026 15:04:05 GMT"

func (ls *listServer) serve(w http.ResponseWriter, r *http.Request) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.requests = append(ls.requests, r.Header.Clone())
	switch ls.mode {
	case "500":
		http.Error(w, "upstream broke", http.StatusInternalServerError)
		return
	case "garbage":
		w.Header().Set("ETag", `"garbage"`)
		w.Write([]byte("<html>\n<body>\n<h1>Temporarily unavailable</h1>\n</body>\n</html>\n"))
		return
	}
	if r.Header.Get("If-None-Match") == ls.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", ls.etag)
	w.Header().Set("Last-Modified", lastModified)
	w.Write(ls.body)
}

func (ls *listServer) set(mode, body, etag string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.mode = mode
	if body != "" {
		ls.body, ls.etag = []byte(body), etag
	}
}

func (ls *listServer) lastRequest() http.Header {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.requests[len(ls.requests)-1]
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestManagerRemoteSource(t *testing.T) {
	ctx := t.Context()
	ls := newListServer(t, "casino-one.example\ncasino-two.example\n", `"v1"`)
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	local := writeFile(t, dir, "local.txt", []byte("local-bet.example\n"))
	cfg := DefaultConfig()
	cfg.Defaults = false
	cfg.CacheDir = cache
	cfg.Refresh = 0
	cfg.Sources = []Source{
		{Name: "remote", Category: "gambling", URL: ls.srv.URL + "/gambling.txt"},
		{Name: "local", Category: "gambling", Path: local},
	}
	m, err := NewManager(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if m.Current() == nil || m.Current().Len() != 0 {
		t.Fatal("before Start, Current must be an empty index")
	}
	var mu sync.Mutex
	var changes []string
	m.OnChange(func(ix *Index) {
		mu.Lock()
		changes = append(changes, ix.Revision())
		mu.Unlock()
	})
	// Start loads what is on this machine and never waits on the network:
	// the URL source is pending until the background fetch. The loop is
	// stopped at once so that the test drives the fetches itself.
	startCtx, stop := context.WithCancel(ctx)
	if err := m.Start(startCtx); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err == nil {
		t.Fatal("second Start must fail")
	}
	ix0 := m.Current()
	if !ix0.Lookup("local-bet.example").Has("gambling") || ix0.Lookup("casino-one.example").Has("gambling") {
		t.Fatalf("start-up index: %+v", ix0.Stats())
	}
	stop()
	<-m.Done()
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if st := sourceStatus(m, "remote"); st.State != "ok" || !st.Loaded() {
		t.Errorf("remote after the first fetch: %+v", st)
	}
	ix1 := m.Current()
	if !ix1.Lookup("www.casino-one.example").Has("gambling") || !ix1.Lookup("local-bet.example").Has("gambling") {
		t.Fatalf("initial index: %+v", ix1.Stats())
	}
	cached, err := os.ReadFile(filepath.Join(cache, "remote.list"))
	if err != nil || !bytes.Equal(cached, []byte("casino-one.example\ncasino-two.example\n")) {
		t.Fatalf("cached body = %q, %v", cached, err)
	}
	var meta cacheMeta
	if b, err := os.ReadFile(filepath.Join(cache, "remote.meta.json")); err != nil || json.Unmarshal(b, &meta) != nil || meta.ETag != `"v1"` {
		t.Fatalf("meta = %+v, %v", meta, err)
	}
	if h := ls.lastRequest(); h.Get("If-None-Match") != "" {
		t.Errorf("first fetch was conditional: %v", h)
	}

	// Unchanged: a conditional request, a 304, no rebuild.
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if h := ls.lastRequest(); h.Get("If-None-Match") != `"v1"` || h.Get("If-Modified-Since") != lastModified {
		t.Errorf("refresh not conditional: %v", h)
	}
	if m.Current() != ix1 {
		t.Error("304 rebuilt the index")
	}

	// Server error and then a garbage body: the last good copy stays.
	for _, mode := range []string{"500", "garbage"} {
		ls.set(mode, "", "")
		if err := m.Refresh(ctx); err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if got := m.Current(); got.Revision() != ix1.Revision() || !got.Lookup("casino-two.example").Has("gambling") {
			t.Errorf("%s replaced the good index: %v", mode, got.Stats())
		}
		if b, _ := os.ReadFile(filepath.Join(cache, "remote.list")); !bytes.Equal(b, cached) {
			t.Errorf("%s overwrote the cached copy: %q", mode, b)
		}
		leftovers, _ := filepath.Glob(filepath.Join(cache, ".*.part"))
		if len(leftovers) > 0 {
			t.Errorf("%s left temporary files: %v", mode, leftovers)
		}
	}

	// New content: swapped in, cached, announced.
	ls.set("", "casino-three.example\n", `"v2"`)
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	ix2 := m.Current()
	if ix2.Revision() == ix1.Revision() || !ix2.Lookup("casino-three.example").Has("gambling") || ix2.Lookup("casino-one.example").Has("gambling") {
		t.Fatalf("v2 not in force: %v", ix2.Stats())
	}
	mu.Lock()
	if len(changes) != 3 || changes[0] != ix0.Revision() || changes[1] != ix1.Revision() || changes[2] != ix2.Revision() {
		t.Errorf("OnChange calls = %v", changes)
	}
	mu.Unlock()

	// A local file change is picked up by the next tick.
	writeFile(t, dir, "local.txt", []byte("local-bet.example\nlocal-poker.example\n"))
	future := time.Now().Add(time.Hour)
	os.Chtimes(local, future, future) // same-second writes must still count as a change
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	ix3 := m.Current()
	if !ix3.Lookup("local-poker.example").Has("gambling") {
		t.Fatal("local change not loaded")
	}

	// A local source that breaks: keep everything as it was, say so.
	os.Remove(local)
	if err := m.Refresh(ctx); err == nil || !strings.Contains(err.Error(), "local") {
		t.Fatalf("broken local source: err = %v", err)
	}
	if m.Current() != ix3 {
		t.Fatal("index swapped although a source was lost")
	}
	if err := m.Reload(ctx); err == nil {
		t.Fatal("Reload with a lost source must fail")
	}

	// A restart while the URL is unreachable loads the cached copy at
	// once; the failed fetch then marks it stale ("cache"), not missing. A
	// download interrupted by a crash is cleaned up.
	ls.srv.Close()
	writeFile(t, cache, ".remote.123.part", []byte("half a downl"))
	writeFile(t, dir, "local.txt", []byte("local-bet.example\n"))
	m2, err := NewManager(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if stale, _ := filepath.Glob(filepath.Join(cache, ".*.part")); len(stale) > 0 {
		t.Errorf("stale temporary files kept: %v", stale)
	}
	ix := m2.Current()
	if !ix.Lookup("casino-three.example").Has("gambling") {
		t.Fatalf("cached copy not used: %+v", ix.Stats())
	}
	waitFor(t, "remote marked stale", func() bool { return sourceStatus(m2, "remote").State == "cache" })
	if st := sourceStatus(m2, "remote"); !st.Loaded() || !strings.Contains(st.Error, "connect") {
		t.Errorf("remote after a failed fetch: %+v", st)
	}
	if missing := m2.Missing(); len(missing) != 0 {
		t.Errorf("missing = %v; a stale copy is not missing", missing)
	}
}

func sourceStatus(m *Manager, name string) SourceStatus {
	for _, s := range m.Sources() {
		if s.Name == name {
			return s
		}
	}
	return SourceStatus{}
}

// waitFor polls cond until it holds or 30 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestManagerLoop runs the background refresh with a short period (set
// directly: Validate insists on at least a minute) and waits for the swap.
func TestManagerLoop(t *testing.T) {
	ls := newListServer(t, "first.example\n", `"1"`)
	cfg := DefaultConfig()
	cfg.Defaults = false
	cfg.CacheDir = t.TempDir()
	cfg.Sources = []Source{{Name: "r", Category: "drugs", URL: ls.srv.URL}}
	m, err := NewManager(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	m.cfg.Refresh = 20 * time.Millisecond
	swapped := make(chan *Index, 4)
	m.OnChange(func(ix *Index) { swapped <- ix })
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	<-swapped // the initial build
	ls.set("", "second.example\n", `"2"`)
	select {
	case ix := <-swapped:
		if !ix.Lookup("second.example").Has("drugs") || m.Current() != ix {
			t.Fatalf("loop swapped in %v", ix.Stats())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("refresh loop never swapped in the new list")
	}
	cancel()
	<-m.Done()
}

func TestNewManagerRejectsBadConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Sources = []Source{{Name: "x", Path: "/x"}}
	if _, err := NewManager(cfg, nil); err == nil || !strings.Contains(err.Error(), "sources[0]") {
		t.Fatalf("err = %v", err)
	}
}
