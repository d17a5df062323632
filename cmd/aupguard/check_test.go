package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aupguard/aupguard/internal/testutil"
)

type cmdResult struct {
	code           int
	stdout, stderr string
}

// runCmd runs one aupguard command in this process. check and lists stats
// without --config get one that reads the lists from the shared test data
// as a mirror: a test never fetches a publisher's URL.
func runCmd(t *testing.T, stdin string, args ...string) cmdResult {
	t.Helper()
	if len(args) > 0 && (args[0] == "check" || (args[0] == "lists" && len(args) > 1 && args[1] == "stats")) && !slices.Contains(args, "--config") {
		n := 1
		if args[0] == "lists" {
			n = 2
		}
		args = append(append(slices.Clone(args[:n]), "--config", mirrorConfig(t, "")), args[n:]...)
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return cmdResult{code, out.String(), errb.String()}
}

// mirrorConfig writes a config file whose lists come from the shared test
// data (lists.mirror), with a temporary data_dir and extra YAML appended.
func mirrorConfig(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "aupguard.yaml")
	body := fmt.Sprintf("data_dir: %s\nlists: {mirror: %s}\n%s", filepath.Join(dir, "data"), testutil.SharedData(t), extra)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func decodeOne(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, s)
	}
	return m
}

// The commands the decision-core issue names, with their verdicts.
func TestCheckExamples(t *testing.T) {
	cases := []struct {
		args     []string
		code     int
		action   string
		category string
		rule     string
	}{
		{[]string{"https://www.pokerstars.com/"}, exitBlock, "block", "gambling", "gambling"},
		{[]string{"--phase", "request", "--method", "POST", "https://www.facebook.com/share"}, exitBlock, "block", "social", "social_publish_unapproved"},
		{[]string{"--group", "approved-publishers", "--phase", "request", "--method", "POST", "https://www.facebook.com/share"}, exitOK, "allow", "", ""},
		{[]string{"https://www.bbc.co.uk/news"}, exitOK, "allow", "", ""},
		{[]string{"magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=film"}, exitBlock, "block", "piracy", ""},
		{[]string{"http://downloads.example.org/films/film.torrent"}, exitBlock, "block", "piracy", ""},
		{[]string{"--phase", "response", "--content-type", "application/x-bittorrent", "http://files.example.org/get?id=1"}, exitBlock, "block", "piracy", ""},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := runCmd(t, "", append([]string{"check"}, tc.args...)...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
			m := decodeOne(t, r.stdout)
			if m["action"] != tc.action {
				t.Fatalf("action %v, want %s: %s", m["action"], tc.action, r.stdout)
			}
			if tc.category != "" && m["category"] != tc.category {
				t.Fatalf("category %v, want %s", m["category"], tc.category)
			}
			if tc.rule != "" && m["rule"] != tc.rule {
				t.Fatalf("rule %v, want %s", m["rule"], tc.rule)
			}
			for _, k := range []string{"policy_revision", "lists_revision", "severity", "alert"} {
				if _, ok := m[k]; !ok {
					t.Fatalf("output lacks %q: %s", k, r.stdout)
				}
			}
			if tc.action == "block" && m["reason"] == "" {
				t.Fatal("a block without a reason")
			}
		})
	}
}

func TestCheckShowsMatchedCategoriesWithSources(t *testing.T) {
	r := runCmd(t, "", "check", "https://www.pokerstars.com/")
	m := decodeOne(t, r.stdout)
	cats, _ := m["categories"].(map[string]any)
	srcs, _ := cats["gambling"].([]any)
	if !slices.ContainsFunc(srcs, func(s any) bool { return s == "ut1:gambling" }) {
		t.Fatalf("categories = %v", m["categories"])
	}
}

