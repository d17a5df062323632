package rego

import (
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/aupguard/aupguard/verdict"
)

// Interned keys: building the input is on every uncached decision, so the
// key terms are made once.
var (
	kSource, kPhase, kClient, kRequest    = ast.StringTerm("source"), ast.StringTerm("phase"), ast.StringTerm("client"), ast.StringTerm("request")
	kResponse, kDNS, kCategories, kTime   = ast.StringTerm("response"), ast.StringTerm("dns"), ast.StringTerm("categories"), ast.StringTerm("time")
	kIP, kUser, kGroups                   = ast.StringTerm("ip"), ast.StringTerm("user"), ast.StringTerm("groups")
	kMethod, kScheme, kHost, kPort, kPath = ast.StringTerm("method"), ast.StringTerm("scheme"), ast.StringTerm("host"), ast.StringTerm("port"), ast.StringTerm("path")
	kQuery, kContentType, kContentLength  = ast.StringTerm("query"), ast.StringTerm("content_type"), ast.StringTerm("content_length")
	kStatus, kFilename, kQName, kQType    = ast.StringTerm("status"), ast.StringTerm("filename"), ast.StringTerm("qname"), ast.StringTerm("qtype")
	kWeekday, kHour, kDate                = ast.StringTerm("weekday"), ast.StringTerm("hour"), ast.StringTerm("date")
	weekdays                              [7]*ast.Term
)

func init() {
	for d := time.Sunday; d <= time.Saturday; d++ {
		weekdays[d] = ast.StringTerm(strings.ToLower(d.String()))
	}
}

// InputValue builds the policy input document for in directly as an OPA
// value (no JSON round trip). Unknown fields are left out rather than set to
// null, so rules can test for presence. Times are expressed in loc.
func InputValue(in *verdict.Input, loc *time.Location) ast.Value {
	obj := ast.NewObject()
	if in.Source != "" {
		obj.Insert(kSource, ast.StringTerm(string(in.Source)))
	}
	if in.Phase != "" {
		obj.Insert(kPhase, ast.StringTerm(string(in.Phase)))
	}

	client := ast.NewObject()
	if in.Client.IP != "" {
		client.Insert(kIP, ast.StringTerm(in.Client.IP))
	}
	if in.Client.User != "" {
		client.Insert(kUser, ast.StringTerm(in.Client.User))
	}
	groups := make([]*ast.Term, len(in.Client.Groups))
	for i, g := range in.Client.Groups {
		groups[i] = ast.StringTerm(g)
	}
	client.Insert(kGroups, ast.ArrayTerm(groups...))
	obj.Insert(kClient, ast.NewTerm(client))

	r := &in.Request
	req := ast.NewObject()
	putString(req, kMethod, r.Method)
	putString(req, kScheme, r.Scheme)
	putString(req, kHost, r.Host)
	if r.Port > 0 {
		req.Insert(kPort, ast.IntNumberTerm(r.Port))
	}
	putString(req, kPath, r.Path)
	putString(req, kQuery, r.Query)
	putString(req, kContentType, r.ContentType)
	if r.Method != "" && r.ContentLength >= 0 {
		req.Insert(kContentLength, ast.InternedTerm(int(r.ContentLength)))
	}
	if req.Len() > 0 {
		obj.Insert(kRequest, ast.NewTerm(req))
	}

	if rs := in.Response; rs != nil {
		resp := ast.NewObject()
		if rs.Status > 0 {
			resp.Insert(kStatus, ast.IntNumberTerm(rs.Status))
		}
		putString(resp, kContentType, rs.ContentType)
		putString(resp, kFilename, rs.Filename)
		obj.Insert(kResponse, ast.NewTerm(resp))
	}
	if q := in.DNS; q != nil {
		d := ast.NewObject()
		putString(d, kQName, q.QName)
		putString(d, kQType, q.QType)
		obj.Insert(kDNS, ast.NewTerm(d))
	}

	cats := ast.NewObject()
	if len(in.Categories) > 0 {
		names := make([]string, 0, len(in.Categories))
		for c := range in.Categories {
			names = append(names, c)
		}
		sort.Strings(names)
		for _, c := range names {
			srcs := in.Categories[c]
			ts := make([]*ast.Term, len(srcs))
			for i, s := range srcs {
				ts[i] = ast.StringTerm(s)
			}
			cats.Insert(ast.StringTerm(c), ast.ArrayTerm(ts...))
		}
	}
	obj.Insert(kCategories, ast.NewTerm(cats))

	t := in.Time
	if t.IsZero() {
		t = time.Now()
	}
	if loc != nil {
		t = t.In(loc)
	}
	tm := ast.NewObject(
		ast.Item(kWeekday, weekdays[t.Weekday()]),
		ast.Item(kHour, ast.InternedTerm(t.Hour())),
		ast.Item(kDate, ast.StringTerm(t.Format(time.DateOnly))),
	)
	obj.Insert(kTime, ast.NewTerm(tm))
	return obj
}

func putString(o ast.Object, k *ast.Term, v string) {
	if v != "" {
		o.Insert(k, ast.StringTerm(v))
	}
}
