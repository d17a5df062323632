package categories

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/aupguard/aupguard/config/field"
)

func TestDefaultConfigValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !c.Defaults || c.Refresh != 24*time.Hour || c.CacheDir == "" {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestConfigYAML(t *testing.T) {
	src := `
defaults: false
disable: [ut1]
refresh: 6h
cache_dir: /tmp/lists
fetch_timeout: 30s
sources:
  - name: ut1-live
    format: ut1
    url: https://example.org/blacklists.tar.gz
    map: {drogue: drugs, gambling: gambling}
    expressions: true
  - name: extremism-list
    category: extremism
    path: /etc/aupguard/extremism.txt
`
	c := DefaultConfig()
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Defaults || len(c.Disable) != 1 || c.Refresh != 6*time.Hour || c.FetchTimeout != 30*time.Second || len(c.Sources) != 2 ||
		c.Sources[0].Map["drogue"] != "drugs" || !c.Sources[0].Expressions || c.MaxListBytes != DefaultConfig().MaxListBytes {
		t.Fatalf("decoded = %+v", c)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Source{Name: "ok", Category: "gambling", Path: "/x"}
	cases := []struct {
		name  string
		mod   func(c *Config)
		paths []string // field paths expected, in order
		msg   string   // substring of the first message
	}{
		{"refresh too short", func(c *Config) { c.Refresh = time.Second }, []string{"refresh"}, "at least 1m"},
		{"refresh off is fine", func(c *Config) { c.Refresh = 0 }, nil, ""},
		{"timeout", func(c *Config) { c.FetchTimeout = 0 }, []string{"fetch_timeout"}, "positive"},
		{"sizes", func(c *Config) { c.MaxDownloadBytes, c.MaxListBytes = 0, -1 }, []string{"max_download_bytes", "max_list_bytes"}, "positive"},
		{"no path or url", func(c *Config) { c.Sources = []Source{{Name: "a", Category: "gambling"}} }, []string{"sources[0]"}, "one of path, url or urls"},
		{"both path and url", func(c *Config) {
			c.Sources = []Source{{Name: "a", Category: "gambling", Path: "/x", URL: "https://e.org/l"}}
		}, []string{"sources[0]"}, "mutually exclusive"},
		{"bad url", func(c *Config) { c.Sources = []Source{{Name: "a", Category: "gambling", URL: "ftp://e.org/l"}} }, []string{"sources[0].url"}, "not an http(s) URL"},
		{"url needs cache", func(c *Config) {
			c.CacheDir, c.Defaults = "", false
			c.Sources = []Source{{Name: "a", Category: "gambling", URL: "https://e.org/l"}}
		}, []string{"cache_dir"}, "required when a source has a url"},
		{"defaults need cache", func(c *Config) { c.CacheDir = "" }, []string{"cache_dir"}, "required"},
		{"a mirror needs no cache", func(c *Config) { c.CacheDir, c.Mirror = "", "/srv/lists" }, nil, ""},
		{"urls", func(c *Config) {
			c.Sources = []Source{{Name: "a", Category: "social", URLs: []string{"https://e.org/1", "gopher://e.org/2"}}}
		}, []string{"sources[0].urls[1]"}, "not an http(s) URL"},
		{"urls and url", func(c *Config) {
			c.Sources = []Source{{Name: "a", Category: "social", URL: "https://e.org/0", URLs: []string{"https://e.org/1"}}}
		}, []string{"sources[0]"}, "mutually exclusive"},
		{"urls for a ut1 tree", func(c *Config) {
			c.Sources = []Source{{Name: "a", Format: "ut1", URLs: []string{"https://e.org/1"}, Map: map[string]string{"gambling": "gambling"}}}
		}, []string{"sources[0].urls"}, "one archive"},
		{"disable a default", func(c *Config) { c.Disable = []string{"ut1", "tiuxo-porn"} }, nil, ""},
		{"disable an unknown source", func(c *Config) { c.Disable = []string{"ut2"} }, []string{"disable[0]"}, "not a default source"},
		{"the seed stays", func(c *Config) { c.Disable = []string{SeedName} }, []string{"disable[0]"}, "always loaded"},
		{"the seed is not replaced", func(c *Config) {
			c.Sources = []Source{{Name: SeedName, Category: "gambling", Path: "/x"}}
		}, []string{"sources[0].name"}, "cannot be replaced"},
		{"retry", func(c *Config) { c.Retry = 0 }, []string{"retry"}, "at least 1s"},
		{"bad name", func(c *Config) { c.Sources = []Source{{Name: "Bad Name", Category: "gambling", Path: "/x"}} }, []string{"sources[0].name"}, "lowercase"},
		{"name with colon", func(c *Config) { c.Sources = []Source{{Name: "a:b", Category: "gambling", Path: "/x"}} }, []string{"sources[0].name"}, "lowercase"},
		{"duplicate name", func(c *Config) { c.Sources = []Source{ok, ok} }, []string{"sources[1].name"}, "already used by sources[0]"},
		{"unknown format", func(c *Config) {
			c.Sources = []Source{{Name: "a", Category: "gambling", Path: "/x", Format: "csv"}}
		}, []string{"sources[0].format"}, "unknown format"},
		{"ut1 without map", func(c *Config) { c.Sources = []Source{{Name: "a", Format: "ut1", Path: "/x"}} }, []string{"sources[0].map"}, "required for format ut1"},
		{"ut1 with category", func(c *Config) {
			c.Sources = []Source{{Name: "a", Format: "ut1", Path: "/x", Category: "gambling", Map: map[string]string{"gambling": "gambling"}}}
		}, []string{"sources[0].category"}, "use map"},
		{"auto with neither", func(c *Config) { c.Sources = []Source{{Name: "a", Path: "/x"}} }, []string{"sources[0]"}, "not both or neither"},
		{"hosts without category", func(c *Config) { c.Sources = []Source{{Name: "a", Format: "hosts", Path: "/x"}} }, []string{"sources[0].category"}, "required for format hosts"},
		{"bad category", func(c *Config) { c.Sources = []Source{{Name: "a", Category: "Gambling!", Path: "/x"}} }, []string{"sources[0].category"}, "lowercase"},
		{"bad map value", func(c *Config) {
			c.Sources = []Source{{Name: "a", Format: "ut1", Path: "/x", Map: map[string]string{"drogue": "Drugs"}}}
		}, []string{"sources[0].map.drogue"}, "lowercase"},
		{"expressions on a list", func(c *Config) {
			c.Sources = []Source{{Name: "a", Category: "gambling", Path: "/x", Expressions: true}}
		}, []string{"sources[0].expressions"}, "only UT1 trees"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			c.mod(&cfg)
			err := cfg.Validate()
			var paths []string
			for _, e := range field.Flatten(err) {
				var fe *field.Error
				if !errors.As(e, &fe) {
					t.Fatalf("not a field error: %v", e)
				}
				paths = append(paths, fe.Path)
			}
			if !slices.Equal(paths, c.paths) {
				t.Fatalf("paths = %v, want %v (err: %v)", paths, c.paths, err)
			}
			if c.msg != "" && !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %v, want %q", err, c.msg)
			}
		})
	}
}

// TestREADMEConfigExample keeps the README's YAML example valid.
func TestREADMEConfigExample(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "```yaml\n")
	block, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatal("no yaml block in README.md")
	}
	var doc struct {
		Categories Config `yaml:"lists"`
	}
	doc.Categories = DefaultConfig()
	dec := yaml.NewDecoder(strings.NewReader(block))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if err := doc.Categories.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(doc.Categories.Sources) != 3 || doc.Categories.Refresh != 12*time.Hour {
		t.Fatalf("example decoded to %+v", doc.Categories)
	}
}
