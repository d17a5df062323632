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
	class  [256]uint32
	nclass int
	// delta[s+class] is the next state, premultiplied by nclass so the
	// hot loop needs no multiplication, with outFlag set if that state
	// ends a phrase.
	delta    []uint32
	outStart []int32 // outputs of state n are outs[outStart[n]:outStart[n+1]]
	outs     []int32 // phrase indexes
}

const outFlag = 1 << 31

const maxStates = 1 << 22

func buildAutomaton(patterns []string) (*automaton, error) {
	a := &automaton{nclass: 1}
	for _, p := range patterns {
		for i := 0; i < len(p); i++ {
			if a.class[p[i]] == 0 {
				a.class[p[i]] = uint32(a.nclass)
				a.nclass++
			}
		}
	}
	nc := a.nclass
	var delta []int32
	// Trie: -1 is "no edge" until the failure links fill it in.
	newState := func() int32 {
		s := int32(len(delta) / nc)
		for i := 0; i < nc; i++ {
			delta = append(delta, -1)
		}
		return s
	}
	newState()
	own := [][]int32{nil}
	for pi, p := range patterns {
		s := int32(0)
		for i := 0; i < len(p); i++ {
			c := int(a.class[p[i]])
			next := delta[int(s)*nc+c]
			if next < 0 {
				if len(own) >= maxStates {
					return nil, fmt.Errorf("pagescore: phrase lists too large (over %d states)", maxStates)
				}
				next = newState()
				own = append(own, nil)
				delta[int(s)*nc+c] = next
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
		if t := delta[c]; t < 0 {
			delta[c] = 0
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
			t := delta[int(s)*nc+c]
			f := delta[int(fail[s])*nc+c]
			if t < 0 {
				delta[int(s)*nc+c] = f
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
	if int64(n)*int64(nc) >= outFlag {
		return nil, fmt.Errorf("pagescore: phrase lists too large (%d states)", n)
	}
	a.delta = make([]uint32, len(delta))
	for i, t := range delta {
		a.delta[i] = uint32(t) * uint32(nc)
		if len(outs[t]) > 0 {
			a.delta[i] |= outFlag
		}
	}
	return a, nil
}

func (a *automaton) states() int { return len(a.outStart) - 1 }

// step moves from state s (premultiplied, without outFlag) on byte b.
func (a *automaton) step(s uint32, b byte) uint32 { return a.delta[s+a.class[b]] }
