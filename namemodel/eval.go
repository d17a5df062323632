package namemodel

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// Thresholds are per-category score thresholds.
type Thresholds [NumCategories]float32

// DefaultThresholds are the thresholds the default policy is meant to use:
// block learners at or above block, alert staff (no block) at or above
// alert. Training calibrates the scores to them (Options.BlockFPR and
// AlertFPR of held-back benign names score at or above them).
func DefaultThresholds() (block, alert Thresholds) {
	return Thresholds{0.99, 0.99, 0.99}, Thresholds{0.95, 0.95, 0.95}
}

// EvalOptions configure Evaluate.
type EvalOptions struct {
	// Train configures the model trained without the held-out names.
	Train Options
	// HoldOut are List.Source names left out of training entirely.
	HoldOut []string
	// BenignFraction of each benign list (chosen by a stable hash of the
	// name) is held out as benign test names (default 0.2).
	BenignFraction float64
	// Block and Alert are the thresholds evaluated (default
	// DefaultThresholds).
	Block, Alert *Thresholds
	// TargetFPR also reports recall at the threshold where this fraction
	// of held-out benign names scores at or above it (default 0.003).
	TargetFPR float64
	// Examples is how many missed names (below the block threshold) to
	// report per held-out source, and blocked names per benign list
	// (default 10).
	Examples int
}

// SourceEval is the recall on one held-out source.
type SourceEval struct {
	Source   string `json:"source"`
	Category string `json:"category"`
	// Names held out; Listed of them are still named by the remaining
	// lists (the name or a parent, in the same category); Misses are the
	// others: what the model is for.
	Names  int `json:"names"`
	Listed int `json:"listed"`
	Misses int `json:"misses"`
	// Recall of the model on the misses at the block, the alert and the
	// target-FPR thresholds.
	BlockRecall  float64 `json:"block_recall"`
	AlertRecall  float64 `json:"alert_recall"`
	TargetRecall float64 `json:"target_recall"`
	// Blocked is the fraction of all held-out names blocked by the
	// remaining lists or the model at the block threshold.
	Blocked float64 `json:"blocked"`
	// Popular of the held-out names are on the popular-sites list
	// (PopularSource): the "most visited" sites of the category.
	// PopularBlocked is the fraction of them blocked by the remaining
	// lists or the model at the block threshold.
	Popular        int     `json:"popular"`
	PopularBlocked float64 `json:"popular_blocked"`
	// Examples are a few of the misses the model scores below the block
	// threshold (chosen by a stable hash), with their scores.
	Examples []Example `json:"examples,omitempty"`
}

// Example is a name and its score in the category evaluated.
type Example struct {
	Name  string  `json:"name"`
	Score float32 `json:"score"`
}

// BenignEval is the false-positive rate on one benign list's held-out
// names (those no positive list names): the share the model would block,
// or alert on, in any category.
type BenignEval struct {
	Source   string  `json:"source"`
	Names    int     `json:"names"`
	FPRBlock float64 `json:"fpr_block"`
	FPRAlert float64 `json:"fpr_alert"`
	// Examples are a few of the names blocked, for the report.
	Examples []string `json:"examples,omitempty"`
}

// EvalReport is what Evaluate measured.
type EvalReport struct {
	Info      Info       `json:"model"`
	Block     Thresholds `json:"block"`
	Alert     Thresholds `json:"alert"`
	TargetFPR float64    `json:"target_fpr"`
	// AtTarget are the thresholds where TargetFPR of all held-out benign
	// names score at or above them, per category.
	AtTarget Thresholds   `json:"at_target"`
	Sources  []SourceEval `json:"sources"`
	Benign   []BenignEval `json:"benign"`
}

