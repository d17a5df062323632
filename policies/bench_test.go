package policies_test

import (
	"context"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/aupguard/aupguard/policies"
	aupgrego "github.com/aupguard/aupguard/rego"
	"github.com/aupguard/aupguard/verdict"
)

// prepareDecision compiles the embedded policies without their tests, as a
// server would, and prepares data.aupguard.decision once. The store
// hands out AST values so that reading data.aupguard does not convert Go
// values on every evaluation.
func prepareDecision(b *testing.B) rego.PreparedEvalQuery {
	b.Helper()
	res, err := loader.NewFileLoader().
		WithFS(policies.FS).
		WithRegoVersion(ast.RegoV1).
		Filtered([]string{"."}, func(_ string, info fs.FileInfo, _ int) bool {
			return strings.HasSuffix(info.Name(), "_test.rego")
		})
	if err != nil {
		b.Fatalf("loading embedded policies: %v", err)
	}
	opts := []func(*rego.Rego){
		rego.Query("data.aupguard.decision"),
		rego.Store(inmem.NewFromObjectWithOpts(res.Documents, inmem.OptReturnASTValuesOnRead(true))),
	}
	for _, m := range res.Modules {
		opts = append(opts, rego.ParsedModule(m.Parsed))
	}
	pq, err := rego.New(opts...).PrepareForEval(context.Background())
	if err != nil {
		b.Fatalf("preparing data.aupguard.decision: %v", err)
	}
	return pq
}

// benchCase is one input of the benchmarks, with the decision it must give
// (checked once before timing, so a broken policy cannot post a good time).
// engine is the same input as the Go side states it, for BenchmarkEngine.
type benchCase struct {
	name   string
	input  map[string]any
	engine verdict.Input
	action string
	rule   string
}

func benchCases() []benchCase {
	learner := map[string]any{"ip": "10.1.2.3", "groups": []any{"learners"}}
	now := map[string]any{"weekday": "wednesday", "hour": 14, "date": "2026-11-25"}
	client := verdict.Client{IP: "10.1.2.3", Groups: []string{"learners"}}
	at := time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC) // a Wednesday
	return []benchCase{
		{
			name: "a_allowed_no_categories",
			input: map[string]any{
				"source": "proxy", "phase": "request", "client": learner,
				"request": map[string]any{"method": "GET", "scheme": "https", "host": "www.bbc.co.uk", "port": 443,
					"path": "/news/technology-12345", "query": "at_medium=rss"},
				"categories": map[string]any{},
				"time":       now,
			},
			engine: verdict.Input{Source: verdict.SourceProxy, Phase: verdict.PhaseRequest, Client: client, Time: at,
				Request: verdict.Request{Method: "GET", Scheme: "https", Host: "www.bbc.co.uk", Port: 443,
					Path: "/news/technology-12345", Query: "at_medium=rss", ContentLength: -1}},
			action: "allow", rule: "default_allow",
		},
		{
			name: "b_gambling_host",
			input: map[string]any{
				"source": "proxy", "phase": "request", "client": learner,
				"request":    map[string]any{"method": "GET", "scheme": "https", "host": "www.bet365.com", "port": 443, "path": "/"},
				"categories": map[string]any{"gambling": []any{"ut1:gambling", "sinfonietta-gambling"}},
				"time":       now,
			},
			engine: verdict.Input{Source: verdict.SourceProxy, Phase: verdict.PhaseRequest, Client: client, Time: at,
				Request:    verdict.Request{Method: "GET", Scheme: "https", Host: "www.bet365.com", Port: 443, Path: "/", ContentLength: -1},
				Categories: map[string][]string{"gambling": {"ut1:gambling", "sinfonietta-gambling"}}},
			action: "block", rule: "gambling",
		},
		{
			name: "c_social_post_learner",
			input: map[string]any{
				"source": "proxy", "phase": "request", "client": learner,
				"request": map[string]any{"method": "POST", "scheme": "https", "host": "www.facebook.com", "port": 443,
					"path": "/share", "content_type": "multipart/form-data; boundary=x", "content_length": 52311},
				"categories": map[string]any{"social": []any{"ut1:social_networks", "sinfonietta-social"}},
				"time":       now,
			},
			engine: verdict.Input{Source: verdict.SourceProxy, Phase: verdict.PhaseRequest, Client: client, Time: at,
				Request: verdict.Request{Method: "POST", Scheme: "https", Host: "www.facebook.com", Port: 443, Path: "/share",
					ContentType: "multipart/form-data; boundary=x", ContentLength: 52311},
				Categories: map[string][]string{"social": {"ut1:social_networks", "sinfonietta-social"}}},
			action: "block", rule: "social_publish_unapproved",
		},
		{
			name: "d_dns_allowed",
			input: map[string]any{
				"source": "dns", "phase": "query", "client": learner,
				"request":    map[string]any{"host": "www.bbc.co.uk"},
				"dns":        map[string]any{"qname": "www.bbc.co.uk", "qtype": "A"},
				"categories": map[string]any{},
				"time":       now,
			},
			engine: verdict.Input{Source: verdict.SourceDNS, Phase: verdict.PhaseQuery, Client: client, Time: at,
				Request: verdict.Request{Host: "www.bbc.co.uk", ContentLength: -1},
				DNS:     &verdict.DNSQuestion{QName: "www.bbc.co.uk", QType: "A"}},
			action: "allow", rule: "default_allow",
		},
	}
}

