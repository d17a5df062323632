package namemodel

import "slices"

// Benign is the Category of a List of benign names (negatives that a
// false positive would block).
const Benign = "benign"

// List is one source's names.
type List struct {
	// Source names the list ("hostsvn-gambling", "ut1:bank").
	Source string
	// Category is the policy category ("gambling", "social"…) or Benign.
	// Names of categories the model does not score are negatives.
	Category string
	Names    []string
}

// TrainingSet is the lists a model is trained from.
type TrainingSet struct {
	Lists []List
}

// example is one distinct training name: pos has bit c set when some list
// of Category c names it; benign when a benign list does and no positive;
// other is the first unscored category naming it (an index into the
// set's list of them), -1 for none.
type example struct {
	host   string
	pos    uint8
	benign bool
	other  int16
}

// examples merges the lists into distinct names. A name both in a benign
// list and in a positive one (the popular-sites list has adult and
// gambling sites) is a positive only.
//
// Categories with more than maxPos names (maxOther for unscored ones) are
// sampled down by a stable hash of the name.
func (ts TrainingSet) examples(maxPos, maxOther int) ([]example, Info) {
	var info Info
	idx := map[string]int{}
	var ex []example
	get := func(n string) *example {
		i, ok := idx[n]
		if !ok {
			i = len(ex)
			idx[n] = i
			ex = append(ex, example{host: n, other: -1})
		}
		return &ex[i]
	}
	var others []string
	for _, l := range ts.Lists {
		c, scored := ParseCategory(l.Category)
		o := int16(-1)
		if !scored && l.Category != Benign {
			i := slices.Index(others, l.Category)
			if i < 0 {
				i = len(others)
				others = append(others, l.Category)
			}
			o = int16(i)
		}
		for _, n := range l.Names {
			e := get(n)
			switch {
			case scored:
				e.pos |= 1 << c
			case l.Category == Benign:
				e.benign = true
			case e.other < 0:
				e.other = o
			}
		}
	}
	// Count, then sample each over-full class down.
	var posN [NumCategories]int
	otherN := make([]int, len(others))
	for i := range ex {
		e := &ex[i]
		switch {
		case e.pos != 0:
			e.benign, e.other = false, -1
			for c := range NumCategories {
				if e.pos&(1<<c) != 0 {
					posN[c]++
				}
			}
		case e.benign:
			e.other = -1
		case e.other >= 0:
			otherN[e.other]++
		}
	}
	keep := func(e *example) bool {
		switch {
		case e.pos != 0:
			for c := range NumCategories {
				if e.pos&(1<<c) != 0 && stableHash(e.host) < stableCut(float64(maxPos)/float64(posN[c])) {
					return true
				}
			}
			return false
		case e.other >= 0:
			return stableHash(e.host) < stableCut(float64(maxOther)/float64(otherN[e.other]))
		}
		return true
	}
	out := ex[:0]
	for i := range ex {
		e := ex[i]
		if !keep(&e) {
			continue
		}
		out = append(out, e)
		if e.pos != 0 {
			for c := range NumCategories {
				if e.pos&(1<<c) != 0 {
					info.Positives[c]++
				}
			}
			continue
		}
		info.Negatives++
		if e.benign {
			info.Benign++
		}
	}
	return out, info
}

// stableHash is a hash of a name that does not change from run to run,
// for held-out splits.
func stableHash(s string) uint64 { return mix(hashBytes(hashNS('#'), s)) }
