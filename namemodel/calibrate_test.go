package namemodel

import (
	"context"
	"math/rand/v2"
	"testing"
)

// syntheticSet is a training set of made-up names, large enough to be
// calibrated: benign names of random syllables (a few with a category's
// word in them, as UT1's benign lists have), and names of each category
// that carry one of its words.
func syntheticSet(seed uint64) TrainingSet {
	rng := rand.New(rand.NewPCG(seed, 7))
	syl := []string{"ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "zu", "pe", "da", "fo", "gri", "bel", "mar", "ton"}
	suffixes := []string{"com", "net", "org", "co.uk", "de", "fr", "top", "xyz"}
	word := func() string {
		s := ""
		for range 2 + rng.IntN(3) {
			s += syl[rng.IntN(len(syl))]
		}
		return s
	}
	name := func(w string) string {
		s := word()
		switch rng.IntN(3) {
		case 0:
			s = w + s
		case 1:
			s += w
		default:
			s += "-" + w
		}
		return s + "." + suffixes[rng.IntN(len(suffixes))]
	}
	catWords := map[string][]string{
		"gambling": {"casino", "bet", "slots", "poker"},
		"adult":    {"porn", "xxx", "sex", "cams"},
		"piracy":   {"movies", "torrent", "warez", "stream"},
	}
	var ts TrainingSet
	for _, cat := range []string{"gambling", "adult", "piracy"} {
		ws := catWords[cat]
		var names []string
		for range 4000 {
			names = append(names, name(ws[rng.IntN(len(ws))]))
		}
		ts.Lists = append(ts.Lists, List{Source: cat, Category: cat, Names: names})
	}
	var benign []string
	all := []string{"casino", "porn", "movies", "stream", "bet"}
	for i := range 24000 {
		if i%50 == 0 {
			benign = append(benign, name(all[rng.IntN(len(all))]))
			continue
		}
		benign = append(benign, word()+"."+suffixes[rng.IntN(len(suffixes))])
	}
	ts.Lists = append(ts.Lists, List{Source: "benign", Category: Benign, Names: benign})
	return ts
}

// TestCalibration checks that the calibrated scores put the default block
// threshold where BlockFPR of the calibration names score at or above it,
// and the alert threshold near AlertFPR: the policy's fixed thresholds
// mean a known false-positive rate whatever the lists.
func TestCalibration(t *testing.T) {
	ts := syntheticSet(1)
	opt := Options{Bits: 16}
	m, err := Train(context.Background(), ts, opt)
	if err != nil {
		t.Fatal(err)
	}
	opt = opt.withDefaults()
	ex, _ := ts.examples(opt.MaxPositives, opt.MaxOther)
	_, calib := splitCalibration(ex, opt.CalibrationFraction)
	if got := m.Info().Calibration; got != len(calib) || got < minCalibration {
		t.Fatalf("calibrated on %d names, want %d (at least %d)", got, len(calib), minCalibration)
	}
	block, alert := DefaultThresholds()
	n := float64(len(calib))
	for c := range NumCategories {
		var nb, na int
		for _, e := range calib {
			s := m.Score(e.host)[c]
			if s >= block[c] {
				nb++
			}
			if s >= alert[c] {
				na++
			}
		}
		fb, fa := float64(nb)/n, float64(na)/n
		t.Logf("%s: %.3f%% of %d calibration names at block, %.3f%% at alert", c, 100*fb, len(calib), 100*fa)
		if fb < opt.BlockFPR/2 || fb > 1.5*opt.BlockFPR+2/n {
			t.Errorf("%s: %.3f%% of the calibration names score at or above the block threshold, want about %.3f%%", c, 100*fb, 100*opt.BlockFPR)
		}
		if fa < opt.AlertFPR/3 || fa > 1.5*opt.AlertFPR+2/n {
			t.Errorf("%s: %.3f%% of the calibration names score at or above the alert threshold, want about %.3f%%", c, 100*fa, 100*opt.AlertFPR)
		}
	}
	// Without calibration every name trains and the map is the identity.
	m, err = Train(context.Background(), ts, Options{Bits: 16, CalibrationFraction: -1})
	if err != nil {
		t.Fatal(err)
	}
	if info := m.Info(); info.Calibration != 0 || m.calA != [NumCategories]float32{1, 1, 1} || m.calB != [NumCategories]float32{} {
		t.Errorf("uncalibrated model: %+v, %v %v", info, m.calA, m.calB)
	}
}

// TestEvaluateCalibrates checks that a model trained by Evaluate is
// calibrated too: the calibration names must not be drawn from the
// benign names Evaluate holds out (an earlier version used the same hash
// for both and calibrated on nothing).
func TestEvaluateCalibrates(t *testing.T) {
	ts := syntheticSet(2)
	rep, err := Evaluate(context.Background(), ts, EvalOptions{HoldOut: []string{"piracy"}, Train: Options{Bits: 16}})
	if err == nil {
		t.Fatalf("holding out every piracy name trained a model: %+v", rep.Info)
	}
	ts.Lists = append(ts.Lists, List{Source: "piracy2", Category: "piracy", Names: []string{"freemovies.cc", "torrentz.eu", "warezbb.org"}})
	rep, err = Evaluate(context.Background(), ts, EvalOptions{HoldOut: []string{"piracy"}, Train: Options{Bits: 16}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Info.Calibration < minCalibration {
		t.Errorf("the evaluated model was calibrated on %d names", rep.Info.Calibration)
	}
}

// TestEvaluateDropsSiblings checks the leakage rule: a held-out name that
// the remaining lists miss takes every training name under its registrable
// domain out of training, whatever the list (here the benign list, as the
// popular list names adult sites).
func TestEvaluateDropsSiblings(t *testing.T) {
	// A registrable domain that falls in neither the benign test split
	// nor the calibration names, so that its siblings would train.
	eopt := EvalOptions{Train: Options{Bits: 16}}
	var reg string
	for i := 0; ; i++ {
		reg = "zorbacasino" + itoa(i) + ".com"
		if stableHash(reg) >= stableCut(0.2) && calibHash(reg) >= stableCut(Options{}.withDefaults().CalibrationFraction) {
			break
		}
	}
	benignTrained := func(held []string) int {
		ts := syntheticSet(3)
		ts.Lists = append(ts.Lists,
			List{Source: "held", Category: "gambling", Names: held},
			List{Source: "pop", Category: Benign, Names: []string{"www." + reg, "cdn." + reg, reg}})
		eopt.HoldOut = []string{"held"}
		rep, err := Evaluate(context.Background(), ts, eopt)
		if err != nil {
			t.Fatal(err)
		}
		return rep.Info.Benign
	}
	without := benignTrained([]string{"otherbet.com"})
	with := benignTrained([]string{"otherbet.com", reg})
	if without-with != 3 {
		t.Errorf("holding out %s trained on %d benign names, %d without it: want its 3 siblings out of training", reg, with, without)
	}
}
