// Package docgen writes docs/config.md from the configuration types
// themselves: key paths and defaults by reflection over config.Default(),
// descriptions from the fields' Go doc comments. Generating the reference
// keeps it from drifting from the code; a test fails when it is stale.
package docgen

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

const module = "github.com/aupguard/aupguard"

// Generate renders the reference for cfg (the defaults), reading doc
// comments from the package sources under root (the repository).
func Generate(root string, cfg any) ([]byte, error) {
	g := &gen{root: root, docs: map[string]map[string]string{}, typeDocs: map[string]string{}}
	var b bytes.Buffer
	b.WriteString(header)
	v := reflect.ValueOf(cfg)
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	t := v.Type()
	// Top-level scalars first, then one section per structured key.
	var rows []row
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key := yamlKey(f)
		if key == "" || isSection(f.Type) {
			continue
		}
		r, err := g.row(t, f, key, v.Field(i))
		if err != nil {
			return nil, err
		}
		rows = append(rows, r)
	}
	b.WriteString("## Top level\n\n")
	writeTable(&b, rows)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key := yamlKey(f)
		if key == "" || !isSection(f.Type) {
			continue
		}
		doc, err := g.fieldDoc(t, f.Name)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "## `%s`\n\n", key)
		if td := g.typeDoc(f.Type); td != "" {
			b.WriteString(td + "\n\n")
		} else if doc != "" {
			b.WriteString(doc + "\n\n")
		}
		var rows []row
		if err := g.walk(f.Type, v.Field(i), key, &rows); err != nil {
			return nil, err
		}
		writeTable(&b, rows)
	}
	return b.Bytes(), nil
}

const header = `# Configuration reference

aupguard reads one YAML file (` + "`aupguard serve --config aupguard.yaml`" + `). Every key has the default shown
here, so a file only needs the keys it changes, and no file at all is a working setup on loopback. Unknown
keys are errors (with a "did you mean"), and every bad value is reported with its file, line and key path;
the process does not start with a bad file, and a running one keeps its configuration.

This page is generated from the code (` + "`go generate ./config`" + `); a test fails when it is stale.
Durations are written like ` + "`300ms`, `5s`, `10m`, `24h`" + `.

`

type row struct{ key, typ, def, doc string }

type gen struct {
	root     string
	docs     map[string]map[string]string // "pkg.Type" -> field -> doc
	typeDocs map[string]string
}

func isSection(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct && t != reflect.TypeOf(time.Time{})
}

func yamlKey(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		if strings.Contains(f.Tag.Get("yaml"), "inline") {
			return "" // handled by the caller
		}
		return strings.ToLower(f.Name)
	}
	return name
}

