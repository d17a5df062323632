package categories

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aupguard/aupguard/internal/testutil"
)

// dataDir is the shared list data, laid out as a mirror.
func dataDir(t testing.TB) string { return testutil.SharedData(t) }

// realSources are the data files, configured as an admin would.
func realSources(data string) []Source {
	srcs := []Source{{Name: "ut1", Format: FormatUT1, Path: filepath.Join(data, "ut1-blacklists.tar.gz"), Map: UT1Map()}}
	for _, l := range []struct{ name, cat, format, file string }{
		{"blocklistproject-gambling", "gambling", "domains", "blocklistproject-gambling.txt.gz"},
		{"blocklistproject-piracy", "piracy", "domains", "blocklistproject-piracy.txt.gz"},
		{"blocklistproject-torrent", "piracy", "domains", "blocklistproject-torrent.txt.gz"},
		{"blocklistproject-drugs", "drugs", "domains", "blocklistproject-drugs.txt.gz"},
		{"blocklistproject-facebook", "social", "domains", "blocklistproject-facebook.txt.gz"},
		{"blocklistproject-tiktok", "social", "domains", "blocklistproject-tiktok.txt.gz"},
		{"blocklistproject-twitter", "social", "domains", "blocklistproject-twitter.txt.gz"},
		{"blocklistproject-whatsapp", "social", "domains", "blocklistproject-whatsapp.txt.gz"},
		{"sinfonietta-gambling", "gambling", "auto", "sinfonietta-gambling-hosts.gz"},
		{"sinfonietta-pornography", "adult", "auto", "sinfonietta-pornography-hosts.gz"},
		{"sinfonietta-social", "social", "auto", "sinfonietta-social-hosts.gz"},
	} {
		srcs = append(srcs, Source{Name: l.name, Category: l.cat, Format: l.format, Path: filepath.Join(data, "lists", l.file)})
	}
	return srcs
}

// expectedCounts were computed from the files with shell tools, not with
// this package. UT1 (from the extracted archive):
//
//	domains: grep -vE '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' $c/domains | sort -u | wc -l
//	ips:     grep -cE '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' $c/domains
//	urls:    sed 's/#.*//' $c/urls | awk -F'?' '{p=$1; sub(/\/+$/,"",p);
//	             if (NF>1) print p "?" substr($0, length($1)+2); else print p}' | sort -u | wc -l
//
// blocklistproject: zcat $f | sed 's/#.*//' | tr -d ' \t' | grep -v '^$' | tr A-Z a-z | sort -u | wc -l
// Sinfonietta: zcat $f | sed 's/#.*//' | awk 'NF>=2 {for(i=2;i<=NF;i++) print tolower($i)}' |
// grep '\.' | grep -vE '^[0-9.]+$' | sort -u | wc -l (names), and the
// dotted-quad names other than 0.0.0.0/127.* (IPs).
var expectedCounts = map[string][3]int{ // label: domains, ips, urls
	"ut1:gambling":              {32233, 14, 5},
	"ut1:arjel":                 {69, 0, 0},
	"ut1:adult":                 {0, 0, 1089},
	"ut1:mixed_adult":           {149, 0, 7},
	"ut1:agressif":              {267, 93, 36},
	"ut1:warez":                 {1524, 22, 15},
	"ut1:social_networks":       {715, 0, 1},
	"ut1:malware":               {0, 0, 18194},
	"ut1:cryptojacking":         {11491, 0, 1},
	"ut1:stalkerware":           {525, 0, 0},
	"ut1:phishing":              {0, 0, 18428},
	"ut1:hacking":               {197, 77, 33},
	"ut1:ddos":                  {421, 0, 0},
	"ut1:drogue":                {436, 167, 464},
	"ut1:dangerous_material":    {35, 0, 19},
	"ut1:games":                 {33715, 26, 1655},
	"ut1:vpn":                   {6039, 0, 0},
	"ut1:doh":                   {2996, 19, 1},
	"ut1:residential-proxies":   {120, 18, 0},
	"ut1:redirector":            {109793, 22530, 293},
	"blocklistproject-gambling": {2510, 0, 0},
	"blocklistproject-piracy":   {2154, 0, 0},
	"blocklistproject-torrent":  {2620, 0, 0},
	"blocklistproject-drugs":    {26029, 0, 0},
	"blocklistproject-facebook": {22362, 0, 0},
	"blocklistproject-tiktok":   {3725, 0, 0},
	"blocklistproject-twitter":  {1193, 0, 0},
	"blocklistproject-whatsapp": {226, 0, 0},
	"sinfonietta-gambling":      {2642, 0, 0},
	"sinfonietta-pornography":   {61157, 5, 0},
	"sinfonietta-social":        {3244, 0, 0},
	// UT1's categories of sites learners may use, loaded as "benign"
	// (distinct lower-cased non-IP lines of each domains file, counted
	// with sort -u; IP lines with grep; URL lines with sort -u).
	"ut1:bank":              {6646, 0, 0},
	"ut1:jobsearch":         {60740, 0, 1},
	"ut1:press":             {4644, 0, 1},
	"ut1:shopping":          {36964, 4, 3},
	"ut1:sports":            {2362, 0, 1},
	"ut1:webmail":           {404, 0, 9},
	"ut1:educational_games": {8, 0, 3},
}

