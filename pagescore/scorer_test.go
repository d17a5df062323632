package pagescore

import (
	"os"
	"path/filepath"
	"testing"
)

// Thresholds the default policy is proposed to use (see README.md).
const (
	blockThreshold = 100
	alertThreshold = 50
)

func newScorer(t testing.TB, o Options) *Scorer {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func score(s *Scorer, page []byte) Result {
	r := s.Start()
	r.Write(page)
	return r.Result()
}

func readPage(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "pages", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPages is the over-blocking guard: health, education, news and support
// pages that mention the words stay below the block threshold in every
// category, and real gambling, adult and piracy pages score above it in
// their own category.
func TestPages(t *testing.T) {
	s := newScorer(t, Options{})
	cases := []struct {
		page     string
		category string // "" for benign: below alert in every category
		// For a benign page, the category whose positive phrases alone
		// reach the alert threshold: the page needs its benign context.
		mentions string
	}{
		{"benign-nhs-sexual-health.html", "", ""},
		{"benign-sex-education-teens.html", "", "adult"},
		{"benign-news-gambling-fine.html", "", "gambling"},
		{"benign-news-piracy-arrests.html", "", "piracy"},
		{"benign-gambling-support-charity.html", "", "gambling"},
		{"benign-breast-cancer.html", "", ""},
		{"benign-encyclopedia-casino.html", "", "gambling"},
		{"benign-linux-torrent-download.html", "", "piracy"},
		{"positive-casino-en.html", "gambling", ""},
		{"positive-casino-pt.html", "gambling", ""},
		{"positive-casino-vi.html", "gambling", ""},
		{"positive-satta-hi.html", "gambling", ""},
		{"positive-adult-en.html", "adult", ""},
		{"positive-adult-id.html", "adult", ""},
		{"positive-torrent-en.html", "piracy", ""},
		{"positive-torrent-es.html", "piracy", ""},
	}
	for _, c := range cases {
		t.Run(c.page, func(t *testing.T) {
			res := score(s, readPage(t, c.page))
			t.Logf("scores %v positive %v", res.Scores, res.Positive)
			for _, m := range res.Matches {
				t.Logf("  %s %+g x%d %q", m.Category, m.Weight, m.Count, m.Phrase)
			}
			if c.mentions != "" {
				if pos := res.Positive[c.mentions]; pos < alertThreshold {
					t.Errorf("%s phrases alone score %.0f: the page does not test the benign context", c.mentions, pos)
				}
			}
			for cat, v := range res.Scores {
				if cat == c.category {
					if v < blockThreshold {
						t.Errorf("%s scored %.0f, want >= %d", cat, v, blockThreshold)
					}
				} else if v >= alertThreshold {
					t.Errorf("%s scored %.0f, want < alert threshold %d", cat, v, alertThreshold)
				}
			}
		})
	}
}
