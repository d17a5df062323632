package categories

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// The list formats a Source may name.
const (
	FormatAuto    = "auto"
	FormatUT1     = "ut1"
	FormatHosts   = "hosts"
	FormatDomains = "domains"
	FormatAdblock = "adblock"
	FormatURLs    = "urls"
	// FormatMISP is a MISP warning list: a JSON object whose "list"
	// array holds the names (MISP/misp-warninglists publishes the
	// popular-sites lists this way).
	FormatMISP = "misp"
	// formatExpressions is a UT1 tree's "expressions" file; it is not a
	// Source format of its own.
	formatExpressions = "expressions"
)

// parserVersion goes into every list revision, so that a release that
// reads the same files differently also reports a different revision.
const parserVersion = "categories/1"

// maxLineErrors is how many malformed lines per list are kept (and
// logged) with their file:line; the rest are only counted.
const maxLineErrors = 5

// maxLineLen bounds one list line; longer lines are reported and skipped.
const maxLineLen = 64 << 10

// LineError is a list line that could not be used. The line is skipped and
// the rest of the list still loads.
type LineError struct {
	File string
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }

func (e *LineError) Unwrap() error { return e.Err }

// urlRule is one URL-list entry: a host (covering its subdomains, or an
// exact IP) and a path prefix matched on '/' boundaries. An empty path
// covers the whole host. A rule with a query matches that exact path and
// a query that starts with it.
type urlRule struct {
	host     string
	addr     netip.Addr // valid when the host is an IP literal
	labels   int
	path     string
	query    string
	hasQuery bool
}

func (u urlRule) String() string {
	s := u.host + u.path
	if u.addr.IsValid() && u.addr.Is6() {
		s = "[" + u.host + "]" + u.path
	}
	if u.hasQuery {
		s += "?" + u.query
	}
	return s
}

// exprRule is one line of a UT1 expressions file, compiled.
type exprRule struct {
	src string
	re  *regexp.Regexp
}

// listResult accumulates one list (one Match.Source) while its files are
// parsed. Nothing here touches the Index being built, so a list that fails
// half-way can be dropped without trace.
type listResult struct {
	label    string // Match.Source
	category string
	format   string
	seed     maphash.Seed

	hashes    hashChunks
	labelMask uint64 // bit n-1: some domain entry has n labels
	ips       []netip.Addr
	urls      []urlRule
	exprs     []exprRule

	lines    int // significant (non-blank, non-comment) lines
	skipped  int
	errCount int
	lineErrs []*LineError
	missing  bool // a UT1 category named in the map was not in the tree

	// fileSums are "<file>:<sha256 of its decompressed content>", sorted
	// into the revision so that archive order does not matter.
	fileSums []string
	revision string
	verr     error // set when the list parsed but is not usable

	buf []byte
	// sample collects names for the domain-name model (nil: off).
	sample *nameSample
}

func newListResult(label, category, format string, seed maphash.Seed) *listResult {
	return &listResult{label: label, category: category, format: format, seed: seed,
		buf: make([]byte, 0, lookupBufLen)}
}

func labelBit(n int) uint64 {
	if n > 64 {
		n = 64
	}
	return 1 << (n - 1)
}

func (r *listResult) fail(file string, line int, err error) {
	r.errCount++
	if len(r.lineErrs) < maxLineErrors {
		r.lineErrs = append(r.lineErrs, &LineError{File: file, Line: line, Err: err})
	}
}

// addName normalizes and records one domain or IP entry.
func (r *listResult) addName(raw []byte) error {
	out, kind, addr, err := normalizeName(r.buf[:0], raw)
	if err != nil {
		return err
	}
	if kind == kindIP {
		r.ips = append(r.ips, addr)
		return nil
	}
	r.buf = out
	r.hashes.add(hashBytes(r.seed, out))
	r.labelMask |= labelBit(bytes.Count(out, []byte{'.'}) + 1)
	if r.sample != nil {
		r.sample.add(out)
	}
	return nil
}

// lineStatus tells the reader what a line was.
type lineStatus uint8

const (
	lineIgnored lineStatus = iota // blank or comment
	lineUsed
	lineSkipped // understood, deliberately not used (exception rule, localhost…)
)

