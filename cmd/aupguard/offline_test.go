package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aupguard/aupguard/categories"
	"github.com/aupguard/aupguard/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveBinary()
	os.Exit(code)
}

// aupguardBinary is the binary under test, built once per run, for the
// tests that run it as a process of its own (environment, signals).
func aupguardBinary(t *testing.T) string { return testutil.AupguardBinary(t) }

// blackHole accepts connections and never answers, like a network that
// drops packets: a fetch through it waits until its timeout.
func blackHole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestServeOfflineStartsOnTheSeed: a first start with nothing cached, no
// mirror, and every publisher behind a network that never answers (the
// process's HTTPS proxy is a black hole, so no real URL is ever tried).
// serve listens before any fetch has given up, blocks the best-known
// names from its seed, says it is degraded and which sources it could not
// fetch — one WARN each — and stops cleanly on SIGTERM.
func TestServeOfflineStartsOnTheSeed(t *testing.T) {
	bin := aupguardBinary(t)
	originPort := newOrigin(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "origin") })
	dir := t.TempDir()
	cfg := filepath.Join(dir, "aupguard.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`data_dir: %s
log: {level: info}
admin: {listen: "127.0.0.1:0"}
console: {listen: ""}
proxy: {listen: "127.0.0.1:0", allow_destinations: [127.0.0.0/8]}
dns: {enabled: false}
lists: {fetch_timeout: 3s}
hosts:
  www.bet365.com: [127.0.0.1]
  www.pornhub.com: [127.0.0.1]
  thepiratebay.org: [127.0.0.1]
  www.bbc.co.uk: [127.0.0.1]
`, filepath.Join(dir, "data"))), 0o644)
	hole := "http://" + blackHole(t)
	p := startBinary(t, bin, cfg, "HTTPS_PROXY="+hole, "HTTP_PROXY="+hole, "https_proxy="+hole, "http_proxy="+hole, "NO_PROXY=", "no_proxy=")
	logs := p.logs
	if strings.Contains(logs.String(), "list source unavailable") {
		t.Fatalf("serve waited for a fetch to fail before listening:\n%s", logs.String())
	}
	proxyAddr, adminAddr := p.proxy, p.admin

	pu, _ := url.Parse("http://" + proxyAddr)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}, Timeout: 30 * time.Second}
	for host, want := range map[string]int{"www.bet365.com": 403, "www.pornhub.com": 403, "thepiratebay.org": 403, "www.bbc.co.uk": 200} {
		resp, err := client.Get("http://" + host + ":" + originPort + "/")
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: status %d, want %d", host, resp.StatusCode, want)
		}
	}

	resp, err := http.Get("http://" + adminAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	n := len(categories.DefaultSources())
	if resp.StatusCode != 200 || !strings.Contains(string(body), fmt.Sprintf("degraded: %d list source(s) unavailable", n)) {
		t.Errorf("/readyz %d %q", resp.StatusCode, body)
	}

	// After the fetch timeout every source is reported, once, with why.
	deadline := time.Now().Add(60 * time.Second)
	for strings.Count(logs.String(), `msg="list source unavailable"`) < n && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	out := logs.String()
	for _, d := range categories.DefaultSources() {
		re := regexp.MustCompile(`level=WARN msg="list source unavailable" source=` + regexp.QuoteMeta(d.Name) + ` state=missing .*err=.*(Timeout|deadline|timeout)`)
		if c := len(re.FindAllString(out, -1)); c != 1 {
			t.Errorf("%s: %d WARN lines naming it and why, want 1", d.Name, c)
		}
	}
	resp, err = http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, w := range []string{fmt.Sprintf("aupguard_lists_sources_missing %d", n), `aupguard_lists_source_up{source="ut1",state="missing"} 0`, `aupguard_lists_source_up{source="aupguard-seed",state="ok"} 1`} {
		if !strings.Contains(string(body), w) {
			t.Errorf("/metrics lacks %q", w)
		}
	}

	p.signal(t, syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.err != nil {
			t.Errorf("serve exited with %v:\n%s", p.err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
}
