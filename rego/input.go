package rego

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/aupguard/aupguard/verdict"
)

// Building the input is on every uncached decision, and each string term
// costs two allocations, so the terms that recur are made once: the keys,
// the words of the fixed vocabulary, and, per policy (inputBuilder), the
// names that come from the configuration and the time of day. OPA never
// modifies an input, so one term can serve every evaluation.
var (
	kSource, kPhase, kClient, kRequest    = ast.StringTerm("source"), ast.StringTerm("phase"), ast.StringTerm("client"), ast.StringTerm("request")
	kResponse, kDNS, kCategories, kTime   = ast.StringTerm("response"), ast.StringTerm("dns"), ast.StringTerm("categories"), ast.StringTerm("time")
	kIP, kUser, kGroups                   = ast.StringTerm("ip"), ast.StringTerm("user"), ast.StringTerm("groups")
	kMethod, kScheme, kHost, kPort, kPath = ast.StringTerm("method"), ast.StringTerm("scheme"), ast.StringTerm("host"), ast.StringTerm("port"), ast.StringTerm("path")
	kQuery, kContentType, kContentLength  = ast.StringTerm("query"), ast.StringTerm("content_type"), ast.StringTerm("content_length")
	kStatus, kFilename, kQName, kQType    = ast.StringTerm("status"), ast.StringTerm("filename"), ast.StringTerm("qname"), ast.StringTerm("qtype")
	kWeekday, kHour, kDate                = ast.StringTerm("weekday"), ast.StringTerm("hour"), ast.StringTerm("date")
	kModel, kPage, kScores                = ast.StringTerm("model"), ast.StringTerm("page"), ast.StringTerm("scores")
	kPositive, kPhrases                   = ast.StringTerm("positive"), ast.StringTerm("phrases")
	weekdays                              [7]*ast.Term

	// noCategories is the categories of a host no list names, the usual case.
	noCategories = ast.ObjectTerm()
)

// vocabulary holds the values of the fields that take one of a few words.
// It is never written after init, so reading it needs no lock; a value
// outside it (a client may send any method) is simply not shared.
var vocabulary = map[string]*ast.Term{}

func init() {
	for d := time.Sunday; d <= time.Saturday; d++ {
		weekdays[d] = ast.StringTerm(strings.ToLower(d.String()))
	}
	for _, w := range []string{
		string(verdict.SourceProxy), string(verdict.SourceDNS), string(verdict.SourceCheck),
		string(verdict.PhaseConnect), string(verdict.PhaseRequest), string(verdict.PhaseResponse), string(verdict.PhaseQuery),
		"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
		"http", "https", "magnet", "ws", "wss", "ftp",
		"A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT", "HTTPS", "SVCB", "CAA", "ANY",
	} {
		vocabulary[w] = ast.StringTerm(w)
	}
}

// word returns the term for s, shared when s is in the vocabulary.
func word(s string) *ast.Term {
	if t, ok := vocabulary[s]; ok {
		return t
	}
	return ast.StringTerm(s)
}

// inputBuilder makes the input documents of one policy revision. It shares
// the terms of the names the configuration brings in (groups, categories
// and the lists that name a category) and of the time of day, which
// changes once an hour, so that nearly every decision reuses them. Names
// come from outside this package, so the table stops growing at maxNames
// rather than trust that they are few. Safe for concurrent use.
type inputBuilder struct {
	loc                 *time.Location           // times are expressed in loc; nil: as given
	strings, singletons sync.Map                 // string → *ast.Term: the string, and the array of just it
	n                   atomic.Int32             // entries in strings and singletons
	lastTime            atomic.Pointer[timeTerm] // the last input.time made
}

const maxNames = 4096

// newInputBuilder returns a builder expressing times in loc.
func newInputBuilder(loc *time.Location) *inputBuilder { return &inputBuilder{loc: loc} }

// name returns the shared string term for s.
func (b *inputBuilder) name(s string) *ast.Term {
	if t, ok := b.strings.Load(s); ok {
		return t.(*ast.Term)
	}
	t := ast.StringTerm(strings.Clone(s))
	if b.n.Load() < maxNames {
		if prev, loaded := b.strings.LoadOrStore(string(t.Value.(ast.String)), t); loaded {
			return prev.(*ast.Term)
		}
		b.n.Add(1)
	}
	return t
}

// nameArray returns the array term of the names ss; the one-name array, by
// far the most common (a client in one group, a category named by one
// list), is shared.
func (b *inputBuilder) nameArray(ss []string) *ast.Term {
	if len(ss) == 1 {
		if t, ok := b.singletons.Load(ss[0]); ok {
			return t.(*ast.Term)
		}
		elem := b.name(ss[0])
		t := ast.ArrayTerm(elem)
		if b.n.Load() < maxNames {
			if prev, loaded := b.singletons.LoadOrStore(string(elem.Value.(ast.String)), t); loaded {
				return prev.(*ast.Term)
			}
			b.n.Add(1)
		}
		return t
	}
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = b.name(s)
	}
	return ast.ArrayTerm(ts...)
}

type timeTerm struct {
	year, yday, hour int
	term             *ast.Term
}