// readFile reads one file of the list (rel names it within the source,
// for the revision) and records its content hash.
func (r *listResult) readFile(ctx context.Context, rd io.Reader, format, display, rel string) error {
	h := sha256.New()
	if err := r.read(ctx, io.TeeReader(rd, h), format, display); err != nil {
		return err
	}
	r.fileSums = append(r.fileSums, rel+":"+hex.EncodeToString(h.Sum(nil)))
	return nil
}

// finishRevision sets the list's revision from what determines its
// entries: the parser, the label, the category and the files' content.
func (r *listResult) finishRevision() {
	h := sha256.New()
	h.Write([]byte(parserVersion + "\x00" + r.label + "\x00" + r.category + "\x00"))
	slices.Sort(r.fileSums)
	for _, s := range r.fileSums {
		h.Write([]byte(s + "\x00"))
	}
	r.revision = hex.EncodeToString(h.Sum(nil))[:16]
}

// read parses one file of the given format into r. It fails only on read
// errors (including a truncated gzip stream) and cancellation; bad lines
// are counted and the first few remembered.
func (r *listResult) read(ctx context.Context, rd io.Reader, format, file string) error {
	br, ok := rd.(*bufio.Reader)
	if !ok || br.Size() < maxLineLen {
		br = bufio.NewReaderSize(rd, maxLineLen)
	}
	if format == FormatAuto {
		format = sniffFormat(br)
		if r.format == FormatAuto {
			r.format = format
		}
	}
	if format == FormatMISP {
		return r.readMISP(br, file)
	}
	parse := r.lineFunc(format)
	for n := 1; ; n++ {
		if n&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			r.lines++
			r.fail(file, n, fmt.Errorf("line longer than %d bytes", maxLineLen))
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			continue
		}
		if len(line) > 0 {
			st, perr := parse(bytes.TrimSpace(line))
			switch {
			case perr != nil:
				r.lines++
				r.fail(file, n, perr)
			case st == lineUsed:
				r.lines++
			case st == lineSkipped:
				r.lines++
				r.skipped++
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
	}
}

// readMISP reads a MISP warning list's "list" array. The file is small
// (tens of thousands of names), so it is decoded whole.
func (r *listResult) readMISP(br *bufio.Reader, file string) error {
	var doc struct {
		List []string `json:"list"`
	}
	if err := json.NewDecoder(br).Decode(&doc); err != nil {
		return fmt.Errorf("%s: not a MISP warning list: %w", file, err)
	}
	for i, name := range doc.List {
		r.lines++
		if err := r.addName([]byte(strings.TrimSpace(name))); err != nil {
			r.fail(file, i+1, err)
		}
	}
	return nil
}

func (r *listResult) lineFunc(format string) func([]byte) (lineStatus, error) {
	switch format {
	case FormatHosts:
		return r.hostsLine
	case FormatAdblock:
		return r.adblockLine
	case FormatURLs:
		return r.urlsLine
	case formatExpressions:
		return r.expressionLine
	default:
		return r.domainsLine
	}
}

// stripComment removes a '#' comment; lists put them on their own lines
// and, in hosts files, after the names.
func stripComment(line []byte) []byte {
	if i := bytes.IndexByte(line, '#'); i >= 0 {
		return bytes.TrimSpace(line[:i])
	}
	return line
}

func (r *listResult) domainsLine(line []byte) (lineStatus, error) {
	line = stripComment(line)
	if len(line) == 0 {
		return lineIgnored, nil
	}
	if bytes.IndexByte(line, '/') >= 0 {
		return 0, fmt.Errorf("%q looks like a URL, not a domain name (use format urls)", line)
	}
	if i := bytes.IndexAny(line, " \t"); i >= 0 {
		return 0, fmt.Errorf("space in name %q", line)
	}
	return lineUsed, r.addName(line)
}

// isLocalAlias reports names hosts files map for the machine itself
// ("localhost", "broadcasthost", "ip6-allnodes"…) and any other
// single-label name: in a hosts file those are machine aliases or stray
// words, not sites, and a one-label entry would act as a whole top-level
// domain.
func isLocalAlias(f []byte) bool {
	return bytes.IndexByte(f, '.') < 0 || bytes.EqualFold(f, []byte("localhost.localdomain"))
}

func isHostsAddr(f []byte) bool {
	switch string(f) {
	case "0.0.0.0", "127.0.0.1", "::", "::1":
		return true
	}
	if len(f) == 0 || !(f[0] >= '0' && f[0] <= '9' || f[0] >= 'a' && f[0] <= 'f' || f[0] >= 'A' && f[0] <= 'F' || f[0] == ':') {
		return false
	}
	_, err := netip.ParseAddr(string(f))
	return err == nil
}

func (r *listResult) hostsLine(line []byte) (lineStatus, error) {
	line = stripComment(line)
	if len(line) == 0 {
		return lineIgnored, nil
	}
	fields := bytes.Fields(line)
	if !isHostsAddr(fields[0]) {
		return 0, fmt.Errorf("hosts line must start with an IP address, got %q", fields[0])
	}
	if len(fields) == 1 {
		return 0, fmt.Errorf("hosts line has an address but no name")
	}
	used := false
	for _, f := range fields[1:] {
		if isLocalAlias(f) {
			continue
		}
		out, kind, addr, err := normalizeName(r.buf[:0], f)
		if err != nil {
			return 0, err
		}
		if kind == kindIP {
			// Blocklists list a site's bare address this way
			// ("0.0.0.0 85.17.187.83"); the sink addresses
			// themselves ("0.0.0.0 0.0.0.0") are not content.
			if addr.IsUnspecified() || addr.IsLoopback() {
				continue
			}
			r.ips = append(r.ips, addr)
			used = true
			continue
		}
		r.buf = out
		r.hashes.add(hashBytes(r.seed, out))
		r.labelMask |= labelBit(bytes.Count(out, []byte{'.'}) + 1)
		if r.sample != nil {
			r.sample.add(out)
		}
		used = true
	}
	if !used {
		return lineSkipped, nil
	}
	return lineUsed, nil
}

// adblockOK are rule options that do not narrow a blocking rule in a way a
// domain list cannot honour.
var adblockOK = map[string]bool{"important": true, "all": true, "document": true, "doc": true}

// adblockLine accepts "||domain^" rules (and plain domains, and hosts
// lines, as DNS-oriented adblock lists contain them). Exception rules,
// cosmetic rules, regex rules, rules with a path or a wildcard and rules
// with narrowing options are understood but not applicable to a
// host-level list: they count as skipped, not as errors.
func (r *listResult) adblockLine(line []byte) (lineStatus, error) {
	if len(line) == 0 || line[0] == '!' || line[0] == '[' {
		return lineIgnored, nil
	}
	if line[0] == '#' && !bytes.HasPrefix(line, []byte("##")) && !bytes.HasPrefix(line, []byte("#@#")) {
		return lineIgnored, nil
	}
	if bytes.HasPrefix(line, []byte("@@")) {
		return lineSkipped, nil
	}
	for _, cos := range []string{"##", "#@#", "#?#", "#$#", "#%#", "$$"} {
		if bytes.Contains(line, []byte(cos)) {
			return lineSkipped, nil
		}
	}
	if len(line) > 1 && line[0] == '/' && line[len(line)-1] == '/' {
		return lineSkipped, nil
	}
	if f := bytes.Fields(line); len(f) >= 2 {
		if isHostsAddr(f[0]) {
			return r.hostsLine(line)
		}
	}
	rule := line
	if i := bytes.LastIndexByte(rule, '$'); i >= 0 {
		for _, opt := range bytes.Split(rule[i+1:], []byte{','}) {
			if !adblockOK[string(bytes.TrimSpace(opt))] {
				return lineSkipped, nil
			}
		}
		rule = rule[:i]
	}
	switch {
	case bytes.HasPrefix(rule, []byte("||")):
		rule = rule[2:]
	case bytes.HasPrefix(rule, []byte("|http://")):
		rule = rule[len("|http://"):]
	case bytes.HasPrefix(rule, []byte("|https://")):
		rule = rule[len("|https://"):]
	}
	rule = bytes.TrimSuffix(rule, []byte("|"))
	rule = bytes.TrimSuffix(rule, []byte("^"))
	if len(rule) == 0 {
		return 0, fmt.Errorf("adblock rule %q has no domain", line)
	}
	if bytes.ContainsAny(rule, "/*^|:") {
		return lineSkipped, nil
	}
	return lineUsed, r.addName(rule)
}

// urlsLine parses "host/path[?query]", with an optional scheme and port.
func (r *listResult) urlsLine(line []byte) (lineStatus, error) {
	if len(line) == 0 || line[0] == '#' {
		return lineIgnored, nil
	}
	if bytes.ContainsAny(line, " \t") {
		return 0, fmt.Errorf("space in URL %q", line)
	}
	u, err := parseURLRule(line, r.buf[:0])
	if err != nil {
		return 0, err
	}
	r.urls = append(r.urls, u)
	return lineUsed, nil
}

func parseURLRule(line, scratch []byte) (urlRule, error) {
	s := line
	if i := bytes.Index(s, []byte("://")); i >= 0 && i <= 8 {
		s = s[i+3:]
	}
	if i := bytes.IndexByte(s, '#'); i >= 0 {
		s = s[:i] // a fragment never reaches the server
	}
	end := bytes.IndexAny(s, "/?")
	if end < 0 {
		end = len(s)
	}
	host, rest := s[:end], s[end:]
	if len(host) > 0 && host[0] == '[' {
		if i := bytes.IndexByte(host, ']'); i > 0 && i+1 < len(host) && host[i+1] == ':' && isDigits(host[i+2:]) {
			host = host[:i+1]
		}
	} else if i := bytes.LastIndexByte(host, ':'); i >= 0 && bytes.Count(host, []byte{':'}) == 1 && isDigits(host[i+1:]) {
		host = host[:i]
	}
	if len(host) == 0 {
		return urlRule{}, fmt.Errorf("URL %q has no host", line)
	}
	out, kind, addr, err := normalizeName(scratch, host)
	if err != nil {
		return urlRule{}, fmt.Errorf("URL %q: %w", line, err)
	}
	u := urlRule{}
	if kind == kindIP {
		u.addr = addr
		u.host = addr.String()
	} else {
		u.host = string(out)
		u.labels = bytes.Count(out, []byte{'.'}) + 1
	}
	path := rest
	if i := bytes.IndexByte(rest, '?'); i >= 0 {
		path = rest[:i]
		u.query = string(rest[i+1:])
		u.hasQuery = true
	}
	u.path = canonicalRulePath(string(path))
	return u, nil
}

// canonicalRulePath drops trailing slashes so that "a.com/dir" and
// "a.com/dir/" are the same rule; the root "/" becomes "", meaning the
// whole host.
func canonicalRulePath(p string) string {
	return strings.TrimRight(p, "/")
}

func (r *listResult) expressionLine(line []byte) (lineStatus, error) {
	if len(line) == 0 || line[0] == '#' {
		return lineIgnored, nil
	}
	// squidGuard lowercases URLs before matching expressions; (?i) keeps
	// that meaning without rewriting the request.
	re, err := regexp.Compile("(?i)" + string(line))
	if err != nil {
		return 0, fmt.Errorf("expression does not compile (RE2 syntax): %w", err)
	}
	r.exprs = append(r.exprs, exprRule{src: string(line), re: re})
	return lineUsed, nil
}

// sniffFormat guesses a list's format from its first significant lines,
// without consuming them.
func sniffFormat(br *bufio.Reader) string {
	head, _ := br.Peek(32 << 10)
	if t := bytes.TrimSpace(head); len(t) > 0 && t[0] == '{' {
		return FormatMISP
	}
	votes := map[string]int{}
	seen := 0
	for len(head) > 0 && seen < 200 {
		var line []byte
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			line, head = head[:i], head[i+1:]
		} else {
			line, head = head, nil
		}
		line = bytes.TrimSpace(line)
		switch {
		case len(line) == 0:
			continue
		case bytes.HasPrefix(line, []byte("[Adblock")), line[0] == '!', bytes.HasPrefix(line, []byte("||")), bytes.HasPrefix(line, []byte("@@")):
			votes[FormatAdblock] += 10
		case line[0] == '#':
			continue
		default:
			f := bytes.Fields(line)
			if _, err := netip.ParseAddr(string(f[0])); err == nil && len(f) >= 2 {
				votes[FormatHosts]++
			} else if bytes.IndexByte(line, '/') >= 0 {
				votes[FormatURLs]++
			} else {
				votes[FormatDomains]++
			}
		}
		seen++
	}
	best, n := FormatDomains, 0
	for _, f := range []string{FormatAdblock, FormatHosts, FormatURLs, FormatDomains} {
		if votes[f] > n {
			best, n = f, votes[f]
		}
	}
	return best
}
