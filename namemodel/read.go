package namemodel

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aupguard/aupguard/categories"
)

// BenignUT1 are the UT1 categories used as benign names: sites learners
// may use, which the default policy does not block.
var BenignUT1 = []string{"bank", "jobsearch", "press", "shopping", "sports", "webmail", "educational_games"}

// PopularMirror is the popular-sites list's file under a lists mirror: a
// benign reference, not a block list.
const PopularMirror = "lists/popular-majestic-top10k.txt.gz"

// PopularSource names the popular-sites list in a TrainingSet.
const PopularSource = "popular-majestic-top10k"

// openMaybeGzip returns a reader of r's content, gunzipped when it starts
// with the gzip magic bytes.
func openMaybeGzip(r io.Reader) (*bufio.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		return bufio.NewReaderSize(zr, 64<<10), nil
	}
	return br, nil
}

// ReadNames reads the domain names of a list in the formats the default
// sources use — one name per line, hosts lines ("0.0.0.0 a.example"),
// "||a.example^" rules — gzipped or not, normalized with
// categories.Normalize. IP addresses, one-label names and lines that do
// not parse are skipped: the model learns from names.
func ReadNames(ctx context.Context, r io.Reader) ([]string, error) {
	br, err := openMaybeGzip(r)
	if err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for n := 0; sc.Scan(); n++ {
		if n&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		line := sc.Bytes()
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := bytes.Fields(line)
		if len(fields) == 0 || fields[0][0] == '!' || fields[0][0] == '[' {
			continue
		}
		if len(fields) > 1 {
			if _, err := netip.ParseAddr(string(fields[0])); err == nil {
				fields = fields[1:]
			}
		} else if f := fields[0]; bytes.HasPrefix(f, []byte("||")) {
			f = bytes.TrimPrefix(f, []byte("||"))
			if i := bytes.IndexAny(f, "^$/"); i >= 0 {
				f = f[:i]
			}
			fields[0] = f
		}
		for _, f := range fields {
			if name, ok := normalizeName(string(f)); ok {
				out = append(out, name)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// normalizeName is categories.Normalize, keeping domain names of two
// labels or more.
func normalizeName(s string) (string, bool) {
	if bytes.ContainsAny([]byte(s), "/:") {
		return "", false
	}
	n, err := categories.Normalize(s)
	if err != nil || !strings.Contains(n, ".") || n == "localhost.localdomain" {
		return "", false
	}
	if _, err := netip.ParseAddr(n); err == nil {
		return "", false
	}
	return n, true
}

// ReadUT1 reads the "domains" files of the wanted categories from a UT1
// blacklists archive (tar, gzipped or not), streaming. Category
// directories that are symlinks (aliases) are followed. It returns the
// names per UT1 category.
func ReadUT1(ctx context.Context, r io.Reader, want []string) (map[string][]string, error) {
	br, err := openMaybeGzip(r)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	aliases := map[string]string{}
	tr := tar.NewReader(br)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("ut1 archive: %w", err)
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		dir, file := path.Split(name)
		cat := path.Base(dir)
		if hdr.Typeflag == tar.TypeSymlink {
			aliases[path.Base(name)] = path.Base(hdr.Linkname)
			continue
		}
		if file != "domains" || hdr.Typeflag != tar.TypeReg || !slices.Contains(want, cat) {
			continue
		}
		names, err := ReadNames(ctx, tr)
		if err != nil {
			return nil, fmt.Errorf("ut1 %s: %w", name, err)
		}
		out[cat] = names
	}
	for _, c := range want {
		if _, ok := out[c]; !ok {
			if t, ok := aliases[c]; ok {
				out[c] = out[t]
			}
		}
	}
	return out, nil
}

// LoadMirror reads a training set from a lists mirror directory (the
// layout of categories.Config.Mirror): every default source as positives
// of its category, UT1's mapped categories as theirs, and as benign names
// UT1's BenignUT1 categories and the popular-sites list. A default source
// whose file is missing is skipped (listed in missing); a file that does
// not read is an error.
func LoadMirror(ctx context.Context, dir string) (ts TrainingSet, missing []string, err error) {
	for _, d := range categories.DefaultSources() {
		p := filepath.Join(dir, filepath.FromSlash(d.Mirror))
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			missing = append(missing, d.Name)
			continue
		}
		if err != nil {
			return ts, missing, err
		}
		if d.Format == categories.FormatUT1 {
			want := slices.Clone(BenignUT1)
			for c := range d.Map {
				want = append(want, c)
			}
			byCat, err := ReadUT1(ctx, f, want)
			f.Close()
			if err != nil {
				return ts, missing, fmt.Errorf("%s: %w", p, err)
			}
			for _, c := range slices.Sorted(maps.Keys(byCat)) {
				cat := d.Map[c]
				if slices.Contains(BenignUT1, c) {
					cat = Benign
				}
				ts.Lists = append(ts.Lists, List{Source: d.Name + ":" + c, Category: cat, Names: byCat[c]})
			}
			continue
		}
		names, err := ReadNames(ctx, f)
		f.Close()
		if err != nil {
			return ts, missing, fmt.Errorf("%s: %w", p, err)
		}
		ts.Lists = append(ts.Lists, List{Source: d.Name, Category: d.Category, Names: names})
	}
	p := filepath.Join(dir, filepath.FromSlash(PopularMirror))
	f, err := os.Open(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		missing = append(missing, PopularSource)
	case err != nil:
		return ts, missing, err
	default:
		names, err := ReadNames(ctx, f)
		f.Close()
		if err != nil {
			return ts, missing, fmt.Errorf("%s: %w", p, err)
		}
		ts.Lists = append(ts.Lists, List{Source: PopularSource, Category: Benign, Names: names})
	}
	return ts, missing, nil
}
