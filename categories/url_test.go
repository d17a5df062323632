package categories

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestURLPrefixRules(t *testing.T) {
	ix := buildList(t, FormatURLs, "phishing",
		"docs.example/forms/d/abc",
		"docs.example/forms/d/abc/", // trailing slash: same rule as without
		"docs.example/forms/d/XYZ/",
		"site.example/", // whole host, at URL level only
		"search.example/find?q=drug",
		"search.example/?page=casino",
		"178.128.25.172/watch",
		"[2001:db8::1]:8080/v6path",
		"pct.example/a%20b",
	)
	cases := []struct {
		host, path string
		want       bool
	}{
		{"docs.example", "/forms/d/abc", true},
		{"docs.example", "/forms/d/abc/", true},
		{"docs.example", "/forms/d/abc/edit", true},
		{"docs.example", "/forms/d/abc?usp=sharing", true}, // query ignored: rule has none
		{"www.docs.example", "/forms/d/abc", true},         // subdomain of the rule's host
		{"DOCS.example:443", "/forms/d/abc", true},
		{"docs.example", "/forms/d/abcdef", false}, // not at a '/' boundary
		{"docs.example", "/forms/d/ABC", false},    // paths are case-sensitive
		{"docs.example", "/forms/d", false},        // parent path
		{"docs.example", "/forms/d/XYZ", true},
		{"docs.example", "/forms/d/XYZ/view", true},
		{"docs.example", "", false},
		{"example", "/forms/d/abc", false}, // parent host

		{"site.example", "/", true},
		{"site.example", "", true},
		{"a.site.example", "/anything/at/all?x=1", true},

		{"search.example", "/find?q=drug", true},
		{"search.example", "/find?q=drug&lang=en", true},
		{"search.example", "/find?q=drugstore", false}, // query prefix on a parameter boundary
		{"search.example", "/find", false},             // the rule needs its query
		{"search.example", "/find/more?q=drug", false}, // a rule with a query matches its exact path
		{"search.example", "/?page=casino", true},
		{"search.example", "?page=casino", true},
		{"search.example", "/other?page=casino", false},

		{"178.128.25.172", "/watch", true},
		{"178.128.25.172:80", "/watch/123", true},
		{"5.178.128.25.172", "/watch", false},
		{"178.128.25.17", "/watch", false},
		{"[2001:db8::1]", "/v6path/x", true},
		{"pct.example", "/a%20b", true},
		{"pct.example", "/a b", false},
	}
	for _, c := range cases {
		got := ix.LookupURL(c.host, c.path)
		if got.Has("phishing") != c.want {
			t.Errorf("LookupURL(%q, %q) = %v, want listed=%v", c.host, c.path, got, c.want)
		}
		if !ix.Lookup(c.host).Empty() {
			t.Errorf("Lookup(%q) = %v: URL rules must not match host-only lookups (DNS)", c.host, ix.Lookup(c.host))
		}
	}
	st := ix.Stats()[0]
	if st.URLs != 8 || st.Duplicates != 1 {
		t.Errorf("stats: urls=%d duplicates=%d, want 8 and 1", st.URLs, st.Duplicates)
	}
}

