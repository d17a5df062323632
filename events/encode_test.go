package events

import (
	"bytes"
	"encoding/json"
	"github.com/aupguard/aupguard/verdict"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// stdJSONLine encodes ev as Emit did before AppendJSON: encoding/json's
// Encoder with HTML escaping off (which adds the '\n').
func stdJSONLine(ev *Event) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// checkSameJSON fails t unless AppendJSON and encoding/json agree on ev:
// the same bytes, or both an error. It also checks that AppendJSON appends
// to what b already holds, and that encodeLine (Emit's path) agrees.
func checkSameJSON(t *testing.T, ev *Event) {
	t.Helper()
	want, wantErr := stdJSONLine(ev)
	prefix := []byte("prefix:")
	got, err := ev.AppendJSON(append([]byte(nil), prefix...))
	if wantErr != nil {
		if err == nil {
			t.Fatalf("encoding/json fails (%v) but AppendJSON gives %q\nevent: %#v", wantErr, got, ev)
		}
		if !bytes.Equal(got, prefix) {
			t.Fatalf("AppendJSON failed (%v) but did not return b unchanged: %q", err, got)
		}
		if _, err := encodeLine(ev); err == nil {
			t.Fatalf("encodeLine succeeds where encoding/json fails (%v)", wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("AppendJSON: %v; encoding/json gives %q\nevent: %#v", err, want, ev)
	}
	if !bytes.HasPrefix(got, prefix) {
		t.Fatalf("AppendJSON lost the bytes it appends to: %q", got)
	}
	if got = got[len(prefix):]; !bytes.Equal(got, want) {
		t.Fatalf("AppendJSON differs from encoding/json\n got: %q\nwant: %q\nevent: %#v", got, want, ev)
	}
	line, err := encodeLine(ev)
	if err != nil || !bytes.Equal(line, want) {
		t.Fatalf("encodeLine = %q, %v; want %q", line, err, want)
	}
	if len(line) != cap(line) {
		t.Fatalf("encodeLine's line has len %d, cap %d; want it right-sized", len(line), cap(line))
	}
}

// trickyStrings exercise every branch of JSON string escaping.
var trickyStrings = []string{
	"",
	"plain ascii",
	" ",
	`"quoted"`,
	`back\slash`,
	`\"`,
	"\b\f\n\r\t",
	"\x00",
	"a\x00b\x01c\x1fd",
	allControlChars(),
	"\x7f",
	"<script>&amp;</script>",
	"https://www.example.test/page?x=<&>#frag",
	"\u2028",
	"\u2029",
	"a\u2028b\u2029c",
	"\u2027\u202a", // neighbours of the two that are escaped
	"\u00e9t\u00e9 \u65e5\u672c\u8a9e \U0001F600 \U0010FFFF",
	"\uFFFD",           // a valid U+FFFD stays as is
	"\xff",             // invalid byte
	"a\xffb",           // invalid byte between valid ones
	"\xfe\xff",         // two invalid bytes
	"\xc3",             // a 2-byte sequence cut short
	"\xc3(",            // bad continuation
	"\xe2\x80",         // a cut-short prefix of U+2028
	"\xe2\x80\xa8",     // U+2028, bytes spelled out
	"\xed\xa0\x80",     // a UTF-16 surrogate, not valid UTF-8
	"\xc0\xaf",         // overlong '/'
	"\xf4\x90\x80\x80", // beyond U+10FFFF
	"\xf0\x9f\x98",     // a 4-byte sequence cut short at the end
	"\x80\x80",         // lone continuation bytes
	"mixed \"\\\n\x01\xff\u2028<>&\u00e9\U0001F600 end",
	strings.Repeat("long \u00e9 ", 400), // longer than encodeLine's stack buffer
}

func allControlChars() string {
	var b strings.Builder
	for c := 0; c < 0x20; c++ {
		b.WriteByte(byte(c))
	}
	return b.String()
}

// setStringFields sets every string-kinded field of ev (ID, Kind, ...) and
// every element of Groups to s.
func setStringFields(ev *Event, s string) {
	v := reflect.ValueOf(ev).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch {
		case f.Kind() == reflect.String:
			f.SetString(s)
		case f.Type() == reflect.TypeFor[[]string]():
			f.Set(reflect.ValueOf([]string{s, s}))
		}
	}
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	base := Event{
		ID:       "01J8Z3K4QX7Y2B5N6M8P9R0S1T",
		Time:     time.Date(2026, 9, 1, 13, 3, 4, 512_000_000, time.UTC),
		Instance: "proxy-1",
		Kind:     KindBlock,
		Source:   "proxy",
		Phase:    "request",
		Action:   "block",
		Category: "gambling",
		Rule:     "gambling",
		Reason:   "Gambling sites are not allowed on the training network",
		Severity: "medium",
		ClientIP: "10.1.2.3",
		User:     "jsmith",
		Groups:   []string{"learners"},
		Host:     "www.casino.example",
		URL:      "https://www.casino.example/play",
		Method:   "GET",
	}
	t.Run("readme example", func(t *testing.T) {
		ev := base
		checkSameJSON(t, &ev)
		want := `{"id":"01J8Z3K4QX7Y2B5N6M8P9R0S1T","time":"2026-09-01T13:03:04.512Z","instance":"proxy-1","kind":"block","source":"proxy","phase":"request","action":"block","category":"gambling","rule":"gambling","reason":"Gambling sites are not allowed on the training network","severity":"medium","alert":false,"client_ip":"10.1.2.3","user":"jsmith","groups":["learners"],"host":"www.casino.example","url":"https://www.casino.example/play","method":"GET"}` + "\n"
		if got, _ := ev.AppendJSON(nil); string(got) != want {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	})
	t.Run("zero event", func(t *testing.T) {
		checkSameJSON(t, &Event{})
	})
	t.Run("dns event", func(t *testing.T) {
		ev := Event{ID: "01J8Z3K4QX7Y2B5N6M8P9R0S1T", Time: time.Now(), Kind: KindBlock, Source: "dns", Phase: "query",
			Action: "block", Category: "adult", ClientIP: "2001:db8::1", Host: "example.com",
			QName: "Example.COM.", QType: "AAAA", PolicyRevision: "3f2a", ListsRevision: "9bc1"}
		checkSameJSON(t, &ev)
	})
	for _, s := range trickyStrings {
		t.Run("string "+shortName(s), func(t *testing.T) {
			ev := base
			setStringFields(&ev, s)
			checkSameJSON(t, &ev)
			ev = Event{Reason: s, Groups: []string{s}}
			checkSameJSON(t, &ev)
		})
	}
	groups := map[string][]string{
		"nil":          nil,
		"empty":        {},
		"one empty":    {""},
		"two empty":    {"", ""},
		"several":      {"learners", "staff", "a\"b", "\u2028"},
		"with invalid": {"\xff", "ok"},
	}
	for name, g := range groups {
		t.Run("groups "+name, func(t *testing.T) {
			ev := base
			ev.Groups = g
			checkSameJSON(t, &ev)
		})
	}
	for _, n := range []int{0, 1, -1, 7, 1 << 40, math.MaxInt, math.MinInt} {
		for _, alert := range []bool{false, true} {
			ev := base
			ev.Suppressed, ev.Alert = n, alert
			checkSameJSON(t, &ev)
		}
	}
	times := map[string]time.Time{
		"zero":                  {},
		"now (monotonic)":       time.Now(),
		"now utc":               time.Now().UTC(),
		"unix zero":             time.Unix(0, 0),
		"whole second":          time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		"trailing zero nanos":   time.Date(2026, 1, 2, 3, 4, 5, 120_000_000, time.UTC),
		"one nano":              time.Date(2026, 1, 2, 3, 4, 5, 1, time.UTC),
		"all nanos":             time.Date(2026, 1, 2, 3, 4, 5, 999_999_999, time.UTC),
		"plus 05:30":            time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("IST", 5*3600+1800)),
		"minus 08:00":           time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("PST", -8*3600)),
		"offset with seconds":   time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("", 3600+30)),
		"negative small offset": time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("", -30)),
		"offset 23:59":          time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("", 23*3600+59*60)),
		"offset 24:00 (error)":  time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("", 24*3600)),
		"offset -24:00 (error)": time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("", -24*3600)),
		"offset 99:00 (error)":  time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("", 99*3600)),
		"offset 100:00 (error)": time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("", 100*3600)),
		"year 0":                time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		"year 9999":             time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		"year 10000 (error)":    time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		"year -1 (error)":       time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		"year 9999 east":        time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("", 3600)),
		"max unix (error)":      time.Unix(math.MaxInt64, 999_999_999),
		"min unix (error)":      time.Unix(math.MinInt64, 0),
	}
	for name, tm := range times {
		t.Run("time "+name, func(t *testing.T) {
			ev := base
			ev.Time = tm
			checkSameJSON(t, &ev)
			if strings.HasSuffix(name, "(error)") {
				if _, err := ev.AppendJSON(nil); err == nil {
					t.Fatal("want an error")
				}
			}
		})
	}
}

