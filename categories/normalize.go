package categories

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/net/idna"
)

// Limits from RFC 1035 (names in presentation form, without the root dot).
const (
	maxNameLen  = 253
	maxLabelLen = 63
)

// nameKind tells a normalized name from an IP literal; the two are indexed
// separately so that an address is only ever matched exactly.
type nameKind uint8

const (
	kindDomain nameKind = iota + 1
	kindIP
)

// idnaProfile converts Unicode names to their A-label (punycode) form. It
// follows the lookup profile but allows underscores, which real lists and
// real hosts use (e.g. "abbyfaer_rkoa.tripod.com"), and leaves length
// checks to normalizeName so every source reports them the same way.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.StrictDomainName(false),
	idna.VerifyDNSLength(false),
)

var (
	errEmptyName  = errors.New("empty name")
	errEmptyLabel = errors.New("empty label (\"..\")")
	errNameLong   = fmt.Errorf("name longer than %d characters", maxNameLen)
)

// Normalize returns the canonical form of a list entry or host name:
// lowercase, without the trailing dot or a leading "*." or ".", Unicode
// converted to punycode, and IP literals (v4, v6, "[v6]") in their
// canonical form. It is what every list goes through; other packages can
// use it to show the name a lookup will use.
func Normalize(name string) (string, error) {
	var buf [maxNameLen + 8]byte
	out, kind, addr, err := normalizeName(buf[:0], []byte(strings.TrimSpace(name)))
	if err != nil {
		return "", err
	}
	if kind == kindIP {
		return addr.String(), nil
	}
	return string(out), nil
}

// normalizeName appends the canonical form of raw to dst. For an IP
// literal it returns kindIP and the address instead (dst unchanged). It
// does not allocate for ASCII domain names, which is what millions of list
// lines are.
func normalizeName(dst, raw []byte) ([]byte, nameKind, netip.Addr, error) {
	s := raw
	if len(s) == 0 {
		return dst, 0, netip.Addr{}, errEmptyName
	}
	if hasNonASCII(s) {
		a, err := idnaProfile.ToASCII(string(s))
		if err != nil {
			return dst, 0, netip.Addr{}, fmt.Errorf("invalid internationalized name %q: %w", s, err)
		}
		s = []byte(a)
	}
	switch {
	case len(s) >= 2 && s[0] == '*' && s[1] == '.':
		s = s[2:]
	case len(s) >= 1 && s[0] == '.':
		s = s[1:]
	}
	if len(s) > 0 && s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	if len(s) == 0 {
		return dst, 0, netip.Addr{}, errEmptyName
	}
	if s[0] == '[' || bytes.IndexByte(s, ':') >= 0 {
		addr, err := parseIPv6Entry(s)
		if err != nil {
			return dst, 0, netip.Addr{}, err
		}
		return dst, kindIP, addr, nil
	}
	start := len(dst)
	label := 0
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			dst = append(dst, c)
			label++
		case c >= 'A' && c <= 'Z':
			dst = append(dst, c+('a'-'A'))
			label++
		case c == '.':
			if label == 0 {
				return dst[:start], 0, netip.Addr{}, errEmptyLabel
			}
			dst = append(dst, c)
			label = 0
		case c == ' ' || c == '\t':
			return dst[:start], 0, netip.Addr{}, fmt.Errorf("space in name %q", s)
		default:
			return dst[:start], 0, netip.Addr{}, fmt.Errorf("invalid character %q in name %q", c, s)
		}
		if label > maxLabelLen {
			return dst[:start], 0, netip.Addr{}, fmt.Errorf("label longer than %d characters in %q", maxLabelLen, s)
		}
	}
	if label == 0 {
		return dst[:start], 0, netip.Addr{}, errEmptyLabel
	}
	name := dst[start:]
	if len(name) > maxNameLen {
		return dst[:start], 0, netip.Addr{}, errNameLong
	}
	// A numeric last label is never a real top-level domain: the entry is
	// an IPv4 address or garbage such as "1.2.3.4.5". Treating the latter
	// as a domain would let it match as a suffix of other numeric strings.
	if isDigits(name[bytes.LastIndexByte(name, '.')+1:]) {
		addr, err := netip.ParseAddr(string(name))
		if err != nil || !addr.Is4() {
			return dst[:start], 0, netip.Addr{}, fmt.Errorf("%q is neither an IPv4 address nor a domain name (numeric top-level label)", name)
		}
		return dst[:start], kindIP, addr, nil
	}
	return dst, kindDomain, netip.Addr{}, nil
}

