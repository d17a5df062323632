package pagescore

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

// testLists is a small list that exercises the matching rules.
var testLists = fstest.MapFS{
	"test.txt": {Data: []byte("# test list\n" +
		"10\tcasino\n" +
		"5\tfree spins\n" +
		"3\tbet*\n" +
		"7\t*gacor\n" +
		"4\tnhà cái\n" +
		"-2\tnews\n")},
}

func testScore(t testing.TB, s *Scorer, page string) (float64, map[string]int) {
	t.Helper()
	res := score(s, []byte(page))
	got := map[string]int{}
	for _, m := range res.Matches {
		got[m.Phrase] = m.Count
	}
	return res.Scores["test"], got
}

// TestTokenizer checks what counts as page text and what a word boundary is.
func TestTokenizer(t *testing.T) {
	s := newScorer(t, Options{Lists: testLists})
	cases := []struct {
		in   string
		want map[string]int
	}{
		{"casino", map[string]int{"casino": 1}},
		{"CASINO!", map[string]int{"casino": 1}},
		{"casinos alphabet", map[string]int{}},
		{"bets betting", map[string]int{"bet*": 2}},
		{"slotgacor", map[string]int{"*gacor": 1}},
		{"free\n\t spins", map[string]int{"free spins": 1}},
		{"<p>free</p><p>spins</p>", map[string]int{"free spins": 1}},
		{"NHÀ CÁI", map[string]int{"nhà cái": 1}},
		{"<script>casino</script>", map[string]int{}},
		{"<SCRIPT type=x>casino</Script >casino", map[string]int{"casino": 1}},
		{"<script>if (a</b) x='</scrip'; casino</script>casino", map[string]int{"casino": 1}},
		{"<style>.casino{}</style>", map[string]int{}},
		{"<!-- casino -->casino", map[string]int{"casino": 1}},
		{"<!-- a -- b > casino -->x", map[string]int{}},
		{"<!DOCTYPE casino>casino", map[string]int{"casino": 1}},
		{"<?xml casino?>", map[string]int{}},
		{`<a title="x>casino">y</a>`, map[string]int{}},
		{`<img alt='casino'>`, map[string]int{}},
		{"ca<b>sino</b>", map[string]int{"casino": 1}},
		{"<td>casi</td><td>no</td>", map[string]int{}},
		{"a < casino", map[string]int{"casino": 1}},
		{"c&#97;sino c&#x61;sino c&#X41;SINO", map[string]int{"casino": 3}},
		{"free&nbsp;spins free&amp;spins", map[string]int{"free spins": 2}},
		{"ca&shy;sino ca\u200bsino ca\u00adsino", map[string]int{"casino": 3}},
		{"AT&T casino &bogus casino &#; &#xzz; &#99999999999;", map[string]int{"casino": 2}},
		{"nh&agrave; cái", map[string]int{"nhà cái": 1}},
		{"casino casino casino casino casino news", map[string]int{"casino": 5, "news": 1}},
	}
	for _, c := range cases {
		_, got := testScore(t, s, c.in)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: matched %v, want %v", c.in, got, c.want)
		}
	}
}

// TestScoreSum checks the weights add up and a phrase counts at most
// MaxPerPhrase times.
func TestScoreSum(t *testing.T) {
	s := newScorer(t, Options{Lists: testLists})
	if got, _ := testScore(t, s, "casino casino casino casino casino news free spins"); got != 3*10-2+5 {
		t.Errorf("score %v, want %v", got, 3*10-2+5)
	}
	s = newScorer(t, Options{Lists: testLists, MaxPerPhrase: 1})
	if got, _ := testScore(t, s, "casino casino"); got != 10 {
		t.Errorf("MaxPerPhrase 1: score %v, want 10", got)
	}
}

// TestMalformed feeds broken HTML: unclosed tags, comments and scripts
// hide what follows (as in a browser), broken UTF-8 separates words.
func TestMalformed(t *testing.T) {
	s := newScorer(t, Options{Lists: testLists})
	cases := []struct {
		in   string
		want map[string]int
	}{
		{"<div <p>casino", map[string]int{"casino": 1}},
		{"<script>casino", map[string]int{}},
		{"<!--casino", map[string]int{}},
		{"<a href=\"casino", map[string]int{}},
		{"\xffcasino\xc3", map[string]int{"casino": 1}},
		{"ca\xe1\x80sino", map[string]int{}},
		{"casino<", map[string]int{"casino": 1}},
		{"casino&am", map[string]int{"casino": 1}},
		{"</>casino</ >", map[string]int{"casino": 1}},
		{"<<<>>>casino", map[string]int{"casino": 1}},
		{"", map[string]int{}},
	}
	for _, c := range cases {
		_, got := testScore(t, s, c.in)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: matched %v, want %v", c.in, got, c.want)
		}
	}
}

