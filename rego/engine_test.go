package rego

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aupguard/aupguard/policies"
	"github.com/aupguard/aupguard/verdict"
)

const goodPolicy = `package aupguard

default decision := {"action": "allow", "rule": "default_allow", "severity": "info", "alert": false}

decision := {"action": "block", "category": "gambling", "rule": "gambling",
	"reason": "Gambling is not allowed.", "severity": "medium", "alert": true, "cache_ttl_s": 60} if {
	input.categories.gambling
}
`

const goodTest = `package aupguard_test

import data.aupguard

test_gambling_blocked if {
	aupguard.decision.action == "block" with input as {"categories": {"gambling": ["x"]}}
}

test_default_allow if {
	aupguard.decision.action == "allow" with input as {"categories": {}}
}
`

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func newEngine(t *testing.T, files map[string]string) (*Engine, string) {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, files)
	e, err := New(context.Background(), Options{Dir: dir, Debounce: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e, dir
}

func TestEvaluate(t *testing.T) {
	e, _ := newEngine(t, map[string]string{"main.rego": goodPolicy, "main_test.rego": goodTest})
	p := e.Current()
	d, err := p.Evaluate(context.Background(), &verdict.Input{Categories: map[string][]string{"gambling": {"ut1:gambling"}}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Action != verdict.ActionBlock || d.Rule != "gambling" || d.Severity != verdict.SeverityMedium || !d.Alert || d.CacheTTL != time.Minute {
		t.Fatalf("decision = %+v", d)
	}
	if d.PolicyRevision != p.Revision() || len(p.Revision()) != 12 {
		t.Fatalf("revision %q vs %q", d.PolicyRevision, p.Revision())
	}
	d, err = p.Evaluate(context.Background(), &verdict.Input{})
	if err != nil || d.Action != verdict.ActionAllow || d.CacheTTL >= 0 {
		t.Fatalf("allow decision = %+v, %v (CacheTTL should be unset: negative)", d, err)
	}
}

func TestReloadRejectsBrokenPolicyWithFileAndLine(t *testing.T) {
	e, dir := newEngine(t, map[string]string{"main.rego": goodPolicy, "main_test.rego": goodTest})
	before := e.Current().Revision()
	writeFiles(t, dir, map[string]string{"extra.rego": "package aupguard\n\nx := {\n"})
	changed, err := e.Reload(context.Background(), "test")
	if err == nil || changed {
		t.Fatalf("broken policy accepted: changed=%v err=%v", changed, err)
	}
	if !strings.Contains(err.Error(), "extra.rego:") {
		t.Fatalf("error does not name the file: %v", err)
	}
	if e.Current().Revision() != before {
		t.Fatalf("revision changed to %s after a rejected reload", e.Current().Revision())
	}
	d, err := e.Current().Evaluate(context.Background(), &verdict.Input{Categories: map[string][]string{"gambling": {"x"}}})
	if err != nil || d.Action != verdict.ActionBlock {
		t.Fatalf("previous revision no longer answers: %+v %v", d, err)
	}
	h := e.History()
	if last := h[len(h)-1]; last.Accepted || last.Error == "" || last.Previous != before {
		t.Fatalf("audit trail = %+v", last)
	}
}

func TestReloadRejectsCompileErrorWithLine(t *testing.T) {
	e, dir := newEngine(t, map[string]string{"main.rego": goodPolicy})
	writeFiles(t, dir, map[string]string{"bad.rego": "package aupguard\n\ny if {\n\tundefined_function(1)\n}\n"})
	_, err := e.Reload(context.Background(), "test")
	if err == nil || !strings.Contains(err.Error(), "bad.rego:4") {
		t.Fatalf("want an error at bad.rego:4, got %v", err)
	}
}

func TestReloadRejectsFailingPolicyTests(t *testing.T) {
	e, dir := newEngine(t, map[string]string{"main.rego": goodPolicy, "main_test.rego": goodTest})
	before := e.Current().Revision()
	// A rule change that compiles but breaks the admin's own tests.
	writeFiles(t, dir, map[string]string{"main.rego": strings.Replace(goodPolicy, `"action": "block"`, `"action": "allow"`, 1)})
	_, err := e.Reload(context.Background(), "test")
	if err == nil || !strings.Contains(err.Error(), "test_gambling_blocked") || !strings.Contains(err.Error(), "main_test.rego:") {
		t.Fatalf("want the failing test named with its file, got %v", err)
	}
	if e.Current().Revision() != before {
		t.Fatal("a policy whose tests fail was activated")
	}
}

func TestReloadActivatesAndNotifies(t *testing.T) {
	e, dir := newEngine(t, map[string]string{"main.rego": goodPolicy})
	var got []string
	e.OnActivate(func(p *Policy) { got = append(got, p.Revision()) })
	changed, err := e.Reload(context.Background(), "test")
	if err != nil || changed {
		t.Fatalf("unchanged files: changed=%v err=%v", changed, err)
	}
	writeFiles(t, dir, map[string]string{"main.rego": strings.Replace(goodPolicy, "gambling is", "Gambling is", 1) + "\n# edited\n"})
	changed, err = e.Reload(context.Background(), "test")
	if err != nil || !changed || len(got) != 1 || got[0] != e.Current().Revision() {
		t.Fatalf("changed=%v err=%v notified=%v", changed, err, got)
	}
}

func TestWatchReloadsOnFileChange(t *testing.T) {
	e, dir := newEngine(t, map[string]string{"main.rego": goodPolicy})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Watch(ctx) }()
	defer func() { cancel(); <-done }()
	activated := make(chan string, 4)
	e.OnActivate(func(p *Policy) { activated <- p.Revision() })
	before := e.Current().Revision()
	// The watcher registers asynchronously: rewrite the file (each time
	// with new content) until it has seen a change, as a one-off write
	// made before it registers would never be noticed. Each wait outlasts
	// the debounce, which every write restarts, and grows.
	deadline := time.Now().Add(20 * time.Second)
	wait := 2 * e.opts.Debounce
	for i := 0; ; i++ {
		writeFiles(t, dir, map[string]string{"main.rego": goodPolicy + fmt.Sprintf("\n# watched edit %d\n", i)})
		select {
		case rev := <-activated:
			if rev == before {
				t.Fatal("same revision activated")
			}
			return
		case <-time.After(wait):
			wait *= 2
		}
		if time.Now().After(deadline) {
			t.Fatal("watcher did not reload after a file change")
		}
	}
}

func TestOverlayReplacesBuiltinFile(t *testing.T) {
	bdir := t.TempDir()
	writeFiles(t, bdir, map[string]string{"main.rego": goodPolicy, "main_test.rego": goodTest})
	builtin := os.DirFS(bdir)
	odir := t.TempDir()
	// Same name: replaces. The built-in test then fails against the
	// replacement, so the overlay must bring its own test file too.
	writeFiles(t, odir, map[string]string{
		"main.rego":      strings.Replace(goodPolicy, `input.categories.gambling`, `input.categories.betting`, 1),
		"main_test.rego": strings.ReplaceAll(goodTest, `"gambling"`, `"betting"`),
	})
	e, err := New(context.Background(), Options{Builtin: builtin, Dir: odir})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := e.Current().Evaluate(context.Background(), &verdict.Input{Categories: map[string][]string{"betting": {"x"}}})
	if d.Action != verdict.ActionBlock {
		t.Fatalf("overlay file did not replace the built-in one: %+v", d)
	}
	if got := e.Current().Files(); !slices.Equal(got, []string{"main.rego", "main_test.rego"}) {
		t.Fatalf("files = %v", got)
	}
}

func TestEvaluationErrorIsReported(t *testing.T) {
	// Two complete definitions that disagree: a conflict error at
	// evaluation time, which must surface as an error (the decider then
	// fails closed), never as an allow.
	e, _ := newEngine(t, map[string]string{"main.rego": `package aupguard

decision := {"action": "allow"} if input.request.host
decision := {"action": "block"} if input.request.method
`})
	_, err := e.Current().Evaluate(context.Background(), &verdict.Input{Request: verdict.Request{Host: "a.example", Method: "GET"}})
	if err == nil {
		t.Fatal("conflicting decision evaluated without error")
	}
	_, err = e.Current().Evaluate(context.Background(), &verdict.Input{})
	if err == nil || !strings.Contains(err.Error(), "undefined") {
		t.Fatalf("undefined decision: %v", err)
	}
}

func TestBadDecisionShapeIsAnError(t *testing.T) {
	e, _ := newEngine(t, map[string]string{"main.rego": `package aupguard

decision := {"action": "maybe", "severity": "extreme"}
`})
	_, err := e.Current().Evaluate(context.Background(), &verdict.Input{})
	if err == nil || !strings.Contains(err.Error(), "maybe") || !strings.Contains(err.Error(), "extreme") {
		t.Fatalf("want both problems named, got %v", err)
	}
}

func TestMissingDecisionRuleRejected(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"main.rego": "package aupguard\n\nallow := true\n"})
	_, err := New(context.Background(), Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "data.aupguard.decision") {
		t.Fatalf("want a missing-rule error, got %v", err)
	}
}

