package policies_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/aupguard/aupguard/policies"
)

// loadPolicies loads every embedded file the way an engine would: .rego files
// as modules (tests included), the YAML files as data documents.
func loadPolicies(t testing.TB) (map[string]*ast.Module, storage.Store) {
	t.Helper()
	res, err := loader.NewFileLoader().
		WithFS(policies.FS).
		WithRegoVersion(ast.RegoV1).
		All([]string{"."})
	if err != nil {
		t.Fatalf("loading embedded policies: %v", err)
	}
	modules := make(map[string]*ast.Module, len(res.Modules))
	for name, m := range res.Modules {
		modules[name] = m.Parsed
	}
	return modules, inmem.NewFromObject(res.Documents)
}

// TestRegoUnitTests runs every test_* rule in the embedded *_test.rego files
// with OPA's tester and fails naming each Rego test that fails.
func TestRegoUnitTests(t *testing.T) {
	modules, store := loadPolicies(t)
	ctx := context.Background()
	ch, err := tester.NewRunner().
		SetStore(store).
		SetDefaultRegoVersion(ast.RegoV1).
		CapturePrintOutput(true).
		EnableTracing(true).
		SetModules(modules).
		RunTests(ctx, nil)
	if err != nil {
		t.Fatalf("compiling policies for tests: %v", err)
	}
	passed, failed := 0, 0
	for r := range ch {
		if r.Pass() {
			passed++
			continue
		}
		if r.Skip {
			continue
		}
		failed++
		where := ""
		if r.Location != nil {
			where = r.Location.String()
		}
		msg := "FAIL"
		if r.Error != nil {
			msg = "ERROR: " + r.Error.Error()
		} else if at := failedExpr(r.Trace); at != "" {
			msg = "FAIL at " + at
		}
		if len(r.Output) > 0 {
			msg += "\n" + strings.TrimSpace(string(r.Output))
		}
		t.Errorf("%s.%s (%s): %s", r.Package, r.Name, where, msg)
	}
	t.Logf("%d passed, %d failed", passed, failed)
	if passed+failed == 0 {
		t.Fatal("no Rego tests found in the embedded policies")
	}
}

// failedExpr returns "file:row: expression" for the last expression that
// failed in a test's trace, the line `opa test` would point at.
func failedExpr(trace []*topdown.Event) string {
	for _, e := range slices.Backward(trace) {
		if e.Op != topdown.FailOp || e.Location == nil || e.QueryID == 0 {
			continue
		}
		expr, ok := e.Node.(*ast.Expr)
		if !ok {
			continue
		}
		if _, isEvery := expr.Terms.(*ast.Every); isEvery {
			continue // the failing expression inside the body comes first
		}
		return fmt.Sprintf("%s:%d: %s", e.Location.File, e.Location.Row, expr)
	}
	return ""
}

// TestRegoFormatted keeps the built-in files in `opa fmt` style, the style an
// admin's editor tooling produces, so that diffs against them stay small.
func TestRegoFormatted(t *testing.T) {
	names, err := fs.Glob(policies.FS, "*.rego")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		src, err := fs.ReadFile(policies.FS, n)
		if err != nil {
			t.Fatal(err)
		}
		out, err := format.SourceWithOpts(n, src, format.Opts{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if !bytes.Equal(out, src) {
			t.Errorf("%s is not formatted as opa fmt would format it", n)
		}
	}
}

// TestEveryRuleFileHasTests keeps the convention the admin docs promise: each
// policy file has a *_test.rego beside it.
func TestEveryRuleFileHasTests(t *testing.T) {
	names, err := fs.Glob(policies.FS, "*.rego")
	if err != nil {
		t.Fatal(err)
	}
	have := make(map[string]bool, len(names))
	for _, n := range names {
		have[n] = true
	}
	rules := 0
	for _, n := range names {
		if strings.HasSuffix(n, "_test.rego") {
			continue
		}
		rules++
		if want := strings.TrimSuffix(n, ".rego") + "_test.rego"; !have[want] {
			t.Errorf("%s has no %s", n, want)
		}
	}
	if rules == 0 {
		t.Fatal("no policy files embedded")
	}
}
