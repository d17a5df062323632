package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
)

// RefusedError says the proxy would not connect to a destination because
// every address it resolves to is internal (and no allow_destinations
// entry allows it), or is one of this process's own listeners.
type RefusedError struct {
	// Host is the destination as the client named it.
	Host string
	// Addr is the first refused address it resolved to.
	Addr netip.Addr
	// Why names the kind of address ("loopback address", ...).
	Why string
}

func (e *RefusedError) Error() string {
	if e.Host == e.Addr.String() {
		return fmt.Sprintf("destination %s refused: %s", e.Host, e.Why)
	}
	return fmt.Sprintf("destination %s (%s) refused: %s", e.Host, e.Addr, e.Why)
}

// Special networks the proxy never dials unless allow_destinations says
// so. Checked in order; the first match names the reason.
var specialNets = []struct {
	p   netip.Prefix
	why string
}{
	{netip.MustParsePrefix("169.254.169.254/32"), "cloud metadata address"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "cloud metadata address"},
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified (\"this network\") address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT (shared) address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved or broadcast address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64 address"},
	{netip.MustParsePrefix("100::/64"), "discard-only address"},
}

// Prefixes whose IPv6 addresses carry an IPv4 address that a gateway on
// the way would forward to: the NAT64 well-known prefix (RFC 6052; the
// embedded address is the last 32 bits) and 6to4 (RFC 3056; bits 16-47).
// RFC 6052 forbids non-global addresses behind the well-known prefix, but
// not every NAT64 gateway enforces it.
var (
	nat64WKP  = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// classify says why an address is internal, or "" for a public one.
func classify(ip netip.Addr) string {
	if why := classifyEmbedded(ip); why != "" {
		return why
	}
	for _, s := range specialNets {
		if s.p.Contains(ip) {
			return s.why
		}
	}
	switch {
	case ip.IsUnspecified():
		return "unspecified address"
	case ip.IsLoopback():
		return "loopback address"
	case ip.IsPrivate():
		return "private address"
	case ip.IsLinkLocalUnicast():
		return "link-local address"
	case ip.IsMulticast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast():
		return "multicast address"
	}
	return ""
}

// classifyEmbedded says why the IPv4 address inside a NAT64 or 6to4
// address is internal, or "".
func classifyEmbedded(ip netip.Addr) string {
	b := ip.As16()
	switch {
	case nat64WKP.Contains(ip):
		if why := classify(netip.AddrFrom4([4]byte(b[12:16]))); why != "" {
			return "NAT64 form of an internal address: " + why
		}
	case sixToFour.Contains(ip):
		if why := classify(netip.AddrFrom4([4]byte(b[2:6]))); why != "" {
			return "6to4 form of an internal address: " + why
		}
	}
	return ""
}

// nameserverResolver resolves with Go's own resolver, sending every query
// to servers (host:port) in turn instead of to /etc/resolv.conf's (whose
// search domains and options still apply, as does /etc/hosts).
func nameserverResolver(servers []string) *net.Resolver {
	var next atomic.Uint32
	var d net.Dialer
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			n := next.Add(1) - 1
			return d.DialContext(ctx, network, servers[n%uint32(len(servers))])
		},
	}
}

// dialer resolves a destination, checks every address against the
// destination rules, and dials only an address it checked: there is no
// second lookup between the check and the connect, so DNS rebinding has no
// window.
type dialer struct {
	allow    []netip.Prefix
	hosts    map[string][]netip.Addr
	resolver *net.Resolver
	nd       net.Dialer

	mu sync.RWMutex
	// self are this process's listeners; an unspecified address means the
	// port on any local address.
	self  []netip.AddrPort
	local map[netip.Addr]bool
}

// protect adds a listener ("host:port"; an empty, unspecified or named host
// means every local address) that no client may reach through the proxy.
func (d *dialer) protect(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("protected address %q: %w", addr, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fmt.Errorf("protected address %q: bad port", addr)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		ip = netip.IPv6Unspecified() // empty or a name: be conservative
	}
	d.mu.Lock()
	d.self = append(d.self, netip.AddrPortFrom(ip.Unmap(), uint16(p)))
	d.mu.Unlock()
	return nil
}

// setLocal records this host's interface addresses, which an unspecified
// listener is reachable on.
func (d *dialer) setLocal(addrs []netip.Addr) {
	m := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		m[a.Unmap().WithZone("")] = true
	}
	d.mu.Lock()
	d.local = m
	d.mu.Unlock()
}

// check returns why ip:port may not be dialled, or "". ip is unmapped.
func (d *dialer) check(ip netip.Addr, port uint16) string {
	d.mu.RLock()
	for _, s := range d.self {
		if s.Port() != port {
			continue
		}
		if s.Addr() == ip || (s.Addr().IsUnspecified() && (ip.IsLoopback() || ip.IsUnspecified() || d.local[ip])) ||
			(s.Addr().IsLoopback() && ip.IsUnspecified()) {
			d.mu.RUnlock()
			// No allow_destinations entry reopens these: a learner must
			// never reach the admin console, and a request to the proxy
			// itself would loop.
			return "this is one of aupguard's own listeners"
		}
	}
	d.mu.RUnlock()
	why := classify(ip)
	if why == "" {
		return ""
	}
	for _, p := range d.allow {
		if p.Contains(ip) {
			return ""
		}
	}
	return why
}

// resolve returns the addresses of host: from the static hosts map when it
// names host, else from DNS. They may be IPv4-mapped.
func (d *dialer) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip.WithZone("")}, nil
	}
	name, err := normHost(host)
	if err != nil {
		return nil, err
	}
	if ips, ok := d.hosts[name]; ok {
		return ips, nil
	}
	return d.resolver.LookupNetIP(ctx, "ip", name)
}

// DialContext is the only way the proxy connects to an origin: for plain
// HTTP through the transport, and for CONNECT tunnels directly.
func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %q: %w", addr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("dial %q: bad port", addr)
	}
	ips, err := d.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var refused *RefusedError
	var lastErr error
	for _, ip := range ips {
		// An IPv4-mapped address reaches the IPv4 address it maps (the
		// kernel dials ::ffff:0.0.0.0 as 0.0.0.0, this host), and Go's
		// resolver returns some answers in that form (an AAAA record of
		// "::" comes back as both :: and ::ffff:0.0.0.0): check and dial
		// it as IPv4, or the IPv4 ranges would not match it.
		ip = ip.Unmap()
		if why := d.check(ip, uint16(port)); why != "" {
			if refused == nil {
				refused = &RefusedError{Host: host, Addr: ip, Why: why}
			}
			continue
		}
		c, err := d.nd.DialContext(ctx, "tcp", netip.AddrPortFrom(ip, uint16(port)).String())
		if err == nil {
			return c, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	if lastErr != nil {
		return nil, lastErr
	}
	if refused != nil {
		return nil, refused
	}
	return nil, fmt.Errorf("dial %s: no addresses", host)
}

// isRefused reports whether err is (or wraps) a RefusedError.
func isRefused(err error) (*RefusedError, bool) {
	var r *RefusedError
	if errors.As(err, &r) {
		return r, true
	}
	return nil, false
}
