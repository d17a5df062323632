package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"github.com/aupguard/aupguard/internal/testutil"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aupguard/aupguard/events"
)

// served is one `aupguard serve` run in this process, as main would run
// it: cancelling its context is what SIGTERM does.
type served struct {
	cancel context.CancelFunc
	done   chan int
	proxy  string
	admin  string
	logs   *syncBuffer
}

// syncBuffer collects output written concurrently.
type syncBuffer = testutil.SyncBuffer

var servingRe = regexp.MustCompile(`msg="aupguard serving" proxy=(\S+) .*admin=(\S+)`)

func startServe(t *testing.T, cfgYAML string) *served {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "aupguard.yaml")
	if err := os.WriteFile(cfg, []byte(cfgYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{cancel: cancel, done: make(chan int, 1), logs: &syncBuffer{}}
	pr, pw := io.Pipe()
	go func() {
		s.done <- cmdServe(ctx, []string{"--config", cfg, "--drain", "20s"}, io.MultiWriter(pw, s.logs))
		pw.Close()
	}()
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := servingRe.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1:]
			}
		}
	}()
	select {
	case m := <-found:
		s.proxy, s.admin = m[0], m[1]
	case code := <-s.done:
		t.Fatalf("serve exited %d before serving:\n%s", code, s.logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not start:\n%s", s.logs.String())
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *served) stop(t *testing.T) int {
	t.Helper()
	s.cancel()
	select {
	case code := <-s.done:
		s.done <- code
		return code
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not stop")
		return -1
	}
}

func (s *served) client() *http.Client {
	pu, _ := url.Parse("http://" + s.proxy)
	return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}, Timeout: 30 * time.Second}
}

// baseConfig is a serve configuration on loopback, with the lists read
// from the shared test data as a mirror.
func baseConfig(t *testing.T, dataDir string, extra string) string {
	return fmt.Sprintf(`data_dir: %s
lists: {mirror: %s}
log: {level: info}
admin: {listen: "127.0.0.1:0"}
console: {listen: ""}
proxy:
  listen: "127.0.0.1:0"
  allow_destinations: [127.0.0.0/8]
dns: {enabled: false}
hosts:
  www.pokerstars.com: [127.0.0.1]
  slow.origin.example: [127.0.0.1]
%s`, dataDir, testutil.SharedData(t), extra)
}

// SIGTERM with a request in flight: the request completes, then serve
// exits cleanly.
func TestServeDrainsRequestInFlightOnSIGTERM(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{})
	origin := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		io.WriteString(w, "slow body, complete")
	})
	s := startServe(t, baseConfig(t, t.TempDir(), ""))
	type result struct {
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := s.client().Get("http://slow.origin.example:" + origin + "/")
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		res <- result{string(b), err}
	}()
	<-arrived
	s.cancel() // what SIGTERM does in main
	// Release the origin only once the drain is under way (the proxy no
	// longer accepts), so the request is in flight during shutdown, not
	// finished before it begins.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.proxy, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the proxy still accepts connections after the cancel")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	r := <-res
	if r.err != nil || r.body != "slow body, complete" {
		t.Fatalf("in-flight request: %q, %v", r.body, r.err)
	}
	if code := s.stop(t); code != exitOK {
		t.Fatalf("serve exit %d:\n%s", code, s.logs.String())
	}
}