func shortName(s string) string {
	if len(s) > 20 {
		s = s[:20]
	}
	return strings.ToValidUTF8(strings.Map(func(r rune) rune {
		if r < 0x20 || r == '/' {
			return '.'
		}
		return r
	}, s), "?")
}

// fillField sets f to a non-zero value that encoding/json writes (so an
// omitempty field is present), unique to the field (its name), or reports
// that the test does not know the field's type.
func fillField(f reflect.Value, name string) bool {
	switch {
	case f.Type() == reflect.TypeFor[time.Time]():
		f.Set(reflect.ValueOf(time.Date(2026, 9, 1, 13, 3, 4, 5, time.FixedZone("", 3600))))
	case f.Kind() == reflect.String:
		f.SetString(name + " \"value\" \u2028\xff")
	case f.Kind() == reflect.Bool:
		f.SetBool(true)
	case f.Kind() == reflect.Int, f.Kind() == reflect.Int64, f.Kind() == reflect.Int32:
		f.SetInt(int64(len(name)) + 1000)
	case f.Kind() == reflect.Uint, f.Kind() == reflect.Uint64, f.Kind() == reflect.Uint32:
		f.SetUint(uint64(len(name)) + 1000)
	case f.Type() == reflect.TypeFor[[]string]():
		f.Set(reflect.ValueOf([]string{name, "second"}))
	case f.Type() == reflect.TypeFor[[]verdict.ModelScore]():
		f.Set(reflect.ValueOf([]verdict.ModelScore{{Category: name, Score: 0.97}}))
	case f.Type() == reflect.TypeFor[*verdict.Page]():
		f.Set(reflect.ValueOf(&verdict.Page{Scores: map[string]float64{"gambling": 130, name: -2.5},
			Positive: map[string]float64{"gambling": 135}, Phrases: map[string][]string{"gambling": {"online casino", "<b>&"}}}))
	default:
		return false
	}
	return true
}