// Evaluate trains a model without the held-out sources and without a
// fraction of every benign list, then measures recall on each held-out
// source's names that the remaining lists miss and false positives on the
// held-out benign names.
func Evaluate(ctx context.Context, ts TrainingSet, opt EvalOptions) (*EvalReport, error) {
	if opt.BenignFraction == 0 {
		opt.BenignFraction = 0.2
	}
	if opt.TargetFPR == 0 {
		opt.TargetFPR = 0.003
	}
	block, alert := DefaultThresholds()
	if opt.Block != nil {
		block = *opt.Block
	}
	if opt.Alert != nil {
		alert = *opt.Alert
	}
	for _, h := range opt.HoldOut {
		if !slices.ContainsFunc(ts.Lists, func(l List) bool { return l.Source == h }) {
			return nil, fmt.Errorf("namemodel: no source %q to hold out", h)
		}
	}
	if opt.Examples == 0 {
		opt.Examples = 10
	}
	cut := stableCut(opt.BenignFraction)
	// listed[c] holds the names of the training lists of category c;
	// positive holds every name of a scored category (held out or not).
	listed := [NumCategories]map[string]bool{}
	for c := range listed {
		listed[c] = map[string]bool{}
	}
	positive := map[string]bool{}
	popular := map[string]bool{}
	for _, l := range ts.Lists {
		c, scored := ParseCategory(l.Category)
		isHeld := slices.Contains(opt.HoldOut, l.Source)
		if scored {
			for _, n := range l.Names {
				positive[n] = true
				if !isHeld {
					listed[c][n] = true
				}
			}
		}
		if l.Source == PopularSource {
			for _, n := range l.Names {
				popular[strings.TrimPrefix(n, "www.")] = true
			}
		}
	}
	// Leakage: a held-out name that the remaining lists miss must not be
	// learnt through a sibling (cdn.example.com in training,
	// example.com held out) or through the benign lists (the popular list
	// names adult sites): every training name under the registrable
	// domain of such a miss is dropped, whatever its list. Benign names
	// are split by registrable domain for the same reason.
	heldRegs := map[string]bool{}
	for _, l := range ts.Lists {
		c, scored := ParseCategory(l.Category)
		if !scored || !slices.Contains(opt.HoldOut, l.Source) {
			continue
		}
		for _, n := range l.Names {
			if !coveredBy(listed[c], n) {
				heldRegs[registrable(n)] = true
			}
		}
	}
	var train TrainingSet
	var held, benignTest []List
	keep := func(names []string) []string {
		out := make([]string, 0, len(names))
		for _, n := range names {
			if !heldRegs[registrable(n)] {
				out = append(out, n)
			}
		}
		return out
	}
	for _, l := range ts.Lists {
		isHeld := slices.Contains(opt.HoldOut, l.Source)
		switch {
		case isHeld && l.Category == Benign:
			benignTest = append(benignTest, l)
		case isHeld:
			held = append(held, l)
		case l.Category == Benign:
			var tr, te []string
			for _, n := range l.Names {
				if stableHash(registrable(n)) < cut {
					te = append(te, n)
				} else if !heldRegs[registrable(n)] {
					tr = append(tr, n)
				}
			}
			train.Lists = append(train.Lists, List{Source: l.Source, Category: l.Category, Names: tr})
			benignTest = append(benignTest, List{Source: l.Source, Category: l.Category, Names: te})
		default:
			train.Lists = append(train.Lists, List{Source: l.Source, Category: l.Category, Names: keep(l.Names)})
		}
	}
	m, err := Train(ctx, train, opt.Train)
	if err != nil {
		return nil, err
	}
	rep := &EvalReport{Info: m.Info(), Block: block, Alert: alert, TargetFPR: opt.TargetFPR}

	// Benign scores first: they set the target-FPR thresholds.
	var all [NumCategories][]float32
	type scored struct {
		name string
		s    Scores
	}
	perList := make([][]scored, len(benignTest))
	for i, l := range benignTest {
		seen := map[string]bool{}
		for _, n := range l.Names {
			if positive[n] || seen[n] {
				continue
			}
			seen[n] = true
			s := m.Score(n)
			perList[i] = append(perList[i], scored{n, s})
			for c := range all {
				all[c] = append(all[c], s[c])
			}
		}
	}
	for c := range all {
		rep.AtTarget[c] = thresholdAt(all[c], opt.TargetFPR)
	}
	for i, l := range benignTest {
		be := BenignEval{Source: l.Source, Names: len(perList[i])}
		var nb, na int
		for _, x := range perList[i] {
			if over(x.s, block) {
				nb++
				if len(be.Examples) < opt.Examples {
					be.Examples = append(be.Examples, x.name)
				}
			}
			if over(x.s, alert) {
				na++
			}
		}
		be.FPRBlock, be.FPRAlert = ratio(nb, be.Names), ratio(na, be.Names)
		rep.Benign = append(rep.Benign, be)
	}
	for _, l := range held {
		c, ok := ParseCategory(l.Category)
		if !ok {
			continue
		}
		se := SourceEval{Source: l.Source, Category: l.Category}
		seen := map[string]bool{}
		var rb, ra, rt, pb int
		var missed []Example
		for _, n := range l.Names {
			if seen[n] {
				continue
			}
			seen[n] = true
			se.Names++
			isPopular := popular[strings.TrimPrefix(n, "www.")]
			if isPopular {
				se.Popular++
			}
			if coveredBy(listed[c], n) {
				se.Listed++
				if isPopular {
					pb++
				}
				continue
			}
			se.Misses++
			s := m.Score(n)[c]
			if s >= block[c] {
				rb++
				if isPopular {
					pb++
				}
			} else {
				missed = append(missed, Example{n, s})
			}
			if s >= alert[c] {
				ra++
			}
			if s >= rep.AtTarget[c] {
				rt++
			}
		}
		se.BlockRecall, se.AlertRecall, se.TargetRecall = ratio(rb, se.Misses), ratio(ra, se.Misses), ratio(rt, se.Misses)
		se.Blocked = ratio(se.Listed+rb, se.Names)
		se.PopularBlocked = ratio(pb, se.Popular)
		slices.SortFunc(missed, func(a, b Example) int { return cmp.Compare(stableHash(a.Name), stableHash(b.Name)) })
		se.Examples = missed[:min(len(missed), opt.Examples)]
		rep.Sources = append(rep.Sources, se)
	}
	return rep, nil
}

