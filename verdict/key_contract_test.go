package verdict_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aupguard/aupguard/verdict"
)

// echoPolicy returns, as its rule, the JSON of what it reads of the input:
// the whole input (expr "input") or one path of it. Two inputs the policy
// can tell apart then get different rules, so a cached verdict answering
// the second with the first's rule is a key that missed a field.
func echoPolicy(expr string) string {
	return fmt.Sprintf(`package aupguard

default seen := "undefined"

seen := json.marshal(%s)

decision := {"action": "allow", "rule": seen}
`, expr)
}

// leaf is one leaf of verdict.Input as a reflect index path, found by
// walking the type, so a field added to Input is found without anyone
// listing it here.
type leaf struct {
	name  string
	index [][]int // struct field indexes, one per level; -1 is a pointer hop
}

func inputLeaves() []leaf {
	var out []leaf
	var walk func(t reflect.Type, name string, idx [][]int)
	walk = func(t reflect.Type, name string, idx [][]int) {
		if t.Kind() == reflect.Pointer {
			// The pointer itself is a leaf (nil or not) as well as its fields.
			out = append(out, leaf{name + "(nil)", idx})
			walk(t.Elem(), name, append(append([][]int(nil), idx...), []int{-1}))
			return
		}
		if t.Kind() == reflect.Struct && t != reflect.TypeOf(time.Time{}) {
			for i := 0; i < t.NumField(); i++ {
				f := t.Field(i)
				walk(f.Type, strings.TrimPrefix(name+"."+f.Name, "."), append(append([][]int(nil), idx...), []int{i}))
			}
			return
		}
		out = append(out, leaf{name, idx})
	}
	walk(reflect.TypeOf(verdict.Input{}), "", nil)
	return out
}

// fill gives every leaf of v a non-zero value, allocating pointers.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 26, 10, 30, 0, 0, time.UTC)))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			fill(v.Field(i))
		}
	case reflect.String:
		v.SetString("GET") // a method, so content_length is in the input
	case reflect.Int, reflect.Int64:
		v.SetInt(80)
	case reflect.Float64:
		v.SetFloat(0.97)
	case reflect.Slice:
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e)
		v.Set(reflect.Append(reflect.MakeSlice(v.Type(), 0, 1), e))
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		m.SetMapIndex(k, e)
		v.Set(m)
	default:
		panic("fill: add a case for " + v.Type().String())
	}
}

// mutate changes the leaf at l in a filled-in input; a pointer leaf
// (named "(nil)") becomes nil.
func mutate(in *verdict.Input, l leaf) {
	v := reflect.ValueOf(in).Elem()
	for i, step := range l.index {
		if step[0] == -1 {
			v = v.Elem()
			continue
		}
		v = v.Field(step[0])
		if i == len(l.index)-1 && v.Kind() == reflect.Pointer && strings.HasSuffix(l.name, "(nil)") {
			v.Set(reflect.Zero(v.Type()))
			return
		}
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Int, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Float64:
		v.SetFloat(v.Float() - 0.01)
	case reflect.Slice:
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e)
		if e.Kind() == reflect.String {
			e.SetString("other")
		}
		v.Set(reflect.Append(v, e))
	case reflect.Map:
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		k.SetString("other")
		v.SetMapIndex(k, e)
	case reflect.Struct: // time.Time: another day, another hour
		v.Set(reflect.ValueOf(v.Interface().(time.Time).Add(25 * time.Hour)))
	case reflect.Pointer:
		v.Set(reflect.Zero(v.Type()))
	default:
		panic("mutate: add a case for " + v.Type().String())
	}
}

func filledInput(t *testing.T) *verdict.Input {
	t.Helper()
	in := &verdict.Input{}
	fill(reflect.ValueOf(in).Elem())
	in.Request.Host = "casino.example" // a listed host, so categories are not empty
	return in
}

// leafPaths flattens a JSON document into its leaf paths and values.
func leafPaths(prefix string, v any, out map[string]string) {
	if m, ok := v.(map[string]any); ok {
		for k, x := range m {
			leafPaths(strings.TrimPrefix(prefix+"."+k, "."), x, out)
		}
		return
	}
	b, _ := json.Marshal(v)
	out[prefix] = string(b)
}