func TestInputPaths(t *testing.T) {
	e, _ := newEngine(t, map[string]string{"main.rego": `package aupguard

import input.request as req

decision := {"action": "block"} if {
	req.method == "POST"
	some c in object.keys(input.categories)
	c == "social"
}
default decision := {"action": "allow"}
`})
	got := e.Current().InputPaths()
	var s []string
	for _, p := range got {
		s = append(s, strings.Join(p, "."))
	}
	if !slices.Equal(s, []string{"categories", "request.method"}) {
		t.Fatalf("input paths = %v", s)
	}
	e2, _ := newEngine(t, map[string]string{"main.rego": "package aupguard\n\ndecision := {\"action\": \"allow\", \"x\": input}\n"})
	if e2.Current().InputPaths() != nil {
		t.Fatal("a policy reading the whole input must report nil (all paths)")
	}
}

func TestOverlayApprovalsFileKeepsOtherBuiltinData(t *testing.T) {
	// An admin grants approvals by supplying approvals.yaml alone; the
	// built-in groups, platforms and schedule stay in force.
	odir := t.TempDir()
	writeFiles(t, odir, map[string]string{"approvals.yaml": "aupguard:\n  approvals:\n    - user: jsmith\n      platforms: [facebook]\n      expires: \"2099-12-31\"\n"})
	e, err := New(context.Background(), Options{Builtin: policiesFS(t), Dir: odir})
	if err != nil {
		t.Fatal(err)
	}
	post := func(user string, groups ...string) verdict.Decision {
		d, err := e.Current().Evaluate(context.Background(), &verdict.Input{
			Phase: verdict.PhaseRequest, Client: verdict.Client{User: user, Groups: groups},
			Request:    verdict.Request{Method: "POST", Host: "www.facebook.com", Path: "/share", ContentLength: 10},
			Categories: map[string][]string{"social": {"test"}},
			Time:       time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC),
		})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := post("jsmith", "learners"); d.Action != verdict.ActionAllow {
		t.Fatalf("approved user: %+v", d)
	}
	if d := post("other", "approved-publishers"); d.Action != verdict.ActionBlock {
		t.Fatalf("the built-in example approval should be replaced: %+v", d)
	}
	if d := post("staffer", "staff"); d.Action != verdict.ActionAllow {
		t.Fatalf("built-in group data lost: %+v", d)
	}
}

func policiesFS(t *testing.T) fs.FS {
	t.Helper()
	return policies.FS
}
