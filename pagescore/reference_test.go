package pagescore

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// referenceText extracts a page's text with golang.org/x/net/html's
// tokenizer, following the same rules (script and style skipped, inline
// elements joined, other elements separate words), and escapes it again so
// the scorer reads it as plain text.
func referenceText(page []byte) []byte {
	z := html.NewTokenizer(bytes.NewReader(page))
	var out strings.Builder
	skip := false
	for {
		switch z.Next() {
		case html.ErrorToken:
			return []byte(out.String())
		case html.TextToken:
			if !skip {
				out.WriteString(html.EscapeString(string(z.Text())))
			}
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			tok := z.Token()
			switch string(name) {
			case "b", "i", "u", "em", "strong", "span", "font", "small", "mark", "s", "sub", "sup", "a", "abbr", "wbr":
			default:
				out.WriteString(" ")
			}
			if s := string(name); s == "script" || s == "style" {
				skip = tok.Type == html.StartTagToken
			}
		}
	}
}

// TestReferenceTokenizer checks the streaming tokenizer against x/net/html
// on every test page: the same phrases must be found the same number of
// times.
func TestReferenceTokenizer(t *testing.T) {
	s := newScorer(t, Options{})
	for name, page := range allPages(t) {
		got := score(s, page)
		want := score(s, referenceText(page))
		if !reflect.DeepEqual(got.Matches, want.Matches) {
			t.Errorf("%s: streaming %+v\nreference %+v", name, got.Matches, want.Matches)
		}
	}
}
