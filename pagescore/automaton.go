package pagescore

import (
	"fmt"
	"unicode"
)

// Kinds of rune after normalisation.
const (
	kindSep  = iota // ends a word: punctuation, spaces, symbols
	kindWord        // part of a word: letters, digits, combining marks
	kindDrop        // invisible: zero-width and format characters, soft hyphen
)

// classify says what a rune is to the matcher and lower-cases words.
// Combining marks are word characters because Devanagari and Vietnamese
// words are written with them; format characters (zero-width space, soft
// hyphen, joiners) are dropped because spam puts them inside words.
func classify(r rune) (kind int, lower rune) {
	if r < 0x80 {
		c := asciiFold[r]
		if c == 0 {
			return kindSep, ' '
		}
		return kindWord, rune(c)
	}
	switch {
	case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.In(r, unicode.Mn, unicode.Mc):
		return kindWord, unicode.ToLower(r)
	case unicode.Is(unicode.Cf, r):
		return kindDrop, 0
	}
	return kindSep, ' '
}

// asciiFold maps an ASCII byte to its lower-case form, or 0 if it is not a
// letter or digit.
var asciiFold = func() (t [128]byte) {
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c)
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = byte(c)
		t[c-'a'+'A'] = byte(c)
	}
	return t
}()

// automaton is an Aho–Corasick machine compiled to a dense transition
// table over byte classes: only bytes that occur in some pattern get a
// class of their own, every other byte leads back to the root, which is
// right because every pattern starts at a word boundary or inside a word
// made of pattern bytes.
type automaton struct {
	class    [256]uint16
	nclass   int
	delta    []int32 // state*nclass + class -> state
	outStart []int32 // outputs of state s are outs[outStart[s]:outStart[s+1]]
	outs     []int32 // phrase indexes
}

const maxStates = 1 << 22

func buildAutomaton(patterns []string) (*automaton, error) {
	a := &automaton{nclass: 1}
	for _, p := range patterns {
		for i := 0; i < len(p); i++ {
			if a.class[p[i]] == 0 {
				a.class[p[i]] = uint16(a.nclass)
				a.nclass++
			}
		}
	}
	nc := a.nclass
	// Trie: -1 is "no edge" until the failure links fill it in.
	newState := func() int32 {
		s := int32(len(a.delta) / nc)
		for i := 0; i < nc; i++ {
			a.delta = append(a.delta, -1)
		}
		return s
	}
	newState()
	own := [][]int32{nil}
	for pi, p := range patterns {
		s := int32(0)
		for i := 0; i < len(p); i++ {
			c := int(a.class[p[i]])
			next := a.delta[int(s)*nc+c]
			if next < 0 {
				if len(own) >= maxStates {
					return nil, fmt.Errorf("pagescore: phrase lists too large (over %d states)", maxStates)
				}
				next = newState()
				own = append(own, nil)
				a.delta[int(s)*nc+c] = next
			}
			s = next
		}
		own[s] = append(own[s], int32(pi))
	}
	n := len(own)
	fail := make([]int32, n)
	outs := make([][]int32, n)
	outs[0] = own[0]
	// Breadth-first: a state's failure link is shallower, so its outputs
	// and transitions are complete before the state itself is done.
	queue := make([]int32, 0, n)
	for c := 0; c < nc; c++ {
		if t := a.delta[c]; t < 0 {
			a.delta[c] = 0
		} else {
			fail[t] = 0
			queue = append(queue, t)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		outs[s] = append(append([]int32(nil), own[s]...), outs[fail[s]]...)
		for c := 0; c < nc; c++ {
			t := a.delta[int(s)*nc+c]
			f := a.delta[int(fail[s])*nc+c]
			if t < 0 {
				a.delta[int(s)*nc+c] = f
				continue
			}
			fail[t] = f
			queue = append(queue, t)
		}
	}
	a.outStart = make([]int32, n+1)
	for s := 0; s < n; s++ {
		a.outStart[s] = int32(len(a.outs))
		a.outs = append(a.outs, outs[s]...)
	}
	a.outStart[n] = int32(len(a.outs))
	return a, nil
}

func (a *automaton) states() int { return len(a.outStart) - 1 }
