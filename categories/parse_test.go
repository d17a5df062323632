package categories

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t testing.TB, dir, name string, content []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestFormats loads one file per format and checks what was kept,
// skipped and reported, with file:line for the bad lines.
func TestFormats(t *testing.T) {
	cases := []struct {
		name    string
		format  string // also tried as "auto", which must detect it
		content string
		want    SourceStats // Domains, IPs, URLs, Duplicates, Skipped, Errors
		hits    []string
		misses  []string
		errLine []string // substrings expected in LineErrors, in order
	}{
		{
			name:   "hosts",
			format: FormatHosts,
			content: "# Title: test hosts\n" +
				"127.0.0.1 localhost\n" +
				"::1 localhost ip6-localhost ip6-loopback\n" +
				"0.0.0.0 0.0.0.0\n" +
				"0.0.0.0 a.example b.example # two names and a comment\n" +
				"127.0.0.1\tc.example\n" +
				"0.0.0.0 A.example\n" + // duplicate after lowercasing
				"0.0.0.0 85.17.187.83\n" + // a site's bare address
				"0.0.0.0 xxxhindi.to en\n" + // stray one-label word
				"127.0.0.7 p19.example\n" +
				"0.0.0.0 localhost.localdomain\n" +
				"not-an-ip d.example\n" +
				"0.0.0.0\n" +
				"0.0.0.0 bad..example\n",
			want:    SourceStats{Domains: 5, IPs: 1, Duplicates: 1, Skipped: 4, Errors: 3},
			hits:    []string{"a.example", "www.b.example", "c.example", "85.17.187.83", "xxxhindi.to", "p19.example"},
			misses:  []string{"localhost", "d.example", "en", "0.0.0.0"},
			errLine: []string{"list.txt:12: hosts line must start with an IP address", "list.txt:13: hosts line has an address but no name", "list.txt:14: empty label"},
		},
		{
			name:   "domains",
			format: FormatDomains,
			content: "# Title: test list\n" +
				"\n" +
				"a.example\n" +
				"b.example # trailing comment\n" +
				"*.c.example\n" +
				"A.EXAMPLE\n" +
				"1.2.3.4\n" +
				"d.example/path\n" +
				"e .example\n",
			want:    SourceStats{Domains: 3, IPs: 1, Duplicates: 1, Errors: 2},
			hits:    []string{"a.example", "x.b.example", "c.example", "1.2.3.4"},
			misses:  []string{"d.example", "e.example"},
			errLine: []string{"list.txt:8: \"d.example/path\" looks like a URL", "list.txt:9: space in name"},
		},
		{
			name:   "adblock",
			format: FormatAdblock,
			content: "[Adblock Plus 2.0]\n" +
				"! Title: test adblock\n" +
				"||a.example^\n" +
				"||b.example^$important\n" +
				"||c.example^|\n" +
				"||d.example\n" +
				"e.example\n" +
				"@@||allowed.example^\n" +
				"example.org##.ad-banner\n" +
				"##.sponsored\n" +
				"/casino[0-9]+/\n" +
				"||f.example/path^\n" +
				"||*.g.example^\n" +
				"||h.example^$third-party\n" +
				"||i.example^$badfilter\n" +
				"0.0.0.0 j.example\n" +
				"# a comment\n" +
				"||bad!name.example^\n",
			want:    SourceStats{Domains: 6, Skipped: 8, Errors: 1},
			hits:    []string{"a.example", "www.b.example", "c.example", "d.example", "e.example", "j.example"},
			misses:  []string{"allowed.example", "f.example", "g.example", "h.example", "i.example"},
			errLine: []string{"list.txt:18: invalid character '!'"},
		},
		{
			name:   "urls",
			format: FormatURLs,
			content: "a.example/dir\n" +
				"a.example/dir/\n" + // same rule as the line above
				"http://b.example:8080/x/y\n" +
				"c.example/search?q=drug\n" +
				"178.128.25.172/watch\n" +
				"d.example/#fragment\n" +
				"/no-host\n" +
				"e .example/x\n",
			want:    SourceStats{URLs: 5, Duplicates: 1, Errors: 2},
			errLine: []string{"list.txt:7: URL \"/no-host\" has no host", "list.txt:8: space in URL"},
		},
	}
	for _, c := range cases {
		for _, format := range []string{c.format, FormatAuto} {
			for _, zipped := range []bool{false, true} {
				name := c.name + "/" + format
				if zipped {
					name += "/gzip"
				}
				t.Run(name, func(t *testing.T) {
					content := []byte(c.content)
					if zipped {
						content = gz(t, content)
					}
					p := writeFile(t, t.TempDir(), "list.txt", content)
					ix, errs := Build(context.Background(), Config{Sources: []Source{{Name: "t", Category: "gambling", Format: format, Path: p}}}, nil)
					if len(errs) > 0 {
						t.Fatal(errs)
					}
					st := withoutSeed(ix.Stats())
					if len(st) != 1 {
						t.Fatalf("stats = %+v", st)
					}
					s := st[0]
					if s.Format != c.format {
						t.Errorf("format = %q, want %q", s.Format, c.format)
					}
					got := SourceStats{Domains: s.Domains, IPs: s.IPs, URLs: s.URLs, Duplicates: s.Duplicates, Skipped: s.Skipped, Errors: s.Errors}
					if got.Domains != c.want.Domains || got.IPs != c.want.IPs || got.URLs != c.want.URLs ||
						got.Duplicates != c.want.Duplicates || got.Skipped != c.want.Skipped || got.Errors != c.want.Errors {
						t.Errorf("stats = %+v, want %+v", got, c.want)
					}
					if len(s.LineErrors) != len(c.errLine) {
						t.Fatalf("line errors = %q, want %d", s.LineErrors, len(c.errLine))
					}
					for i, want := range c.errLine {
						if !strings.Contains(s.LineErrors[i], want) || !strings.HasPrefix(s.LineErrors[i], p) {
							t.Errorf("line error %d = %q, want %s:… containing %q", i, s.LineErrors[i], p, want)
						}
					}
					for _, h := range c.hits {
						if !ix.Lookup(h).Has("gambling") {
							t.Errorf("Lookup(%q) misses", h)
						}
					}
					for _, h := range c.misses {
						if !ix.Lookup(h).Empty() {
							t.Errorf("Lookup(%q) = %v, want empty", h, ix.Lookup(h))
						}
					}
				})
			}
		}
	}
}

