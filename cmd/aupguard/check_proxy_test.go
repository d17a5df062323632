package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// echoRequestPolicy blocks everything and puts the request part of its
// input, as JSON, in the reason: the block's event (from the proxy) and
// check's output then both show the input the policy was given.
const echoRequestPolicy = `package aupguard

decision := {"action": "block", "category": "echo", "rule": "echo", "cache_ttl_s": 0,
	"reason": json.marshal(input.request)}
`

// spoolEvents reads every event line in the spool under dataDir.
func spoolEvents(t *testing.T, dataDir string) []map[string]any {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dataDir, "events", "spool-*.jsonl"))
	var out []map[string]any
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil {
				out = append(out, m)
			}
		}
	}
	return out
}

// `aupguard check` and the proxy give the policy the same request for the
// same URL: the host normalised the same way (IDNA, case, trailing dot,
// IPv6 literal), the same port and the same path, so check explains the
// decision the proxy enforces. The proxy is sent the request line as
// written (a raw client), Unicode included.
func TestCheckAndProxyBuildTheSameInput(t *testing.T) {
	policyDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(policyDir, "main.rego"), []byte(echoRequestPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	cfgText := baseConfig(t, dataDir, fmt.Sprintf("policy: {dir: %s, builtin: false}\n", policyDir))
	cfgPath := filepath.Join(t.TempDir(), "check.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, cfgText)

	cases := []struct {
		name  string
		check string // check's argument
		line  string // the proxy's request line
		host  string // the Host header (Go's server wants it ASCII)
	}{
		{"IDNA", "http://bücher.example/", "GET http://bücher.example/ HTTP/1.1", "xn--bcher-kva.example"},
		{"upper case", "http://WWW.Example.COM/Path?Q=1", "GET http://WWW.Example.COM/Path?Q=1 HTTP/1.1", "WWW.Example.COM"},
		{"trailing dot", "http://example.com./a", "GET http://example.com./a HTTP/1.1", "example.com."},
		{"IPv6 literal and port", "http://[2001:DB8::1]:8080/x", "GET http://[2001:DB8::1]:8080/x HTTP/1.1", "[2001:DB8::1]:8080"},
		{"port and escaped path", "http://example.com:8080/a%20b?x=%20", "GET http://example.com:8080/a%20b?x=%20 HTTP/1.1", "example.com:8080"},
		{"CONNECT IDNA upper case", "BÜCHER.example:443", "CONNECT BÜCHER.example:443 HTTP/1.1", "xn--bcher-kva.example:443"},
		{"CONNECT IPv6", "[2001:DB8::1]:8443", "CONNECT [2001:DB8::1]:8443 HTTP/1.1", "[2001:DB8::1]:8443"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := runCmd(t, "", "check", "--config", cfgPath, tc.check)
			if res.code != exitBlock {
				t.Fatalf("check exit %d:\n%s%s", res.code, res.stdout, res.stderr)
			}
			want := decodeOne(t, res.stdout)["reason"]

			c, err := net.Dial("tcp", s.proxy)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "%s\r\nHost: %s\r\nConnection: close\r\n\r\n", tc.line, tc.host)
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			status, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || !strings.Contains(status, " 403 ") {
				t.Fatalf("proxy answered %q, %v", status, err)
			}
			deadline := time.Now().Add(30 * time.Second)
			var evs []map[string]any
			for evs = spoolEvents(t, dataDir); len(evs) <= i && time.Now().Before(deadline); evs = spoolEvents(t, dataDir) {
				time.Sleep(20 * time.Millisecond)
			}
			if len(evs) <= i {
				t.Fatalf("no event for the proxy's block (%d events)", len(evs))
			}
			if got := evs[i]["reason"]; got != want {
				t.Errorf("input.request:\n proxy %v\n check %v", got, want)
			}
		})
	}
}
