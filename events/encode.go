package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends ev to b as one spool line: the JSON object followed by
// '\n'. The bytes are exactly those of encoding/json's Encoder with
// SetEscapeHTML(false) encoding the Event (field order and omitempty as in
// the struct tags, the time as time.Time.MarshalJSON writes it, strings
// escaped as encoding/json escapes them), without reflection and without
// allocating beyond growing b.
//
// As with encoding/json, a time that RFC 3339 cannot represent (a year
// outside 0–9999, a zone offset of 24 hours or more) is an error; b is then
// returned unchanged.
//
// The Event struct stays the schema: TestAppendJSONCoversEveryField fails
// when a field is added to Event but not here.
func (ev *Event) AppendJSON(b []byte) ([]byte, error) {
	orig := len(b)
	b = append(b, `{"id":`...)
	b = appendJSONString(b, ev.ID)
	b = append(b, `,"time":"`...)
	tb, err := ev.Time.AppendText(b)
	if err != nil {
		return b[:orig], fmt.Errorf("events: the event time cannot be written as RFC 3339: %w", err)
	}
	b = append(tb, `","instance":`...)
	b = appendJSONString(b, ev.Instance)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, string(ev.Kind))
	b = append(b, `,"source":`...)
	b = appendJSONString(b, string(ev.Source))
	b = append(b, `,"phase":`...)
	b = appendJSONString(b, string(ev.Phase))
	b = append(b, `,"action":`...)
	b = appendJSONString(b, string(ev.Action))
	b = appendJSONOptString(b, `,"category":`, ev.Category)
	b = appendJSONOptString(b, `,"rule":`, ev.Rule)
	b = appendJSONOptString(b, `,"reason":`, ev.Reason)
	b = appendJSONOptString(b, `,"severity":`, string(ev.Severity))
	b = append(b, `,"alert":`...)
	b = strconv.AppendBool(b, ev.Alert)
	b = appendJSONOptString(b, `,"client_ip":`, ev.ClientIP)
	b = appendJSONOptString(b, `,"user":`, ev.User)
	if len(ev.Groups) > 0 {
		b = append(b, `,"groups":[`...)
		for i, g := range ev.Groups {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, g)
		}
		b = append(b, ']')
	}
	b = appendJSONOptString(b, `,"host":`, ev.Host)
	b = appendJSONOptString(b, `,"url":`, ev.URL)
	b = appendJSONOptString(b, `,"method":`, ev.Method)
	b = appendJSONOptString(b, `,"qname":`, ev.QName)
	b = appendJSONOptString(b, `,"qtype":`, ev.QType)
	b = appendJSONOptString(b, `,"policy_revision":`, ev.PolicyRevision)
	b = appendJSONOptString(b, `,"lists_revision":`, ev.ListsRevision)
	b = appendJSONOptString(b, `,"ref":`, ev.Ref)
	b = appendJSONOptString(b, `,"message":`, ev.Message)
	if ev.Suppressed != 0 {
		b = append(b, `,"suppressed":`...)
		b = strconv.AppendInt(b, int64(ev.Suppressed), 10)
	}
	if ev.Repeats != 0 {
		b = append(b, `,"repeats":`...)
		b = strconv.AppendInt(b, int64(ev.Repeats), 10)
	}
	b = appendJSONOptString(b, `,"error":`, ev.Error)
	// Scores are on few events (name-model and page decisions): the
	// standard encoder is fine there.
	if len(ev.Model) > 0 {
		m, err := marshalRaw(ev.Model)
		if err != nil {
			return b[:orig], fmt.Errorf("events: model scores: %w", err)
		}
		b = append(append(b, `,"model":`...), m...)
	}
	if ev.Page != nil {
		p, err := marshalRaw(ev.Page)
		if err != nil {
			return b[:orig], fmt.Errorf("events: page scores: %w", err)
		}
		b = append(append(b, `,"page":`...), p...)
	}
	return append(b, "}\n"...), nil
}

// marshalRaw is json.Marshal without HTML escaping, as the event lines are
// written everywhere else.
func marshalRaw(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// appendJSONOptString appends key and s, unless s is empty (omitempty).
func appendJSONOptString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendJSONString(append(b, key...), s)
}

const lowerHex = "0123456789abcdef"

// appendJSONString appends s as a JSON string the way encoding/json does
// with HTML escaping off: '"' and '\\' backslash-escaped; \b, \f, \n, \r, \t
// by their short escapes and other bytes below 0x20 as \u00XX; each byte
// that is not part of valid UTF-8 as \ufffd; U+2028 and U+2029 as \u2028
// and \u2029 (JavaScript line terminators); everything else as is.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0 // s[start:i] is pending, to be copied as is
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', lowerHex[c>>4], lowerHex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028':
			b = append(b, s[start:i]...)
			b = append(b, `\u2028`...)
		case r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, `\u2029`...)
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// encodeLine returns ev's spool line in a slice of its own, sized to fit:
// Emit hands the line to the writer goroutine, which holds it until it is
// in the spool (across write retries), so the line is never reused. The
// encoding itself runs in a stack buffer (heap only for an unusually large
// event), leaving one allocation per event.
func encodeLine(ev *Event) ([]byte, error) {
	var scratch [1024]byte
	enc, err := ev.AppendJSON(scratch[:0])
	if err != nil {
		return nil, err
	}
	line := make([]byte, len(enc))
	copy(line, enc)
	return line, nil
}
