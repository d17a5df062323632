package exceptions

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aupguard/aupguard/policies"
	"github.com/aupguard/aupguard/rego"
	"github.com/aupguard/aupguard/verdict"
)

var today = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func valid() Exception {
	return Exception{ID: "EXC-0A1B2C3D", User: "jsmith", Host: "casino.example", Expires: "2026-11-30", ApprovedBy: "dsl", Created: today.Format(time.RFC3339)}
}

func TestValidate(t *testing.T) {
	if err := valid().Validate(today); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(*Exception){
		"no one":        func(e *Exception) { e.User = "" },
		"both":          func(e *Exception) { e.Group = "learners" },
		"nothing":       func(e *Exception) { e.Host = "" },
		"host and cat":  func(e *Exception) { e.Category = "gambling" },
		"bad host":      func(e *Exception) { e.Host = "casino.example/<script>" },
		"bare host":     func(e *Exception) { e.Host = "localhost" },
		"upper host":    func(e *Exception) { e.Host = "Casino.example" },
		"bad date":      func(e *Exception) { e.Expires = "30/11/2026" },
		"past":          func(e *Exception) { e.Expires = "2026-11-22" },
		"too far":       func(e *Exception) { e.Expires = "2028-01-01" },
		"bad id":        func(e *Exception) { e.ID = "x" },
		"newline note":  func(e *Exception) { e.Note = "a\nb" },
		"bad user name": func(e *Exception) { e.User = "a b" },
	}
	for name, mut := range bad {
		e := valid()
		mut(&e)
		if err := e.Validate(today); err == nil {
			t.Errorf("%s: accepted %+v", name, e)
		}
	}
	e := valid()
	e.Expires = "2026-11-23" // today is fine: valid through its last day
	if err := e.Validate(today); err != nil {
		t.Fatal(err)
	}
}

// What File writes is what the built-in policy reads: YAML that could turn
// a name or a date into another type (a user called "no", a date) is
// written so the policy still sees strings.
func TestFileFeedsThePolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console", FileName)
	f := Open(path)
	e := valid()
	e.User = "no" // YAML 1.1 would read a bare no as false
	if err := f.Add(e, today); err != nil {
		t.Fatal(err)
	}
	g := Exception{ID: NewID(), Group: "learners", Category: "drugs", Expires: "2026-12-01", ApprovedBy: "dsl", Note: `"quoted" & <b>`}
	if err := f.Add(g, today); err != nil {
		t.Fatal(err)
	}
	if err := f.Add(g, today); err == nil {
		t.Fatal("a duplicate ID was accepted")
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o640 {
		t.Fatalf("file mode: %v %v", st, err)
	}
	list, err := f.List()
	if err != nil || len(list) != 2 || list[0] != e || list[1] != g {
		t.Fatalf("list = %+v, %v", list, err)
	}

	eng, err := rego.New(context.Background(), rego.Options{Builtin: policies.FS, Overlays: []string{path}})
	if err != nil {
		t.Fatal(err)
	}
	eval := func(user string, groups []string, host string, cats map[string][]string) verdict.Decision {
		d, err := eng.Current().Evaluate(context.Background(), &verdict.Input{
			Source: verdict.SourceProxy, Phase: verdict.PhaseRequest,
			Client:  verdict.Client{User: user, Groups: groups},
			Request: verdict.Request{Method: "GET", Host: host, Path: "/"}, Categories: cats, Time: today,
		})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := eval("no", []string{"learners"}, "casino.example", map[string][]string{"gambling": {"x"}}); d.Rule != "exception:"+e.ID {
		t.Fatalf("user exception: %+v", d)
	}
	if d := eval("", []string{"learners"}, "x.example", map[string][]string{"drugs": {"x"}}); d.Rule != "exception:"+g.ID {
		t.Fatalf("group exception: %+v", d)
	}

	gone, ok, err := f.Remove(e.ID)
	if err != nil || !ok || gone != e {
		t.Fatalf("remove: %+v %v %v", gone, ok, err)
	}
	if _, err := eng.Reload(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	if d := eval("no", []string{"learners"}, "casino.example", map[string][]string{"gambling": {"x"}}); d.Rule != "gambling" {
		t.Fatalf("after removal: %+v", d)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), "# Written by aupguard") {
		t.Fatalf("no header:\n%s", b)
	}
}
