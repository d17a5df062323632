package namemodel

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aupguard/aupguard/internal/testutil"
)

// realData loads the mirror once for the tests that need it.
var realData = sync.OnceValues(func() (TrainingSet, error) {
	root, err := testutil.ModuleRoot()
	if err != nil {
		return TrainingSet{}, err
	}
	ts, _, err := LoadMirror(context.Background(), root+"/../shared/data")
	return ts, err
})

// realModel is the model trained on every list of the mirror.
var realModel = sync.OnceValues(func() (*Model, error) {
	ts, err := realData()
	if err != nil {
		return nil, err
	}
	return Train(context.Background(), ts, Options{})
})

func trainedOnRealData(t *testing.T) *Model {
	t.Helper()
	testutil.SharedData(t) // skips (or fails under CI) without the data
	m, err := realModel()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Names no list has (made up for this test, in the shapes spam casinos,
// adult and piracy sites use), and well-known benign names.
var (
	// The examples of spam casinos that no list names yet.
	spamCasinos    = []string{"bengalwincasino.com", "22betapp.com", "pin-up-casino-5ion4.cfd"}
	madeUpGambling = []string{
		"luckyslotsbonus.xyz", "megacasino-online7.top", "bestpokerbets.net", "jackpotspinwin.club", "roulette-royale-88.site",
	}
	madeUpAdult  = []string{"hotteenxxxvideos.net", "freepornclipsdaily.com", "nudecamgirls-live.xyz", "hardcoresextube4u.top"}
	madeUpPiracy = []string{"123moviesfree-hd.shop", "watchfreemoviesonline.cc", "fulltorrentdownload.xyz"}
	wellKnown    = []string{
		"bbc.co.uk", "www.bbc.co.uk", "gov.uk", "www.gov.uk", "nhs.uk", "www.nhs.uk", "tesco.com",
		"bankofengland.co.uk", "wikipedia.org", "en.wikipedia.org", "ox.ac.uk", "ucas.com",
		"theguardian.com", "github.com", "microsoft.com", "sainsburys.co.uk", "hmrc.gov.uk",
	}
)

func TestRealDataScores(t *testing.T) {
	m := trainedOnRealData(t)
	info := m.Info()
	t.Logf("trained in %v: %+v", info.Duration, info)
	block, alert := DefaultThresholds()
	for _, tc := range []struct {
		cat   Category
		names []string
		// want is the least score: the block threshold for the issue's
		// examples, the alert threshold for the other made-up names,
		// which are allowed one miss per category.
		want   []float32
		misses int
	}{
		{Gambling, spamCasinos, block[:], 0},
		{Gambling, madeUpGambling, alert[:], 1},
		{Adult, madeUpAdult, alert[:], 1},
		{Piracy, madeUpPiracy, alert[:], 1},
	} {
		missed := 0
		for _, n := range tc.names {
			s := m.Score(n)
			if s[tc.cat] < tc.want[tc.cat] {
				missed++
				t.Logf("%s: %s score %.3f, below %.2f; top features %v", n, tc.cat, s[tc.cat], tc.want[tc.cat], m.Explain(n, tc.cat, 6))
			}
		}
		if missed > tc.misses {
			t.Errorf("%s: %d of %v scored below %.2f, want at most %d", tc.cat, missed, tc.names, tc.want[tc.cat], tc.misses)
		}
	}
	for _, n := range wellKnown {
		s := m.Score(n)
		for c := range NumCategories {
			if s[c] >= alert[c] {
				t.Errorf("%s: %s score %.3f, want below the alert threshold %.2f (block %.2f); top features %v",
					n, c, s[c], alert[c], block[c], m.Explain(n, c, 6))
			}
		}
	}
}

func TestExplain(t *testing.T) {
	m := trainedOnRealData(t)
	fs := m.Explain("bengalwincasino.com", Gambling, 0)
	var names []string
	var sum float32
	for _, f := range fs {
		names = append(names, f.Name)
		sum += f.Weight
	}
	for _, want := range []string{"word:bengal", "word:win", "word:casino", "words:win casino", "ngram:casin", "suffix:com"} {
		if !slices.Contains(names, want) {
			t.Errorf("Explain lacks %q: %v", want, names)
		}
	}
	if sum <= 0 {
		t.Errorf("features of a casino name sum to %v towards gambling, want > 0", sum)
	}
	if top := m.Explain("bengalwincasino.com", Gambling, 3); len(top) != 3 {
		t.Errorf("Explain(n=3) gave %d features", len(top))
	}
	if got := m.Explain("10.1.2.3", Gambling, 0); got != nil {
		t.Errorf("Explain of an IP = %v, want nil", got)
	}
}

// smallSet is a training set small enough to train in milliseconds.
func smallSet() TrainingSet {
	return TrainingSet{Lists: []List{
		{Source: "g", Category: "gambling", Names: []string{"bestcasino.com", "22bet.com", "slots-win.net", "casino-royal.org", "betking.com"}},
		{Source: "a", Category: "adult", Names: []string{"freeporn.com", "xxxvideos.net", "sexcams.org"}},
		{Source: "p", Category: "piracy", Names: []string{"thepiratebay.org", "torrentz.eu", "freemovies.cc"}},
		{Source: "s", Category: "social", Names: []string{"facebook.com", "twitter.com"}},
		{Source: "b", Category: Benign, Names: []string{"bbc.co.uk", "tesco.com", "nhs.uk", "barclays.co.uk", "indeed.com"}},
	}}
}

func TestScoreDoesNotAllocate(t *testing.T) {
	m, err := Train(context.Background(), smallSet(), Options{Bits: 14})
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{
		"bengalwincasino.com", "www.bbc.co.uk", "pin-up-casino-5ion4.cfd", "a.b.c.d.some-very-long-label-with-many-words-in-it.example.co.uk",
		"xn--mnchen-3ya.de", "1.2.3.4", "2001:db8::1", "localhost", "", strings.Repeat("a", 63) + ".com", "example.com.",
	} {
		if n := testing.AllocsPerRun(100, func() { m.Score(host) }); n != 0 {
			t.Errorf("Score(%q) allocates %v times", host, n)
		}
	}
}

func TestScoreEdgeCases(t *testing.T) {
	m, err := Train(context.Background(), smallSet(), Options{Bits: 14})
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"1.2.3.4", "2001:db8::1", "", "example.com:443"} {
		if s := m.Score(host); s != (Scores{}) {
			t.Errorf("Score(%q) = %v, want zeros", host, s)
		}
	}
	if a, b := m.Score("BestCasino.COM"), m.Score("bestcasino.com"); a != b {
		t.Errorf("case changes the score: %v vs %v", a, b)
	}
	if a, b := m.Score("bestcasino.com."), m.Score("bestcasino.com"); a != b {
		t.Errorf("trailing dot changes the score: %v vs %v", a, b)
	}
	var nilModel *Model
	if s := nilModel.Score("casino.com"); s != (Scores{}) {
		t.Errorf("nil model scores %v", s)
	}
}

// countingCtx is a context whose Err turns to Canceled after a number of
// calls: training checks it between batches, so this cancels it in the
// middle, deterministically.
type countingCtx struct {
	context.Context
	left atomic.Int64
}

func (c *countingCtx) Err() error {
	if c.left.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

func TestTrainCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Train(ctx, smallSet(), Options{Bits: 14}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Train with a cancelled context: %v", err)
	}
	// Many names, so that training checks the context many times.
	ts := smallSet()
	var many []string
	for i := range 50000 {
		many = append(many, "name"+strings.Repeat("x", i%7)+itoa(i)+".example")
	}
	ts.Lists = append(ts.Lists, List{Source: "many", Category: Benign, Names: many})
	for _, after := range []int64{2, 10, 40} {
		cc := &countingCtx{Context: context.Background()}
		cc.left.Store(after)
		if _, err := Train(cc, ts, Options{Bits: 14, Epochs: 4}); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled after %d checks: %v, want context.Canceled", after, err)
		}
	}
	// Without cancellation the same set trains.
	if _, err := Train(context.Background(), ts, Options{Bits: 14, Epochs: 1}); err != nil {
		t.Fatal(err)
	}
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			return string(b[n:])
		}
	}
}

