package dnsfilter

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestReadmeExamples decodes every YAML example of README.md over the
// defaults and validates it, so the documentation cannot drift from the
// code.
func TestReadmeExamples(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(b), "```yaml\n")[1:]
	if len(blocks) < 2 {
		t.Fatalf("found %d yaml examples", len(blocks))
	}
	for i, blk := range blocks {
		src, _, ok := strings.Cut(blk, "```")
		if !ok {
			t.Fatalf("example %d is not closed", i)
		}
		var doc struct {
			DNS Config `yaml:"dns"`
		}
		doc.DNS = DefaultConfig()
		dec := yaml.NewDecoder(strings.NewReader(src))
		dec.KnownFields(true)
		if err := dec.Decode(&doc); err != nil {
			t.Errorf("example %d: %v\n%s", i, err, src)
			continue
		}
		if err := doc.DNS.Validate(); err != nil {
			t.Errorf("example %d does not validate: %v", i, err)
		}
	}
}

// TestReadmeDocumentsEveryKey checks that each yaml key of Config appears
// in the README's key table.
func TestReadmeDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var tree map[string]any
	if err := yaml.Unmarshal(out, &tree); err != nil {
		t.Fatal(err)
	}
	for k, v := range tree {
		keys := []string{k}
		if sub, ok := v.(map[string]any); ok {
			keys = nil
			for sk := range sub {
				keys = append(keys, k+"."+sk)
			}
		}
		for _, key := range keys {
			if !strings.Contains(string(b), "| `"+key+"` |") {
				t.Errorf("README.md does not document %s", key)
			}
		}
	}
}
