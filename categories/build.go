package categories

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/netip"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// SourceStats describes one loaded list: a single-category source, or one
// mapped category of a UT1 source.
type SourceStats struct {
	// Name is the Source name; List is the UT1 category within the tree
	// (empty for other formats); Label is what Match.Source says.
	Name  string `json:"name"`
	List  string `json:"list,omitempty"`
	Label string `json:"label"`
	// Category is the policy category the list feeds.
	Category string `json:"category"`
	// Format is the format used (after "auto" detection).
	Format string `json:"format"`
	// Origin is the path, the URL(s), or "builtin:…" for the seed.
	Origin string `json:"origin"`
	// Fallback is "cache" when a URL source could not be fetched or parsed
	// and its last good download was used, "partial" when some of a
	// source's URLs could not be had and the others loaded.
	Fallback string `json:"fallback,omitempty"`
	// Entries is the number of distinct entries the list contributed:
	// Domains + IPs + URLs + Expressions. Duplicates counts repeated ones.
	Entries     int `json:"entries"`
	Domains     int `json:"domains"`
	IPs         int `json:"ips"`
	URLs        int `json:"urls"`
	Expressions int `json:"expressions"`
	Duplicates  int `json:"duplicates"`
	// Skipped counts lines understood but deliberately not used (adblock
	// exception and cosmetic rules, localhost lines…); Errors counts lines
	// that could not be parsed. LineErrors holds the first few.
	Skipped    int      `json:"skipped"`
	Errors     int      `json:"errors"`
	LineErrors []string `json:"line_errors,omitempty"`
	// Revision is a content hash of this list's files.
	Revision string    `json:"revision"`
	LoadedAt time.Time `json:"loaded_at"`
	// Error is set when the list did not load (a UT1 category missing from
	// the tree, or a source that failed: then Category may be empty).
	Error string `json:"error,omitempty"`
}

// SourceError is a source that could not be loaded at all. The other
// sources still load.
type SourceError struct {
	Source string
	Origin string
	Err    error
}

func (e *SourceError) Error() string {
	return fmt.Sprintf("categories source %q (%s): %v", e.Source, e.Origin, e.Err)
}

func (e *SourceError) Unwrap() error { return e.Err }

// Build loads the seed, the default sources (when cfg.Defaults) and the
// configured ones into a new Index. URL sources are fetched (conditionally,
// when a cached copy exists under cfg.CacheDir) and fall back to the
// cached copy. A source
// that fails to load is reported as a *SourceError but does not fail the
// others; a malformed line is counted, logged and kept in
// SourceStats.LineErrors (the first few, as file:line). The returned Index
// is never nil.
func Build(ctx context.Context, cfg Config, logger *slog.Logger) (*Index, []error) {
	l := newLoader(cfg, logger)
	dls, fetchErrs := l.fetchAll(ctx)
	ix, outs := l.build(ctx, dls, fetchErrs)
	for _, o := range outs {
		switch {
		case o.err != nil:
			l.logger.Warn("list source not loaded", "source", o.err.Source, "origin", o.err.Origin, "err", o.err.Err)
		case o.warn != nil:
			l.logger.Warn("list source partly loaded", "source", o.p.src.Name, "fallback", o.fallback, "origin", o.origin, "err", o.warn)
		}
	}
	return ix, sourceErrors(outs)
}

func sourceErrors(outs []*loadOutcome) []error {
	var errs []error
	for _, o := range outs {
		if o.err != nil {
			errs = append(errs, o.err)
		}
	}
	return errs
}

// planned is a source as it will be loaded.
type planned struct {
	src Source
	// seed marks aupguard's own seed list, read from the binary.
	seed bool
}

// loadOutcome is one source's load, before it is committed to an Index.
type loadOutcome struct {
	p        planned
	lists    []*listResult
	origin   string
	fallback string
	warn     error // what could not be had (the cached copy or the other parts were used)
	err      *SourceError
}

type loader struct {
	cfg    Config
	logger *slog.Logger
	fetch  *fetcher
	// planned is what a build loads; the configuration does not change
	// for a loader's life, so it is worked out once.
	planned []planned
}

func newLoader(cfg Config, logger *slog.Logger) *loader {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &loader{cfg: cfg, logger: logger, fetch: newFetcher(cfg, logger), planned: plan(cfg)}
}

// plan returns what a build loads.
func (l *loader) plan() []planned { return l.planned }

