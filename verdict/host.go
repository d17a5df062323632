package verdict

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/aupguard/aupguard/categories"
)

// NormalizeHost is the one form of a host name in a policy input, whoever
// builds the input (the proxy, the DNS filter, `aupguard check`): lower
// case, no trailing dot, an internationalised name as its A-label
// (punycode), an IP literal (with or without brackets) in its canonical
// form. It is the form the lists index names by, so the host a policy sees
// is the name the lists were searched for. A name already in that form is
// returned as it is, without allocating: that is nearly every request.
func NormalizeHost(h string) (string, error) {
	if canonicalASCII(h) {
		return h, nil
	}
	s := strings.TrimSuffix(strings.TrimSpace(h), ".")
	if s == "" {
		return "", errors.New("empty host")
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return a.WithZone("").String(), nil
	}
	// "*.name" and ".name" are list-entry syntax, which the lists'
	// normaliser strips; as a host they would decide (and dial) another
	// name than the one asked for.
	if s[0] == '*' || s[0] == '.' {
		return "", fmt.Errorf("host %q is not a host name", h)
	}
	n, err := categories.Normalize(s)
	if err != nil {
		return "", fmt.Errorf("host %q: %w", h, err)
	}
	return n, nil
}

// canonicalASCII reports whether h is already a lower-case ASCII name:
// letters, digits, '-', '_' and single dots between labels.
func canonicalASCII(h string) bool {
	if h == "" || h[0] == '.' || h[len(h)-1] == '.' {
		return false
	}
	prevDot := false
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			prevDot = false
		case c == '.':
			if prevDot {
				return false
			}
			prevDot = true
		default:
			return false
		}
	}
	return true
}

// defaultPorts are the ports a URL of a scheme means when it names none.
var defaultPorts = map[string]int{"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}

// URLRequest is the request part of a policy input for a URL: the scheme
// in lower case, the host normalised (NormalizeHost), the port given or
// the scheme's default (0 if the scheme has none), the decoded path ("/"
// when empty, except for magnet links) and the raw query. The proxy and
// `aupguard check` both build their inputs from it, so check explains the
// decision the proxy enforces. Method, content type and length are the
// caller's.
func URLRequest(u *url.URL) (Request, error) {
	r := Request{Scheme: strings.ToLower(u.Scheme), Path: u.Path, Query: u.RawQuery, ContentLength: -1}
	if r.Scheme == "magnet" {
		return r, nil
	}
	host, err := NormalizeHost(u.Hostname())
	if err != nil {
		return Request{}, err
	}
	r.Host = host
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Request{}, fmt.Errorf("bad port %q", p)
		}
		r.Port = n
	} else {
		r.Port = defaultPorts[r.Scheme]
	}
	if r.Path == "" {
		r.Path = "/"
	}
	return r, nil
}

// ConnectRequest is the request part of a policy input for a tunnel to
// host:port (a CONNECT): only the host and port are known, and a tunnel to
// 443 is taken to be https. The proxy and `aupguard check host:port` both
// build it here.
func ConnectRequest(host string, port int) (Request, error) {
	if port < 1 || port > 65535 {
		return Request{}, fmt.Errorf("bad port %d", port)
	}
	h, err := NormalizeHost(host)
	if err != nil {
		return Request{}, err
	}
	r := Request{Method: "CONNECT", Host: h, Port: port, ContentLength: -1}
	if port == 443 {
		r.Scheme = "https"
	}
	return r, nil
}
