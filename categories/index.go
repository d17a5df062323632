package categories

import (
	"bytes"
	"hash/maphash"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Index answers which categories list a host (or a parent domain of it), a
// URL prefix, or, when enabled, a UT1 expression. It is immutable after
// Build and safe for concurrent use.
type Index struct {
	seed maphash.Seed
	sets []Set // by set number

	dom     *table // hash of a normalized domain -> set number
	domMask uint64 // bit n-1: some listed domain has n labels
	ips     map[netip.Addr]uint32

	// URL rules are grouped by host. urlHosts (and urlIPs) say whether a
	// host has rules and give its group; urlPaths maps (group, path) to
	// the first of that path's rules in urlRules, which is sorted by
	// group, path and query.
	urlHosts *table
	urlMask  uint64
	urlIPs   map[netip.Addr]uint32
	urlPaths *table
	urlRules []urlEntry

	exprs []exprSet

	unions   *unionCache
	exprBufs sync.Pool // *[]byte for "host/path?query"

	revision string
	stats    []SourceStats
	samples  []NameSample
	entries  int
	built    time.Time
}

// urlEntry is a URL rule within its host's group.
type urlEntry struct {
	group    uint32
	path     string
	query    string
	hasQuery bool
	set      uint32
}

// exprSet is one list's expressions, compiled into one alternation.
type exprSet struct {
	re   *regexp.Regexp
	srcs []exprRule
	set  Set
}

// Hit is one reason a lookup matched, for explaining a verdict.
type Hit struct {
	// Kind is "domain", "ip", "url" or "expression".
	Kind string `json:"kind"`
	// Entry is the list entry that matched: the listed domain (a suffix
	// of the host), the address, the URL rule, or the expression.
	Entry string `json:"entry"`
	Set   Set    `json:"categories"`
}

// Lookup returns the categories of host: the union over host and every
// parent domain of it, or the exact match for an IP literal. host may
// carry a port ("a.com:443", "[::1]:443") and a trailing dot; ASCII case
// does not matter. It does not allocate for ASCII hosts.
func (ix *Index) Lookup(host string) Set {
	if ix == nil {
		return Set{}
	}
	var buf [lookupBufLen]byte
	name, addr, isIP, ok := prepareHost(host, &buf)
	if !ok {
		return Set{}
	}
	if isIP {
		return ix.lookupIP(addr)
	}
	return ix.lookupName(name, nil)
}

func (ix *Index) lookupIP(addr netip.Addr) Set {
	if id, ok := ix.ips[addr]; ok {
		return ix.sets[id]
	}
	return Set{}
}

// lookupName hashes each suffix of name that has a label count some
// entry has, so deep subdomains of short listed names cost a few probes.
func (ix *Index) lookupName(name []byte, hits *[]Hit) Set {
	var acc Set
	if ix.dom == nil {
		return acc
	}
	n := bytes.Count(name, []byte{'.'}) + 1
	for start := 0; ; n-- {
		if ix.domMask&labelBit(n) != 0 {
			if id, ok := ix.dom.get(hashBytes(ix.seed, name[start:])); ok {
				acc = ix.unions.union(acc, ix.sets[id])
				if hits != nil {
					*hits = append(*hits, Hit{Kind: "domain", Entry: string(name[start:]), Set: ix.sets[id]})
				}
			}
		}
		i := bytes.IndexByte(name[start:], '.')
		if i < 0 {
			return acc
		}
		start += i + 1
	}
}

// LookupURL returns Lookup(host) together with the URL-prefix rules that
// match host and path, and the expressions (when a source enabled them).
// path is the request target: the escaped path, optionally followed by
// "?" and the query (as url.URL.RequestURI returns it). Paths compare
// case-sensitively, on '/' boundaries: rule "a.com/dir" matches "/dir",
// "/dir/" and "/dir/x" but not "/directory". A rule's query, if it has
// one, must begin the request's query; otherwise the query is ignored.
//
// It does not allocate unless expressions are loaded or the union of the
// matches was not seen recently.
func (ix *Index) LookupURL(host, path string) Set {
	return ix.lookupURL(host, path, nil)
}

// Explain returns every entry that contributes to LookupURL(host, path)
// (use path "" for a host-only lookup), for the check command and for
// block-page details. It allocates.
func (ix *Index) Explain(host, path string) []Hit {
	hits := []Hit{}
	ix.lookupURL(host, path, &hits)
	return hits
}

func (ix *Index) lookupURL(host, target string, hits *[]Hit) Set {
	if ix == nil {
		return Set{}
	}
	var buf [lookupBufLen]byte
	name, addr, isIP, ok := prepareHost(host, &buf)
	if !ok {
		return Set{}
	}
	var acc Set
	if isIP {
		acc = ix.lookupIP(addr)
		if hits != nil && !acc.Empty() {
			*hits = append(*hits, Hit{Kind: "ip", Entry: addr.String(), Set: acc})
		}
	} else {
		acc = ix.lookupName(name, hits)
	}
	if hits != nil && target == "" {
		return acc
	}
	path, query, hasQuery := strings.Cut(target, "?")
	if path == "" {
		path = "/"
	}
	if len(ix.urlRules) > 0 {
		if isIP {
			if g, ok := ix.urlIPs[addr]; ok {
				var hostStr string
				if hits != nil {
					hostStr = urlRule{host: addr.String(), addr: addr}.String()
				}
				acc = ix.matchGroup(acc, g, hostStr, path, query, hasQuery, hits)
			}
		} else if ix.urlHosts != nil {
			n := bytes.Count(name, []byte{'.'}) + 1
			for start := 0; ; n-- {
				if ix.urlMask&labelBit(n) != 0 {
					if g, ok := ix.urlHosts.get(hashBytes(ix.seed, name[start:])); ok {
						var hostStr string
						if hits != nil {
							hostStr = string(name[start:])
						}
						acc = ix.matchGroup(acc, g, hostStr, path, query, hasQuery, hits)
					}
				}
				i := bytes.IndexByte(name[start:], '.')
				if i < 0 {
					break
				}
				start += i + 1
			}
		}
	}
	if len(ix.exprs) > 0 {
		acc = ix.matchExpressions(acc, name, addr, isIP, path, query, hasQuery, hits)
	}
	return acc
}

// pathKey combines a host's group and a path into the urlPaths key.
func pathKey(seed maphash.Seed, g uint32, p string) uint64 {
	return hashString(seed, p) ^ (uint64(g)+1)*0xC2B2AE3D27D4EB4F
}

// matchGroup checks the rules of one host against the request path. The
// candidates are the path's '/'-boundary prefixes ("", "/a", "/a/b"…),
// each one hash probe, so a host with hundreds of rules (docs.google.com
// in the phishing list) costs the same as a host with one.
func (ix *Index) matchGroup(acc Set, g uint32, host, path, query string, hasQuery bool, hits *[]Hit) Set {
	full := strings.TrimRight(path, "/")
	acc = ix.matchPrefix(acc, g, "", full, host, query, hasQuery, hits)
	for i := 1; i < len(full); i++ {
		if full[i] == '/' {
			acc = ix.matchPrefix(acc, g, full[:i], full, host, query, hasQuery, hits)
		}
	}
	if full != "" {
		acc = ix.matchPrefix(acc, g, full, full, host, query, hasQuery, hits)
	}
	return acc
}

func (ix *Index) matchPrefix(acc Set, g uint32, p, full, host, query string, hasQuery bool, hits *[]Hit) Set {
	first, ok := ix.urlPaths.get(pathKey(ix.seed, g, p))
	if !ok {
		return acc
	}
	for k := int(first); k < len(ix.urlRules) && ix.urlRules[k].group == g && ix.urlRules[k].path == p; k++ {
		e := &ix.urlRules[k]
		if e.hasQuery && !(hasQuery && p == full && queryHasPrefix(query, e.query)) {
			continue
		}
		acc = ix.unions.union(acc, ix.sets[e.set])
		if hits != nil {
			entry := host + e.path
			if e.hasQuery {
				entry += "?" + e.query
			}
			*hits = append(*hits, Hit{Kind: "url", Entry: entry, Set: ix.sets[e.set]})
		}
	}
	return acc
}

// queryHasPrefix reports whether the request query starts with the rule's
// query at a parameter boundary ("q=drug" matches "q=drug&x=1", not
// "q=drugstore").
func queryHasPrefix(query, rule string) bool {
	if !strings.HasPrefix(query, rule) {
		return false
	}
	return len(query) == len(rule) || rule == "" || query[len(rule)] == '&' || rule[len(rule)-1] == '&'
}

// matchExpressions runs the UT1 expressions against "host/path?query", the
// form squidGuard matches them against (no scheme, no port).
func (ix *Index) matchExpressions(acc Set, name []byte, addr netip.Addr, isIP bool, path, query string, hasQuery bool, hits *[]Hit) Set {
	bp, _ := ix.exprBufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	b := (*bp)[:0]
	switch {
	case isIP && addr.Is6():
		b = append(b, '[')
		b = addr.AppendTo(b)
		b = append(b, ']')
	case isIP:
		b = addr.AppendTo(b)
	default:
		b = append(b, name...)
	}
	b = append(b, path...)
	if hasQuery {
		b = append(b, '?')
		b = append(b, query...)
	}
	for _, e := range ix.exprs {
		if e.re.Match(b) {
			acc = ix.unions.union(acc, e.set)
			if hits != nil {
				for _, r := range e.srcs {
					if r.re.Match(b) {
						*hits = append(*hits, Hit{Kind: "expression", Entry: r.src, Set: e.set})
					}
				}
			}
		}
	}
	*bp = b
	ix.exprBufs.Put(bp)
	return acc
}

// Revision is a content hash of every loaded list (16 hex characters): the
// same lists give the same revision whatever their order, source format
// (directory or tar.gz, gzip or not) or load time.
func (ix *Index) Revision() string {
	if ix == nil {
		return ""
	}
	return ix.revision
}

// Stats returns one entry per loaded list: one per mapped UT1 category of
// a UT1 source, one per other source. The slice is a copy.
func (ix *Index) Stats() []SourceStats {
	if ix == nil {
		return nil
	}
	return slices.Clone(ix.stats)
}

// Len returns the number of distinct entries: domains, IP addresses, URL
// rules and expressions.
func (ix *Index) Len() int {
	if ix == nil {
		return 0
	}
	return ix.entries
}

// BuiltAt is when the index was built.
func (ix *Index) BuiltAt() time.Time {
	if ix == nil {
		return time.Time{}
	}
	return ix.built
}

// Categories returns every policy category that has at least one list.
func (ix *Index) Categories() []string {
	if ix == nil {
		return nil
	}
	var out []string
	for _, s := range ix.stats {
		if s.Error == "" && s.Entries > 0 {
			out = append(out, s.Category)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
