package categories

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aupguard/aupguard/internal/testutil"
)

// TestMISPFormat: a MISP warning list (the popular-sites publisher's
// format) is sniffed by format auto and its "list" array loads.
func TestMISPFormat(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "list.json")
	doc := `{
  "description": "Top 10K websites from Majestic Million",
  "list": ["Google.com", "wikipedia.org", "bbc.co.uk.", "not a name"],
  "matching_attributes": ["hostname", "domain"],
  "name": "majestic", "type": "hostname", "version": 20260801
}`
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"", FormatMISP} {
		ix, errs := Build(context.Background(), Config{Sources: []Source{{Name: "pop", Category: BenignCategory, Format: format, Path: p}}}, nil)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		st := withoutSeed(ix.Stats())
		if len(st) != 1 || st[0].Domains != 3 || st[0].Errors != 1 || st[0].Format != FormatMISP {
			t.Fatalf("format %q: stats %+v", format, st)
		}
		for _, h := range []string{"www.google.com", "wikipedia.org", "bbc.co.uk"} {
			if !ix.Lookup(h).Has(BenignCategory) {
				t.Errorf("%s not benign", h)
			}
		}
		// The attribute names are not names.
		if ix.Lookup("hostname").Has(BenignCategory) {
			t.Error("matching_attributes loaded as names")
		}
	}
}

// TestNameSamples: with SampleNames set, the Index keeps each list's
// names (all of a small list; between the cap and twice the cap of a big
// one), the same sample in every build.
func TestNameSamples(t *testing.T) {
	data := testutil.SharedData(t)
	const limit = 20000
	build := func() map[string]NameSample {
		ix, errs := Build(context.Background(), Config{Defaults: true, Mirror: data, SampleNames: limit}, nil)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		out := map[string]NameSample{}
		for _, s := range ix.NameSamples() {
			out[s.Source] = s
		}
		return out
	}
	a, b := build(), build()
	pop := a[PopularSource]
	if pop.Category != BenignCategory || pop.Total != 9999 || len(pop.Names) != 9999 {
		t.Errorf("popular: category %q, total %d, %d names", pop.Category, pop.Total, len(pop.Names))
	}
	if !slices.Contains(pop.Names, "google.com") {
		t.Error("google.com not in the popular sample")
	}
	bank := a["ut1:bank"]
	if bank.Category != BenignCategory || len(bank.Names) != 6646 {
		t.Errorf("ut1:bank: category %q, %d names", bank.Category, len(bank.Names))
	}
	big := a["shadowwhisperer-adult"]
	if big.Total != 219522 || len(big.Names) < limit || len(big.Names) > 2*limit {
		t.Errorf("shadowwhisperer-adult: total %d, %d names sampled, want %d..%d", big.Total, len(big.Names), limit, 2*limit)
	}
	for src, s := range a {
		if fmt.Sprint(s.Names) != fmt.Sprint(b[src].Names) {
			t.Errorf("%s: the sample differs between two builds", src)
		}
		for _, n := range s.Names[:min(len(s.Names), 50)] {
			if n != strings.ToLower(n) || strings.HasSuffix(n, ".") {
				t.Errorf("%s: %q is not normalized", src, n)
			}
		}
	}
	ix := defaultIndex(t)
	if ix.NameSamples() != nil {
		t.Error("samples kept without SampleNames")
	}
}