// plan lists what a build of cfg loads, in order: the default sources
// (less those switched off or replaced by a configured source of the same
// name; read from the mirror when there is one), the configured sources,
// and the seed, which is always loaded.
func plan(cfg Config) []planned {
	var out []planned
	if cfg.Defaults {
		for _, d := range DefaultSources() {
			if slices.Contains(cfg.Disable, d.Name) ||
				slices.ContainsFunc(cfg.Sources, func(c Source) bool { return c.Name == d.Name }) {
				continue
			}
			src := d.Source
			if cfg.Mirror != "" {
				src.URL, src.URLs, src.Path = "", nil, filepath.Join(cfg.Mirror, filepath.FromSlash(d.Mirror))
			}
			out = append(out, planned{src: src})
		}
	}
	for _, s := range cfg.Sources {
		out = append(out, planned{src: s})
	}
	return append(out, planned{src: Source{Name: SeedName}, seed: true})
}

// sourceByName returns the planned source called name.
func (l *loader) sourceByName(name string) Source {
	for _, p := range l.plan() {
		if p.src.Name == name {
			return p.src
		}
	}
	return Source{}
}

// remoteSources are the planned sources fetched over HTTP.
func (l *loader) remoteSources() []Source {
	var out []Source
	for _, p := range l.plan() {
		if p.src.URL != "" || len(p.src.URLs) > 0 {
			out = append(out, p.src)
		}
	}
	return out
}

// build loads every planned source (two at a time: parsing is CPU-bound)
// and commits them, in plan order, to a new Index. dls are fresh downloads
// for URL parts, fetchErrs the fetches that failed (both keyed by part).
func (l *loader) build(ctx context.Context, dls map[string]*download, fetchErrs map[string]error) (*Index, []*loadOutcome) {
	seed := maphash.MakeSeed()
	plan := l.plan()
	outs := make([]*loadOutcome, len(plan))
	var g errgroup.Group
	g.SetLimit(max(1, min(2, runtime.GOMAXPROCS(0))))
	for i, p := range plan {
		g.Go(func() error {
			outs[i] = l.loadSource(ctx, p, seed, dls, fetchErrs)
			return nil
		})
	}
	_ = g.Wait()
	b := newBuilder(seed)
	for _, o := range outs {
		l.reportLines(o)
		b.add(o)
	}
	return b.finish(outs), outs
}

// reportLines logs the lines of a list that could not be parsed.
func (l *loader) reportLines(o *loadOutcome) {
	for _, r := range o.lists {
		for _, le := range r.lineErrs {
			l.logger.Warn("list line skipped", "list", r.label, "err", le)
		}
		if r.errCount > len(r.lineErrs) {
			l.logger.Warn("list has more bad lines", "list", r.label, "errors", r.errCount, "reported", len(r.lineErrs))
		}
	}
}

func (l *loader) loadSource(ctx context.Context, p planned, seed maphash.Seed, dls map[string]*download, fetchErrs map[string]error) *loadOutcome {
	o := &loadOutcome{p: p}
	src := p.src
	fail := func(origin string, err error) *loadOutcome {
		o.err = &SourceError{Source: src.Name, Origin: origin, Err: err}
		return o
	}
	switch {
	case p.seed:
		o.origin = seedOrigin
		lists, err := l.loadSeed(ctx, seed)
		if err != nil {
			return fail(o.origin, err)
		}
		o.lists = lists
	case src.Path != "":
		org, err := osOrigin(src.Path)
		if err != nil {
			return fail(src.Path, err)
		}
		o.origin = org.display
		lists, err := l.openLists(ctx, src, []origin{org}, seed, false)
		if err != nil {
			return fail(o.origin, err)
		}
		o.lists = lists
	default:
		return l.loadRemote(ctx, o, seed, dls, fetchErrs, true)
	}
	return o
}