// timeValue returns the input.time object for t: weekday, hour and date.
func (b *inputBuilder) timeValue(t time.Time) *ast.Term {
	y, yd, h := t.Year(), t.YearDay(), t.Hour()
	if c := b.lastTime.Load(); c != nil && c.year == y && c.yday == yd && c.hour == h {
		return c.term
	}
	term := ast.ObjectTerm(
		ast.Item(kWeekday, weekdays[t.Weekday()]),
		ast.Item(kHour, ast.InternedTerm(h)),
		ast.Item(kDate, ast.StringTerm(t.Format(time.DateOnly))),
	)
	b.lastTime.Store(&timeTerm{year: y, yday: yd, hour: h, term: term})
	return term
}

// page is input.page: {"scores": {...}, "positive": {...}, "phrases":
// {category: [phrase, ...]}}. Made once per scored page, so nothing is
// shared.
func (b *inputBuilder) page(p *verdict.Page) *ast.Term {
	num := func(m map[string]float64) *ast.Term {
		items := make([][2]*ast.Term, 0, len(m))
		for k, v := range m {
			items = append(items, ast.Item(b.name(k), ast.FloatNumberTerm(v)))
		}
		return ast.ObjectTerm(items...)
	}
	phrases := make([][2]*ast.Term, 0, len(p.Phrases))
	for k, v := range p.Phrases {
		ts := make([]*ast.Term, len(v))
		for i, ph := range v {
			ts[i] = ast.StringTerm(ph)
		}
		phrases = append(phrases, ast.Item(b.name(k), ast.ArrayTerm(ts...)))
	}
	return ast.ObjectTerm(
		ast.Item(kScores, num(p.Scores)),
		ast.Item(kPositive, num(p.Positive)),
		ast.Item(kPhrases, ast.ObjectTerm(phrases...)),
	)
}

// fields collects the members of one input object, so that the object is
// made in one go (one allocation for all its members) rather than grown key
// by key.
type fields struct {
	items [10][2]*ast.Term
	n     int
}

func (f *fields) add(k, v *ast.Term) {
	f.items[f.n] = [2]*ast.Term{k, v}
	f.n++
}

func (f *fields) addString(k *ast.Term, v string) {
	if v != "" {
		f.add(k, ast.StringTerm(v))
	}
}

func (f *fields) addWord(k *ast.Term, v string) {
	if v != "" {
		f.add(k, word(v))
	}
}

func (f *fields) term() *ast.Term { return ast.ObjectTerm(f.items[:f.n]...) }

// value builds the policy input document for in directly as an OPA value
// (no JSON round trip). Unknown fields are left out rather than set to
// null, so rules can test for presence.
func (b *inputBuilder) value(in *verdict.Input) ast.Value {
	var top, client, req fields
	top.addWord(kSource, string(in.Source))
	top.addWord(kPhase, string(in.Phase))

	client.addString(kIP, in.Client.IP)
	client.addString(kUser, in.Client.User)
	client.add(kGroups, b.nameArray(in.Client.Groups))
	top.add(kClient, client.term())

	r := &in.Request
	req.addWord(kMethod, r.Method)
	req.addWord(kScheme, r.Scheme)
	req.addString(kHost, r.Host)
	if r.Port > 0 {
		req.add(kPort, ast.InternedTerm(r.Port))
	}
	req.addString(kPath, r.Path)
	req.addString(kQuery, r.Query)
	req.addString(kContentType, r.ContentType)
	if r.Method != "" && r.ContentLength >= 0 {
		req.add(kContentLength, ast.InternedTerm(int(r.ContentLength)))
	}
	if req.n > 0 {
		top.add(kRequest, req.term())
	}

	if rs := in.Response; rs != nil {
		var resp fields
		if rs.Status > 0 {
			resp.add(kStatus, ast.InternedTerm(rs.Status))
		}
		resp.addString(kContentType, rs.ContentType)
		resp.addString(kFilename, rs.Filename)
		top.add(kResponse, resp.term())
	}
	if q := in.DNS; q != nil {
		var d fields
		d.addString(kQName, q.QName)
		d.addWord(kQType, q.QType)
		top.add(kDNS, d.term())
	}

	cats := noCategories
	if len(in.Categories) > 0 {
		items := make([][2]*ast.Term, 0, len(in.Categories))
		for c, srcs := range in.Categories {
			items = append(items, ast.Item(b.name(c), b.nameArray(srcs)))
		}
		// OPA visits an object's keys in sorted order, whatever the order
		// of this map's range.
		cats = ast.ObjectTerm(items...)
	}
	top.add(kCategories, cats)
	if len(in.Model) > 0 {
		items := make([][2]*ast.Term, len(in.Model))
		for i, m := range in.Model {
			items[i] = ast.Item(b.name(m.Category), ast.FloatNumberTerm(m.Score))
		}
		top.add(kModel, ast.ObjectTerm(items...))
	}
	if p := in.Page; p != nil {
		top.add(kPage, b.page(p))
	}

	t := in.Time
	if t.IsZero() {
		t = time.Now()
	}
	if b.loc != nil {
		t = t.In(b.loc)
	}
	top.add(kTime, b.timeValue(t))
	return top.term().Value
}