// TestCheckSeedAlone: with every default source switched off, the seed
// alone blocks the best-known names, and says it is the seed.
func TestCheckSeedAlone(t *testing.T) {
	cfg := mirrorConfig(t, "")
	if err := os.WriteFile(cfg, []byte("data_dir: "+t.TempDir()+"\nlists: {defaults: false}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for url, cat := range map[string]string{"https://www.bet365.com/": "gambling", "https://www.pornhub.com/": "adult", "https://thepiratebay.org/": "piracy"} {
		r := runCmd(t, "", "check", "--config", cfg, url)
		m := decodeOne(t, r.stdout)
		srcs, _ := m["categories"].(map[string]any)[cat].([]any)
		if r.code != exitBlock || m["category"] != cat || len(srcs) != 1 || srcs[0] != "aupguard-seed" {
			t.Errorf("%s: exit %d, %s", url, r.code, r.stdout)
		}
	}
}

// TestListsStatsMirror: with only lists.mirror set, every default source
// loads from the mirror, 500k+ names, each with its origin and licence.
func TestListsStatsMirror(t *testing.T) {
	r := runCmd(t, "", "lists", "stats")
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, w := range []string{"shadowwhisperer-adult", "acma-gambling", "nextdns-social", "aupguard-seed", "CC-BY-SA-4.0", "UT1 blacklists, Université Toulouse Capitole", filepath.Join(testutil.SharedData(t), "lists", "tiuxo-porn.txt.gz")} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("stats lack %q", w)
		}
	}
	var names int
	if _, err := fmt.Sscanf(r.stdout[strings.LastIndex(r.stdout, "lists revision"):], "lists revision %s %d distinct names", new(string), &names); err != nil || names < 500_000 {
		t.Errorf("names = %d (%v)", names, err)
	}
	if strings.Contains(r.stdout, "missing") || strings.Contains(r.stdout, "pending") {
		t.Errorf("a source did not load:\n%s", r.stdout)
	}
}

func TestCheckManyKeepsOrderAndFlagsBadLines(t *testing.T) {
	in := "https://www.pokerstars.com/\n# comment\n\nwww.bbc.co.uk\nhttp://exa mple.com/\nhttps://www.bbc.co.uk/news\n"
	r := runCmd(t, in, "check", "-")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines:\n%s", len(lines), r.stdout)
	}
	want := []struct{ input, action string }{
		{"https://www.pokerstars.com/", "block"},
		{"www.bbc.co.uk", "allow"},
		{"http://exa mple.com/", ""},
		{"https://www.bbc.co.uk/news", "allow"},
	}
	for i, w := range want {
		m := decodeOne(t, lines[i])
		if m["input"] != w.input {
			t.Fatalf("line %d is %v, want %s (order lost)", i, m["input"], w.input)
		}
		if w.action == "" {
			if m["error"] == nil {
				t.Fatalf("line %d: bad input without an error: %s", i, lines[i])
			}
			continue
		}
		if m["action"] != w.action {
			t.Fatalf("line %d: %v", i, lines[i])
		}
	}
	if r.code != exitUsage || !strings.Contains(r.stderr, "4 checked, 1 blocked, 1 invalid") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestCheckManyHandlesALargeList(t *testing.T) {
	if testing.Short() {
		t.Skip("large list in -short mode")
	}
	var b strings.Builder
	const n = 20000
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "https://host%d.example.org/page%d\n", i, i)
	}
	r := runCmd(t, b.String(), "check", "-")
	if got := strings.Count(r.stdout, "\n"); got != n {
		t.Fatalf("%d output lines for %d inputs", got, n)
	}
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
}

func TestCheckUsageAndConfigErrors(t *testing.T) {
	if r := runCmd(t, "", "check"); r.code != exitUsage {
		t.Fatalf("no target: exit %d", r.code)
	}
	if r := runCmd(t, "", "check", "--phase", "sideways", "https://a.example/"); r.code != exitUsage {
		t.Fatalf("bad phase: exit %d", r.code)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("cache:\n  sise: 1\n"), 0o644)
	r := runCmd(t, "", "check", "--config", bad, "https://a.example/")
	if r.code != exitUsage || !strings.Contains(r.stderr, "bad.yaml:2") {
		t.Fatalf("bad config: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestPolicyTestBuiltin(t *testing.T) {
	r := runCmd(t, "", "policy", "test")
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	last := strings.TrimSpace(r.stdout[strings.LastIndex(strings.TrimSpace(r.stdout), "\n")+1:])
	var passed, failed int
	if _, err := fmt.Sscanf(last, "%d passed, %d failed", &passed, &failed); err != nil || passed == 0 || failed != 0 {
		t.Fatalf("last line %q", last)
	}
}

func TestPolicyTestReportsFailuresWithLocation(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "extra_test.rego"), []byte(`package aupguard_extra_test

import data.aupguard

test_bbc_is_blocked if {
	aupguard.decision.action == "block" with input as {"categories": {}, "request": {"host": "www.bbc.co.uk"}}
}
`), 0o644)
	r := runCmd(t, "", "policy", "test", dir)
	if r.code != exitBlock {
		t.Fatalf("exit %d\n%s", r.code, r.stdout)
	}
	if !strings.Contains(r.stdout, "FAIL") || !strings.Contains(r.stdout, "extra_test.rego:5") || !strings.Contains(r.stdout, ", 1 failed") {
		t.Fatalf("output:\n%s", r.stdout)
	}
}

