package pagescore

import (
	"bytes"
	"cmp"
	"fmt"
	"io/fs"
	"slices"
	"unicode/utf8"
)

// Defaults for [Options].
const (
	DefaultMaxBytes     = 256 << 10
	DefaultMaxPerPhrase = 3
)

// Options configure a [Scorer]. The zero value uses the embedded lists and
// the defaults.
type Options struct {
	// Lists holds one <category>.txt file per category; nil means
	// [DefaultLists].
	Lists fs.FS
	// MaxBytes is how much of the page (raw HTML bytes) is looked at;
	// 0 or less means DefaultMaxBytes.
	MaxBytes int64
	// MaxPerPhrase is how often one phrase counts toward a score, so a
	// page cannot reach a threshold by repeating one word; 0 or less
	// means DefaultMaxPerPhrase.
	MaxPerPhrase int
}

// Scorer holds the compiled lists. It is immutable and safe for
// concurrent use; each page gets its own [Run].
type Scorer struct {
	cats     []string
	phrases  []phrase
	a        *automaton
	maxBytes int64
	maxPer   uint32
	start    uint32 // the automaton after one space: a page starts at a word boundary
}

// New compiles the phrase lists.
func New(o Options) (*Scorer, error) {
	if o.Lists == nil {
		o.Lists = DefaultLists()
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxPerPhrase <= 0 {
		o.MaxPerPhrase = DefaultMaxPerPhrase
	}
	cats, phrases, err := readLists(o.Lists)
	if err != nil {
		return nil, err
	}
	pats := make([]string, len(phrases))
	for i, p := range phrases {
		pats[i] = p.pattern
	}
	a, err := buildAutomaton(pats)
	if err != nil {
		return nil, err
	}
	start := a.delta[a.class[' ']] &^ outFlag
	return &Scorer{cats: cats, phrases: phrases, a: a, maxBytes: o.MaxBytes, maxPer: uint32(o.MaxPerPhrase), start: start}, nil
}

// Categories lists the categories in the order of the list files.
func (s *Scorer) Categories() []string { return append([]string(nil), s.cats...) }

// Phrases is how many phrases the lists hold.
func (s *Scorer) Phrases() int { return len(s.phrases) }

// Match is one phrase found on the page.
type Match struct {
	Category string
	Phrase   string // as written in the list
	Weight   float64
	Count    int // times seen; at most Options.MaxPerPhrase of them count
}

// Result is the outcome of scoring one page.
type Result struct {
	// Scores has every category, 0 when nothing matched. Benign
	// context can make a score negative.
	Scores map[string]float64
	// Positive is the part of each score from positive weights alone: a
	// page with a high Positive and a low Score mentions a category a lot
	// in a benign context (a news report, a support charity), and a
	// policy may want an alert rather than silence for it.
	Positive map[string]float64
	// Matches are sorted by category, then by weight (strongest first).
	Matches []Match
	// Bytes is how much of the page was looked at; Truncated says the
	// page was longer than that.
	Bytes     int64
	Truncated bool
}

// HTML tokenizer states.
const (
	stText    = iota
	stTagOpen // after '<'
	stTagName // reading a tag name
	stTag     // inside a tag, after its name
	stBang    // after "<!", deciding comment or declaration
	stComment // inside <!-- -->
	stRaw     // inside script or style, looking for its end tag
	stEntity  // after '&'
)

// Run scores one page. Write the page to it (it never returns an error, so
// it can sit behind io.TeeReader), then call [Run.Result]. A Run is not safe
// for concurrent use.
type Run struct {
	s      *Scorer
	counts []uint32

	state    uint32 // automaton state, premultiplied
	lastSep  bool   // the last byte fed was the word separator
	html     uint8
	seen     int64
	finished bool

	// Tag name, lower-cased, up to 8 bytes; nameLen 9 means longer.
	name     [8]byte
	nameLen  uint8
	closing  bool
	raw      uint8 // rawScript or rawStyle: pending or current raw-text element
	rawIdx   uint8 // bytes of "</script" or "</style" matched so far
	quote    byte  // open attribute quote
	afterEq  bool  // last non-space byte in the tag was '='
	dashes   uint8 // '-' seen in a row (comments, "<!--")
	ent      [10]byte
	entLen   uint8
	utf      [utf8.UTFMax]byte
	utfLen   uint8
	utfWant  uint8
	overflow bool
}

const (
	rawNone = iota
	rawScript
	rawStyle
)

var rawEnd = [...]string{rawScript: "</script", rawStyle: "</style"}

// Start begins scoring a page.
func (s *Scorer) Start() *Run {
	return &Run{s: s, counts: make([]uint32, len(s.phrases)), state: s.start, lastSep: true}
}

// Reset makes r ready for another page without allocating.
func (r *Run) Reset() {
	clear(r.counts)
	*r = Run{s: r.s, counts: r.counts, state: r.s.start, lastSep: true}
}

// Write feeds the next part of the page. Bytes past Options.MaxBytes and
// after [Run.Result] are ignored.
func (r *Run) Write(p []byte) (int, error) {
	n := len(p)
	if r.finished {
		return n, nil
	}
	if rest := r.s.maxBytes - r.seen; int64(len(p)) > rest {
		p = p[:rest]
		r.overflow = true
	}
	r.seen += int64(len(p))
	for i := 0; i < len(p); i++ {
		b := p[i]
		// Fast paths: skip script bodies and quoted attribute values
		// with IndexByte, and feed ASCII page text straight to the
		// automaton.
		if r.html == stRaw && r.rawIdx == 0 {
			j := bytes.IndexByte(p[i:], '<')
			if j < 0 {
				break
			}
			i += j
			b = '<'
		} else if r.html == stTag && r.quote != 0 {
			j := bytes.IndexByte(p[i:], r.quote)
			if j < 0 {
				break
			}
			i += j
			b = r.quote
		}
		if r.html == stText && r.utfWant == 0 {
			i = r.asciiText(p, i)
			if i == len(p) {
				break
			}
			b = p[i]
		}
		r.step(b)
	}
	return n, nil
}

// asciiText feeds the run of plain ASCII page text that starts at p[i]
// straight to the automaton, with its state in registers, and returns
// where the run ends: most of a page's text goes through this loop.
func (r *Run) asciiText(p []byte, i int) int {
	a := r.s.a
	st, last := r.state, r.lastSep
	for ; i < len(p); i++ {
		b := p[i]
		if b >= 0x80 || b == '<' || b == '&' {
			break
		}
		c := asciiFold[b]
		if c == 0 {
			if last {
				continue
			}
			c, last = ' ', true
		} else {
			last = false
		}
		s := a.delta[st+a.class[c]]
		st = s &^ outFlag
		if s&outFlag != 0 {
			r.state = st
			r.count()
		}
	}
	r.state, r.lastSep = st, last
	return i
}

// step advances the HTML tokenizer by one byte.
func (r *Run) step(b byte) {
	switch r.html {
	case stText:
		switch b {
		case '<':
			r.html = stTagOpen
		case '&':
			r.html = stEntity
			r.entLen = 0
		default:
			r.textByte(b)
		}
	case stTagOpen:
		switch {
		case isASCIILetter(b):
			r.html, r.closing, r.nameLen = stTagName, false, 0
			r.nameByte(b)
		case b == '/':
			r.html, r.closing, r.nameLen = stTagName, true, 0
		case b == '!':
			r.html, r.dashes = stBang, 0
		case b == '?':
			r.html, r.quote, r.afterEq = stTag, 0, false
		default: // a lone '<' is text
			r.sep()
			r.html = stText
			r.step(b)
		}
	case stTagName:
		switch {
		case isASCIILetter(b) || (b >= '0' && b <= '9'):
			r.nameByte(b)
		default:
			r.endName()
			r.html, r.quote, r.afterEq = stTag, 0, false
			r.step(b)
		}
	case stTag:
		switch {
		case r.quote != 0:
			if b == r.quote {
				r.quote = 0
			}
		case b == '>':
			r.endTag()
		case (b == '"' || b == '\'') && r.afterEq:
			r.quote = b
		case b == '=':
			r.afterEq = true
		case b != ' ' && b != '\t' && b != '\n' && b != '\r':
			r.afterEq = false
		}
	case stBang:
		switch {
		case b == '-' && r.dashes < 2:
			r.dashes++
			if r.dashes == 2 {
				r.html, r.dashes = stComment, 0
			}
		default: // a declaration such as <!DOCTYPE ...>
			r.html, r.quote, r.afterEq = stTag, 0, false
			r.step(b)
		}
	case stComment:
		switch {
		case b == '-':
			if r.dashes < 2 {
				r.dashes++
			}
		case b == '>' && r.dashes == 2:
			r.html = stText
			r.sep()
		default:
			r.dashes = 0
		}
	case stRaw:
		end := rawEnd[r.raw]
		if lowerASCII(b) == end[r.rawIdx] {
			r.rawIdx++
			if int(r.rawIdx) == len(end) {
				r.raw, r.rawIdx = rawNone, 0
				r.html, r.quote, r.afterEq = stTag, 0, false
			}
		} else if b == '<' {
			r.rawIdx = 1
		} else {
			r.rawIdx = 0
		}
	case stEntity:
		switch {
		case b == ';':
			r.html = stText
			r.entity()
		case (isASCIILetter(b) || (b >= '0' && b <= '9') || (b == '#' && r.entLen == 0)) && int(r.entLen) < len(r.ent):
			r.ent[r.entLen] = b
			r.entLen++
		default: // not a reference: the '&' and what followed are text
			r.html = stText
			r.sep()
			for i := uint8(0); i < r.entLen; i++ {
				r.textByte(r.ent[i])
			}
			r.step(b)
		}
	}
}

func (r *Run) nameByte(b byte) {
	if int(r.nameLen) < len(r.name) {
		r.name[r.nameLen] = lowerASCII(b)
		r.nameLen++
	} else {
		r.nameLen = uint8(len(r.name)) + 1
	}
}

// endName acts on a complete tag name: most elements separate words (a
// table cell or list item never continues the previous one), inline ones
// do not, and script and style switch to raw text once the tag ends.
func (r *Run) endName() {
	var n string
	if int(r.nameLen) <= len(r.name) {
		n = string(r.name[:r.nameLen]) // does not allocate: compared, not kept
	}
	switch n {
	case "b", "i", "u", "em", "strong", "span", "font", "small", "mark", "s", "sub", "sup", "a", "abbr", "wbr":
	default:
		r.sep()
	}
	r.raw = rawNone
	if !r.closing {
		switch n {
		case "script":
			r.raw = rawScript
		case "style":
			r.raw = rawStyle
		}
	}
}

func (r *Run) endTag() {
	if r.raw != rawNone {
		r.html, r.rawIdx = stRaw, 0
		return
	}
	r.html = stText
}

// entity decodes a character reference cheaply: numeric ones in full, a
// few named ones that spell letters, and any other name as punctuation.
func (r *Run) entity() {
	e := r.ent[:r.entLen]
	if len(e) > 1 && e[0] == '#' {
		var v rune
		base := rune(10)
		d := e[1:]
		if d[0] == 'x' || d[0] == 'X' {
			base, d = 16, d[1:]
		}
		if len(d) == 0 {
			r.sep()
			return
		}
		for _, c := range d {
			var x rune
			switch {
			case c >= '0' && c <= '9':
				x = rune(c - '0')
			case base == 16 && c >= 'a' && c <= 'f':
				x = rune(c-'a') + 10
			case base == 16 && c >= 'A' && c <= 'F':
				x = rune(c-'A') + 10
			default:
				r.sep()
				return
			}
			v = v*base + x
			if v > utf8.MaxRune {
				r.sep()
				return
			}
		}
		r.textRune(v)
		return
	}
	switch string(e) {
	case "shy", "zwj", "zwnj":
		return
	case "aacute":
		r.textRune('á')
	case "eacute":
		r.textRune('é')
	case "iacute":
		r.textRune('í')
	case "oacute":
		r.textRune('ó')
	case "uacute":
		r.textRune('ú')
	case "atilde":
		r.textRune('ã')
	case "otilde":
		r.textRune('õ')
	case "ntilde":
		r.textRune('ñ')
	case "ccedil":
		r.textRune('ç')
	case "acirc":
		r.textRune('â')
	case "ecirc":
		r.textRune('ê')
	case "ocirc":
		r.textRune('ô')
	case "agrave":
		r.textRune('à')
	default:
		r.sep()
	}
}

// textByte takes one byte of page text, assembling UTF-8 sequences.
func (r *Run) textByte(b byte) {
	if r.utfWant > 0 {
		if b&0xC0 == 0x80 {
			r.utf[r.utfLen] = b
			r.utfLen++
			if r.utfLen == r.utfWant {
				r.utfWant = 0
				c, _ := utf8.DecodeRune(r.utf[:r.utfLen])
				r.textRune(c)
			}
			return
		}
		r.utfWant = 0 // broken sequence: drop it
		r.sep()
	}
	switch {
	case b < 0x80:
		if c := asciiFold[b]; c != 0 {
			r.feed(c)
			r.lastSep = false
		} else {
			r.sep()
		}
	case b >= 0xC2 && b <= 0xF4:
		r.utf[0], r.utfLen = b, 1
		switch {
		case b < 0xE0:
			r.utfWant = 2
		case b < 0xF0:
			r.utfWant = 3
		default:
			r.utfWant = 4
		}
	default:
		r.sep()
	}
}

func (r *Run) textRune(c rune) {
	k, lc := classify(c)
	switch k {
	case kindDrop:
	case kindSep:
		r.sep()
	default:
		if lc < 0x80 {
			r.feed(byte(lc))
		} else {
			var buf [utf8.UTFMax]byte
			n := utf8.EncodeRune(buf[:], lc)
			for _, x := range buf[:n] {
				r.feed(x)
			}
		}
		r.lastSep = false
	}
}

func (r *Run) sep() {
	if !r.lastSep {
		r.feed(' ')
		r.lastSep = true
	}
}

// feed advances the automaton by one normalised byte.
func (r *Run) feed(b byte) {
	s := r.s.a.step(r.state, b)
	r.state = s &^ outFlag
	if s&outFlag != 0 {
		r.count()
	}
}

// count records the phrases that end in the current state.
func (r *Run) count() {
	a := r.s.a
	n := r.state / uint32(a.nclass)
	for _, p := range a.outs[a.outStart[n]:a.outStart[n+1]] {
		r.counts[p]++
	}
}

// Result ends the page (later writes are ignored) and reports the scores.
func (r *Run) Result() Result {
	if !r.finished {
		r.utfWant = 0
		r.sep() // the last word ends with the page
		r.finished = true
	}
	s := r.s
	res := Result{
		Scores:    make(map[string]float64, len(s.cats)),
		Positive:  make(map[string]float64, len(s.cats)),
		Bytes:     r.seen,
		Truncated: r.overflow,
	}
	for _, c := range s.cats {
		res.Scores[c] = 0
		res.Positive[c] = 0
	}
	found := 0
	for _, n := range r.counts {
		if n > 0 {
			found++
		}
	}
	res.Matches = make([]Match, 0, found)
	for i, n := range r.counts {
		if n == 0 {
			continue
		}
		p := s.phrases[i]
		v := p.weight * float64(min(n, s.maxPer))
		res.Scores[s.cats[p.category]] += v
		if v > 0 {
			res.Positive[s.cats[p.category]] += v
		}
		res.Matches = append(res.Matches, Match{Category: s.cats[p.category], Phrase: p.text, Weight: p.weight, Count: int(n)})
	}
	slices.SortFunc(res.Matches, func(a, b Match) int {
		return cmp.Or(
			cmp.Compare(a.Category, b.Category),
			cmp.Compare(b.Weight, a.Weight),
			cmp.Compare(a.Phrase, b.Phrase),
		)
	})
	return res
}

// String summarises a result for logs and tests.
func (res Result) String() string {
	return fmt.Sprintf("scores=%v matches=%d bytes=%d truncated=%v", res.Scores, len(res.Matches), res.Bytes, res.Truncated)
}

func isASCIILetter(b byte) bool { return (b|0x20) >= 'a' && (b|0x20) <= 'z' }

func lowerASCII(b byte) byte {
	if b >= 'A' && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}
