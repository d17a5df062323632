package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultsAreValid(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.Policy.DefaultGroups[0] != "learners" || c.Cache.Size <= 0 || !c.Lists.Defaults {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestEmptyFileIsDefaults(t *testing.T) {
	c, err := Parse("empty.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Admin.Listen != Default().Admin.Listen {
		t.Fatal("empty file did not give defaults")
	}
}

func TestValuesOverrideDefaultsAndKeepTheRest(t *testing.T) {
	c, err := Parse("a.yaml", []byte("cache:\n  size: 5\n  max_ttl: 10m\npolicy:\n  timezone: Europe/London\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Cache.Size != 5 || c.Cache.MaxTTL != 10*time.Minute || c.Cache.DefaultTTL != 5*time.Minute {
		t.Fatalf("cache = %+v", c.Cache)
	}
	if loc, _ := c.Location(); loc.String() != "Europe/London" {
		t.Fatalf("location = %v", loc)
	}
}

func TestErrorsNameFileLineAndKey(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key with suggestion", "cache:\n  sise: 5\n", []string{"c.yaml:2:", "cache.sise", "unknown key", `did you mean "size"`}},
		{"unknown top-level key", "proxyy: {}\n", []string{"c.yaml:1:", "proxyy", "unknown key"}},
		{"bad type", "cache:\n  size: lots\n", []string{"c.yaml:2:", "lots"}},
		{"bad duration", "cache:\n  max_ttl: forever\n", []string{"c.yaml:2:", "forever"}},
		{"bad value", "log:\n  level: loud\n", []string{"c.yaml:2:", "log.level", "loud"}},
		{"bad timezone", "policy:\n  timezone: Mars/Olympus\n", []string{"c.yaml:2:", "policy.timezone"}},
		{"bad host address", "hosts:\n  www.example.com:\n    - 127.0.0.1\n    - not-an-ip\n", []string{"c.yaml:4:", "hosts.www.example.com[1]", "not-an-ip"}},
		{"list item in a section", "lists:\n  sources:\n    - name: x\n      category: gambling\n      pth: /tmp/x\n", []string{"c.yaml:5:", "lists.sources[0].pth", "unknown key"}},
		{"mapping expected", "cache: 5\n", []string{"c.yaml:1:", "cache", "mapping"}},
		{"syntax error", "cache:\n  size: [1,\n", []string{"c.yaml:"}},
		{"two problems at once", "cache:\n  size: -1\nlog:\n  format: xml\n", []string{"c.yaml:2:", "cache.size", "c.yaml:4:", "log.format"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestHostsFileMergesUnderHosts(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(p, []byte("# test origins\n127.0.0.1 www.pokerstars.com casino.example\n::1 v6.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Parse("c.yaml", []byte("hosts_file: "+p+"\nhosts:\n  Casino.Example.: [127.0.0.2]\n"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.HostMap()
	if err != nil {
		t.Fatal(err)
	}
	if m["www.pokerstars.com"][0] != "127.0.0.1" || m["casino.example"][0] != "127.0.0.2" || m["v6.example"][0] != "::1" {
		t.Fatalf("host map = %v", m)
	}
	bad := filepath.Join(t.TempDir(), "hosts")
	os.WriteFile(bad, []byte("127.0.0.1 ok.example\nnonsense\n"), 0o644)
	_, err = Parse("c.yaml", []byte("hosts_file: "+bad+"\n"))
	if err == nil || !strings.Contains(err.Error(), "hosts:2") {
		t.Fatalf("bad hosts file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("cache:\n  size: 5\n"))
	f.Add([]byte("hosts:\n  a: [1.2.3.4]\n"))
	f.Add([]byte("lists:\n  sources:\n    - {name: x, category: y, path: /nonexistent}\n"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Any input gives a config or an error; never a panic.
		c, err := Parse("fuzz.yaml", b)
		if err == nil && c == nil {
			t.Fatal("nil config without error")
		}
	})
}
