package categories

import (
	"hash/maphash"
	"net/netip"
	"strings"
	"testing"
)

// FuzzNormalize: whatever the input, Normalize either fails or returns a
// canonical name that is idempotent, within DNS limits, and that an index
// built from it matches (with its subdomains) and does not over-match.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"Example.COM.", "*.a.b", "münchen.de", "1.2.3.4", "[::1]", "a..b", "xn--mnchen-3ya.de", "5.1.2.3.4", "a_b.c-d.e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := Normalize(in)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		again, err := Normalize(got)
		if err != nil || again != got {
			t.Fatalf("Normalize(%q) = %q, then %q, %v", in, got, again, err)
		}
		if len(got) > maxNameLen {
			t.Fatalf("%q longer than %d", got, maxNameLen)
		}
		for _, l := range strings.Split(got, ".") {
			if len(l) > maxLabelLen {
				t.Fatalf("label %q too long", l)
			}
		}
		r := newListResult("fuzz", "gambling", FormatDomains, maphash.MakeSeed())
		if err := r.addName([]byte(got)); err != nil {
			t.Fatalf("addName(%q): %v", got, err)
		}
		b := newBuilder(r.seed)
		b.lists = []*listResult{r}
		ix := b.finish(nil)
		if !ix.Lookup(got).Has("gambling") {
			t.Fatalf("index of %q does not match it", got)
		}
		if addr, err := netip.ParseAddr(got); err == nil {
			if addr.Is4() && ix.Lookup("1."+got).Has("gambling") {
				t.Fatalf("address %q matched as a suffix", got)
			}
			return
		}
		if len(got) < maxNameLen-2 && !ix.Lookup("x."+got).Has("gambling") {
			t.Fatalf("subdomain of %q not matched", got)
		}
		if i := strings.IndexByte(got, '.'); i >= 0 && ix.Lookup(got[i+1:]).Has("gambling") {
			t.Fatalf("parent of %q matched", got)
		}
	})
}

// FuzzParseLine feeds one line to every format's parser: no panics, every
// line is counted exactly once, and URL rules come out normalized.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		"0.0.0.0 a.example b.example # c", "||a.example^$important", "@@||b.example^", "example.org##.ad",
		"a.example/path?q=1#frag", "http://[2001:db8::1]:8080/x", "# comment", "", "127.0.0.1 localhost",
		"/regex[0-9]+/", "(?i)casino", "münchen.de", "||xn--mnchen-3ya.de^", "a.example:8080/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		for _, format := range []string{FormatDomains, FormatHosts, FormatAdblock, FormatURLs, formatExpressions, FormatAuto} {
			r := newListResult("fuzz", "gambling", format, maphash.MakeSeed())
			if err := r.read(t.Context(), strings.NewReader(line), format, "fuzz.txt"); err != nil {
				t.Fatalf("%s: read error %v", format, err)
			}
			if r.lines > 1+strings.Count(line, "\n") || r.errCount+r.skipped > r.lines {
				t.Fatalf("%s: counts lines=%d errors=%d skipped=%d", format, r.lines, r.errCount, r.skipped)
			}
			for _, le := range r.lineErrs {
				if !strings.HasPrefix(le.Error(), "fuzz.txt:") {
					t.Fatalf("%s: line error without file:line: %v", format, le)
				}
			}
			for _, u := range r.urls {
				if u.addr.IsValid() {
					if u.host != u.addr.String() {
						t.Fatalf("URL rule address %q not canonical", u.host)
					}
				} else if n, err := Normalize(u.host); err != nil || n != u.host {
					t.Fatalf("URL rule host %q not normalized (%q, %v)", u.host, n, err)
				}
				if strings.HasSuffix(u.path, "/") {
					t.Fatalf("URL rule path %q keeps a trailing slash", u.path)
				}
			}
		}
	})
}

// FuzzLookup: request hosts and paths come from clients; no input may
// panic, and the URL lookup always includes the host lookup.
func FuzzLookup(f *testing.F) {
	for _, s := range [][2]string{
		{"www.pokerstars.com", "/"}, {"[::1]:443", "/x?y"}, {"178.128.25.172", "/watch"}, {"a..b", ""},
		{"Ünïcödé.example", "/%zz"}, {"[", "?"}, {"1.2.3.4.5", "//"}, {":", "/a/b/c/"},
	} {
		f.Add(s[0], s[1])
	}
	dir := f.TempDir()
	dom := writeFile(f, dir, "d.txt", []byte("pokerstars.com\n1.2.3.4\n::1\ncasino\nxn--mnchen-3ya.de\n"))
	urls := writeFile(f, dir, "u.txt", []byte("178.128.25.172/watch\ndocs.example/a/b\nq.example/s?x=1\n[::1]/admin\n"))
	ix, errs := Build(f.Context(), Config{Sources: []Source{
		{Name: "d", Category: "gambling", Path: dom},
		{Name: "u", Category: "phishing", Format: FormatURLs, Path: urls},
	}}, nil)
	if len(errs) > 0 {
		f.Fatal(errs)
	}
	f.Fuzz(func(t *testing.T, host, path string) {
		h := ix.Lookup(host)
		u := ix.LookupURL(host, path)
		if Union(h, u).Key() != u.Key() {
			t.Fatalf("Lookup(%q) = %v not within LookupURL = %v", host, h, u)
		}
		var fromHits Set
		for _, hit := range ix.Explain(host, path) {
			fromHits = Union(fromHits, hit.Set)
		}
		if path != "" && !fromHits.Equal(u) {
			t.Fatalf("Explain(%q, %q) adds up to %v, LookupURL = %v", host, path, fromHits, u)
		}
	})
}
