package namemodel

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Category is a category the model scores.
type Category uint8

// The categories scored. Names of other categories (social, drugs…) are
// used as negatives only: their names do not say what they are.
const (
	Gambling Category = iota
	Adult
	Piracy
	NumCategories
)

var categoryNames = [NumCategories]string{"gambling", "adult", "piracy"}

// String is the policy category name.
func (c Category) String() string {
	if c < NumCategories {
		return categoryNames[c]
	}
	return fmt.Sprintf("category(%d)", uint8(c))
}

// ParseCategory returns the Category of a policy category name.
func ParseCategory(s string) (Category, bool) {
	for i, n := range categoryNames {
		if n == s {
			return Category(i), true
		}
	}
	return 0, false
}

// Categories returns the categories the model scores, in order.
func Categories() []Category {
	out := make([]Category, NumCategories)
	for i := range out {
		out[i] = Category(i)
	}
	return out
}

// Scores are a name's scores in [0, 1], indexed by Category.
type Scores [NumCategories]float32

// Algorithm selects the learner.
type Algorithm string

// The learners: logistic regression by SGD (the default: measured better
// on held-out sources, see docs/coverage.md) and multinomial naive Bayes.
const (
	LogReg     Algorithm = "logreg"
	NaiveBayes Algorithm = "nb"
)

// Options tune training. The zero value gives the defaults.
type Options struct {
	// Algorithm is LogReg (default) or NaiveBayes.
	Algorithm Algorithm
	// Bits is log2 of the hashed feature space (default 18: 256 Ki
	// features × 3 categories × 4 bytes = 3 MiB of weights, small enough
	// for the caches; 20 bits measured no better).
	Bits int
	// Epochs over the training names (default 8: 4 measured 2–4 points
	// less recall at a 0.3% benign false-positive rate; each epoch costs
	// about 1 s of CPU on the default lists).
	Epochs int
	// LearningRate is the initial SGD step (default 0.5); L2 the weight
	// decay (default 1e-6).
	LearningRate float64
	L2           float64
	// BenignWeight multiplies the loss of benign names (default 8): a
	// false positive blocks a learner's legitimate site. 1, 3 and 8 were
	// measured; 8 had the best recall at a 0.3% false-positive rate.
	BenignWeight float64
	// WordList is the word list used to segment labels; empty tries
	// DefaultWordLists, and the model works (with fewer words) without.
	WordList string
	// MinTokenCount is how many distinct training names a hyphen- or
	// digit-delimited token must appear in to be learnt as a word
	// (default 4).
	MinTokenCount int
	// Seed makes the SGD order reproducible (default 1).
	Seed uint64
	// MaxPositives caps the names of one category trained on (default
	// 120000; a sample chosen by a stable hash of the name), MaxOther the
	// names of each category not scored (social, drugs…; default 20000).
	// Benign names are all used. The caps keep training to seconds when a
	// list holds millions of names (UT1's adult).
	MaxPositives int
	MaxOther     int
	// CalibrationFraction of the benign names (chosen by a stable hash of
	// their registrable domain) is kept out of training to calibrate the
	// scores (default 0.15; negative: no calibration): per category, the
	// score at which BlockFPR of them score at or above it becomes the
	// block threshold of DefaultThresholds, and the one at AlertFPR the
	// alert threshold, so that the policy's fixed thresholds keep the
	// false-positive rate they were chosen for whatever lists train the
	// model. Defaults: BlockFPR 0.0005, AlertFPR 0.004 (per category:
	// 0.001 each let 0.4–0.6% of held-out popular names score at the
	// block threshold in some category).
	CalibrationFraction float64
	BlockFPR            float64
	AlertFPR            float64
}