func TestTrainNeedsEveryCategory(t *testing.T) {
	ts := smallSet()
	ts.Lists = slices.DeleteFunc(ts.Lists, func(l List) bool { return l.Category == "piracy" })
	if _, err := Train(context.Background(), ts, Options{Bits: 14}); err == nil || !strings.Contains(err.Error(), "piracy") {
		t.Errorf("training without piracy names: %v", err)
	}
	ts = smallSet()
	ts.Lists = slices.DeleteFunc(ts.Lists, func(l List) bool { return l.Category == Benign })
	if _, err := Train(context.Background(), ts, Options{Bits: 14}); err == nil {
		t.Error("training without benign names succeeded")
	}
}

func TestTrainWithoutWordList(t *testing.T) {
	_, err := Train(context.Background(), smallSet(), Options{Bits: 14, WordList: "/nonexistent/words"})
	if err == nil {
		t.Error("an explicit word list that does not exist is not an error")
	}
	old := DefaultWordLists
	t.Cleanup(func() { DefaultWordLists = old })
	DefaultWordLists = []string{"/nonexistent/words"}
	m, err := Train(context.Background(), smallSet(), Options{Bits: 14})
	if err != nil {
		t.Fatal(err)
	}
	if info := m.Info(); info.WordList != "" || info.Words != 0 {
		t.Errorf("info %+v, want no word list", info)
	}
}