// TestAppendJSONCoversEveryField keeps the Event struct the single source
// of truth: an Event with every field set, and one with each single field
// set, must encode identically with both encoders. A field added to Event
// but not to AppendJSON (or a changed tag) fails here.
func TestAppendJSONCoversEveryField(t *testing.T) {
	typ := reflect.TypeFor[Event]()
	var all Event
	allV := reflect.ValueOf(&all).Elem()
	keys := 0
	for i := 0; i < typ.NumField(); i++ {
		sf := typ.Field(i)
		if !sf.IsExported() || sf.Tag.Get("json") == "-" {
			continue
		}
		if sf.Anonymous {
			t.Fatalf("Event.%s is embedded: teach AppendJSON (encode.go) and this test about it", sf.Name)
		}
		keys++
		if !fillField(allV.Field(i), sf.Name) {
			t.Fatalf("Event.%s has type %s, which this test cannot fill: encode it in AppendJSON (encode.go) and add the type to fillField", sf.Name, sf.Type)
		}
		var one Event
		fillField(reflect.ValueOf(&one).Elem().Field(i), sf.Name)
		t.Run(sf.Name, func(t *testing.T) { checkSameJSON(t, &one) })
	}
	// Every field must really be in the output, or a field AppendJSON
	// leaves out would go unnoticed.
	want, err := stdJSONLine(&all)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(want, &m); err != nil {
		t.Fatal(err)
	}
	if len(m) != keys {
		t.Fatalf("an Event with every field set encodes %d keys, want %d: %s", len(m), keys, want)
	}
	checkSameJSON(t, &all)
}

// TestAppendJSONReadsBack checks that a line AppendJSON writes is read back
// by the spool reader's decoding into the same event.
func TestAppendJSONReadsBack(t *testing.T) {
	ev := testEvent("jsmith", "gambling", "high")
	ev.ID, ev.Time, ev.Instance = NewID(), time.Now().UTC(), "i-1"
	ev.Ref, ev.Suppressed, ev.Error, ev.Alert = "01J8Z3K4QX7Y2B5N6M8P9R0S1T", 3, "policy \"failed\"\n", true
	line, err := ev.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	var back Event
	if err := json.Unmarshal(line, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Time.Equal(ev.Time) {
		t.Fatalf("time %v read back as %v", ev.Time, back.Time)
	}
	back.Time = ev.Time
	if !reflect.DeepEqual(back, ev) {
		t.Fatalf("read back\n%#v\nwant\n%#v", back, ev)
	}
}

func TestEncodeLineAllocs(t *testing.T) {
	ev := testEvent("jsmith", "gambling", "high")
	ev.ID, ev.Time, ev.Instance = NewID(), time.Now().UTC(), "i-1"
	if n := testing.AllocsPerRun(100, func() {
		if _, err := encodeLine(&ev); err != nil {
			t.Fatal(err)
		}
	}); n != 1 {
		t.Errorf("encodeLine allocates %v times per event, want 1", n)
	}
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := ev.AppendJSON(buf[:0]); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("AppendJSON into a large enough buffer allocates %v times, want 0", n)
	}
}