func TestPolicyTestBrokenRegoNamesFileAndLine(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "broken.rego"), []byte("package aupguard\n\nbroken if {\n"), 0o644)
	r := runCmd(t, "", "policy", "test", dir)
	if r.code != exitUsage || !strings.Contains(r.stderr, "broken.rego:") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestListsStats(t *testing.T) {
	r := runCmd(t, "", "lists", "stats")
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, w := range []string{"ut1:gambling", "sinfonietta-pornography", "blocklistproject-piracy", "lists revision"} {
		if !strings.Contains(r.stdout, w) {
			t.Fatalf("stats lack %q:\n%s", w, r.stdout)
		}
	}
}

// TestCAInitAndExport: ca init writes the CA under data_dir/ca (key 0600),
// refuses to overwrite it without --force, and ca export prints it as PEM
// or DER.
func TestCAInitAndExport(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "aupguard.yaml")
	os.WriteFile(cfg, []byte("data_dir: "+dir+"\nintercept: {organisation: Example Training Ltd}\n"), 0o644)
	r := runCmd(t, "", "ca", "init", "--config", cfg)
	if r.code != exitOK || !strings.Contains(r.stdout, "Example Training Ltd") {
		t.Fatalf("ca init: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if st, err := os.Stat(filepath.Join(dir, "ca", "ca.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key: %v %v", st.Mode(), err)
	}
	if r := runCmd(t, "", "ca", "init", "--config", cfg); r.code != exitUsage || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("second init: exit %d %s", r.code, r.stderr)
	}
	pemOut := runCmd(t, "", "ca", "export", "--config", cfg)
	derOut := runCmd(t, "", "ca", "export", "--config", cfg, "--der")
	if pemOut.code != exitOK || !strings.HasPrefix(pemOut.stdout, "-----BEGIN CERTIFICATE-----") || derOut.code != exitOK || derOut.stdout[0] != 0x30 {
		t.Fatalf("export: %d %q / %d", pemOut.code, pemOut.stdout[:40], derOut.code)
	}
	if r := runCmd(t, "", "ca", "init", "--config", cfg, "--force"); r.code != exitOK {
		t.Fatalf("forced init: %d %s", r.code, r.stderr)
	}
	if again := runCmd(t, "", "ca", "export", "--config", cfg); again.stdout == pemOut.stdout {
		t.Fatal("--force kept the old CA")
	}
}

// TestUsersCommand: users add reads the password from stdin, list shows
// the account and its role but never a hash, remove deletes it.
func TestUsersCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "aupguard.yaml")
	os.WriteFile(cfg, []byte("data_dir: "+dir+"\n"), 0o644)
	if r := runCmd(t, "correct horse battery\n", "users", "add", "--role", "safeguarding", "--config", cfg, "dsl"); r.code != exitOK {
		t.Fatalf("add: %d %s", r.code, r.stderr)
	}
	if r := runCmd(t, "short\n", "users", "add", "--role", "viewer", "--config", cfg, "viewer1"); r.code != exitUsage || !strings.Contains(r.stderr, "12 to 72") {
		t.Fatalf("weak password: %d %s", r.code, r.stderr)
	}
	r := runCmd(t, "", "users", "list", "--config", cfg)
	if r.code != exitOK || !strings.Contains(r.stdout, "dsl") || !strings.Contains(r.stdout, "safeguarding") || strings.Contains(r.stdout, "$2a$") {
		t.Fatalf("list: %d %q", r.code, r.stdout)
	}
	if r := runCmd(t, "", "users", "remove", "--config", cfg, "dsl"); r.code != exitOK {
		t.Fatalf("remove: %d %s", r.code, r.stderr)
	}
	if r := runCmd(t, "", "users", "add", "--config", cfg, "norole"); r.code != exitUsage {
		t.Fatalf("add without a role: %d", r.code)
	}
}