// registrable returns n's registrable domain (eTLD+1 by publicsuffix.org),
// or n itself when it has none.
func registrable(n string) string {
	if r, err := publicsuffix.EffectiveTLDPlusOne(n); err == nil {
		return r
	}
	return n
}

// stableCut is the stableHash value below which a fraction f of names falls.
func stableCut(f float64) uint64 {
	if f <= 0 {
		return 0
	}
	if f >= 1-1e-9 {
		return ^uint64(0)
	}
	return uint64(f * (1 << 63) * 2)
}

// coveredBy reports whether set names n or one of its parents, as a list
// lookup would.
func coveredBy(set map[string]bool, n string) bool {
	for {
		if set[n] {
			return true
		}
		i := strings.IndexByte(n, '.')
		if i < 0 {
			return false
		}
		n = n[i+1:]
	}
}

func over(s Scores, t Thresholds) bool {
	for c := range s {
		if s[c] >= t[c] {
			return true
		}
	}
	return false
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// thresholdAt returns the lowest threshold at which at most fpr of scores
// are at or above it.
func thresholdAt(scores []float32, fpr float64) float32 {
	if len(scores) == 0 {
		return 1
	}
	s := slices.Clone(scores)
	slices.Sort(s)
	slices.Reverse(s)
	k := int(fpr * float64(len(s))) // scores allowed at or above
	if k >= len(s) {
		return s[len(s)-1]
	}
	// Just above the (k+1)-th highest score.
	return math.Nextafter32(s[k], 2)
}
