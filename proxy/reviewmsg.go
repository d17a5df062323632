package proxy

import (
	"strings"
	"unicode"
)

// maxReviewMessage is how many characters (runes) of the learner's review
// message are kept; the form's textarea says the same with maxlength.
const maxReviewMessage = 500

// maxReviewBody bounds the review form's body. A browser holding to
// maxlength sends at most 500 characters, up to 4 bytes each and 3 more
// per byte once percent-encoded (6 KB), plus the reference; anything
// larger is not our form and is refused before it is parsed.
const maxReviewBody = 16 << 10

// reviewMessage makes the learner's free text safe to keep and to show:
// valid UTF-8; line breaks kept as "\n", tabs as spaces; other control
// characters dropped, and so are the invisible format characters (bidi
// overrides, zero-width joiners) that could make the text read differently
// in the console than it was written; outer space trimmed; at most
// maxReviewMessage characters. HTML is left alone: the text is data, and
// every page that shows it escapes it.
func reviewMessage(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var b strings.Builder
	b.Grow(min(len(s), maxReviewMessage*4))
	n := 0
	for _, r := range strings.TrimSpace(s) {
		switch {
		case r == '\n' || r == '\r':
			r = '\n'
		case r == '\t':
			r = ' '
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			continue
		}
		if n == maxReviewMessage {
			break
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}
