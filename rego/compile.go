package rego

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// DefaultQuery is the rule every policy set must define.
const DefaultQuery = "data.aupguard.decision"

// loaded is a parsed policy set: rule modules, test modules and data.
type loaded struct {
	rules map[string]*ast.Module
	tests map[string]*ast.Module
	data  map[string]any
}

// parse loads the set with OPA's loader, which namespaces data documents
// by their directory, as `opa eval -d` would.
func parse(files Files) (*loaded, error) {
	res, err := loader.NewFileLoader().
		WithFS(files.fs()).
		WithRegoVersion(ast.RegoV1).
		WithProcessAnnotation(true).
		All([]string{"."})
	if err != nil {
		return nil, fmt.Errorf("load policies: %w", describe(err))
	}
	l := &loaded{rules: map[string]*ast.Module{}, tests: map[string]*ast.Module{}, data: res.Documents}
	for _, m := range res.Modules {
		if isTestFile(m.Name) {
			l.tests[m.Name] = m.Parsed
		} else {
			l.rules[m.Name] = m.Parsed
		}
	}
	if len(l.rules) == 0 {
		return nil, errors.New("load policies: no Rego rule modules")
	}
	return l, nil
}

func newCompiler() *ast.Compiler {
	return ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
}

// compileRules compiles the rule modules (tests left out, so the query
// does not carry them and input analysis sees only real rules).
func compileRules(l *loaded) (*ast.Compiler, error) {
	c := newCompiler()
	if c.Compile(l.rules); c.Failed() {
		return nil, fmt.Errorf("compile policies: %w", describe(c.Errors))
	}
	return c, nil
}

// TestResult is the outcome of one Rego unit test.
type TestResult struct {
	Name     string // package.test_name
	Location string // file:line
	Pass     bool
	Skip     bool
	Err      string // evaluation error, if any
	Duration time.Duration
}

// TestReport summarises a run of a policy set's unit tests.
type TestReport struct {
	Results        []TestResult
	Passed, Failed int
	Skipped        int
}

// OK reports whether every test that ran passed.
func (r TestReport) OK() bool { return r.Failed == 0 }

// runTests runs every test_ rule of the set with OPA's tester.
func runTests(ctx context.Context, l *loaded) (TestReport, error) {
	var rep TestReport
	if len(l.tests) == 0 {
		return rep, nil
	}
	all := make(map[string]*ast.Module, len(l.rules)+len(l.tests))
	for k, v := range l.rules {
		all[k] = v
	}
	for k, v := range l.tests {
		all[k] = v
	}
	store := inmem.NewFromObject(l.data)
	r := tester.NewRunner().
		SetDefaultRegoVersion(ast.RegoV1).
		SetStore(store).
		SetTimeout(30 * time.Second).
		SetModules(all)
	ch, err := r.RunTests(ctx, nil)
	if err != nil {
		return rep, fmt.Errorf("run policy tests: %w", describe(err))
	}
	for res := range ch {
		tr := TestResult{Name: res.Package + "." + res.Name, Pass: res.Pass(), Skip: res.Skip, Duration: res.Duration}
		tr.Name = strings.TrimPrefix(tr.Name, "data.")
		if res.Location != nil {
			tr.Location = fmt.Sprintf("%s:%d", res.Location.File, res.Location.Row)
		}
		if res.Error != nil {
			tr.Err = describe(res.Error).Error()
		}
		switch {
		case res.Skip:
			rep.Skipped++
		case tr.Pass:
			rep.Passed++
		default:
			rep.Failed++
		}
		rep.Results = append(rep.Results, tr)
	}
	sort.Slice(rep.Results, func(i, j int) bool { return rep.Results[i].Location < rep.Results[j].Location })
	return rep, nil
}

// Test parses the set and runs its unit tests, without preparing a query.
// It is what `aupguard policy test` runs.
func Test(ctx context.Context, files Files) (TestReport, error) {
	l, err := parse(files)
	if err != nil {
		return TestReport{}, err
	}
	if _, err := compileRules(l); err != nil {
		return TestReport{}, err
	}
	return runTests(ctx, l)
}

// prepare compiles the set, runs its tests, and prepares the query. Any
// failure means the set must not be activated. The tests run on testFiles,
// the set without its overlays (Options.Overlays), when that differs.
func prepare(ctx context.Context, files, testFiles Files, query string, opts Options) (*Policy, error) {
	l, err := parse(files)
	if err != nil {
		return nil, err
	}
	c, err := compileRules(l)
	if err != nil {
		return nil, err
	}
	if !opts.SkipTests {
		tl := l
		if testFiles != nil && testFiles.Revision() != files.Revision() {
			if tl, err = parse(testFiles); err != nil {
				return nil, err
			}
		}
		rep, err := runTests(ctx, tl)
		if err != nil {
			return nil, err
		}
		if !rep.OK() {
			var fails []string
			for _, r := range rep.Results {
				if !r.Pass && !r.Skip {
					msg := r.Location + ": " + r.Name + " failed"
					if r.Err != "" {
						msg += ": " + r.Err
					}
					fails = append(fails, msg)
				}
			}
			return nil, fmt.Errorf("policy tests: %d passed, %d failed:\n  %s", rep.Passed, rep.Failed, strings.Join(fails, "\n  "))
		}
	}
	if err := checkDefined(c, query); err != nil {
		return nil, err
	}
	p, err := prepareQuery(ctx, c, l.data, query)
	if err != nil {
		return nil, err
	}
	p.revision = files.Revision()
	p.paths = inputPaths(c)
	p.files = files.Names()
	p.activated = time.Now()
	p.input = newInputBuilder(opts.Location)
	return p, nil
}

