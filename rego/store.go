package rego

import (
	"context"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/util"
)

// dataStore serves reads of a revision's data straight from its AST. The
// store of a revision is never written after it is prepared, so every read
// can walk one immutable value; OPA's in-memory store would make a term for
// each step of the path, and policies look up keys that are absent (a group
// that relaxes nothing) on nearly every decision. Everything else
// (transactions, triggers) is the wrapped store's.
type dataStore struct {
	storage.Store
	root ast.Value
	// keys holds a term for every object key in root: a lookup by a key
	// not in it fails at once, and one in it needs no new term.
	keys map[string]*ast.Term
}

var errNotFound = &storage.Error{Code: storage.NotFoundErr, Message: "document not found"}

// newDataStore wraps store, whose data it reads once.
func newDataStore(ctx context.Context, store storage.Store) (*dataStore, error) {
	data, err := storage.ReadOne(ctx, store, storage.Path{})
	if err != nil {
		return nil, err
	}
	root, ok := data.(ast.Value)
	if !ok {
		return nil, fmt.Errorf("policy data is %T, want an AST value", data)
	}
	s := &dataStore{Store: store, root: root, keys: map[string]*ast.Term{}}
	ast.WalkTerms(ast.NewTerm(root), func(t *ast.Term) bool {
		if obj, ok := t.Value.(ast.Object); ok {
			obj.Foreach(func(k, _ *ast.Term) {
				if str, ok := k.Value.(ast.String); ok {
					s.keys[string(str)] = k
				}
			})
		}
		return false
	})
	return s, nil
}

// Read returns the document at path, as an AST value.
func (s *dataStore) Read(_ context.Context, _ storage.Transaction, path storage.Path) (any, error) {
	v := s.root
	for _, step := range path {
		switch node := v.(type) {
		case ast.Object:
			k, ok := s.keys[step]
			if !ok {
				return nil, errNotFound
			}
			t := node.Get(k)
			if t == nil {
				return nil, errNotFound
			}
			v = t.Value
		case *ast.Array:
			i, ok := util.Atoi(step)
			if !ok || i < 0 || i >= node.Len() {
				return nil, errNotFound
			}
			v = node.Elem(i).Value
		default:
			return nil, errNotFound
		}
	}
	return v, nil
}

// dataCache answers OPA's per-evaluation cache of data documents
// (topdown.BaseCache) from the revision's data: OPA asks it before reading
// the store, so a path that exists costs a walk of the AST and nothing more,
// where OPA's own cache would be built afresh, and filled, on every
// evaluation. A path the data does not have falls through to the store, and
// what the store answers is not kept: the cache is shared by concurrent
// evaluations, so it never changes.
type dataCache struct{ root ast.Value }

func (c dataCache) Get(ref ast.Ref) ast.Value {
	if len(ref) == 0 || !ref[0].Equal(ast.DefaultRootDocument) {
		return nil
	}
	v, err := c.root.Find(ref[1:])
	if err != nil {
		return nil
	}
	return v
}

func (dataCache) Put(ast.Ref, ast.Value) {}