func TestExamplesMerge(t *testing.T) {
	ts := TrainingSet{Lists: []List{
		{Source: "pop", Category: Benign, Names: []string{"pornhub.com", "bbc.co.uk"}},
		{Source: "a", Category: "adult", Names: []string{"pornhub.com", "xvideos.com"}},
		{Source: "g", Category: "gambling", Names: []string{"xvideos.com", "bet365.com"}},
		{Source: "s", Category: "social", Names: []string{"facebook.com", "bbc.co.uk"}},
	}}
	ex, info := ts.examples(1000, 1000)
	got := map[string]example{}
	for _, e := range ex {
		got[e.host] = e
	}
	if e := got["pornhub.com"]; e.pos != 1<<Adult || e.benign {
		t.Errorf("a benign-listed adult name: %+v, want a positive only", e)
	}
	if e := got["xvideos.com"]; e.pos != 1<<Adult|1<<Gambling {
		t.Errorf("a name in two categories: %+v", e)
	}
	if e := got["bbc.co.uk"]; !e.benign || e.pos != 0 {
		t.Errorf("benign and social: %+v, want benign", e)
	}
	if info.Positives != [NumCategories]int{2, 2, 0} || info.Negatives != 2 || info.Benign != 1 {
		t.Errorf("info %+v", info)
	}
	// Sampling keeps about maxPos names of a large category.
	var big []string
	for i := range 20000 {
		big = append(big, "casino"+itoa(i)+".com")
	}
	_, info = TrainingSet{Lists: []List{{Source: "g", Category: "gambling", Names: big}}}.examples(5000, 1000)
	if n := info.Positives[Gambling]; n < 4500 || n > 5500 {
		t.Errorf("sampled %d of 20000 with a cap of 5000", n)
	}
}