// prepareQuery compiles query against c and gives it a store holding data.
// The store of a revision is never written to, so one read transaction,
// opened here and never closed, serves every evaluation: a transaction
// per evaluation would cost allocations and a read lock that every core
// contends for.
func prepareQuery(ctx context.Context, c *ast.Compiler, data map[string]any, query string) (*Policy, error) {
	ref, err := ast.ParseRef(query)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", query, err)
	}
	result := ast.VarTerm("decision")
	body, err := c.QueryCompiler().Compile(ast.NewBody(ast.Equality.Expr(ast.NewTerm(ref), result)))
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", query, describe(err))
	}
	// AST values on read spare a JSON-to-AST conversion of data.
	store, err := newDataStore(ctx, inmem.NewFromObjectWithOpts(data, inmem.OptReturnASTValuesOnRead(true)))
	if err != nil {
		return nil, fmt.Errorf("policy data: %w", err)
	}
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy data: %w", err)
	}
	return &Policy{
		query:     body,
		result:    result.Value.(ast.Var),
		compiler:  c,
		store:     store,
		cache:     dataCache{store.root},
		txn:       txn,
		queryText: query,
	}, nil
}

// checkDefined rejects a set in which the decision rule does not exist at
// all, which would otherwise only show up as a fail-closed block on every
// request.
func checkDefined(c *ast.Compiler, query string) error {
	ref, err := ast.ParseRef(query)
	if err != nil {
		return fmt.Errorf("query %q: %w", query, err)
	}
	if len(c.GetRulesForVirtualDocument(ref)) == 0 && len(c.GetRules(ref)) == 0 {
		return fmt.Errorf("policies define no rule for %s", query)
	}
	return nil
}

// describe turns OPA's error values into one message that names each
// problem's file and line, the way an editor expects (file:line:col: msg).
func describe(err error) error {
	if err == nil {
		return nil
	}
	var msgs []string
	var walk func(error)
	walk = func(e error) {
		var astErrs ast.Errors
		var astErr *ast.Error
		var loadErrs loader.Errors
		switch {
		case errors.As(e, &loadErrs):
			for _, le := range loadErrs {
				walk(le)
			}
		case errors.As(e, &astErrs):
			for _, ae := range astErrs {
				walk(ae)
			}
		case errors.As(e, &astErr):
			if astErr.Location != nil {
				msgs = append(msgs, fmt.Sprintf("%s:%d:%d: %s", astErr.Location.File, astErr.Location.Row, astErr.Location.Col, astErr.Message))
			} else {
				msgs = append(msgs, astErr.Message)
			}
		default:
			msgs = append(msgs, e.Error())
		}
	}
	walk(err)
	if len(msgs) == 1 {
		return errors.New(msgs[0])
	}
	return errors.New(strings.Join(msgs, "\n  "))
}

// inputPaths lists the parts of the input the rules read: each path is
// the constant prefix of an input reference (input.request.method gives
// [request method]; input.categories[c] gives [categories]). A nil result
// means "all of it" (a bare input, or input[x]), so a cache key built from
// these paths can never let one verdict answer a question that differs in
// something the policy looked at.
func inputPaths(c *ast.Compiler) [][]string {
	seen := map[string][]string{}
	whole := false
	for _, m := range c.Modules {
		vis := ast.NewGenericVisitor(func(x any) bool {
			switch t := x.(type) {
			case ast.Ref:
				if !t[0].Equal(ast.InputRootDocument) {
					return false
				}
				var p []string
				for _, term := range t[1:] {
					s, ok := term.Value.(ast.String)
					if !ok {
						break
					}
					p = append(p, string(s))
				}
				if len(p) == 0 {
					whole = true
				} else {
					seen[strings.Join(p, ".")] = p
				}
				return true
			case ast.Var:
				if t.Equal(ast.InputRootDocument.Value) {
					whole = true
				}
			}
			return false
		})
		vis.Walk(m)
	}
	if whole {
		return nil
	}
	out := make([][]string, 0, len(seen))
	for _, p := range seen {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return strings.Join(out[i], ".") < strings.Join(out[j], ".") })
	return out
}