// For every leaf of the input, a change the policy can see must change the
// cache key: with a policy reading the whole input, and with a policy
// reading only the input paths that changed. A field added to Input and to
// the policy input but forgotten in the key fails here.
func TestKeyCoversEveryInputLeaf(t *testing.T) {
	ctx := context.Background()
	lists := buildLists(t, testLists)
	whole, _ := dirEngine(t, map[string]string{"main.rego": echoPolicy("input")})
	explain := verdict.NewDecider(whole, lists, verdict.Options{})
	leaves := inputLeaves()
	if len(leaves) < 20 {
		t.Fatalf("found only %d leaves of verdict.Input", len(leaves))
	}
	plans := map[string]*verdict.Decider{} // by read path: a decider over a policy reading only it
	covered := 0
	for _, l := range leaves {
		base, changed := filledInput(t), filledInput(t)
		mutate(changed, l)
		// What the policy sees of each, uncached.
		seenBase := explain.Explain(ctx, filledInput(t)).Rule
		c := filledInput(t)
		mutate(c, l)
		seenChanged := explain.Explain(ctx, c).Rule
		if seenBase == seenChanged {
			// Not visible to a policy (Categories are the decider's to
			// fill in, whatever the caller gives).
			t.Logf("%s: not visible in the policy input", l.name)
			continue
		}
		covered++
		var a, b any
		if err := json.Unmarshal([]byte(seenBase), &a); err != nil {
			t.Fatalf("%s: rule %q: %v", l.name, seenBase, err)
		}
		_ = json.Unmarshal([]byte(seenChanged), &b)
		pa, pb := map[string]string{}, map[string]string{}
		leafPaths("", a, pa)
		leafPaths("", b, pb)
		var diff []string
		for p := range pa {
			if pa[p] != pb[p] {
				diff = append(diff, p)
			}
		}
		for p := range pb {
			if _, ok := pa[p]; !ok {
				diff = append(diff, p)
			}
		}
		sort.Strings(diff)

		check := func(what string, d *verdict.Decider) {
			first := d.Decide(ctx, base)
			second := d.Decide(ctx, changed)
			if second.Cached != "" && second.Rule == first.Rule {
				t.Errorf("%s: inputs differing in %s (seen at %v) shared a cached verdict with %s", l.name, l.name, diff, what)
			}
		}
		wholeDec := verdict.NewDecider(whole, lists, verdict.Options{CacheSize: 100})
		check("a policy reading the whole input", wholeDec)
		for _, p := range diff {
			d, ok := plans[p]
			if !ok {
				e, _ := dirEngine(t, map[string]string{"main.rego": echoPolicy("input." + p)})
				plans[p] = verdict.NewDecider(e, lists, verdict.Options{CacheSize: 100})
				d = plans[p]
			}
			d.Purge()
			base, changed = filledInput(t), filledInput(t)
			mutate(changed, l)
			check("a policy reading input."+p, d)
		}
	}
	if covered < 15 {
		t.Fatalf("only %d leaves visible to the policy; the walk is broken", covered)
	}
}

// A policy reading an input path the key does not know (a field the
// input may gain later, or a typo) must not have that path left out of the
// key: the key then covers every field.
func TestKeyCoversEverythingForAnUnknownPath(t *testing.T) {
	e, _ := dirEngine(t, map[string]string{"main.rego": `package aupguard

default decision := {"action": "allow"}

decision := {"action": "block", "category": "x"} if input.request.headers.cookie
`})
	d := verdict.NewDecider(e, buildLists(t, testLists), verdict.Options{CacheSize: 10})
	for _, h := range []string{"a.example", "b.example"} {
		d.Decide(context.Background(), &verdict.Input{Request: verdict.Request{Host: h}})
	}
	if st := d.Stats(); st.Evaluations != 2 {
		t.Fatalf("two hosts evaluated %d times: the key left out fields for a policy reading an unknown path", st.Evaluations)
	}
}
