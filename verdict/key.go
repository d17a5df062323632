package verdict

import (
	"encoding/binary"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// A keyField is one leaf of the input contract that can take part in a
// cache key. keyFields is the table of the policy input's leaves: a field
// added to Input (and to the document the rego package builds) and not
// here would let two requests differing only in it share a verdict.
// TestKeyCoversEveryInputLeaf walks every leaf of a filled-in Input and
// fails when a change a policy can see does not change the key.
type keyField struct {
	path   string
	encode func(b []byte, in *Input, k keyCtx) []byte
}

// keyCtx carries values computed once per decision for the key. It is
// passed by value: a pointer handed to the encoders (called through func
// values) would make it escape, one allocation per decision.
type keyCtx struct {
	cats string // categories.Set key
	t    time.Time
}

var keyFields = []keyField{
	{"source", func(b []byte, in *Input, _ keyCtx) []byte { return appendStr(b, string(in.Source)) }},
	{"phase", func(b []byte, in *Input, _ keyCtx) []byte { return appendStr(b, string(in.Phase)) }},
	{"client.ip", func(b []byte, in *Input, _ keyCtx) []byte { return appendStr(b, in.Client.IP) }},
	{"client.user", func(b []byte, in *Input, _ keyCtx) []byte { return appendStr(b, in.Client.User) }},
	{"client.groups", func(b []byte, in *Input, _ keyCtx) []byte {
		b = binary.AppendUvarint(b, uint64(len(in.Client.Groups)))
		for _, g := range in.Client.Groups {
			b = appendStr(b, g)
		}
		return b
	}},
	{"request.method", func(b []byte, in *Input, _ keyCtx) []byte { return appendStr(b, in.Request.Method) }},
	{"request.scheme", func(b []byte, in *Input, _ keyCtx) []byte { return appendStr(b, in.Request.Scheme) }},
	{"request.host", func(b []byte, in *Input, _ keyCtx) []byte { return appendStr(b, in.Request.Host) }},
	{"request.port", func(b []byte, in *Input, _ keyCtx) []byte { return binary.AppendVarint(b, int64(in.Request.Port)) }},
	{"request.path", func(b []byte, in *Input, _ keyCtx) []byte { return appendStr(b, in.Request.Path) }},
	{"request.query", func(b []byte, in *Input, _ keyCtx) []byte { return appendStr(b, in.Request.Query) }},
	{"request.content_type", func(b []byte, in *Input, _ keyCtx) []byte { return appendStr(b, in.Request.ContentType) }},
	{"request.content_length", func(b []byte, in *Input, _ keyCtx) []byte {
		// Present in the input only with a method and a known length.
		if in.Request.Method == "" || in.Request.ContentLength < 0 {
			return append(b, 0)
		}
		return binary.AppendVarint(append(b, 1), in.Request.ContentLength)
	}},
	{"response.status", func(b []byte, in *Input, _ keyCtx) []byte {
		if in.Response == nil {
			return append(b, 0)
		}
		return binary.AppendVarint(append(b, 1), int64(in.Response.Status))
	}},
	{"response.content_type", func(b []byte, in *Input, _ keyCtx) []byte {
		if in.Response == nil {
			return append(b, 0)
		}
		return appendStr(append(b, 1), in.Response.ContentType)
	}},
	{"response.filename", func(b []byte, in *Input, _ keyCtx) []byte {
		if in.Response == nil {
			return append(b, 0)
		}
		return appendStr(append(b, 1), in.Response.Filename)
	}},
	{"dns.qname", func(b []byte, in *Input, _ keyCtx) []byte {
		if in.DNS == nil {
			return append(b, 0)
		}
		return appendStr(append(b, 1), in.DNS.QName)
	}},
	{"dns.qtype", func(b []byte, in *Input, _ keyCtx) []byte {
		if in.DNS == nil {
			return append(b, 0)
		}
		return appendStr(append(b, 1), in.DNS.QType)
	}},
	// The model's scores show in input.categories too ("model:0.97"), so
	// a policy reading only the categories still keys on them.
	{"categories", func(b []byte, in *Input, k keyCtx) []byte { return appendModel(appendStr(b, k.cats), in) }},
	{"model", func(b []byte, in *Input, _ keyCtx) []byte { return appendModel(b, in) }},
	{"page", appendPage},
	{"time.weekday", func(b []byte, _ *Input, k keyCtx) []byte { return append(b, byte(k.t.Weekday())) }},
	{"time.hour", func(b []byte, _ *Input, k keyCtx) []byte { return append(b, byte(k.t.Hour())) }},
	{"time.date", func(b []byte, _ *Input, k keyCtx) []byte {
		y, m, d := k.t.Date()
		return append(binary.AppendUvarint(b, uint64(y)), byte(m), byte(d))
	}},
}

// InputPaths lists the leaves of the policy input document, dotted
// ("request.host"; "categories" is one leaf, whatever categories it
// holds): the table the cache key is built from. The rego package's tests
// check that the input document it builds has exactly these leaves, so the
// document and the key cannot drift apart.
func InputPaths() []string {
	out := make([]string, len(keyFields))
	for i, f := range keyFields {
		out[i] = f.path
	}
	return out
}

// keyPlan is the subset of keyFields a policy revision reads.
type keyPlan struct {
	fields   []keyField
	needTime bool
}

// newKeyPlan selects the fields a policy reads. paths nil means the policy
// reads the whole input, so every field takes part. A field takes part
// when a read path is a prefix of it (input.request reads every request
// field) or it is a prefix of a read path (input.categories.gambling needs
// the whole categories set). A read path that matches no field is one
// this table does not know (a field the input gained without the key, or
// a typo): every field then takes part, since a key that leaves out what
// the policy reads could give one request another's verdict.
func newKeyPlan(paths [][]string) *keyPlan {
	all := paths == nil
	for _, p := range paths {
		if !knownPath(p) {
			all = true
			break
		}
	}
	kp := &keyPlan{}
	for _, f := range keyFields {
		if all || reads(paths, f.path) {
			kp.fields = append(kp.fields, f)
			if strings.HasPrefix(f.path, "time.") {
				kp.needTime = true
			}
		}
	}
	return kp
}

// knownPath reports whether some field of the table overlaps p.
func knownPath(p []string) bool {
	for _, f := range keyFields {
		if reads([][]string{p}, f.path) {
			return true
		}
	}
	return false
}

func reads(paths [][]string, field string) bool {
	fp := strings.Split(field, ".")
	for _, p := range paths {
		n := min(len(p), len(fp))
		match := true
		for i := 0; i < n; i++ {
			if p[i] != fp[i] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// append writes the key for in. Revisions come first so no verdict of
// another policy or list revision can ever match.
func (kp *keyPlan) append(b []byte, policyRev, listsRev string, in *Input, k keyCtx) []byte {
	b = appendStr(b, policyRev)
	b = appendStr(b, listsRev)
	for i, f := range kp.fields {
		b = append(b, byte(i))
		b = f.encode(b, in, k)
	}
	return b
}

// appendModel writes the model's banded scores (the decider has rounded
// them to ModelStep, so a score is its band).
func appendModel(b []byte, in *Input) []byte {
	b = binary.AppendUvarint(b, uint64(len(in.Model)))
	for _, m := range in.Model {
		b = appendStr(b, m.Category)
		b = binary.AppendUvarint(b, uint64(m.Score*100+0.5))
	}
	return b
}

// appendPage writes input.page. Page verdicts are never cached (the
// decider skips the cache for them), but the table must still say how a
// page takes part in a key, so that no field of the input is outside it.
func appendPage(b []byte, in *Input, _ keyCtx) []byte {
	p := in.Page
	if p == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	for _, m := range []map[string]float64{p.Scores, p.Positive} {
		keys := slices.Sorted(maps.Keys(m))
		b = binary.AppendUvarint(b, uint64(len(keys)))
		for _, k := range keys {
			b = appendStr(b, k)
			b = binary.AppendUvarint(b, math.Float64bits(m[k]))
		}
	}
	keys := slices.Sorted(maps.Keys(p.Phrases))
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendStr(b, k)
		b = binary.AppendUvarint(b, uint64(len(p.Phrases[k])))
		for _, ph := range p.Phrases[k] {
			b = appendStr(b, ph)
		}
	}
	return b
}

// appendStr length-prefixes s so that no two field sequences can encode
// to the same bytes.
func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