// TestMalformedListKeepsOthers: a source that is mostly garbage (an HTML
// page) is rejected as a whole; a missing file fails its source; the other
// sources load regardless.
func TestMalformedListKeepsOthers(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.txt", []byte("good.example\n"))
	html := writeFile(t, dir, "page.html", []byte("<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n<body>nginx</body></html>\n"))
	huge := writeFile(t, dir, "long.txt", []byte(strings.Repeat("a", maxLineLen+10)+"\nok.example\nfine.example\n"))
	cfg := Config{Sources: []Source{
		{Name: "good", Category: "gambling", Path: good},
		{Name: "html", Category: "gambling", Format: FormatDomains, Path: html},
		{Name: "missing", Category: "gambling", Path: filepath.Join(dir, "nope.txt")},
		{Name: "long", Category: "drugs", Format: FormatDomains, Path: huge},
	}}
	ix, errs := Build(context.Background(), cfg, nil)
	if len(errs) != 2 {
		t.Fatalf("errors = %v, want 2 (html, missing)", errs)
	}
	var se *SourceError
	if !errors.As(errs[0], &se) || se.Source != "html" || !strings.Contains(se.Error(), "3 of 3 lines failed to parse") {
		t.Errorf("errs[0] = %v", errs[0])
	}
	if !errors.As(errs[1], &se) || se.Source != "missing" || !errors.Is(errs[1], os.ErrNotExist) {
		t.Errorf("errs[1] = %v", errs[1])
	}
	if !ix.Lookup("good.example").Has("gambling") || !ix.Lookup("ok.example").Has("drugs") {
		t.Errorf("good lists not loaded: %v", ix.Stats())
	}
	for _, s := range ix.Stats() {
		if s.Name == "long" && (s.Errors != 1 || !strings.Contains(s.LineErrors[0], "long.txt:1: line longer than")) {
			t.Errorf("long line: %+v", s)
		}
	}
}

func TestCorruptGzipFailsSource(t *testing.T) {
	z := gz(t, []byte(strings.Repeat("x.example\n", 1000)))
	p := writeFile(t, t.TempDir(), "list.gz", z[:len(z)-6])
	_, errs := Build(context.Background(), Config{Sources: []Source{{Name: "z", Category: "gambling", Path: p}}}, nil)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "unexpected EOF") {
		t.Fatalf("errs = %v, want a truncated-gzip error", errs)
	}
}

func TestMaxListBytes(t *testing.T) {
	p := writeFile(t, t.TempDir(), "list.gz", gz(t, []byte(strings.Repeat("x.example\n", 10000))))
	_, errs := Build(context.Background(), Config{MaxListBytes: 4096, Sources: []Source{{Name: "z", Category: "gambling", Path: p}}}, nil)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "larger than max_list_bytes") {
		t.Fatalf("errs = %v", errs)
	}
}
