package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aupguard/aupguard/events"
)

// The block page's review form carries the learner's message to the
// review event: markup kept as the text it is (escaping is the reader's
// job), control and bidi characters dropped, a long message cut to 500
// characters on a character boundary, and the confirmation page does not
// echo it back.
func TestReviewRequestMessage(t *testing.T) {
	h := start(t, nil)
	block := func() string {
		t.Helper()
		resp := get(t, h.client(""), h.url(hostCasino, "/"), "Accept", "text/html")
		body := readAll(t, resp)
		for _, want := range []string{`<label for="review-message">Why do you need this site?`,
			`<textarea id="review-message" name="message" rows="3" maxlength="500"`} {
			if !strings.Contains(body, want) {
				t.Fatalf("block page has no %q:\n%s", want, body)
			}
		}
		return resp.Header.Get("X-Aupguard-Reference")
	}
	review := func(ref, msg string) (events.Event, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://aupguard.block/review",
			strings.NewReader(url.Values{"ref": {ref}, "message": {msg}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "text/html")
		resp, err := h.client("").Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("review: %d %s", resp.StatusCode, body)
		}
		for _, ev := range h.emit.all() {
			if ev.Kind == events.KindReviewRequest && ev.Ref == ref {
				return ev, body
			}
		}
		t.Fatalf("no review event for %s", ref)
		return events.Event{}, ""
	}

	// Markup, a terminal escape, a NUL, a right-to-left override and CRLF.
	ev, page := review(block(), "  <script>alert(1)</script>\x1b[31m\x00 red\u202e \r\nfor my <b>PSHE</b> essay\t\n ")
	if want := "<script>alert(1)</script>[31m red \nfor my <b>PSHE</b> essay"; ev.Message != want {
		t.Errorf("message %q, want %q", ev.Message, want)
	}
	if strings.Contains(page, "alert(1)") {
		t.Errorf("the confirmation page echoes the message:\n%s", page)
	}

	// 2 KB of two-byte characters and ASCII: cut to 500 characters, still
	// valid UTF-8.
	long := strings.Repeat("é<", 700) // 2100 bytes
	ev, _ = review(block(), long)
	if n := utf8.RuneCountInString(ev.Message); n != 500 || !utf8.ValidString(ev.Message) || !strings.HasPrefix(long, ev.Message) {
		t.Errorf("a 2 KB message kept as %d characters (valid %v): %q", n, utf8.ValidString(ev.Message), ev.Message)
	}

	// No message: the field stays empty (and out of the JSON).
	ev, _ = review(block(), "")
	if ev.Message != "" {
		t.Errorf("message %q without one", ev.Message)
	}
	line, err := ev.AppendJSON(nil)
	if err != nil || strings.Contains(string(line), `"message"`) {
		t.Errorf("event without a message: %s %v", line, err)
	}
}

func TestReviewMessageText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{" \n\t ", ""},
		{"line one\r\nline two\rthree", "line one\nline two\nthree"},
		{"a\u200bb\u2066c\u2069d\u00ade", "abcde"}, // zero-width space, bidi isolates, soft hyphen
		{"bad \xff byte", "bad \uFFFD byte"},
		{strings.Repeat("ß", 501), strings.Repeat("ß", 500)},
		{strings.Repeat("x", 499) + " tail", strings.Repeat("x", 499)},
	} {
		if got := reviewMessage(c.in); got != c.want {
			t.Errorf("reviewMessage(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
