package rego

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/aupguard/aupguard/verdict"
)

// Policy is one compiled, tested and prepared policy revision. It is
// immutable and safe for concurrent use; the Engine swaps whole Policies.
type Policy struct {
	query     ast.Body // the compiled query, `<decision rule> = decision`
	result    ast.Var  // the query's variable that holds the decision
	compiler  *ast.Compiler
	store     *dataStore
	cache     dataCache
	txn       storage.Transaction // shared by every evaluation; see prepareQuery
	revision  string
	paths     [][]string
	files     []string
	activated time.Time
	input     *inputBuilder
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

// neverCancelled is the cancel handed to OPA when the caller's context
// cannot be cancelled (the decider's usually cannot): nothing ever cancels
// it, so every evaluation can share it instead of allocating its own.
var neverCancelled = topdown.NewCancel()

// Evaluate runs the prepared query on in. An error means no trustworthy
// decision exists: the caller applies its fail-closed default.
//
// It drives OPA's evaluator (topdown) directly rather than through the rego
// package, which on every evaluation would build an evaluation context and
// convert the decision to Go maps and slices; what rego would add here is
// the defaults anyway (rule indexing, early exit, no tracing, no print
// hook). Metrics are off: nothing reads them.
func (p *Policy) Evaluate(ctx context.Context, in *verdict.Input) (verdict.Decision, error) {
	// An external cancel spares OPA a watcher goroutine per evaluation.
	c := neverCancelled
	if ctx.Done() != nil {
		c = topdown.NewCancel()
		stop := context.AfterFunc(ctx, c.Cancel)
		defer stop()
	}
	vc := getVirtualCache()
	defer vc.release()
	q := topdown.NewQuery(p.query).
		WithCompiler(p.compiler).
		WithStore(p.store).
		WithTransaction(p.txn).
		WithInput(ast.NewTerm(p.input.value(in))).
		WithCancel(c).
		WithMetrics(metrics.NoOp()).
		WithIndexing(true).
		WithEarlyExit(true).
		WithBaseCache(p.cache).
		WithVirtualCache(vc)
	var result *ast.Term
	err := q.Iter(ctx, func(qr topdown.QueryResult) error {
		result = qr[p.result]
		return nil
	})
	if err != nil {
		return verdict.Decision{}, fmt.Errorf("evaluate %s: %w", p.queryText, describe(err))
	}
	if result == nil {
		return verdict.Decision{}, fmt.Errorf("evaluate %s: undefined (the policy returned no decision)", p.queryText)
	}
	d, err := parseDecision(result.Value)
	if err != nil {
		return verdict.Decision{}, fmt.Errorf("evaluate %s: %w", p.queryText, err)
	}
	d.PolicyRevision = p.revision
	return d, nil
}

// The decision's keys, made once.
var (
	kAction, kCategory, kRule, kReason = ast.StringTerm("action"), ast.StringTerm("category"), ast.StringTerm("rule"), ast.StringTerm("reason")
	kSeverity, kAlert, kCacheTTL       = ast.StringTerm("severity"), ast.StringTerm("alert"), ast.StringTerm("cache_ttl_s")
	kSafeSearch                        = ast.StringTerm("safesearch")
	kFailClosed                        = ast.StringTerm("intercept_fail_closed")
)

// parseDecision reads the policy's output object strictly: an unknown
// action or severity is an error, never silently an allow.
func parseDecision(v any) (verdict.Decision, error) {
	m, ok := v.(ast.Object)
	if !ok {
		return verdict.Decision{}, fmt.Errorf("decision is %s, want an object", typeName(v))
	}
	d := verdict.Decision{CacheTTL: -1}
	var err error
	str := func(k *ast.Term) string {
		x := m.Get(k)
		if x == nil {
			return ""
		}
		switch s := x.Value.(type) {
		case ast.String:
			return string(s)
		case ast.Null:
			return ""
		}
		err = errors.Join(err, fmt.Errorf("decision.%s is %s, want a string", string(k.Value.(ast.String)), typeName(x.Value)))
		return ""
	}
	switch a := verdict.Action(str(kAction)); a {
	case verdict.ActionAllow, verdict.ActionBlock, verdict.ActionIntercept:
		d.Action = a
	default:
		err = errors.Join(err, fmt.Errorf("decision.action %q is not allow, block or intercept", a))
	}
	d.Category = str(kCategory)
	d.Rule = str(kRule)
	d.Reason = str(kReason)
	d.SafeSearch = str(kSafeSearch)
	switch s := verdict.Severity(str(kSeverity)); s {
	case "":
		d.Severity = verdict.SeverityInfo
	case verdict.SeverityInfo, verdict.SeverityLow, verdict.SeverityMedium, verdict.SeverityHigh, verdict.SeverityCritical:
		d.Severity = s
	default:
		err = errors.Join(err, fmt.Errorf("decision.severity %q is not one of info, low, medium, high, critical", s))
	}
	if x := m.Get(kAlert); x != nil {
		b, isBool := x.Value.(ast.Boolean)
		if !isBool {
			err = errors.Join(err, fmt.Errorf("decision.alert is %s, want a boolean", typeName(x.Value)))
		}
		d.Alert = bool(b)
	}
	if x := m.Get(kFailClosed); x != nil {
		b, isBool := x.Value.(ast.Boolean)
		if !isBool {
			err = errors.Join(err, fmt.Errorf("decision.intercept_fail_closed is %s, want a boolean", typeName(x.Value)))
		}
		d.InterceptFailClosed = bool(b)
	}
	if x := m.Get(kCacheTTL); x != nil {
		n, isNum := x.Value.(ast.Number)
		f, exact := n.Float64()
		if !isNum || !exact || f < 0 {
			err = errors.Join(err, fmt.Errorf("decision.cache_ttl_s %v is not a non-negative number", x))
		}
		d.CacheTTL = time.Duration(f * float64(time.Second))
	}
	return d, err
}

// typeName names a result value's type in Rego's words (string, number,
// object, ...), for error messages.
func typeName(v any) string {
	if x, ok := v.(ast.Value); ok {
		return ast.ValueName(x)
	}
	return fmt.Sprintf("%T", v)
}