// parseIPv6Entry accepts an IPv6 literal, bare or in brackets, and gives
// specific messages for the usual mistakes (a port, a zone, a stray ':').
func parseIPv6Entry(s []byte) (netip.Addr, error) {
	inner := s
	if s[0] == '[' {
		if s[len(s)-1] != ']' {
			if i := bytes.IndexByte(s, ']'); i > 0 && i+1 < len(s) && s[i+1] == ':' {
				return netip.Addr{}, fmt.Errorf("port not allowed in %q", s)
			}
			return netip.Addr{}, fmt.Errorf("unbalanced '[' in %q", s)
		}
		inner = s[1 : len(s)-1]
	}
	addr, err := netip.ParseAddr(string(inner))
	if err == nil {
		if addr.Zone() != "" {
			return netip.Addr{}, fmt.Errorf("zone not allowed in address %q", s)
		}
		return addr.Unmap(), nil
	}
	if i := bytes.LastIndexByte(s, ':'); bytes.Count(s, []byte{':'}) == 1 && isDigits(s[i+1:]) {
		return netip.Addr{}, fmt.Errorf("port not allowed in %q", s)
	}
	return netip.Addr{}, fmt.Errorf("invalid character ':' in name %q", s)
}

func hasNonASCII(s []byte) bool {
	for _, c := range s {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

func isDigits(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// lookupBufLen holds any name that can be listed, plus a trailing dot.
const lookupBufLen = maxNameLen + 2

// prepareHost turns a request host into the form the index stores: port and
// trailing dot removed, IP literals parsed (and unmapped, zone dropped),
// ASCII lowercased into buf. It does not allocate unless the host contains
// non-ASCII bytes, which need IDNA conversion. ok is false for hosts that
// cannot be listed (empty, too long, invalid IDN).
func prepareHost(host string, buf *[lookupBufLen]byte) (name []byte, addr netip.Addr, isIP, ok bool) {
	if host == "" {
		return nil, addr, false, false
	}
	if host[0] == '[' {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return nil, addr, false, false
		}
		a, err := netip.ParseAddr(host[1:end])
		if err != nil {
			return nil, addr, false, false
		}
		return nil, a.Unmap().WithZone(""), true, true
	}
	if i := strings.IndexByte(host, ':'); i >= 0 {
		if strings.IndexByte(host[i+1:], ':') >= 0 {
			a, err := netip.ParseAddr(host)
			if err != nil {
				return nil, addr, false, false
			}
			return nil, a.Unmap().WithZone(""), true, true
		}
		host = host[:i]
	}
	if len(host) > 0 && host[len(host)-1] == '.' {
		host = host[:len(host)-1]
	}
	if host == "" {
		return nil, addr, false, false
	}
	if c := host[len(host)-1]; c >= '0' && c <= '9' {
		if a, err := netip.ParseAddr(host); err == nil {
			return nil, a, true, true
		}
	}
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			a, err := idnaProfile.ToASCII(host)
			if err != nil {
				return nil, addr, false, false
			}
			host = a
			break
		}
	}
	if len(host) > maxNameLen {
		return nil, addr, false, false
	}
	n := copy(buf[:], host)
	b := buf[:n]
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return b, addr, false, true
}