func gz(t *testing.T, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func TestReadNames(t *testing.T) {
	const list = "# comment\n0.0.0.0 a.example b.example # trailing\n127.0.0.1 localhost\n" +
		"||c.example^\n||d.example^$important\nE.Example.\n*.f.example\n1.2.3.4\nsingle\n\n! adblock comment\n[Adblock Plus]\n" +
		"g.example/path\nmünchen.de\n0.0.0.0 0.0.0.0\n"
	want := []string{"a.example", "b.example", "c.example", "d.example", "e.example", "f.example", "xn--mnchen-3ya.de"}
	for name, in := range map[string][]byte{"plain": []byte(list), "gzip": gz(t, list), "crlf": []byte(strings.ReplaceAll(list, "\n", "\r\n"))} {
		got, err := ReadNames(context.Background(), bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
}

func TestLoadMirror(t *testing.T) {
	testutil.SharedData(t)
	ts, err := realData()
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	sources := map[string]int{}
	for _, l := range ts.Lists {
		count[l.Category] += len(l.Names)
		sources[l.Source] = len(l.Names)
	}
	// Figures from the data's README (entries per list) and the UT1
	// archive; a reader that silently dropped a list or a format would
	// fall far short.
	for src, atLeast := range map[string]int{
		"shadowwhisperer-adult": 219000, "hostsvn-gambling": 65000, "sinfonietta-pornography": 60000,
		"nextdns-piracy": 1400, "ut1:gambling": 30000, "ut1:warez": 1500, "ut1:jobsearch": 60000,
		"ut1:bank": 6000, "popular-majestic-top10k": 9900, "acma-gambling": 1700,
	} {
		if sources[src] < atLeast {
			t.Errorf("%s: %d names, want at least %d", src, sources[src], atLeast)
		}
	}
	if count[Benign] < 90000 {
		t.Errorf("%d benign names", count[Benign])
	}
}

func TestEvaluateRealData(t *testing.T) {
	testutil.SharedData(t)
	ts, err := realData()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rep, err := Evaluate(context.Background(), ts, EvalOptions{
		HoldOut: []string{"acma-gambling", "nextdns-piracy"},
		// Smaller caps: this tests the evaluation, not the model.
		Train: Options{MaxPositives: 30000, MaxOther: 5000},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("evaluated in %v", time.Since(start))
	if len(rep.Sources) != 2 {
		t.Fatalf("sources %+v", rep.Sources)
	}
	for _, s := range rep.Sources {
		t.Logf("%+v", s)
		if s.Names == 0 || s.Listed+s.Misses != s.Names || s.Misses == 0 {
			t.Errorf("counts %+v", s)
		}
		// The held-out source is not trained on: the remaining lists
		// name only part of it, and the model finds some of the rest.
		if s.BlockRecall > s.AlertRecall || s.AlertRecall <= 0 || s.AlertRecall >= 1 {
			t.Errorf("recall %+v", s)
		}
		// Floors well under what was measured (36% and 34% at alert,
		// docs/coverage.md): a model that stops learning from words and
		// n-grams falls through them.
		if s.AlertRecall < 0.2 {
			t.Errorf("%s: recall at alert %.3f on the list misses, want at least 0.2", s.Source, s.AlertRecall)
		}
	}
	var popular *BenignEval
	for i, b := range rep.Benign {
		t.Logf("%+v", b)
		if b.Source == PopularSource {
			popular = &rep.Benign[i]
		}
	}
	// About a fifth of the 9,999 popular names, less the ones a positive
	// list names.
	if popular == nil || popular.Names < 1500 || popular.Names > 2500 || popular.FPRBlock > popular.FPRAlert {
		t.Fatalf("popular %+v", popular)
	}
	// Measured 0.26%; the target is 0.3%.
	if popular.FPRBlock > 0.01 {
		t.Errorf("the model blocks %.2f%% of held-out popular names", 100*popular.FPRBlock)
	}
	for c := range NumCategories {
		if rep.AtTarget[c] <= 0 || rep.AtTarget[c] > 1 {
			t.Errorf("threshold at target FPR for %s: %v", c, rep.AtTarget[c])
		}
	}
	if _, err := Evaluate(context.Background(), ts, EvalOptions{HoldOut: []string{"no-such-list"}}); err == nil {
		t.Error("holding out an unknown source is not an error")
	}
}