// loadRemote loads a URL source from its fresh downloads, or else its
// cached copies: per part, so a publisher's file that cannot be had now
// leaves the others (and its own last good copy) in force.
// Without useFresh the downloads are ignored (they did not parse).
func (l *loader) loadRemote(ctx context.Context, o *loadOutcome, seed maphash.Seed, dls map[string]*download, fetchErrs map[string]error, useFresh bool) *loadOutcome {
	src := o.p.src
	o.origin = src.URL
	if urls := sourceURLs(src); len(urls) > 1 {
		o.origin = fmt.Sprintf("%s (and %d more files)", urls[0], len(urls)-1)
	}
	var (
		orgs     []origin
		fresh    []part
		problems []error
		usedOld  bool
	)
	for _, pt := range parts(src) {
		if err := fetchErrs[pt.key]; err != nil {
			problems = append(problems, err)
		}
		if dl := dls[pt.key]; dl != nil && useFresh {
			org, err := osOrigin(dl.path)
			if err == nil {
				org.display = pt.url + " (download " + dl.path + ")"
				orgs = append(orgs, org)
				fresh = append(fresh, pt)
				continue
			}
		}
		cached, ok := l.fetch.cached(pt)
		if !ok {
			if fetchErrs[pt.key] == nil {
				problems = append(problems, fmt.Errorf("%s: not fetched yet", pt.url))
			}
			continue
		}
		org, err := osOrigin(cached)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		org.display = pt.url + " (cached " + cached + ")"
		orgs = append(orgs, org)
		usedOld = usedOld || fetchErrs[pt.key] != nil
	}
	if len(orgs) == 0 {
		o.err = &SourceError{Source: src.Name, Origin: o.origin, Err: summarize(append(problems, errors.New("no cached copy")))}
		return o
	}
	lists, err := l.openLists(ctx, src, orgs, seed, true)
	if err != nil && len(fresh) > 0 {
		// A download that does not parse is not kept: load the last good
		// copies instead.
		for _, pt := range fresh {
			l.fetch.discard(dls[pt.key])
		}
		problems = append(problems, fmt.Errorf("downloaded list rejected, keeping the last good copy: %w", err))
		fallback := l.loadRemote(ctx, &loadOutcome{p: o.p}, seed, dls, fetchErrs, false)
		if fallback.err != nil {
			fallback.err.Err = errors.Join(append(problems, fallback.err.Err)...)
			return fallback
		}
		fallback.fallback, fallback.warn = "cache", errors.Join(append(problems, fallback.warn)...)
		return fallback
	}
	if err != nil {
		o.err = &SourceError{Source: src.Name, Origin: o.origin, Err: errors.Join(append(problems, err)...)}
		return o
	}
	o.lists = lists
	for _, pt := range fresh {
		if cerr := l.fetch.commit(pt, dls[pt.key]); cerr != nil {
			l.logger.Warn("list download not cached", "source", src.Name, "url", pt.url, "err", cerr)
		}
	}
	switch {
	case len(orgs) < len(parts(src)):
		o.fallback, o.warn = "partial", summarize(problems)
	case usedOld:
		o.fallback, o.warn = "cache", summarize(problems)
	case len(problems) > 0:
		o.warn = summarize(problems)
	}
	return o
}

// builder commits loaded lists into the structures of an Index.
type builder struct {
	seed  maphash.Seed
	in    *interner
	lists []*listResult
}

func newBuilder(seed maphash.Seed) *builder {
	return &builder{seed: seed, in: newInterner()}
}

func (b *builder) add(o *loadOutcome) {
	if o.err != nil {
		return
	}
	for _, r := range o.lists {
		if !r.missing && r.verr == nil {
			b.lists = append(b.lists, r)
		}
	}
}

// finish builds the tables. The domain table is sized once from the total
// number of parsed names, so a 5-million-name list never rehashes.
func (b *builder) finish(outs []*loadOutcome) *Index {
	now := time.Now()
	ix := &Index{seed: b.seed, unions: &unionCache{}, built: now}
	total := 0
	for _, r := range b.lists {
		total += r.hashes.n
	}
	ix.dom = newTable(total)
	ix.ips = map[netip.Addr]uint32{}
	stats := map[*listResult]*SourceStats{}
	for _, r := range b.lists {
		if r.sample != nil {
			ix.samples = append(ix.samples, NameSample{Source: r.label, Category: r.category, Names: r.sample.names, Total: r.sample.total})
			r.sample = nil
		}
		st := &SourceStats{}
		stats[r] = st
		m := b.in.match(Match{Category: r.category, Source: r.label})
		single := b.in.add(0, m)
		ix.domMask |= r.labelMask
		for _, chunk := range r.hashes.chunks {
			for _, h := range chunk {
				p, _ := ix.dom.ref(h)
				old := *p
				nw := single
				if old != 0 {
					nw = b.in.add(old, m)
				}
				if nw == old {
					st.Duplicates++
					continue
				}
				*p = nw
				st.Domains++
			}
		}
		r.hashes = hashChunks{} // let the chunks go before the next list
		for _, a := range r.ips {
			old := ix.ips[a]
			nw := b.in.add(old, m)
			if nw == old {
				st.Duplicates++
				continue
			}
			ix.ips[a] = nw
			st.IPs++
		}
	}
	b.finishURLs(ix, stats)
	b.finishExprs(ix, stats)
	ix.sets = b.in.sets
	ix.entries = ix.dom.n + len(ix.ips)
	ix.entries += len(ix.urlRules)
	for _, e := range ix.exprs {
		ix.entries += len(e.srcs)
	}
	ix.stats, ix.revision = b.stats(outs, stats, now)
	return ix
}

