package categories

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	long63 := strings.Repeat("a", 63)
	name253 := strings.Repeat(long63+".", 3) + strings.Repeat("b", 61) // 4*63+1 = 253
	cases := []struct {
		in      string
		want    string
		wantErr string // substring of the error; "" means success
	}{
		{in: "Example.COM", want: "example.com"},
		{in: "example.com.", want: "example.com"},
		{in: "*.example.com", want: "example.com"},
		{in: ".example.com", want: "example.com"},
		{in: "  example.com\t", want: "example.com"},
		{in: "abbyfaer_rkoa.tripod.com", want: "abbyfaer_rkoa.tripod.com"},
		{in: "w-w-i-s-.com", want: "w-w-i-s-.com"},
		{in: "münchen.de", want: "xn--mnchen-3ya.de"},
		{in: "MÜNCHEN.DE", want: "xn--mnchen-3ya.de"},
		{in: "xn--mnchen-3ya.de", want: "xn--mnchen-3ya.de"},
		{in: "bücher.example.", want: "xn--bcher-kva.example"},
		{in: "1.2.3.4", want: "1.2.3.4"},
		{in: "::1", want: "::1"},
		{in: "2001:DB8:0:0::1", want: "2001:db8::1"},
		{in: "[2001:db8::1]", want: "2001:db8::1"},
		{in: "::ffff:192.0.2.1", want: "192.0.2.1"},
		{in: "casino", want: "casino"},
		{in: long63 + ".com", want: long63 + ".com"},
		{in: name253, want: name253},

		{in: "", wantErr: "empty name"},
		{in: ".", wantErr: "empty name"},
		{in: "*.", wantErr: "empty name"},
		{in: "a..com", wantErr: "empty label"},
		{in: "example.com..", wantErr: "empty label"},
		{in: "exa mple.com", wantErr: "space in name"},
		{in: "exam!ple.com", wantErr: "invalid character '!'"},
		{in: "example.com/path", wantErr: "invalid character '/'"},
		{in: strings.Repeat("a", 64) + ".com", wantErr: "label longer than 63"},
		{in: name253 + "b", wantErr: "longer than 253"},
		{in: "example.com:8080", wantErr: "port not allowed"},
		{in: "[::1]:53", wantErr: "port not allowed"},
		{in: "fe80::1%eth0", wantErr: "zone not allowed"},
		{in: "a:b:c", wantErr: "invalid character ':'"},
		{in: "1.2.3.4.5", wantErr: "neither an IPv4 address nor a domain name"},
		{in: "5.1.2.3.4", wantErr: "neither an IPv4 address nor a domain name"},
		{in: "1.2.3", wantErr: "neither an IPv4 address nor a domain name"},
		{in: "01.2.3.4", wantErr: "neither an IPv4 address nor a domain name"},
		{in: "example.123", wantErr: "numeric top-level label"},
		{in: "xn--a.\u0661\u0662.com", wantErr: "invalid internationalized name"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := Normalize(c.in)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("Normalize(%q) = %q, %v; want error containing %q", c.in, got, err, c.wantErr)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("Normalize(%q) = %q, %v; want %q", c.in, got, err, c.want)
			}
			again, err := Normalize(got)
			if err != nil || again != got {
				t.Fatalf("not idempotent: Normalize(%q) = %q, %v", got, again, err)
			}
		})
	}
}

// buildList writes lines as a list file of the given format and builds an
// index of it alone (no bundle), failing the test on any source error.
func buildList(t testing.TB, format, category string, lines ...string) *Index {
	t.Helper()
	p := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ix, errs := Build(context.Background(), Config{Sources: []Source{{Name: "test", Category: category, Format: format, Path: p}}}, nil)
	if len(errs) > 0 {
		t.Fatalf("build: %v", errs)
	}
	return ix
}

// TestLookupSemantics covers what a listed name covers, at lookup.
func TestLookupSemantics(t *testing.T) {
	ix := buildList(t, FormatDomains, "gambling",
		"pokerstars.com",
		"sub.only-subdomain.org",
		"*.wild.net",
		"MixedCase.Example",
		"münchen-casino.de",
		"xn--bcher-kva.example",
		"1.2.3.4",
		"2001:db8::7",
		"casino.",
	)
	cases := []struct {
		host string
		want bool
	}{
		{"pokerstars.com", true},
		{"www.pokerstars.com", true},
		{"a.b.c.d.e.f.pokerstars.com", true},
		{"POKERSTARS.COM", true},
		{"pokerstars.com.", true},
		{"pokerstars.com:443", true},
		{"www.pokerstars.com.:8443", true},
		{"notpokerstars.com", false}, // a suffix match is on label boundaries
		{"pokerstars.com.evil.net", false},
		{"pokerstars.co", false},
		{"com", false},

		{"sub.only-subdomain.org", true},
		{"x.sub.only-subdomain.org", true},
		{"only-subdomain.org", false}, // a listed subdomain does not cover its parent
		{"other.only-subdomain.org", false},

		{"wild.net", true},
		{"a.wild.net", true},
		{"mixedcase.example", true},
		{"münchen-casino.de", true},
		{"xn--mnchen-casino-wob.de", true},
		{"www.bücher.example", true},
		{"BÜCHER.example", true},

		{"1.2.3.4", true},
		{"1.2.3.4:80", true},
		{"5.1.2.3.4", false}, // an address is matched exactly, never as a suffix
		{"1.2.3.4.example.com", false},
		{"1.2.3.40", false},
		{"2001:db8::7", true},
		{"[2001:db8::7]:443", true},
		{"[2001:DB8:0::7]", true},
		{"::ffff:1.2.3.4", true},
		{"2001:db8::8", false},

		{"anything.casino", true}, // a one-label entry covers a whole TLD
		{"casino", true},

		{"", false},
		{":443", false},
		{"[", false},
		{strings.Repeat("a.", 200) + "pokerstars.com", false}, // longer than a name can be
	}
	for _, c := range cases {
		got := ix.Lookup(c.host)
		if got.Has("gambling") != c.want {
			t.Errorf("Lookup(%q) = %v, want listed=%v", c.host, got, c.want)
		}
		if gotURL := ix.LookupURL(c.host, "/x"); !gotURL.Equal(got) {
			t.Errorf("LookupURL(%q) = %v, Lookup = %v; a domain list must give the same", c.host, gotURL, got)
		}
	}
}

// TestExtremismSource checks that a category with no bundled list (the
// policy has rules waiting for one) works like any other.
func TestExtremismSource(t *testing.T) {
	ix := buildList(t, FormatAuto, "extremism", "# admin-provided list", "extremist.example", "propaganda.example.org")
	got := ix.Lookup("www.extremist.example")
	if want := map[string][]string{"extremism": {"test"}}; !equalByCategory(got.ByCategory(), want) {
		t.Fatalf("Lookup = %v, want %v", got.ByCategory(), want)
	}
	if !slices.Contains(ix.Categories(), "extremism") {
		t.Fatalf("Categories = %v", ix.Categories())
	}
}

func equalByCategory(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slicesEqual(v, b[k]) {
			return false
		}
	}
	return true
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
