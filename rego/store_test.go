package rego

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// dataStore must answer every read exactly as the in-memory store it wraps.
func TestDataStoreReadsLikeInmem(t *testing.T) {
	ctx := context.Background()
	data := map[string]any{"aupguard": map[string]any{
		"groups":    map[string]any{"learners": map[string]any{"safesearch": "strict", "categories": map[string]any{}}},
		"approvals": []any{map[string]any{"group": "g", "platforms": []any{"*"}}},
		"n":         3,
	}}
	mem := inmem.NewFromObjectWithOpts(data, inmem.OptReturnASTValuesOnRead(true))
	ds, err := newDataStore(ctx, mem)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		"/", "/aupguard", "/aupguard/groups/learners/safesearch", "/aupguard/groups/learners/categories",
		"/aupguard/groups/learners/categories/gambling", "/aupguard/groups/staff", "/nope",
		"/aupguard/approvals/0/group", "/aupguard/approvals/0/platforms/0", "/aupguard/approvals/1",
		"/aupguard/approvals/-1", "/aupguard/approvals/01", "/aupguard/approvals/x", "/aupguard/n/x",
		"/aupguard/groups/learners/safesearch/x",
	} {
		path, ok := storage.ParsePathEscaped(p)
		if !ok {
			t.Fatalf("bad path %s", p)
		}
		want, wantErr := storage.ReadOne(ctx, mem, path)
		txn, _ := ds.NewTransaction(ctx)
		got, gotErr := ds.Read(ctx, txn, path)
		ds.Abort(ctx, txn)
		if storage.IsNotFound(wantErr) != storage.IsNotFound(gotErr) || (wantErr == nil) != (gotErr == nil) {
			t.Errorf("%s: error %v, want %v", p, gotErr, wantErr)
			continue
		}
		if wantErr == nil && ast.Compare(got, want) != 0 {
			t.Errorf("%s: %v, want %v", p, got, want)
		}
	}
}

func TestDataCacheAnswersPathsInData(t *testing.T) {
	c := dataCache{ast.MustParseTerm(`{"aupguard": {"groups": {"learners": {"safesearch": "strict"}}, "list": [1, 2]}}`).Value}
	for ref, want := range map[string]string{
		"data.aupguard.groups.learners.safesearch": `"strict"`,
		"data.aupguard.list[1]":                    `2`,
		"data.aupguard.groups.staff":               ``,
		"input.aupguard":                           ``,
	} {
		got := c.Get(ast.MustParseRef(ref))
		if want == "" {
			if got != nil {
				t.Errorf("%s: %v, want a miss", ref, got)
			}
			continue
		}
		if got == nil || ast.Compare(got, ast.MustParseTerm(want).Value) != 0 {
			t.Errorf("%s: %v, want %s", ref, got, want)
		}
	}
}
