package rego

import (
	"fmt"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func TestVirtualCache(t *testing.T) {
	ref := func(s string) ast.Ref { return ast.MustParseRef(s) }
	c := getVirtualCache()
	defer c.release()

	if v, undef := c.Get(ref("data.a.b")); v != nil || undef {
		t.Fatalf("empty cache: %v %v", v, undef)
	}
	// The cache keeps its own copy of the ref: OPA reuses the slice.
	r := ref("data.a.b")
	c.Put(r, ast.IntNumberTerm(1))
	r[2] = ast.StringTerm("c")
	c.Put(ref("data.a.u"), nil)
	if v, undef := c.Get(ref("data.a.b")); undef || !v.Equal(ast.IntNumberTerm(1)) {
		t.Fatalf("data.a.b: %v %v", v, undef)
	}
	if v, undef := c.Get(ref("data.a.u")); v != nil || !undef {
		t.Fatalf("undefined data.a.u: %v %v", v, undef)
	}
	// A value cached over an undefined one (or the reverse) replaces it.
	c.Put(ref("data.a.v"), nil)
	c.Put(ref("data.a.v"), ast.IntNumberTerm(4))
	if v, undef := c.Get(ref("data.a.v")); undef || !v.Equal(ast.IntNumberTerm(4)) {
		t.Fatalf("data.a.v defined after undefined: %v %v", v, undef)
	}
	c.Put(ref("data.a.v"), nil)
	if v, undef := c.Get(ref("data.a.v")); v != nil || !undef {
		t.Fatalf("data.a.v undefined after defined: %v %v", v, undef)
	}
	if v, undef := c.Get(ref("data.a")); v != nil || undef {
		t.Fatalf("a prefix is not cached: %v %v", v, undef)
	}

	// A frame (a `with`) sees nothing of the one below, and takes what it
	// cached away with it.
	c.Push()
	if v, _ := c.Get(ref("data.a.b")); v != nil {
		t.Fatal("pushed frame sees the frame below")
	}
	c.Put(ref("data.a.b"), ast.IntNumberTerm(2))
	c.Put(ref("data.a.x"), ast.IntNumberTerm(3))
	if v, _ := c.Get(ref("data.a.b")); !v.Equal(ast.IntNumberTerm(2)) {
		t.Fatalf("pushed frame: %v", v)
	}
	if keys := c.Keys(); len(keys) != 2 {
		t.Fatalf("keys of the pushed frame: %v", keys)
	}
	c.Pop()
	if v, _ := c.Get(ref("data.a.b")); !v.Equal(ast.IntNumberTerm(1)) {
		t.Fatalf("after pop: %v", v)
	}
	if v, _ := c.Get(ref("data.a.x")); v != nil {
		t.Fatalf("popped entry still cached: %v", v)
	}
}

// Past linearMax entries the cache indexes by hash; it must answer the same,
// across frames too.
func TestVirtualCacheManyEntries(t *testing.T) {
	c := getVirtualCache()
	defer c.release()
	key := func(i int) ast.Ref { return ast.MustParseRef(fmt.Sprintf("data.f[%d]", i)) }
	const n = 3 * linearMax
	for i := range n {
		c.Put(key(i), ast.IntNumberTerm(i))
	}
	c.Push()
	for i := range n {
		c.Put(key(i), ast.IntNumberTerm(-i))
	}
	for i := range n {
		if v, _ := c.Get(key(i)); !v.Equal(ast.IntNumberTerm(-i)) {
			t.Fatalf("frame 2, %d: %v", i, v)
		}
	}
	c.Pop()
	for i := range n {
		if v, _ := c.Get(key(i)); !v.Equal(ast.IntNumberTerm(i)) {
			t.Fatalf("frame 1, %d: %v", i, v)
		}
	}
	if v, _ := c.Get(key(n)); v != nil {
		t.Fatalf("never cached: %v", v)
	}
}
