package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/aupguard/aupguard/config/field"
)

// Load reads the YAML file at path over the defaults and validates it.
// An empty path means the built-in defaults alone.
func Load(path string) (*Config, error) {
	if path == "" {
		c := Default()
		c.resolve()
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("built-in defaults: %w", err)
		}
		return c, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, b)
}

// Parse reads YAML bytes (named name in errors) over the defaults and
// validates the result. Every error names the file, the line and the key.
func Parse(name string, b []byte) (*Config, error) {
	c := Default()
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			// An empty file is the defaults.
			c.resolve()
			return c, c.Validate()
		}
		return nil, fmt.Errorf("%s: %s", name, lineErr(name, err.Error()))
	}
	lines := map[string]int{}
	var errs []error
	walk(&root, reflect.TypeOf(c).Elem(), "", lines, &errs, name)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := root.Decode(c); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, m := range te.Errors {
				errs = append(errs, errors.New(lineErr(name, m)))
			}
			return nil, errors.Join(errs...)
		}
		return nil, errors.New(lineErr(name, err.Error()))
	}
	c.resolve()
	if err := c.Validate(); err != nil {
		return nil, located(name, lines, err)
	}
	return c, nil
}

var lineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// lineErr rewrites yaml.v3's "line N: msg" as "file:N: msg".
func lineErr(name, msg string) string {
	if m := lineRe.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s:%s: %s", name, m[1], m[2])
	}
	return fmt.Sprintf("%s: %s", name, strings.TrimPrefix(msg, "yaml: "))
}

// located prefixes each validation error with the file and the line of
// the key it names (or of its nearest parent present in the file; a
// default that is wrong has no line).
func located(name string, lines map[string]int, err error) error {
	var out []error
	for _, e := range field.Flatten(err) {
		var fe *field.Error
		if !errors.As(e, &fe) {
			out = append(out, fmt.Errorf("%s: %w", name, e))
			continue
		}
		p := fe.Path
		line := 0
		for p != "" {
			if l, ok := lines[p]; ok {
				line = l
				break
			}
			p = parentPath(p)
		}
		if line > 0 {
			out = append(out, fmt.Errorf("%s:%d: %s: %s", name, line, fe.Path, fe.Msg))
		} else {
			out = append(out, fmt.Errorf("%s: %s: %s", name, fe.Path, fe.Msg))
		}
	}
	return errors.Join(out...)
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// walk checks the YAML tree against the Go type: every mapping key must
// name a field (so a typo is an error, not a silently ignored setting),
// and it records the line of each key path for later messages.
func walk(n *yaml.Node, t reflect.Type, path string, lines map[string]int, errs *[]error, name string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			walk(c, t, path, lines, errs, name)
		}
		return
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch t.Kind() {
	case reflect.Struct:
		if t.PkgPath() == "time" { // time.Time and friends are scalars
			return
		}
		if n.Kind != yaml.MappingNode {
			if n.Tag == "!!null" {
				return
			}
			*errs = append(*errs, fmt.Errorf("%s:%d: %s: want a mapping of keys, found %s", name, n.Line, orRoot(path), kindName(n)))
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			ft, ok := fields[k.Value]
			if !ok {
				*errs = append(*errs, fmt.Errorf("%s:%d: %s: unknown key%s", name, k.Line, p, suggest(k.Value, fields)))
				continue
			}
			lines[p] = k.Line
			walk(v, ft, p, lines, errs, name)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			lines[p] = k.Line
			walk(v, t.Elem(), p, lines, errs, name)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			lines[p] = c.Line
			walk(c, t.Elem(), p, lines, errs, name)
		}
	}
}

func orRoot(p string) string {
	if p == "" {
		return "(top level)"
	}
	return p
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// yamlFields maps the YAML keys of struct t to their field types,
// following inline fields.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		nm, opts, _ := strings.Cut(tag, ",")
		if nm == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			for k, v := range yamlFields(ft) {
				out[k] = v
			}
			continue
		}
		if nm == "" {
			nm = strings.ToLower(f.Name)
		}
		out[nm] = f.Type
	}
	return out
}

// suggest names the closest known key, for typos.
func suggest(k string, fields map[string]reflect.Type) string {
	best, bestD := "", 3
	var names []string
	for n := range fields {
		names = append(names, n)
		if d := editDistance(k, n); d < bestD {
			best, bestD = n, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	sort.Strings(names)
	return fmt.Sprintf(" (known keys: %s)", strings.Join(names, ", "))
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