func allPages(t testing.TB) map[string][]byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", "pages", "*.html"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no test pages: %v", err)
	}
	pages := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		pages[filepath.Base(n)] = b
	}
	return pages
}

// TestChunking feeds every page one byte at a time and in random chunk
// sizes: the result must not depend on where the chunks end.
func TestChunking(t *testing.T) {
	s := newScorer(t, Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	for name, page := range allPages(t) {
		want := score(s, page)
		r := s.Start()
		for i := range page {
			r.Write(page[i : i+1])
		}
		if got := r.Result(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s byte by byte: %v, want %v", name, got, want)
		}
		for try := 0; try < 20; try++ {
			r.Reset()
			for rest := page; len(rest) > 0; {
				n := min(1+rng.IntN(64), len(rest))
				r.Write(rest[:n])
				rest = rest[n:]
			}
			if got := r.Result(); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s in random chunks: %v, want %v", name, got, want)
			}
		}
	}
}

// TestByteCap checks that nothing past MaxBytes is scored, including a
// phrase that straddles the cap, and that writes past it still succeed.
func TestByteCap(t *testing.T) {
	s := newScorer(t, Options{Lists: testLists, MaxBytes: 20})
	page := "casino " + strings.Repeat("x", 9) + " casino casino" // cap falls inside the 2nd casino
	r := s.Start()
	for _, part := range []string{page[:10], page[10:], " casino"} {
		if n, err := r.Write([]byte(part)); n != len(part) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	res := r.Result()
	if res.Bytes != 20 || !res.Truncated {
		t.Errorf("Bytes %d Truncated %v, want 20 true", res.Bytes, res.Truncated)
	}
	if res.Scores["test"] != 10 {
		t.Errorf("score %v, want 10 (one casino before the cap): %+v", res.Scores["test"], res.Matches)
	}

	// A page of exactly MaxBytes is not truncated.
	r = s.Start()
	r.Write([]byte(strings.Repeat("a", 20)))
	if res := r.Result(); res.Truncated || res.Bytes != 20 {
		t.Errorf("exact fit: Bytes %d Truncated %v", res.Bytes, res.Truncated)
	}

	// The default cap is 256 KiB: a casino page after 256 KiB of filler
	// is not scored.
	s = newScorer(t, Options{})
	r = s.Start()
	r.Write(bytes.Repeat([]byte("<p>hello world</p>\n"), DefaultMaxBytes/19+1))
	r.Write(readPage(t, "positive-casino-en.html"))
	res = r.Result()
	if res.Bytes != DefaultMaxBytes || !res.Truncated || res.Scores["gambling"] != 0 {
		t.Errorf("after the default cap: %v", res)
	}
}

// TestResultEnds checks that Result ends the page: a word cut by the end of
// the page still counts, and later writes are ignored.
func TestResultEnds(t *testing.T) {
	s := newScorer(t, Options{Lists: testLists})
	r := s.Start()
	r.Write([]byte("casino"))
	first := r.Result()
	r.Write([]byte(" casino"))
	if got := r.Result(); !reflect.DeepEqual(got, first) || got.Scores["test"] != 10 {
		t.Errorf("after Result: %v, first %v", got, first)
	}
}

// TestNoAllocPerChunk checks the hot path: writing a chunk allocates
// nothing, and neither does Reset.
func TestNoAllocPerChunk(t *testing.T) {
	s := newScorer(t, Options{})
	page := readPage(t, "positive-casino-pt.html")
	r := s.Start()
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset()
		r.Write(page[:len(page)/2])
		r.Write(page[len(page)/2:])
	})
	if allocs != 0 {
		t.Errorf("%v allocations per page, want 0", allocs)
	}
}

func TestListErrors(t *testing.T) {
	for name, data := range map[string]string{
		"no tab":      "10 casino\n",
		"bad weight":  "x\tcasino\n",
		"zero weight": "0\tcasino\n",
		"no letters":  "5\t*-*\n",
		"duplicate":   "5\tfree spins\n3\tFree-Spins\n",
	} {
		if _, err := New(Options{Lists: fstest.MapFS{"c.txt": {Data: []byte(data)}}}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := New(Options{Lists: fstest.MapFS{}}); err == nil {
		t.Error("no lists: no error")
	}
}

func TestDefaultLists(t *testing.T) {
	s := newScorer(t, Options{})
	if got := s.Categories(); !reflect.DeepEqual(got, []string{"adult", "gambling", "piracy"}) {
		t.Errorf("categories %v", got)
	}
	if s.Phrases() < 300 {
		t.Errorf("only %d phrases", s.Phrases())
	}
	t.Logf("%d phrases, %d automaton states, %d byte classes", s.Phrases(), s.a.states(), s.a.nclass)
}
