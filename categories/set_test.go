package categories

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestSet(t *testing.T) {
	var zero Set
	if !zero.Empty() || zero.Len() != 0 || zero.Key() != "" || zero.Matches() != nil || zero.Has("x") {
		t.Fatalf("zero set not empty: %v", zero)
	}
	if b, _ := json.Marshal(zero); string(b) != "{}" {
		t.Fatalf("zero JSON = %s", b)
	}
	s := NewSet(
		Match{"social", "ut1:social_networks"},
		Match{"gambling", "ut1:gambling"},
		Match{"gambling", "sinfonietta-gambling"},
		Match{"gambling", "ut1:gambling"}, // duplicate
	)
	want := []Match{{"gambling", "sinfonietta-gambling"}, {"gambling", "ut1:gambling"}, {"social", "ut1:social_networks"}}
	if !slices.Equal(s.Matches(), want) {
		t.Fatalf("Matches = %v, want %v", s.Matches(), want)
	}
	if !slices.Equal(s.Categories(), []string{"gambling", "social"}) {
		t.Fatalf("Categories = %v", s.Categories())
	}
	if k := s.Key(); k != "gambling=sinfonietta-gambling+ut1:gambling;social=ut1:social_networks" {
		t.Fatalf("Key = %q", k)
	}
	if !s.Has("social") || s.Has("drugs") {
		t.Fatal("Has")
	}
	b, _ := json.Marshal(s)
	if string(b) != `{"gambling":["sinfonietta-gambling","ut1:gambling"],"social":["ut1:social_networks"]}` {
		t.Fatalf("JSON = %s", b)
	}
	if !NewSet(want[2], want[0], want[1]).Equal(s) {
		t.Fatal("Equal must ignore construction order")
	}
}

func TestUnion(t *testing.T) {
	a := NewSet(Match{"gambling", "x"})
	b := NewSet(Match{"gambling", "x"}, Match{"social", "y"})
	c := NewSet(Match{"drugs", "z"})
	if u := Union(a, Set{}); u.d != a.d {
		t.Error("a ∪ ∅ must return a itself")
	}
	if u := Union(Set{}, a); u.d != a.d {
		t.Error("∅ ∪ a must return a itself")
	}
	if u := Union(a, b); u.d != b.d {
		t.Error("a ⊆ b: a ∪ b must return b itself")
	}
	if u := Union(b, a); u.d != b.d {
		t.Error("a ⊆ b: b ∪ a must return b itself")
	}
	u := Union(b, c)
	if u.Key() != "drugs=z;gambling=x;social=y" {
		t.Errorf("b ∪ c = %q", u.Key())
	}
	if !Union(c, b).Equal(u) {
		t.Error("union must commute")
	}
	var cache unionCache
	b.d.id, c.d.id = 1, 2 // as if interned by an Index
	for range 3 {
		if got := cache.union(b, c); !got.Equal(u) {
			t.Fatalf("cached union = %v", got)
		}
	}
	// Another pair must not disturb the first.
	d := NewSet(Match{"hate", "w"})
	d.d.id = 3
	if got := cache.union(b, d); got.Key() != "gambling=x;hate=w;social=y" {
		t.Fatalf("cache mixed pairs: %v", got)
	}
	if got := cache.union(b, c); !got.Equal(u) {
		t.Fatalf("cache after other pair: %v", got)
	}
}

func TestInterner(t *testing.T) {
	in := newInterner()
	ga := in.match(Match{"gambling", "a"})
	gb := in.match(Match{"gambling", "b"})
	s1 := in.add(in.add(0, ga), gb)
	s2 := in.add(in.add(0, gb), ga)
	if s1 != s2 {
		t.Fatalf("same members, different sets: %d %d", s1, s2)
	}
	if in.add(s1, ga) != s1 {
		t.Fatal("adding a member must be a no-op")
	}
	if got := in.sets[s1].Key(); got != "gambling=a+b" {
		t.Fatalf("key = %q", got)
	}
}
