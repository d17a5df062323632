package config

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A yamlBlock is one ```yaml block of a Markdown file.
type yamlBlock struct {
	file string
	line int    // of the opening fence
	info string // what follows "```yaml" on the fence
	body string
}

// docYAMLBlocks returns the ```yaml blocks of every README.md in the
// module and of docs/*.md.
func docYAMLBlocks(t *testing.T, root string) []yamlBlock {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && p != root || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && d.Name() == "README.md" {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append(files, docs...)
	var out []yamlBlock
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		var cur *yamlBlock
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			switch {
			case cur == nil && strings.HasPrefix(line, "```yaml"):
				rel, _ := filepath.Rel(root, f)
				cur = &yamlBlock{file: rel, line: n, info: strings.TrimSpace(strings.TrimPrefix(line, "```yaml"))}
			case cur != nil && strings.HasPrefix(line, "```"):
				out = append(out, *cur)
				cur = nil
			case cur != nil:
				cur.body += line + "\n"
			}
		}
	}
	return out
}

// wrap indents body under the dotted section path ("proxy.timeouts").
func wrap(section, body string) string {
	var b strings.Builder
	parts := strings.Split(section, ".")
	for i, p := range parts {
		fmt.Fprintf(&b, "%s%s:\n", strings.Repeat("  ", i), p)
	}
	indent := strings.Repeat("  ", len(parts))
	for _, l := range strings.SplitAfter(body, "\n") {
		if strings.TrimSpace(l) != "" {
			b.WriteString(indent)
		}
		b.WriteString(l)
	}
	return b.String()
}

// docPathRe finds the absolute paths examples name for an operator's files.
var docPathRe = regexp.MustCompile(`/(?:etc|var/lib|var/cache)/aupguard(?:/[\w.+-]+)*`)

// TestDocsYAMLBlocksLoad parses every ```yaml block of every README.md
// and of docs/*.md with the real configuration loader (unknown keys, bad
// values and failed validation are errors), so no documentation shows a
// configuration aupguard would refuse. The rule for writers:
//
//   - a ```yaml block is a configuration file, or some of its top-level
//     sections, and must load as it is;
//   - a block that shows part of a section says which, on the fence:
//     ```yaml section=proxy.timeouts — it is loaded under that path;
//   - YAML that is not aupguard's configuration (a policy data file, say)
//     is fenced ```yaml not-config and is not loaded.
//
// Files the examples name under /etc/aupguard, /var/lib/aupguard or
// /var/cache/aupguard are made in a temporary directory the paths are
// pointed at: a certificate for a .pem, a placeholder line otherwise.
func TestDocsYAMLBlocksLoad(t *testing.T) {
	blocks := docYAMLBlocks(t, "..")
	if len(blocks) < 10 {
		t.Fatalf("found only %d yaml blocks; is the walk broken?", len(blocks))
	}
	for _, b := range blocks {
		name := fmt.Sprintf("%s:%d", b.file, b.line)
		t.Run(name, func(t *testing.T) {
			body := b.body
			switch {
			case b.info == "not-config":
				t.Skip("fenced not-config")
			case strings.HasPrefix(b.info, "section="):
				body = wrap(strings.TrimPrefix(b.info, "section="), body)
			case b.info != "":
				t.Fatalf("fence info %q is neither section=<path> nor not-config", b.info)
			}
			dir := t.TempDir()
			body = docPathRe.ReplaceAllStringFunc(body, func(p string) string {
				local := filepath.Join(dir, p)
				if filepath.Ext(p) != "" { // a file: make it
					if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
						t.Fatal(err)
					}
					content := []byte("placeholder\n")
					if filepath.Ext(p) == ".pem" {
						content = testCertPEM(t)
					}
					if err := os.WriteFile(local, content, 0o600); err != nil {
						t.Fatal(err)
					}
				}
				return local
			})
			if _, err := Parse(name, []byte(body)); err != nil {
				t.Errorf("%v\n--- the block as loaded:\n%s", err, body)
			}
		})
	}
}

// testCertPEM is a self-signed certificate, for examples naming a CA file.
func testCertPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "docs example CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestWrapPutsAFragmentUnderItsSection(t *testing.T) {
	got := wrap("proxy.timeouts", "tunnel_idle: 5m\n\n# idle\ndial: 5s\n")
	want := "proxy:\n  timeouts:\n    tunnel_idle: 5m\n\n    # idle\n    dial: 5s\n"
	if got != want {
		t.Fatalf("wrap =\n%s\nwant\n%s", got, want)
	}
	if _, err := Parse("fragment", []byte(got)); err != nil {
		t.Fatal(err)
	}
}
