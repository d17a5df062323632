package rego

import (
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/aupguard/aupguard/verdict"
)

func TestInputValue(t *testing.T) {
	loc := time.FixedZone("UTC+1", 3600)
	at := time.Date(2026, 11, 25, 23, 30, 0, 0, time.UTC) // Thursday 00:30 in loc
	for _, tc := range []struct {
		in   verdict.Input
		want string
	}{{
		in: verdict.Input{
			Source: verdict.SourceProxy, Phase: verdict.PhaseResponse,
			Client: verdict.Client{IP: "10.1.2.3", User: "jsmith", Groups: []string{"learners", "approved-publishers"}},
			Request: verdict.Request{Method: "POST", Scheme: "https", Host: "www.facebook.com", Port: 8443, Path: "/share",
				Query: "a=1", ContentType: "text/plain", ContentLength: 12},
			Response:   &verdict.Response{Status: 200, ContentType: "application/x-bittorrent", Filename: "a.torrent"},
			Categories: map[string][]string{"social": {"ut1:social_networks", "custom"}, "games": {"ut1:games"}},
			Time:       at,
		},
		want: `{
			"source": "proxy", "phase": "response",
			"client": {"ip": "10.1.2.3", "user": "jsmith", "groups": ["learners", "approved-publishers"]},
			"request": {"method": "POST", "scheme": "https", "host": "www.facebook.com", "port": 8443, "path": "/share",
				"query": "a=1", "content_type": "text/plain", "content_length": 12},
			"response": {"status": 200, "content_type": "application/x-bittorrent", "filename": "a.torrent"},
			"categories": {"social": ["ut1:social_networks", "custom"], "games": ["ut1:games"]},
			"time": {"weekday": "thursday", "hour": 0, "date": "2026-11-26"}
		}`,
	}, {
		// Unknown fields are absent, never null; a length without a method is unknown.
		in: verdict.Input{
			Source: verdict.SourceDNS, Phase: verdict.PhaseQuery, Client: verdict.Client{Groups: []string{"learners"}},
			Request: verdict.Request{Host: "example.org", ContentLength: 5},
			DNS:     &verdict.DNSQuestion{QName: "example.org", QType: "AAAA"},
			Time:    at,
		},
		want: `{
			"source": "dns", "phase": "query", "client": {"groups": ["learners"]},
			"request": {"host": "example.org"}, "dns": {"qname": "example.org", "qtype": "AAAA"},
			"categories": {}, "time": {"weekday": "thursday", "hour": 0, "date": "2026-11-26"}
		}`,
	}} {
		// Twice: the second time shared terms (names, the time) are reused.
		b := newInputBuilder(loc)
		for range 2 {
			got := b.value(&tc.in)
			if want := ast.MustParseTerm(tc.want).Value; ast.Compare(got, want) != 0 {
				t.Errorf("input =\n%v\nwant\n%v", got, want)
			}
		}
	}
}

func TestParseDecisionTypes(t *testing.T) {
	d, err := parseDecision(ast.MustParseTerm(`{"action": "block", "category": "x", "rule": "r", "reason": null,
		"severity": "high", "alert": true, "cache_ttl_s": 1.5, "safesearch": "strict"}`).Value)
	if err != nil || d.Action != verdict.ActionBlock || d.Rule != "r" || d.Reason != "" || !d.Alert ||
		d.CacheTTL != 1500*time.Millisecond || d.SafeSearch != "strict" {
		t.Fatalf("decision = %+v, %v", d, err)
	}
	_, err = parseDecision(ast.MustParseTerm(`{"action": "allow", "rule": 3, "alert": "yes", "cache_ttl_s": -1}`).Value)
	for _, want := range []string{"decision.rule is number", "decision.alert is string", "cache_ttl_s -1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	if _, err := parseDecision(ast.MustParseTerm(`["allow"]`).Value); err == nil {
		t.Error("an array decision accepted")
	}
}

// The input document has exactly the leaves of verdict's table
// (verdict.InputPaths), the one the cache key is built from: a field added
// to the document and not to the table (or the other way round) fails
// here, before a policy could read a field the key leaves out.
func TestInputLeavesAreVerdictsTable(t *testing.T) {
	in := verdict.Input{
		Source: verdict.SourceProxy, Phase: verdict.PhaseResponse,
		Client: verdict.Client{IP: "10.1.2.3", User: "jsmith", Groups: []string{"learners"}},
		Request: verdict.Request{Method: "POST", Scheme: "https", Host: "a.example", Port: 443, Path: "/p",
			Query: "q=1", ContentType: "text/plain", ContentLength: 12},
		Response:   &verdict.Response{Status: 200, ContentType: "text/html", Filename: "a.txt"},
		DNS:        &verdict.DNSQuestion{QName: "a.example", QType: "A"},
		Categories: map[string][]string{"social": {"custom"}},
		Model:      []verdict.ModelScore{{Category: "gambling", Score: 0.97}},
		Page:       &verdict.Page{Scores: map[string]float64{"gambling": 130}},
		Time:       time.Date(2026, 11, 25, 23, 30, 0, 0, time.UTC),
	}
	got := map[string]bool{}
	var walk func(prefix string, v ast.Value)
	walk = func(prefix string, v ast.Value) {
		obj, ok := v.(ast.Object)
		if !ok || prefix == "categories" || prefix == "model" || prefix == "page" {
			got[prefix] = true
			return
		}
		obj.Foreach(func(k, x *ast.Term) {
			walk(strings.TrimPrefix(prefix+"."+string(k.Value.(ast.String)), "."), x.Value)
		})
	}
	walk("", newInputBuilder(nil).value(&in))
	want := map[string]bool{}
	for _, p := range verdict.InputPaths() {
		want[p] = true
		if !got[p] {
			t.Errorf("verdict's table has %s; the input document has no such leaf", p)
		}
	}
	for p := range got {
		if !want[p] {
			t.Errorf("the input document has %s; verdict's table (and so the cache key) does not", p)
		}
	}
}
