package dnsfilter

import (
	"strings"
	"sync"
)

// safeSearchRules is the rewrite table, built once: it never changes.
var safeSearchRules = sync.OnceValue(safeSearchTable)

// SafeSearchHost returns where a search engine's host is served with safe
// search enforced at level ("strict" or "moderate"), as the DNS filter's
// rewrite answers it: forcesafesearch.google.com for www.google.com,
// restrict.youtube.com for www.youtube.com at strict, or an address for
// engines that publish only addresses. ok is false for any other host or
// level. The proxy dials this host for its clients, which do not resolve
// names through the DNS filter.
func SafeSearchHost(host, level string) (target string, ok bool) {
	if level != safeSearchStrict && level != safeSearchModerate {
		return "", false
	}
	fqdn := strings.ToLower(strings.TrimSuffix(host, ".")) + "."
	rule, ok := safeSearchRules()[fqdn]
	if !ok {
		return "", false
	}
	if len(rule.addrs) > 0 {
		return rule.addrs[0].String(), true
	}
	return strings.TrimSuffix(rule.target(level), "."), true
}
