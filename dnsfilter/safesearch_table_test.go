package dnsfilter

import (
	"bufio"
	"github.com/aupguard/aupguard/internal/testutil"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sharedData returns a file of the project's shared data (../shared/data
// beside the repository; see its README.md).
func sharedData(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(testutil.SharedData(t), name)
	_, err := os.Stat(p)
	testutil.Require(t, err == nil, "shared data %s not available: %v", p, err)
	return p
}

// TestSafeSearchTableMatchesFacts checks the Go table entry by entry
// against the collected facts, and that it holds nothing else.
func TestSafeSearchTableMatchesFacts(t *testing.T) {
	f, err := os.Open(sharedData(t, "safesearch.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	table := safeSearchTable()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.HasPrefix(text, "#") || strings.TrimSpace(text) == "" {
			continue
		}
		cols := strings.Split(text, "\t")
		if len(cols) < 4 {
			t.Fatalf("safesearch.tsv:%d: %d columns", line, len(cols))
		}
		host, record, target, engine := cols[0]+".", cols[1], cols[2], cols[3]
		seen[host] = true
		rule, ok := table[host]
		if !ok {
			t.Errorf("safesearch.tsv:%d: %s missing from the table", line, host)
			continue
		}
		if rule.engine != engine {
			t.Errorf("%s: engine %q, facts say %q", host, rule.engine, engine)
		}
		switch record {
		case "CNAME":
			// The facts give the moderate target (AdGuard's choice); for
			// YouTube, strict is restrict.youtube.com.
			if rule.target(safeSearchModerate) != target+"." {
				t.Errorf("%s: moderate target %q, facts say %q", host, rule.target(safeSearchModerate), target)
			}
			if engine == "youtube" && rule.target(safeSearchStrict) != youtubeStrict {
				t.Errorf("%s: strict target %q", host, rule.target(safeSearchStrict))
			}
		case "A":
			if len(rule.addrs) != 1 || rule.addrs[0] != netip.MustParseAddr(target) {
				t.Errorf("%s: addresses %v, facts say %s", host, rule.addrs, target)
			}
		default:
			t.Errorf("safesearch.tsv:%d: unknown record type %q", line, record)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for host := range table {
		if !seen[host] {
			t.Errorf("table has %s, which the facts do not", host)
		}
	}
	if len(seen) < 450 {
		t.Errorf("only %d facts read", len(seen))
	}
}

func TestSafeSearchVIPsMatchFacts(t *testing.T) {
	b, err := os.ReadFile(sharedData(t, "safesearch.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	var vipLine string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "# VIPs") {
			vipLine = l
		}
	}
	for target, addrs := range safeSearchVIPs() {
		for _, a := range addrs {
			if !strings.Contains(vipLine, a.String()) {
				t.Errorf("VIP %s for %s is not in the facts: %q", a, target, vipLine)
			}
		}
		if !strings.Contains(vipLine, strings.TrimSuffix(target, ".")) {
			t.Errorf("target %s is not in the facts", target)
		}
	}
}