// mirrorCounts are the other default sources, as their files in
// ../shared/data/lists: the totals agree with the counts
// ../shared/data/README.md gives for each file (domains + IPs), which were
// counted without this package.
var mirrorCounts = map[string][3]int{
	"shadowwhisperer-adult":    {219522, 0, 0},
	"shadowwhisperer-gambling": {9604, 0, 0},
	"shadowwhisperer-dating":   {1355, 0, 0},
	"hostsvn-adult":            {22622, 0, 0},
	"hostsvn-gambling":         {65757, 1, 0},
	"4skinskywalker-porn":      {90881, 1, 0},
	"pornaway-porn":            {31163, 14, 0},
	"clefspeare13-porn":        {30778, 1, 0},
	"tiuxo-porn":               {369, 0, 0},
	"acma-gambling":            {1777, 0, 0},
	"estonia-gambling":         {1893, 0, 0},
	"nextdns-piracy":           {1436, 0, 0},
	"nextdns-torrent":          {1629, 0, 0},
	"nextdns-social":           {254, 0, 0},
	"jmdugan-facebook":         {2117, 0, 0},
	"popular-majestic-top10k":  {9999, 0, 0},
}

// TestMirrorCounts: the default sources read through lists.mirror load
// every list of the shared data, each with the expected entries, and the
// seed on top.
func TestMirrorCounts(t *testing.T) {
	ix := defaultIndex(t)
	seen := map[string]bool{}
	for _, s := range ix.Stats() {
		seen[s.Label] = true
		want, ok := expectedCounts[s.Label]
		if !ok {
			want, ok = mirrorCounts[s.Label]
		}
		switch {
		case s.Label == SeedName:
			if s.Domains < 50 || s.Errors != 0 || s.Origin != seedOrigin {
				t.Errorf("seed %s: %+v", s.Category, s)
			}
			continue
		case !ok:
			t.Errorf("unexpected list %q", s.Label)
			continue
		}
		if got := [3]int{s.Domains, s.IPs, s.URLs}; got != want {
			t.Errorf("%s (%s): domains, ips, urls = %v, want %v", s.Label, s.Category, got, want)
		}
		if s.Errors != 0 || s.Error != "" || s.Fallback != "" || !strings.HasPrefix(s.Origin, dataDir(t)) {
			t.Errorf("%s: %+v", s.Label, s)
		}
	}
	for l := range mirrorCounts {
		if !seen[l] {
			t.Errorf("%s not loaded", l)
		}
	}
	for l := range expectedCounts {
		if !seen[l] {
			t.Errorf("%s not loaded", l)
		}
	}
	if ix.Len() < 500_000 {
		t.Errorf("%d names indexed, want 500k+", ix.Len())
	}
}

var realOnce struct {
	ix   *Index
	errs []error
}

func realIndex(t *testing.T) *Index {
	t.Helper()
	data := dataDir(t)
	if realOnce.ix == nil {
		realOnce.ix, realOnce.errs = Build(context.Background(), Config{Sources: realSources(data)}, nil)
	}
	if len(realOnce.errs) > 0 {
		t.Fatal(realOnce.errs)
	}
	return realOnce.ix
}