func (o Options) withDefaults() Options {
	if o.Algorithm == "" {
		o.Algorithm = LogReg
	}
	if o.Bits == 0 {
		o.Bits = 18
	}
	if o.Epochs == 0 {
		o.Epochs = 8
	}
	if o.LearningRate == 0 {
		o.LearningRate = 0.5
	}
	if o.L2 == 0 {
		o.L2 = 1e-6
	}
	if o.BenignWeight == 0 {
		o.BenignWeight = 8
	}
	if o.MinTokenCount == 0 {
		o.MinTokenCount = 4
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.MaxPositives == 0 {
		o.MaxPositives = 120000
	}
	if o.MaxOther == 0 {
		o.MaxOther = 20000
	}
	if o.CalibrationFraction == 0 {
		o.CalibrationFraction = 0.15
	}
	if o.BlockFPR == 0 {
		o.BlockFPR = 0.0005
	}
	if o.AlertFPR == 0 {
		o.AlertFPR = 0.004
	}
	return o
}

// Info describes a trained model.
type Info struct {
	Algorithm Algorithm `json:"algorithm"`
	// Positives per category, Negatives (benign and other categories'
	// names), Benign (of the negatives).
	Positives [NumCategories]int `json:"positives"`
	Negatives int                `json:"negatives"`
	Benign    int                `json:"benign"`
	// WordList is the word list used ("" when none was found), Words its
	// words, Tokens the tokens learnt from the lists.
	WordList string        `json:"word_list"`
	Words    int           `json:"words"`
	Tokens   int           `json:"tokens"`
	Features int           `json:"features"`
	Duration time.Duration `json:"duration"`
	// Calibration is the number of benign names the scores were
	// calibrated on (0: not calibrated, too few benign names).
	Calibration int `json:"calibration"`
}

// Model scores host names. It is immutable once trained and safe for
// concurrent use.
type Model struct {
	mask uint32
	// w holds the weights feature-major (w[f*NumCategories+c]) so that one
	// feature's weights share a cache line.
	w    []float32
	bias [NumCategories]float32
	// calA and calB map a category's raw log-odds z to the calibrated
	// score sigmoid(calA*z + calB) (1 and 0 when not calibrated).
	calA, calB [NumCategories]float32
	// scaled: features are weighted 1/sqrt(n) (logistic regression);
	// naive Bayes sums raw log-likelihood ratios.
	scaled   bool
	dict     *dict
	suffixes suffixSet
	info     Info
}

// Info describes how the model was trained.
func (m *Model) Info() Info { return m.info }

// Score returns the name's score per category. IP literals score 0. It
// does not allocate for a normalized host (lowercase, as
// categories.Normalize and a list lookup give it); other hosts are
// lowercased first.
func (m *Model) Score(host string) Scores {
	var fs featureSet
	var s Scores
	if m == nil || !m.extract(lower(host), &fs) {
		return s
	}
	return m.scoreFeatures(&fs)
}

func (m *Model) scoreFeatures(fs *featureSet) Scores {
	var z [NumCategories]float32
	for _, f := range fs.idx[:fs.n] {
		w := m.w[int(f)*int(NumCategories):][:NumCategories]
		for c := range z {
			z[c] += w[c]
		}
	}
	scale := float32(1)
	if m.scaled && fs.n > 0 {
		scale = float32(1 / math.Sqrt(float64(fs.n)))
	}
	var s Scores
	for c := range z {
		s[c] = sigmoid(m.calA[c]*(m.bias[c]+scale*z[c]) + m.calB[c])
	}
	return s
}

// logits are the raw (uncalibrated) log-odds of a name's features.
func (m *Model) logits(fs *featureSet) [NumCategories]float32 {
	var z [NumCategories]float32
	for _, f := range fs.idx[:fs.n] {
		w := m.w[int(f)*int(NumCategories):][:NumCategories]
		for c := range z {
			z[c] += w[c]
		}
	}
	scale := float32(1)
	if m.scaled && fs.n > 0 {
		scale = float32(1 / math.Sqrt(float64(fs.n)))
	}
	for c := range z {
		z[c] = m.bias[c] + scale*z[c]
	}
	return z
}

// lower returns host in lowercase, without allocating when it already is.
func lower(host string) string {
	for i := 0; i < len(host); i++ {
		if c := host[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}

func sigmoid(z float32) float32 {
	return float32(1 / (1 + math.Exp(-float64(z))))
}

// Feature is one feature of a name and its weight towards a category.
type Feature struct {
	Name   string  `json:"feature"`
	Weight float32 `json:"weight"`
}

// Explain returns the features of host that weigh most towards cat
// (positive or negative), largest magnitude first, at most n (all when
// n <= 0). For `aupguard check`; it allocates.
func (m *Model) Explain(host string, cat Category, n int) []Feature {
	fs := &featureSet{collect: true}
	if m == nil || cat >= NumCategories || !m.extract(lower(host), fs) {
		return nil
	}
	scale := float32(1)
	if m.scaled && fs.n > 0 {
		scale = float32(1 / math.Sqrt(float64(fs.n)))
	}
	// Weights in calibrated log-odds, so that they add up (with the
	// bias) to what Score says.
	scale *= m.calA[cat]
	agg := map[string]float32{}
	for i, f := range fs.idx[:fs.n] {
		agg[fs.names[i]] += scale * m.w[int(f)*int(NumCategories)+int(cat)]
	}
	out := make([]Feature, 0, len(agg))
	for k, v := range agg {
		out = append(out, Feature{k, v})
	}
	slices.SortFunc(out, func(a, b Feature) int {
		if d := math.Abs(float64(b.Weight)) - math.Abs(float64(a.Weight)); d != 0 {
			if d > 0 {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Name, b.Name)
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// ErrTooFewNames is Train's answer when a scored category or the benign
// names have no training names at all: the lists are not loaded yet (or
// not configured), which is a state to wait out, not a fault.
var ErrTooFewNames = errors.New("namemodel: no training names")

// Train builds a model from the training set. It takes a few seconds for
// the default lists on two cores, checks ctx between batches and returns
// ctx's error when cancelled.
func Train(ctx context.Context, ts TrainingSet, opt Options) (*Model, error) {
	start := time.Now()
	opt = opt.withDefaults()
	if opt.Bits < 10 || opt.Bits > 26 {
		return nil, fmt.Errorf("namemodel: bits %d out of range 10..26", opt.Bits)
	}
	ex, info := ts.examples(opt.MaxPositives, opt.MaxOther)
	ex, calib := splitCalibration(ex, opt.CalibrationFraction)
	if len(calib) > 0 {
		info.Negatives -= len(calib)
		info.Benign -= len(calib)
	}
	for c, n := range info.Positives {
		if n == 0 {
			return nil, fmt.Errorf("%w for %s", ErrTooFewNames, Category(c))
		}
	}
	if info.Benign == 0 {
		return nil, fmt.Errorf("%w: no benign names", ErrTooFewNames)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	words := map[string]struct{}{}
	path, nw, err := loadWordList(opt.WordList, words)
	if err != nil {
		return nil, err
	}
	info.WordList, info.Words = path, nw
	info.Tokens = learnTokens(ex, opt.MinTokenCount, words, newDict(words))

	for _, w := range shortWords {
		words[w] = struct{}{}
	}
	m := &Model{
		mask:     uint32(1)<<opt.Bits - 1,
		w:        make([]float32, (1<<opt.Bits)*int(NumCategories)),
		dict:     newDict(words),
		suffixes: suffixSet{},
	}
	for _, e := range ex {
		m.suffixes.addName(e.host)
	}
	info.Algorithm = opt.Algorithm
	info.Features = 1 << opt.Bits
	switch opt.Algorithm {
	case LogReg:
		err = m.trainLogReg(ctx, ex, info, opt)
	case NaiveBayes:
		err = m.trainNB(ctx, ex, info, opt)
	default:
		err = fmt.Errorf("namemodel: unknown algorithm %q", opt.Algorithm)
	}
	if err != nil {
		return nil, err
	}
	m.calibrate(calib, opt)
	info.Calibration = len(calib)
	info.Duration = time.Since(start)
	m.info = info
	return m, nil
}

// learnTokens adds to words the letter tokens (between hyphens, digits and
// dots) of at least minWordLen letters that appear in minCount training
// names or more: brand and slang words no dictionary has ("xxx", "hentai",
// "xbet", "pinup"). Tokens that the word list already cuts into known
// words ("wincasino") are not added: the words say more. It returns how
// many were new.
func learnTokens(ex []example, minCount int, words map[string]struct{}, known *dict) int {
	counts := map[string]int{}
	for _, e := range ex {
		h := e.host
		for i := 0; i < len(h); {
			if !isWordByte(h[i]) {
				i++
				continue
			}
			j := i
			for j < len(h) && isWordByte(h[j]) {
				j++
			}
			wholeLabel := (i == 0 || h[i-1] == '.') && (j == len(h) || h[j] == '.')
			if j-i >= minWordLen && j-i <= maxWordLen && !wholeLabel {
				// A whole label is a token only if something delimits it
				// inside the label (a hyphen or a digit): whole labels are
				// mostly unsegmented names.
				counts[h[i:j]]++
			}
			i = j
		}
	}
	n := 0
	var spans [64]span
	for t, c := range counts {
		if c < minCount {
			continue
		}
		if k := segment(known, t, &spans); k > 1 && !slices.ContainsFunc(spans[:k], func(s span) bool { return !s.known }) {
			continue
		}
		if _, ok := words[t]; !ok {
			words[t] = struct{}{}
			n++
		}
	}
	return n
}
