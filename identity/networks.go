package identity

import (
	"fmt"
	"net/netip"
	"slices"
)

// netTable answers "may this address use the service, and which groups is
// it in" without allocating: it is built once and only read afterwards.
type netTable struct {
	allowed []netip.Prefix
	// groups is keyed by masked prefix; lens4 and lens6 list the distinct
	// prefix lengths present, longest first, so a lookup tries at most one
	// map probe per length and the first hit is the most specific.
	groups map[netip.Prefix][]string
	lens4  []int
	lens6  []int
}

func newNetTable(networks []string, groups map[string][]string) (*netTable, error) {
	t := &netTable{groups: make(map[netip.Prefix][]string, len(groups))}
	for _, n := range networks {
		p, err := ParsePrefix(n)
		if err != nil {
			return nil, fmt.Errorf("networks: %w", err)
		}
		t.allowed = append(t.allowed, p)
	}
	for k, gs := range groups {
		p, err := ParsePrefix(k)
		if err != nil {
			return nil, fmt.Errorf("groups: %w", err)
		}
		// A clipped copy: callers get this slice itself and must not be
		// able to append into a shared backing array.
		t.groups[p] = slices.Clip(slices.Clone(gs))
		if p.Addr().Is4() {
			t.lens4 = appendUnique(t.lens4, p.Bits())
		} else {
			t.lens6 = appendUnique(t.lens6, p.Bits())
		}
	}
	slices.SortFunc(t.lens4, func(a, b int) int { return b - a })
	slices.SortFunc(t.lens6, func(a, b int) int { return b - a })
	return t, nil
}

func appendUnique(s []int, v int) []int {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

func (t *netTable) identify(ip netip.Addr) ([]string, bool) {
	ip = ip.Unmap()
	if ip.Zone() != "" {
		ip = ip.WithZone("")
	}
	allowed := false
	for _, p := range t.allowed {
		if p.Contains(ip) {
			allowed = true
			break
		}
	}
	if !allowed {
		return nil, false
	}
	lens := t.lens6
	if ip.Is4() {
		lens = t.lens4
	}
	for _, l := range lens {
		p, err := ip.Prefix(l)
		if err != nil {
			continue
		}
		if gs, ok := t.groups[p]; ok {
			return gs, true
		}
	}
	return nil, true
}
