package events

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/aupguard/aupguard/verdict"
)

func TestFromDecisionProxyBlock(t *testing.T) {
	at := time.Date(2026, 9, 1, 14, 3, 4, 0, time.FixedZone("BST", 3600))
	in := &verdict.Input{
		Source: verdict.SourceProxy,
		Phase:  verdict.PhaseRequest,
		Client: verdict.Client{IP: "10.1.2.3", User: "jsmith", Groups: []string{"learners"}},
		Request: verdict.Request{Method: "POST", Scheme: "https", Host: "www.facebook.com", Port: 443,
			Path: "/share", Query: "u=secret-token&t=hello"},
		Time: at,
	}
	d := &verdict.Decision{Action: verdict.ActionBlock, Category: "social", Rule: "social_publish",
		Reason: "Publishing to social media needs approval", Severity: verdict.SeverityMedium,
		PolicyRevision: "p1", ListsRevision: "l1"}
	ev, ok := FromDecision(d, in, BuildOptions{})
	if !ok {
		t.Fatal("a block is an event")
	}
	want := Event{ID: ev.ID, Time: at.UTC(), Kind: KindBlock, Source: "proxy", Phase: "request", Action: "block",
		Category: "social", Rule: "social_publish", Reason: "Publishing to social media needs approval",
		Severity: "medium", ClientIP: "10.1.2.3", User: "jsmith", Groups: []string{"learners"},
		Host: "www.facebook.com", URL: "https://www.facebook.com/share", Method: "POST",
		PolicyRevision: "p1", ListsRevision: "l1"}
	if !eventEqual(ev, want) {
		t.Errorf("event\n got %+v\nwant %+v", ev, want)
	}
	if ts, err := IDTime(ev.ID); err != nil || !ts.Equal(at.Truncate(time.Millisecond)) {
		t.Errorf("id time %s, %v; want the input time", ts, err)
	}
	// The event must not share the input's slices.
	in.Client.Groups[0] = "changed"
	if ev.Groups[0] != "learners" {
		t.Error("event aliases the input's groups")
	}

	ev, _ = FromDecision(d, in, BuildOptions{IncludeQuery: true})
	if ev.URL != "https://www.facebook.com/share?u=secret-token&t=hello" {
		t.Errorf("with IncludeQuery: URL = %q", ev.URL)
	}
}

func eventEqual(a, b Event) bool {
	return reflect.DeepEqual(a, b)
}

func TestFromDecisionURLs(t *testing.T) {
	cases := []struct {
		req  verdict.Request
		want string
	}{
		{verdict.Request{Scheme: "http", Host: "example.test", Port: 80, Path: "/a"}, "http://example.test/a"},
		{verdict.Request{Scheme: "http", Host: "example.test", Port: 8080, Path: "/a"}, "http://example.test:8080/a"},
		{verdict.Request{Scheme: "https", Host: "2001:db8::1", Port: 8443, Path: "/"}, "https://[2001:db8::1]:8443/"},
		{verdict.Request{Scheme: "https", Host: "2001:db8::1", Path: "/"}, "https://[2001:db8::1]/"},
		{verdict.Request{Method: "CONNECT", Host: "casino.example", Port: 443}, "casino.example:443"},
		{verdict.Request{Scheme: "https", Host: "casino.example", Port: 443}, "https://casino.example"},
		// A caller that left the query (or a fragment) in Path.
		{verdict.Request{Scheme: "https", Host: "a.test", Path: "/search?q=private#frag"}, "https://a.test/search"},
		{verdict.Request{Scheme: "https", Host: "a.test", Path: "x"}, "https://a.test/x"},
	}
	for _, c := range cases {
		in := &verdict.Input{Source: verdict.SourceProxy, Phase: verdict.PhaseConnect, Request: c.req}
		ev, _ := FromDecision(&verdict.Decision{Action: verdict.ActionBlock}, in, BuildOptions{})
		if ev.URL != c.want {
			t.Errorf("%+v: URL = %q, want %q", c.req, ev.URL, c.want)
		}
	}
}

