package categories

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestBundleManifest(t *testing.T) {
	m, err := BundleManifest()
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cats := map[string]bool{}
	for _, s := range m.Sources {
		if s.License == "" || s.Attribution == "" || s.Upstream == "" {
			t.Errorf("%s: provenance missing: %+v", s.Name, s)
		}
		cfg.Sources = append(cfg.Sources, s.Source)
		if s.Category != "" {
			cats[s.Category] = true
		}
		for _, c := range s.Map {
			cats[c] = true
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("bundle sources do not validate: %v", err)
	}
	want := []string{"adult", "circumvention", "drugs", "gambling", "games", "hacking", "hate", "malware",
		"mixed_adult", "phishing", "piracy", "social", "violence"}
	if got := slices.Sorted(maps.Keys(cats)); !slices.Equal(got, want) {
		t.Errorf("bundle categories = %v, want %v", got, want)
	}
	if got := bundleIndex(t).Categories(); !slices.Equal(got, want) {
		t.Errorf("bundle index categories = %v, want %v", got, want)
	}
	notice := BundleNotice()
	for _, s := range []string{"UT1 blacklists, Université Toulouse Capitole", "CC BY-SA 4.0", "Unlicense", "MIT License", "Sinfonietta", "blocklistproject"} {
		if !strings.Contains(notice, s) {
			t.Errorf("NOTICE lacks %q", s)
		}
	}
}

// TestBundleOverride: a configured source with a bundled name replaces the
// bundled one instead of adding to it.
func TestBundleOverride(t *testing.T) {
	p := writeFile(t, t.TempDir(), "g.txt", []byte("only-this.example\n"))
	ix, errs := Build(t.Context(), Config{Bundle: true, Sources: []Source{{Name: "sinfonietta-gambling", Category: "gambling", Path: p}}}, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	n := 0
	for _, s := range ix.Stats() {
		if s.Name == "sinfonietta-gambling" {
			n++
			if s.Domains != 1 || s.Origin == "" || strings.HasPrefix(s.Origin, "bundle:") {
				t.Errorf("stats = %+v", s)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d lists named sinfonietta-gambling, want 1", n)
	}
	if got := ix.Lookup("pokerstars.bg").ByCategory()["gambling"]; slices.Contains(got, "sinfonietta-gambling") {
		t.Errorf("bundled sinfonietta-gambling still loaded: %v", got)
	}
}