// The webhook is down while learners are blocked; aupguard restarts; the
// webhook comes up: every event arrives exactly once, by ID.
func TestServeWebhookDownThenUpAcrossRestart(t *testing.T) {
	secret := "test-secret"
	var mu sync.Mutex
	up := false
	seen := map[string]int{}
	hook := newOriginServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if !up {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		if !events.VerifySignature([]byte(secret), body, r.Header.Get(events.HeaderSignature)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var evs []events.Event
		if err := json.Unmarshal(body, &evs); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, e := range evs {
			seen[e.ID]++
		}
	})
	dataDir := t.TempDir()
	cfg := baseConfig(t, dataDir, fmt.Sprintf(`events:
  webhook: {url: "%s/events", secret: %s, backoff_min: 50ms, backoff_max: 200ms}
`, hook, secret))

	var refs []string
	block := func(s *served, n int) {
		for i := 0; i < n; i++ {
			resp, err := s.client().Get(fmt.Sprintf("http://www.pokerstars.com/page%d", i))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("gambling GET: %d", resp.StatusCode)
			}
			refs = append(refs, resp.Header.Get("X-Aupguard-Reference"))
		}
	}
	s1 := startServe(t, cfg)
	block(s1, 5)
	if code := s1.stop(t); code != exitOK {
		t.Fatalf("first run exit %d:\n%s", code, s1.logs.String())
	}
	// Each block page's reference is an event in the spool on disk.
	spooled := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(dataDir, "events", "*.jsonl"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var e events.Event
			if line != "" && json.Unmarshal([]byte(line), &e) == nil {
				spooled[e.ID] = true
			}
		}
	}
	for _, ref := range refs {
		if !spooled[ref] {
			t.Fatalf("reference %s is not in the spool (%d spooled)", ref, len(spooled))
		}
	}
	s2 := startServe(t, cfg)
	block(s2, 3)
	mu.Lock()
	up = true
	mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n >= len(refs) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	s2.stop(t)
	mu.Lock()
	defer mu.Unlock()
	for _, ref := range refs {
		if ref == "" {
			t.Fatal("block page without a reference header")
		}
		if seen[ref] != 1 {
			t.Fatalf("event %s delivered %d times (all: %v)", ref, seen[ref], seen)
		}
	}
	if len(seen) != len(refs) {
		t.Fatalf("%d events delivered, %d blocks made: %v", len(seen), len(refs), seen)
	}
}

// The admin listener answers health, readiness, metrics and the policy API.
func TestServeAdminEndpoints(t *testing.T) {
	s := startServe(t, baseConfig(t, t.TempDir(), ""))
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + s.admin + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != 200 || !strings.Contains(body, "ready") {
		t.Fatalf("/readyz %d %q", code, body)
	}
	// One decision so the counters move.
	resp, err := s.client().Get("http://www.pokerstars.com/")
	if err == nil {
		resp.Body.Close()
	}
	code, body := get("/metrics")
	if code != 200 || !strings.Contains(body, "aupguard_decider_decisions") || !strings.Contains(body, "aupguard_proxy_blocked_total 1") || !strings.Contains(body, "aupguard_revision_info") {
		t.Fatalf("/metrics %d:\n%s", code, body)
	}
	// Out of the box the API is locked: no token file, no admin account.
	code, body = get("/api/policy")
	if code != http.StatusUnauthorized || !strings.Contains(body, "aupguard users add --role admin") {
		t.Fatalf("/api/policy with no credential configured: %d: %s; want 401 saying how to unlock it", code, body)
	}
}

// With a token file, /api/* answers a bearer of the token and nobody
// else; the probes and /metrics stay open.
func TestServeAdminAPIToken(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(tokenFile, []byte(testAdminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(baseConfig(t, dir, ""), `admin: {listen: "127.0.0.1:0"}`,
		fmt.Sprintf(`admin: {listen: "127.0.0.1:0", auth: {token_file: %q}}`, tokenFile), 1)
	s := startServe(t, cfg)
	get := func(path, token string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.admin+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/api/policy", testAdminToken, 200},
		{"/api/stats", testAdminToken, 200},
		{"/api/policy", "", 401},
		{"/api/policy", testAdminToken + "x", 401},
		{"/healthz", "", 200},
		{"/readyz", "", 200},
		{"/metrics", "", 200},
	} {
		if got := get(c.path, c.token); got != c.want {
			t.Errorf("GET %s (token %q): %d, want %d", c.path, c.token, got, c.want)
		}
	}
}