func TestFromDecisionDNS(t *testing.T) {
	in := &verdict.Input{Source: verdict.SourceDNS, Phase: verdict.PhaseQuery,
		Client: verdict.Client{IP: "10.1.2.3"}, DNS: &verdict.DNSQuestion{QName: "Casino.Example.", QType: "AAAA"}}
	d := &verdict.Decision{Action: verdict.ActionBlock, Category: "gambling", Severity: verdict.SeverityLow,
		Error: "policy evaluation failed: timeout"}
	ev, ok := FromDecision(d, in, BuildOptions{})
	if !ok {
		t.Fatal("a DNS block is an event")
	}
	if ev.QName != "Casino.Example." || ev.QType != "AAAA" || ev.Host != "casino.example" ||
		ev.URL != "" || ev.Method != "" || ev.Source != "dns" || ev.Error == "" || ev.User != "" {
		t.Errorf("DNS event = %+v", ev)
	}
	if ev.Time.IsZero() {
		t.Error("no time")
	}
}

func TestFromDecisionKinds(t *testing.T) {
	in := &verdict.Input{Source: verdict.SourceProxy, Request: verdict.Request{Host: "a.test"}}
	cases := []struct {
		d    verdict.Decision
		kind Kind
		ok   bool
	}{
		{verdict.Decision{Action: verdict.ActionAllow}, "", false},
		{verdict.Decision{Action: verdict.ActionIntercept}, "", false},
		{verdict.Decision{Action: verdict.ActionAllow, Alert: true}, KindAlert, true},
		{verdict.Decision{Action: verdict.ActionIntercept, Alert: true}, KindAlert, true},
		{verdict.Decision{Action: verdict.ActionBlock}, KindBlock, true},
		{verdict.Decision{Action: verdict.ActionBlock, Alert: true}, KindBlock, true},
	}
	for _, c := range cases {
		ev, ok := FromDecision(&c.d, in, BuildOptions{})
		if ok != c.ok || ev.Kind != c.kind || (ok && ev.Alert != c.d.Alert) {
			t.Errorf("%+v: kind %q ok %v, want %q %v", c.d, ev.Kind, ok, c.kind, c.ok)
		}
	}
	if _, ok := FromDecision(nil, in, BuildOptions{}); ok {
		t.Error("nil decision is not an event")
	}
}

func TestReviewRequestNamesTheDisputedBlock(t *testing.T) {
	ids := 0
	opts := BuildOptions{NewID: func() string { ids++; return fmt.Sprintf("id-%d", ids) }, Instance: "p1"}
	in := &verdict.Input{Source: verdict.SourceProxy, Phase: verdict.PhaseConnect,
		Request: verdict.Request{Method: "CONNECT", Scheme: "https", Host: "casino.example", Port: 443}}
	block, _ := FromDecision(&verdict.Decision{Action: verdict.ActionBlock, Category: "gambling", Rule: "gambling"}, in, opts)
	if block.ID != "id-1" || block.Instance != "p1" || block.URL != "https://casino.example" {
		t.Fatalf("block event %+v", block)
	}
	client := verdict.Client{IP: "10.0.0.5", User: "jo", Groups: []string{"learners"}}
	rr := ReviewRequest(block.ID, verdict.SourceProxy, client, &block, opts)
	want := Event{ID: "id-2", Time: rr.Time, Instance: "p1", Kind: KindReviewRequest, Source: verdict.SourceProxy,
		Phase: verdict.PhaseConnect, Category: "gambling", Rule: "gambling", Severity: verdict.SeverityInfo,
		ClientIP: "10.0.0.5", User: "jo", Groups: []string{"learners"}, Host: "casino.example",
		URL: "https://casino.example", Method: "CONNECT", Ref: "id-1"}
	if !eventEqual(rr, want) {
		t.Errorf("review request\n got %+v\nwant %+v", rr, want)
	}
	if rr := ReviewRequest("older", verdict.SourceProxy, client, nil, opts); rr.Host != "" || rr.Ref != "older" || rr.Kind != KindReviewRequest {
		t.Errorf("review of an unknown block: %+v", rr)
	}
}