func (b *builder) finishURLs(ix *Index, stats map[*listResult]*SourceStats) {
	type ruleKey struct {
		host     string
		ip       bool
		path     string
		query    string
		hasQuery bool
	}
	rules := map[ruleKey]uint32{}
	var order []ruleKey
	for _, r := range b.lists {
		m := b.in.match(Match{Category: r.category, Source: r.label})
		for _, u := range r.urls {
			k := ruleKey{u.host, u.addr.IsValid(), u.path, u.query, u.hasQuery}
			old, seen := rules[k]
			nw := b.in.add(old, m)
			if nw == old {
				stats[r].Duplicates++
				continue
			}
			if !seen {
				order = append(order, k)
				if !k.ip {
					ix.urlMask |= labelBit(u.labels)
				}
			}
			rules[k] = nw
			stats[r].URLs++
		}
		r.urls = nil
	}
	if len(order) == 0 {
		return
	}
	slices.SortFunc(order, func(a, b ruleKey) int {
		return cmp.Or(cmp.Compare(a.host, b.host), compareBool(a.ip, b.ip), cmp.Compare(a.path, b.path),
			compareBool(a.hasQuery, b.hasQuery), cmp.Compare(a.query, b.query))
	})
	ix.urlIPs = map[netip.Addr]uint32{}
	hosts, paths := 0, 0
	for i, k := range order {
		newHost := i == 0 || k.host != order[i-1].host || k.ip != order[i-1].ip
		if newHost {
			hosts++
		}
		if newHost || k.path != order[i-1].path {
			paths++
		}
	}
	ix.urlHosts = newTable(hosts)
	ix.urlPaths = newTable(paths)
	ix.urlRules = make([]urlEntry, 0, len(order))
	g := uint32(0)
	for i, k := range order {
		newHost := i == 0 || k.host != order[i-1].host || k.ip != order[i-1].ip
		if newHost {
			if i > 0 {
				g++
			}
			if k.ip {
				ix.urlIPs[netip.MustParseAddr(k.host)] = g
			} else {
				p, _ := ix.urlHosts.ref(hashString(b.seed, k.host))
				*p = g
			}
		}
		if newHost || k.path != order[i-1].path {
			// Two (host, path) pairs hashing alike would hide the
			// second; at 2^-64 per pair that is not worth a fallback.
			p, _ := ix.urlPaths.ref(pathKey(b.seed, g, k.path))
			*p = uint32(len(ix.urlRules))
		}
		ix.urlRules = append(ix.urlRules, urlEntry{group: g, path: k.path, query: k.query, hasQuery: k.hasQuery, set: rules[k]})
	}
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func (b *builder) finishExprs(ix *Index, stats map[*listResult]*SourceStats) {
	for _, r := range b.lists {
		if len(r.exprs) == 0 {
			continue
		}
		m := b.in.match(Match{Category: r.category, Source: r.label})
		set := b.in.sets[b.in.add(0, m)]
		parts := make([]string, len(r.exprs))
		for i, e := range r.exprs {
			parts[i] = "(?:" + e.re.String() + ")"
		}
		re, err := regexp.Compile(strings.Join(parts, "|"))
		if err != nil {
			// Each part compiled alone; keep them apart if the
			// alternation does not (it is within RE2 limits otherwise).
			for _, e := range r.exprs {
				ix.exprs = append(ix.exprs, exprSet{re: e.re, srcs: []exprRule{e}, set: set})
			}
		} else {
			ix.exprs = append(ix.exprs, exprSet{re: re, srcs: r.exprs, set: set})
		}
		stats[r].Expressions += len(r.exprs)
	}
}

// stats assembles the per-list statistics in plan order and the index
// revision, a hash over the sorted list revisions.
func (b *builder) stats(outs []*loadOutcome, counted map[*listResult]*SourceStats, now time.Time) ([]SourceStats, string) {
	var out []SourceStats
	var revs []string
	for _, o := range outs {
		if o.err != nil {
			out = append(out, SourceStats{Name: o.err.Source, Label: o.err.Source, Origin: o.err.Origin, Error: o.err.Err.Error(), LoadedAt: now})
			continue
		}
		for _, r := range o.lists {
			st := SourceStats{}
			if c := counted[r]; c != nil {
				st = *c
			}
			st.Name = o.p.src.Name
			st.Label = r.label
			if i := strings.IndexByte(r.label, ':'); i >= 0 {
				st.List = r.label[i+1:]
			}
			st.Category = r.category
			st.Format = r.format
			st.Origin = o.origin
			st.Fallback = o.fallback
			st.Skipped = r.skipped
			st.Errors = r.errCount
			for _, le := range r.lineErrs {
				st.LineErrors = append(st.LineErrors, le.Error())
			}
			st.Entries = st.Domains + st.IPs + st.URLs + st.Expressions
			st.Revision = r.revision
			st.LoadedAt = now
			switch {
			case r.missing:
				st.Error = "category not found in the UT1 tree"
			case r.verr != nil:
				st.Error = r.verr.Error()
			default:
				revs = append(revs, r.revision)
			}
			out = append(out, st)
		}
	}
	slices.Sort(revs)
	h := sha256.New()
	for _, r := range revs {
		h.Write([]byte(r))
		h.Write([]byte{'\n'})
	}
	return out, hex.EncodeToString(h.Sum(nil))[:16]
}
