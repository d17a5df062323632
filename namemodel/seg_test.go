package namemodel

import (
	"testing"
)

func segmentWords(d *dict, s string) []string {
	var spans [64]span
	n := segment(d, s, &spans)
	var out []string
	for _, sp := range spans[:n] {
		w := s[sp.start:sp.end]
		if !sp.known {
			w = "?" + w
		}
		out = append(out, w)
	}
	return out
}

func TestSegment(t *testing.T) {
	words := map[string]struct{}{}
	for _, w := range []string{"bengal", "ben", "gal", "win", "casino", "cas", "ino", "bet", "app", "pin", "up", "free", "porn", "videos", "video"} {
		words[w] = struct{}{}
	}
	d := newDict(words)
	for in, want := range map[string]string{
		"bengalwincasino": "bengal win casino",
		"betapp":          "bet app",
		"freepornvideos":  "free porn videos",
		"xcasinoq":        "?x casino ?q",
		"zzz":             "?zzz",
	} {
		got := ""
		for i, w := range segmentWords(d, in) {
			if i > 0 {
				got += " "
			}
			got += w
		}
		if got != want {
			t.Errorf("segment(%q) = %q, want %q", in, got, want)
		}
	}
}
