package rego

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/aupguard/aupguard/verdict"
)

// Policy is one compiled, tested and prepared policy revision. It is
// immutable and safe for concurrent use; the Engine swaps whole Policies.
type Policy struct {
	query     rego.PreparedEvalQuery
	revision  string
	paths     [][]string
	files     []string
	activated time.Time
	location  *time.Location
	queryText string
}

// Revision is the content hash of the policy files.
func (p *Policy) Revision() string { return p.revision }

// InputPaths lists the input paths the rules read (nil: the whole input).
func (p *Policy) InputPaths() [][]string { return p.paths }

// Files lists the policy files of this revision.
func (p *Policy) Files() []string { return p.files }

// Activated is when this revision started answering.
func (p *Policy) Activated() time.Time { return p.activated }

// Evaluate runs the prepared query on in. An error means no trustworthy
// decision exists: the caller applies its fail-closed default.
func (p *Policy) Evaluate(ctx context.Context, in *verdict.Input) (verdict.Decision, error) {
	// An external cancel spares OPA a watcher goroutine per evaluation;
	// the decider's contexts usually cannot be cancelled at all.
	c := topdown.NewCancel()
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, c.Cancel)
		defer stop()
	}
	rs, err := p.query.Eval(ctx, rego.EvalParsedInput(InputValue(in, p.location)), rego.EvalExternalCancel(c))
	if err != nil {
		return verdict.Decision{}, fmt.Errorf("evaluate %s: %w", p.queryText, describe(err))
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return verdict.Decision{}, fmt.Errorf("evaluate %s: undefined (the policy returned no decision)", p.queryText)
	}
	d, err := parseDecision(rs[0].Expressions[0].Value)
	if err != nil {
		return verdict.Decision{}, fmt.Errorf("evaluate %s: %w", p.queryText, err)
	}
	d.PolicyRevision = p.revision
	return d, nil
}

// parseDecision reads the policy's output object strictly: an unknown
// action or severity is an error, never silently an allow.
func parseDecision(v any) (verdict.Decision, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return verdict.Decision{}, fmt.Errorf("decision is %T, want an object", v)
	}
	d := verdict.Decision{CacheTTL: -1}
	var err error
	str := func(k string) string {
		x, ok := m[k]
		if !ok || x == nil {
			return ""
		}
		s, isStr := x.(string)
		if !isStr {
			err = errors.Join(err, fmt.Errorf("decision.%s is %T, want a string", k, x))
		}
		return s
	}
	switch a := verdict.Action(str("action")); a {
	case verdict.ActionAllow, verdict.ActionBlock, verdict.ActionIntercept:
		d.Action = a
	default:
		err = errors.Join(err, fmt.Errorf("decision.action %q is not allow, block or intercept", a))
	}
	d.Category = str("category")
	d.Rule = str("rule")
	d.Reason = str("reason")
	d.SafeSearch = str("safesearch")
	switch s := verdict.Severity(str("severity")); s {
	case "":
		d.Severity = verdict.SeverityInfo
	case verdict.SeverityInfo, verdict.SeverityLow, verdict.SeverityMedium, verdict.SeverityHigh, verdict.SeverityCritical:
		d.Severity = s
	default:
		err = errors.Join(err, fmt.Errorf("decision.severity %q is not one of info, low, medium, high, critical", s))
	}
	if x, ok := m["alert"]; ok {
		b, isBool := x.(bool)
		if !isBool {
			err = errors.Join(err, fmt.Errorf("decision.alert is %T, want a boolean", x))
		}
		d.Alert = b
	}
	if x, ok := m["cache_ttl_s"]; ok {
		n, nerr := number(x)
		if nerr != nil || n < 0 {
			err = errors.Join(err, fmt.Errorf("decision.cache_ttl_s %v is not a non-negative number", x))
		}
		d.CacheTTL = time.Duration(n * float64(time.Second))
	}
	return d, err
}

func number(x any) (float64, error) {
	switch n := x.(type) {
	case json.Number:
		return n.Float64()
	case float64:
		return n, nil
	case int:
		return float64(n), nil
	case int64:
		return float64(n), nil
	}
	return 0, fmt.Errorf("%T is not a number", x)
}
