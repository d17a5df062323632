package config

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// ParseHostsFile reads an /etc/hosts-style file: an address followed by
// one or more names per line, # comments. It returns name → addresses.
func ParseHostsFile(path string) (map[string][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fs := strings.Fields(line)
		if len(fs) == 0 {
			continue
		}
		if len(fs) < 2 {
			return nil, fmt.Errorf("%s:%d: want an address and at least one name", path, n)
		}
		a, err := netip.ParseAddr(fs[0])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %q is not an IP address", path, n, fs[0])
		}
		for _, name := range fs[1:] {
			k := strings.TrimSuffix(strings.ToLower(name), ".")
			out[k] = append(out[k], a.String())
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// HostMap merges HostsFile and Hosts (Hosts wins) with lower-case names.
func (c *Config) HostMap() (map[string][]string, error) {
	out := map[string][]string{}
	if c.HostsFile != "" {
		m, err := ParseHostsFile(c.HostsFile)
		if err != nil {
			return nil, err
		}
		out = m
	}
	for k, v := range c.Hosts {
		out[strings.TrimSuffix(strings.ToLower(k), ".")] = v
	}
	return out, nil
}