func checkCounts(t *testing.T, ix *Index, wantLabels int) {
	t.Helper()
	seen := 0
	for _, s := range withoutSeed(ix.Stats()) {
		want, ok := expectedCounts[s.Label]
		if !ok {
			t.Errorf("unexpected list %q", s.Label)
			continue
		}
		seen++
		if got := [3]int{s.Domains, s.IPs, s.URLs}; got != want {
			t.Errorf("%s (%s): domains, ips, urls = %v, want %v", s.Label, s.Category, got, want)
		}
		if s.Errors != 0 || s.Error != "" {
			t.Errorf("%s: errors=%d %s %v", s.Label, s.Errors, s.Error, s.LineErrors)
		}
		if want := UT1Map()[s.List]; s.List != "" && s.Category != want {
			t.Errorf("%s: category %q, want %q", s.Label, s.Category, want)
		}
	}
	if seen != wantLabels {
		t.Errorf("%d lists, want %d", seen, wantLabels)
	}
}

func TestRealDataCounts(t *testing.T) {
	checkCounts(t, realIndex(t), len(expectedCounts))
}

func TestRealDataLookups(t *testing.T) {
	for name, ix := range map[string]*Index{"data": realIndex(t), "defaults": defaultIndex(t)} {
		t.Run(name, func(t *testing.T) {
			cases := []struct {
				host string
				want map[string][]string // nil: must not be in the category of notIn
				cat  string
			}{
				{host: "pokerstars.com", want: map[string][]string{"gambling": {"ut1:gambling"}}},
				{host: "www.pokerstars.com", want: map[string][]string{"gambling": {"ut1:gambling"}}},
				{host: "pokerstars.cz", want: map[string][]string{"gambling": {"blocklistproject-gambling", "sinfonietta-gambling", "ut1:gambling"}}},
				{host: "www.pokerstars.cz", want: map[string][]string{"gambling": {"blocklistproject-gambling", "sinfonietta-gambling", "ut1:gambling"}}},
				{host: "best-cashbar.blogspot.com", want: map[string][]string{"gambling": {"ut1:gambling"}}},
				{host: "blogspot.com", cat: "gambling"}, // parent of a listed subdomain
				{host: "pokerstars-fan.example", cat: "gambling"},
			}
			for _, c := range cases {
				got := ix.Lookup(c.host)
				if c.want == nil {
					if got.Has(c.cat) {
						t.Errorf("Lookup(%q) = %v, must not be %s", c.host, got, c.cat)
					}
					continue
				}
				if bc := seedless(got.ByCategory()); !equalByCategory(bc, c.want) && (name == "data" || !coversByCategory(bc, c.want)) {
					t.Errorf("Lookup(%q) = %v, want %v", c.host, bc, c.want)
				}
			}
			if got := ix.Lookup("www.facebook.com"); !got.Has("social") || len(got.ByCategory()["social"]) < 3 {
				t.Errorf("facebook = %v", got)
			}
			if got := ix.LookupURL("178.128.25.172", "/watch"); !got.Has("adult") {
				t.Errorf("UT1 adult URL rule: %v", got)
			}
			if got := ix.Lookup("178.128.25.172"); got.Has("adult") {
				t.Errorf("URL rule leaked into host lookup: %v", got)
			}
		})
	}
}

// coversByCategory reports whether got names at least want's sources.
func coversByCategory(got, want map[string][]string) bool {
	for cat, srcs := range want {
		for _, src := range srcs {
			if !slices.Contains(got[cat], src) {
				return false
			}
		}
	}
	return true
}

// extractTar unpacks a .tar.gz into dir (the test's own copy of a UT1 tree).
func extractTar(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, dir, filepath.FromSlash(h.Name), b)
		}
	}
}

