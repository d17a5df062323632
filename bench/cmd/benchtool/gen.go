package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// cmdGen writes, for each requested list size N:
//
//	block-N.txt              N domains, one per line (aupguard "domains"
//	                         format, squidGuard domainlist, e2guardian site list)
//	unbound-block-N.conf     local-zone: "d." always_nxdomain
//	dnsmasq-block-N.conf     address=/d/0.0.0.0
//	queries-blocked-N.txt    dnsperf input: listed names
//
// and once: queries-allowed.txt (dnsperf input: names no list has) and
// allowed-sample.txt / blocked-sample-N.txt (one name each, for the
// pre-flight checks: the blocked sample is a sentinel name only that list
// has). The domains are real ones from the UT1 blacklists and
// the shared lists, in a stable pseudo-random order; sizes past the real
// names are filled with generated, realistic-looking names.
func cmdGen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	out := fs.String("out", "", "output directory")
	data := fs.String("data", "", "shared list data directory (../shared/data beside the repository)")
	sizes := fs.String("sizes", "100000,1000000", "block list sizes, comma separated")
	allowed := fs.Int("allowed", 5000, "allowed names in queries-allowed.txt")
	blocked := fs.Int("blocked", 5000, "listed names in each queries-blocked-N.txt")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || *data == "" {
		return errors.New("-out and -data are required")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	var ns []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("-sizes: %q is not a positive number", s)
		}
		ns = append(ns, n)
	}
	real, err := realDomains(*data)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "benchtool gen: %d real domains from %s\n", len(real), *data)
	for _, n := range ns {
		names := pick(real, n)
		label := sizeLabel(n)
		if err := writeLists(*out, label, names, *blocked); err != nil {
			return err
		}
	}
	var q []string
	for i := range *allowed {
		q = append(q, fmt.Sprintf("www.site-%d.allowed.bench.example", i))
	}
	if err := writeLines(filepath.Join(*out, "queries-allowed.txt"), q, func(s string) string { return s + " A" }); err != nil {
		return err
	}
	return writeLines(filepath.Join(*out, "allowed-sample.txt"), q[:1], nil)
}

// sizeLabel names a size the way the files and the report do: 100k, 1m.
func sizeLabel(n int) string {
	switch {
	case n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "m"
	case n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

func writeLists(dir, label string, names []string, nQueries int) error {
	// The last entry is a name no other list has, so a pre-flight check
	// on it proves this list (and not a peer's own default lists) is loaded.
	sentinel := "list-sentinel-" + label + ".bench-block.org"
	names[len(names)-1] = sentinel
	files := []struct {
		name string
		f    func(string) string
	}{
		{"block-" + label + ".txt", nil},
		{"unbound-block-" + label + ".conf", func(d string) string { return "local-zone: \"" + d + ".\" always_nxdomain" }},
		{"dnsmasq-block-" + label + ".conf", func(d string) string { return "address=/" + d + "/0.0.0.0" }},
	}
	for _, f := range files {
		if err := writeLines(filepath.Join(dir, f.name), names, f.f); err != nil {
			return err
		}
	}
	// Queries: an even spread over the list, in list order (which is
	// already pseudo-random).
	step := max(len(names)/nQueries, 1)
	var q []string
	for i := 0; i < len(names) && len(q) < nQueries; i += step {
		q = append(q, names[i])
	}
	if err := writeLines(filepath.Join(dir, "queries-blocked-"+label+".txt"), q, func(s string) string { return s + " A" }); err != nil {
		return err
	}
	return writeLines(filepath.Join(dir, "blocked-sample-"+label+".txt"), []string{sentinel}, nil)
}

func writeLines(path string, lines []string, f func(string) string) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(fh, 1<<20)
	for _, l := range lines {
		if f != nil {
			l = f(l)
		}
		w.WriteString(l)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		fh.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return fh.Close()
}

// pick returns n names: real ones first (in their stable order), then
// generated ones.
func pick(real []string, n int) []string {
	if n <= len(real) {
		return slices.Clone(real[:n])
	}
	out := slices.Clone(real)
	seen := make(map[string]bool, n)
	for _, d := range real {
		seen[d] = true
	}
	words := []string{"casino", "bet", "poker", "slots", "stream", "free", "movie", "game", "cdn", "shop", "news", "tube", "torrent", "proxy", "vpn", "chat"}
	tlds := []string{"com", "net", "org", "info", "co.uk", "de", "fr", "xyz", "io", "ru", "top", "site"}
	h := fnv.New64a()
	for i := 0; len(out) < n; i++ {
		h.Reset()
		fmt.Fprint(h, i)
		r := h.Sum64()
		d := words[r%uint64(len(words))] + "-" + strconv.FormatInt(int64(i), 36) + "." + tlds[(r>>8)%uint64(len(tlds))]
		if r>>16%3 == 0 {
			d = words[(r>>24)%uint64(len(words))] + "." + d
		}
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// realDomains reads every domain of the UT1 tarball and the shared lists,
// keeps the valid, distinct host names, and orders them by a hash so a
// prefix of any length is a fair sample of all of them.
func realDomains(data string) ([]string, error) {
	seen := map[string]bool{}
	add := func(line string) {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		var d string
		switch len(f) {
		case 1:
			d = f[0]
		case 2: // hosts format: 0.0.0.0 name
			if _, err := netip.ParseAddr(f[0]); err != nil {
				return
			}
			d = f[1]
		default:
			return
		}
		d = strings.TrimSuffix(strings.ToLower(d), ".")
		if validName(d) {
			seen[d] = true
		}
	}
	if err := readUT1(filepath.Join(data, "ut1-blacklists.tar.gz"), add); err != nil {
		return nil, err
	}
	lists, _ := filepath.Glob(filepath.Join(data, "lists", "*.gz"))
	for _, p := range lists {
		if err := readGz(p, add); err != nil {
			return nil, err
		}
	}
	out := make([]string, 0, len(seen))
	for d := range seen {
		out = append(out, d)
	}
	key := func(s string) uint64 {
		h := fnv.New64a()
		h.Write([]byte(s))
		return h.Sum64()
	}
	slices.SortFunc(out, func(a, b string) int {
		ka, kb := key(a), key(b)
		switch {
		case ka < kb:
			return -1
		case ka > kb:
			return 1
		}
		return strings.Compare(a, b)
	})
	return out, nil
}

func readUT1(path string, add func(string)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if h.Typeflag != tar.TypeReg || filepath.Base(h.Name) != "domains" {
			continue
		}
		if err := scan(tr, add); err != nil {
			return fmt.Errorf("%s: %s: %w", path, h.Name, err)
		}
	}
}

func readGz(path string, add func(string)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := scan(zr, add); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func scan(r io.Reader, add func(string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		add(sc.Text())
	}
	return sc.Err()
}

// validName accepts what every peer's list syntax accepts: LDH labels, a
// letter-only TLD, at least two labels, no reserved test names.
func validName(d string) bool {
	if len(d) > 253 || !strings.Contains(d, ".") {
		return false
	}
	labels := strings.Split(d, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	tld := labels[len(labels)-1]
	for i := 0; i < len(tld); i++ {
		if tld[i] < 'a' || tld[i] > 'z' {
			return false
		}
	}
	switch tld {
	case "example", "invalid", "localhost", "test", "local", "arpa":
		return false
	}
	return true
}