// runCases benchmarks eval on every case after checking its decision.
func runCases(b *testing.B, pq rego.PreparedEvalQuery, cases []benchCase,
	eval func(context.Context, rego.PreparedEvalQuery, ast.Value) (rego.ResultSet, error)) {
	for _, tc := range cases {
		input, err := ast.InterfaceToValue(tc.input)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			rs, err := eval(ctx, pq, input)
			if err != nil || len(rs) != 1 {
				b.Fatalf("eval: %v (%d results)", err, len(rs))
			}
			d, _ := rs[0].Expressions[0].Value.(map[string]any)
			if tc.action != "" && (d["action"] != tc.action || d["rule"] != tc.rule) {
				b.Fatalf("decision %v, want action %s rule %s", d, tc.action, tc.rule)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := eval(ctx, pq, input); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// evalPlain is the plain evaluation of the prepared query, with
// the input as a parsed ast.Value.
func evalPlain(ctx context.Context, pq rego.PreparedEvalQuery, input ast.Value) (rego.ResultSet, error) {
	return pq.Eval(ctx, rego.EvalParsedInput(input))
}

// evalExternalCancel also hands OPA a cancel wired to ctx with
// context.AfterFunc. Without it every Eval starts a goroutine to watch ctx,
// which on this machine costs several microseconds per decision.
func evalExternalCancel(ctx context.Context, pq rego.PreparedEvalQuery, input ast.Value) (rego.ResultSet, error) {
	c := topdown.NewCancel()
	stop := context.AfterFunc(ctx, c.Cancel)
	defer stop()
	return pq.Eval(ctx, rego.EvalParsedInput(input), rego.EvalExternalCancel(c))
}

// BenchmarkDecision measures one uncached decision through the whole default
// policy.
func BenchmarkDecision(b *testing.B) {
	runCases(b, prepareDecision(b), benchCases(), evalPlain)
}

// BenchmarkDecisionExternalCancel is BenchmarkDecision with the cancellation
// set-up a long-running engine should use (see evalExternalCancel).
func BenchmarkDecisionExternalCancel(b *testing.B) {
	runCases(b, prepareDecision(b), benchCases(), evalExternalCancel)
}

// BenchmarkFloor evaluates a one-rule policy returning a constant decision
// with the same harness: what OPA itself costs per query on the machine at
// hand, so that the numbers above can be read against it.
func BenchmarkFloor(b *testing.B) {
	pq, err := rego.New(
		rego.Query("data.floor.decision"),
		rego.Module("floor.rego", `package floor

decision := {"action": "allow", "category": "", "rule": "default_allow", "reason": "", "severity": "info", "alert": false, "cache_ttl_s": 300, "safesearch": "strict"}
`),
	).PrepareForEval(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	cases := benchCases()[:1]
	cases[0].name = "constant_decision"
	runCases(b, pq, cases, evalPlain)
}

// BenchmarkEngine evaluates the same cases the way aupguard does, through
// rego.Engine (the input built in Go, the decision read into a
// verdict.Decision): compare with BenchmarkDecision for what the engine's
// evaluation set-up saves.
func BenchmarkEngine(b *testing.B) {
	e, err := aupgrego.New(context.Background(), aupgrego.Options{Builtin: policies.FS, SkipTests: true, Location: time.UTC,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	p := e.Current()
	for _, tc := range benchCases() {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			d, err := p.Evaluate(ctx, &tc.engine)
			if err != nil || string(d.Action) != tc.action || d.Rule != tc.rule {
				b.Fatalf("decision %+v (%v), want action %s rule %s", d, err, tc.action, tc.rule)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Evaluate(ctx, &tc.engine); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