func TestRevision(t *testing.T) {
	data := dataDir(t)
	ctx := context.Background()
	srcs := realSources(data)
	base := realIndex(t).Revision()
	if len(base) < 12 {
		t.Fatalf("revision %q too short", base)
	}

	again, _ := Build(ctx, Config{Sources: srcs}, nil)
	if again.Revision() != base {
		t.Errorf("same input, revisions %s and %s", base, again.Revision())
	}

	reversed := slices.Clone(srcs)
	slices.Reverse(reversed)
	if ix, _ := Build(ctx, Config{Sources: reversed}, nil); ix.Revision() != base {
		t.Errorf("source order changed the revision: %s vs %s", ix.Revision(), base)
	}

	// The same UT1 tree as a directory instead of the archive.
	dir := t.TempDir()
	extractTar(t, srcs[0].Path, dir)
	asDir := slices.Clone(srcs)
	asDir[0].Path = dir
	ixDir, errs := Build(ctx, Config{Sources: asDir}, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if ixDir.Revision() != base {
		t.Errorf("directory vs archive: revisions %s and %s", ixDir.Revision(), base)
	}
	checkCounts(t, ixDir, len(expectedCounts))

	// One more line in one list changes the revision, and only that list's.
	p := filepath.Join(dir, "blacklists", "gambling", "domains")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "blacklists/gambling/domains", append(b, "new-casino.example\n"...))
	changed, _ := Build(ctx, Config{Sources: asDir}, nil)
	if changed.Revision() == base {
		t.Error("changed list, same revision")
	}
	before, after := map[string]string{}, map[string]string{}
	for _, s := range ixDir.Stats() {
		before[s.Label] = s.Revision
	}
	for _, s := range changed.Stats() {
		after[s.Label] = s.Revision
	}
	for label, r := range before {
		if (after[label] != r) != (label == "ut1:gambling") {
			t.Errorf("%s: revision %s -> %s", label, r, after[label])
		}
	}

	// A different mapping is a different result, so a different revision.
	remapped := slices.Clone(srcs)
	remapped[0].Map = map[string]string{"gambling": "betting"}
	if ix, _ := Build(ctx, Config{Sources: remapped[:1]}, nil); ix.Revision() == base {
		t.Error("remapped categories, same revision")
	}
}

// TestUT1Symlinks: the official archive has category aliases as symlinks
// (blacklists/porn -> adult); a map naming the alias follows the link,
// whether the link comes before or after its target in the archive.
func TestUT1Symlinks(t *testing.T) {
	for _, linkFirst := range []bool{true, false} {
		var buf strings.Builder
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		link := func() {
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "blacklists/drugs", Linkname: "drogue", Mode: 0o777})
		}
		if linkFirst {
			link()
		}
		body := "weed-shop.example\n"
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "blacklists/drogue/domains", Size: int64(len(body)), Mode: 0o644})
		tw.Write([]byte(body))
		if !linkFirst {
			link()
		}
		tw.Close()
		zw.Close()
		p := writeFile(t, t.TempDir(), "blacklists.tar.gz", []byte(buf.String()))
		ix, errs := Build(context.Background(), Config{Sources: []Source{{Name: "ut1", Path: p, Map: map[string]string{"drugs": "drugs", "drogue": "drugs"}}}}, nil)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		want := map[string][]string{"drugs": {"ut1:drogue", "ut1:drugs"}}
		if got := ix.Lookup("weed-shop.example").ByCategory(); !equalByCategory(got, want) {
			t.Errorf("linkFirst=%v: %v, want %v", linkFirst, got, want)
		}
	}
}

func TestUT1MissingCategory(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "gambling/domains", []byte("casino.example\n"))
	ix, errs := Build(context.Background(), Config{Sources: []Source{{Name: "ut1", Format: FormatUT1, Path: dir,
		Map: map[string]string{"gambling": "gambling", "nonexistent": "hate"}}}}, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var missing *SourceStats
	for _, s := range ix.Stats() {
		if s.List == "nonexistent" {
			missing = &s
		}
	}
	if missing == nil || !strings.Contains(missing.Error, "not found") {
		t.Fatalf("stats = %+v", ix.Stats())
	}
	if !ix.Lookup("casino.example").Has("gambling") {
		t.Fatal("present category not loaded")
	}
	_, errs = Build(context.Background(), Config{Sources: []Source{{Name: "ut1", Format: FormatUT1, Path: dir,
		Map: map[string]string{"nonexistent": "hate"}}}}, nil)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "none of the mapped UT1 categories") {
		t.Fatalf("errs = %v", errs)
	}
}