func (g *gen) walk(t reflect.Type, v reflect.Value, prefix string, rows *[]row) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
		v = v.Elem()
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if strings.Contains(f.Tag.Get("yaml"), "inline") {
			if err := g.walk(f.Type, v.Field(i), prefix, rows); err != nil {
				return err
			}
			continue
		}
		key := yamlKey(f)
		if key == "" {
			continue
		}
		full := prefix + "." + key
		if isSection(f.Type) {
			if err := g.walk(f.Type, v.Field(i), full, rows); err != nil {
				return err
			}
			continue
		}
		r, err := g.row(t, f, full, v.Field(i))
		if err != nil {
			return err
		}
		*rows = append(*rows, r)
		// Lists of structs: document the item's keys too.
		et := f.Type
		if et.Kind() == reflect.Slice {
			et = et.Elem()
			if isSection(et) {
				if err := g.walk(et, reflect.New(et).Elem(), full+"[]", rows); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (g *gen) row(parent reflect.Type, f reflect.StructField, key string, v reflect.Value) (row, error) {
	doc, err := g.fieldDoc(parent, f.Name)
	if err != nil {
		return row{}, err
	}
	return row{key: key, typ: typeName(f.Type), def: defaultValue(v), doc: doc}, nil
}

func typeName(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		return "duration"
	case t.Kind() == reflect.Slice:
		return "list of " + typeName(t.Elem())
	case t.Kind() == reflect.Map:
		return "map of " + typeName(t.Key()) + " to " + typeName(t.Elem())
	case t.Kind() == reflect.Struct:
		return "object"
	}
	return t.Kind().String()
}

func defaultValue(v reflect.Value) string {
	if !v.IsValid() || v.IsZero() {
		switch v.Kind() {
		case reflect.Bool:
			return "`false`"
		case reflect.Int, reflect.Int64, reflect.Int32, reflect.Float64, reflect.Uint, reflect.Uint64:
			if v.Type() == reflect.TypeOf(time.Duration(0)) {
				return "`0s`"
			}
			return "`0`"
		}
		return ""
	}
	if d, ok := v.Interface().(time.Duration); ok {
		return "`" + prettyDuration(d) + "`"
	}
	// Flow style keeps lists and maps on one table line.
	var n yaml.Node
	if err := n.Encode(v.Interface()); err != nil {
		return fmt.Sprintf("`%v`", v.Interface())
	}
	setFlow(&n)
	o, err := yaml.Marshal(&n)
	if err != nil {
		return fmt.Sprintf("`%v`", v.Interface())
	}
	return "`" + strings.ReplaceAll(strings.TrimSpace(string(o)), "|", "\\|") + "`"
}

// prettyDuration writes 5m rather than 5m0s, as an admin would.
func prettyDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func setFlow(n *yaml.Node) {
	n.Style |= yaml.FlowStyle
	for _, c := range n.Content {
		setFlow(c)
	}
}

func writeTable(b *bytes.Buffer, rows []row) {
	b.WriteString("| key | type | default | meaning |\n|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", r.key, r.typ, r.def, strings.ReplaceAll(r.doc, "|", "\\|"))
	}
	b.WriteString("\n")
}

// fieldDoc returns the doc comment of field name of struct t, from source.
func (g *gen) fieldDoc(t reflect.Type, name string) (string, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	k := t.PkgPath() + "." + t.Name()
	if _, ok := g.docs[k]; !ok {
		if err := g.load(t.PkgPath()); err != nil {
			return "", err
		}
	}
	return g.docs[k][name], nil
}

func (g *gen) typeDoc(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	k := t.PkgPath() + "." + t.Name()
	if _, ok := g.docs[k]; !ok {
		_ = g.load(t.PkgPath())
	}
	return g.typeDocs[k]
}

func (g *gen) load(pkgPath string) error {
	if !strings.HasPrefix(pkgPath, module) {
		return nil // a type from outside the module: no docs
	}
	dir := filepath.Join(g.root, strings.TrimPrefix(strings.TrimPrefix(pkgPath, module), "/"))
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		n := e.Name()
		if !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.ParseComments)
		if err != nil {
			return err
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, s := range gd.Specs {
				ts := s.(*ast.TypeSpec)
				st, ok := ts.Type.(*ast.StructType)
				key := pkgPath + "." + ts.Name.Name
				if _, seen := g.docs[key]; !seen {
					g.docs[key] = map[string]string{}
				}
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				if doc != nil {
					g.typeDocs[key] = clean(doc.Text())
				}
				if !ok {
					continue
				}
				var prev string
				for _, fld := range st.Fields.List {
					text := ""
					if fld.Doc != nil {
						text = clean(fld.Doc.Text())
					} else if fld.Comment != nil {
						text = clean(fld.Comment.Text())
					}
					for _, nm := range fld.Names {
						t := text
						// "A and B bound …" documents B too.
						if t == "" && strings.Contains(prev, nm.Name) {
							t = prev
						}
						g.docs[key][nm.Name] = t
					}
					if text != "" {
						prev = text
					}
				}
			}
		}
	}
	// Mark the package loaded even when it has no struct types.
	g.docs[pkgPath+"."] = map[string]string{}
	return nil
}

func clean(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Keys lists every documented key path (for tests).
func Keys(doc []byte) []string {
	var out []string
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "| `") {
			k := strings.TrimPrefix(line, "| `")
			k = k[:strings.Index(k, "`")]
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