func TestURLAndDomainUnion(t *testing.T) {
	dir := t.TempDir()
	dom := writeFile(t, dir, "d.txt", []byte("social.example\n"))
	urls := writeFile(t, dir, "u.txt", []byte("social.example/share\nsocial.example/share/\n"))
	ix, errs := Build(t.Context(), Config{Sources: []Source{
		{Name: "dom", Category: "social", Path: dom},
		{Name: "url", Category: "publishing", Format: FormatURLs, Path: urls},
	}}, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	got := ix.LookupURL("www.social.example", "/share/now")
	want := NewSet(Match{"social", "dom"}, Match{"publishing", "url"})
	if !got.Equal(want) {
		t.Fatalf("LookupURL = %v, want %v", got, want)
	}
	// Repeated lookups are served from the union cache: same content.
	if again := ix.LookupURL("www.social.example", "/share/now"); !again.Equal(want) {
		t.Fatalf("second LookupURL = %v", again)
	}
	hits := ix.Explain("www.social.example", "/share/now")
	var entries []string
	for _, h := range hits {
		entries = append(entries, h.Kind+":"+h.Entry)
	}
	if !slices.Equal(entries, []string{"domain:social.example", "url:social.example/share"}) {
		t.Errorf("Explain = %v", entries)
	}
	if got := ix.Explain("www.social.example", ""); len(got) != 1 {
		t.Errorf("host-only Explain = %v", got)
	}
}

func TestExpressionsOptIn(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "blacklists")
	writeFile(t, tree, "malware/urls", []byte("bad.example/payload\n"))
	writeFile(t, tree, "malware/expressions", []byte(`^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+/search\?q=[0-9]+$`+"\n(unclosed\n"+`casino[0-9]{2}`+"\n"))
	for _, on := range []bool{false, true} {
		ix, errs := Build(t.Context(), Config{Sources: []Source{{Name: "ut1", Format: FormatUT1, Path: dir, Map: map[string]string{"malware": "malware"}, Expressions: on}}}, nil)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		st := ix.Stats()[0]
		if got := ix.LookupURL("10.1.2.3", "/search?q=42"); got.Has("malware") != on {
			t.Errorf("expressions=%v: LookupURL = %v", on, got)
		}
		if got := ix.LookupURL("www.CASINO77.example", "/"); got.Has("malware") != on {
			t.Errorf("expressions=%v: case-insensitive expression: %v", on, got)
		}
		if got := ix.LookupURL("10.1.2.3", "/search?q=x42"); got.Has("malware") {
			t.Errorf("expression over-matched: %v", got)
		}
		if !ix.LookupURL("bad.example", "/payload").Has("malware") {
			t.Errorf("urls not loaded")
		}
		if on {
			if st.Expressions != 2 || st.Errors != 1 || len(st.LineErrors) != 1 ||
				!strings.Contains(st.LineErrors[0], "malware/expressions:2: expression does not compile") {
				t.Errorf("stats = %+v", st)
			}
			hits := ix.Explain("10.1.2.3", "/search?q=42")
			if len(hits) != 1 || hits[0].Kind != "expression" {
				t.Errorf("Explain = %+v", hits)
			}
		} else if st.Expressions != 0 || st.Errors != 0 {
			t.Errorf("expressions off but loaded: %+v", st)
		}
	}
}

// TestConcurrentLookups exercises the shared union cache from many
// goroutines (run with -race); every answer must equal the sequential one.
func TestConcurrentLookups(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a.txt", []byte("www.multi.example\nother.example\n"))
	b := writeFile(t, dir, "b.txt", []byte("multi.example\nother.example\n"))
	u := writeFile(t, dir, "u.txt", []byte("multi.example/path\nother.example/x\n"))
	ix, errs := Build(t.Context(), Config{Sources: []Source{
		{Name: "a", Category: "gambling", Path: a},
		{Name: "b", Category: "drugs", Path: b},
		{Name: "u", Category: "phishing", Format: FormatURLs, Path: u},
	}}, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	queries := [][2]string{{"www.multi.example", "/path/1"}, {"x.www.multi.example", "/"}, {"other.example", "/x"}, {"multi.example", "/path"}}
	want := make([]string, len(queries))
	for i, q := range queries {
		want[i] = ix.LookupURL(q[0], q[1]).Key()
	}
	if want[0] != "drugs=b;gambling=a;phishing=u" {
		t.Fatalf("sequential answer %q", want[0])
	}
	done := make(chan string, 8)
	for g := range 8 {
		go func() {
			for i := range 2000 {
				q := queries[(i+g)%len(queries)]
				if got := ix.LookupURL(q[0], q[1]).Key(); got != want[(i+g)%len(queries)] {
					done <- got
					return
				}
			}
			done <- ""
		}()
	}
	for range 8 {
		if bad := <-done; bad != "" {
			t.Fatalf("concurrent answer %q", bad)
		}
	}
}