// FuzzEventJSON compares AppendJSON with encoding/json on fuzzed events.
// The string fields are filled in turn from a, b and c, each present or
// empty by a bit of mask; groups is split on '|'.
func FuzzEventJSON(f *testing.F) {
	f.Add("01J8Z3K4QX7Y2B5N6M8P9R0S1T", "https://www.example.test/?x=<&>", "jsmith", "learners|staff",
		uint64(math.MaxUint64), 0, false, int64(1_788_267_784), int64(512_000_000), int32(0))
	f.Add("", "", "", "", uint64(0), 0, false, int64(0), int64(0), int32(0))
	f.Add("\"\\\b\f\n\r\t\x00\x1f", "\u2028\u2029", "\xff\xc3\xe2\x80", "|", uint64(0x5555_5555_5555_5555),
		-1, true, int64(-62_135_596_800), int64(1), int32(-30))
	f.Add("\U0001F600\uFFFD", "\xed\xa0\x80", "\x7f<>&", "\u2028|\xff", uint64(0xaaaa_aaaa_aaaa_aaaa),
		math.MaxInt, true, int64(253_402_300_799), int64(999_999_999), int32(23*3600+59*60))
	f.Add("a", "b", "c", "d", uint64(1), math.MinInt, false, int64(253_402_300_800), int64(0), int32(0))
	f.Add("a", "b", "c", "d", uint64(2), 5, false, int64(0), int64(0), int32(24*3600))
	f.Fuzz(func(t *testing.T, a, b, c, groups string, mask uint64, suppressed int, alert bool, sec, nsec int64, offset int32) {
		strs := [3]string{a, b, c}
		var ev Event
		v := reflect.ValueOf(&ev).Elem()
		for i, n := 0, 0; i < v.NumField(); i++ {
			f := v.Field(i)
			if f.Kind() != reflect.String {
				continue
			}
			if mask&(1<<(i%64)) != 0 {
				f.SetString(strs[n%3])
			}
			n++
		}
		if mask&(1<<63) != 0 {
			ev.Groups = strings.Split(groups, "|")
		}
		ev.Suppressed, ev.Alert = suppressed, alert
		ev.Time = time.Unix(sec, nsec).In(time.FixedZone("", int(offset)))
		if mask&(1<<62) != 0 {
			ev.Time = ev.Time.UTC()
		}
		checkSameJSON(t, &ev)
	})
}

var benchSink []byte

// BenchmarkEncodeEvent compares encoding one event as Emit used to
// (encoding/json into a fresh buffer) with AppendJSON into a reused buffer
// and with encodeLine (Emit's path now: one right-sized line per event).
func BenchmarkEncodeEvent(b *testing.B) {
	proxy := testEvent("jsmith", "gambling", "high")
	proxy.ID, proxy.Time, proxy.Instance = NewID(), time.Now().UTC(), "proxy-1"
	proxy.PolicyRevision, proxy.ListsRevision = "3f2a9c0d", "9bc1e4f7"
	dns := Event{ID: NewID(), Time: time.Now().UTC(), Instance: "dns-1", Kind: KindBlock, Source: "dns",
		Phase: "query", Action: "block", Category: "adult", Rule: "adult", Severity: "medium",
		ClientIP: "10.1.2.3", Host: "www.example.test", QName: "www.example.test.", QType: "A",
		PolicyRevision: "3f2a9c0d", ListsRevision: "9bc1e4f7"}
	for _, c := range []struct {
		name string
		ev   Event
	}{{"proxy", proxy}, {"dns", dns}} {
		ev := c.ev
		b.Run(c.name+"/encoding_json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var buf bytes.Buffer
				enc := json.NewEncoder(&buf)
				enc.SetEscapeHTML(false)
				if err := enc.Encode(&ev); err != nil {
					b.Fatal(err)
				}
				benchSink = buf.Bytes()
			}
		})
		b.Run(c.name+"/AppendJSON", func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 1024)
			for b.Loop() {
				var err error
				buf, err = ev.AppendJSON(buf[:0])
				if err != nil {
					b.Fatal(err)
				}
			}
			benchSink = buf
		})
		b.Run(c.name+"/encodeLine", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				line, err := encodeLine(&ev)
				if err != nil {
					b.Fatal(err)
				}
				benchSink = line
			}
		})
	}
}
