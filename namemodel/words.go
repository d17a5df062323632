package namemodel

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// DefaultWordLists are the word lists tried, in order, when Options.WordList
// is empty: Debian's wbritish and the system default (wamerican…). Without
// any, names are segmented only with the tokens learnt from the lists.
var DefaultWordLists = []string{"/usr/share/dict/british-english", "/usr/share/dict/words"}

// Segmentation limits: labels are at most 63 bytes; words longer than this
// are not looked for.
const (
	maxWordLen = 24
	minWordLen = 3
)

// shortWords are two-letter words common in domain names; other two-letter
// strings are left to the n-grams (a word list's "ab", "oz"… would cut
// names into noise).
var shortWords = []string{"up", "in", "on", "my", "go", "to", "of", "tv", "hd", "vs", "no", "me", "we", "us", "uk", "bd", "vn", "vip", "at", "be", "by", "ok"}

// dict is a set of words and of their prefixes, keyed by a 64-bit hash
// built one byte at a time, so that the segmenter extends a candidate word
// by a byte with one probe and stops as soon as no word starts that way.
// A slot is a 30-bit fingerprint of the hash and two flag bits: 4 bytes,
// so that the table stays small enough for the caches (a probe that
// misses them costs more than the rest of scoring).
type dict struct {
	slots []uint32
	mask  uint64
	words int
	// short answers for candidates of two and three letters without a
	// table probe (a bitmap that stays in L1): the prefix and word flags
	// of every aa..zz and aaa..zzz.
	short [26*26 + 26*26*26]uint8
}

// shortIndex is w's slot in dict.short (len(w) is 2 or 3, a-z only).
func shortIndex(a, b, c byte, n int) int {
	i := int(a-'a')*26 + int(b-'a')
	if n == 3 {
		i = 26*26 + i*26 + int(c-'a')
	}
	return i
}

const (
	flagPrefix = 1
	flagWord   = 2
)

func newDict(words map[string]struct{}) *dict {
	prefixes := map[uint64]uint8{}
	for w := range words {
		h := uint64(dictSeed)
		for i := 0; i < len(w); i++ {
			h = dictStep(h, w[i])
			f := uint8(flagPrefix)
			if i == len(w)-1 {
				f |= flagWord
			}
			prefixes[h] |= f
		}
	}
	size := 1
	for size < 2*len(prefixes)+16 {
		size <<= 1
	}
	d := &dict{slots: make([]uint32, size), mask: uint64(size - 1), words: len(words)}
	for w := range words {
		for n := 2; n <= 3 && n <= len(w); n++ {
			c := byte('a')
			if n == 3 {
				c = w[2]
			}
			f := uint8(flagPrefix)
			if n == len(w) {
				f |= flagWord
			}
			d.short[shortIndex(w[0], w[1], c, n)] |= f
		}
	}
	for h, f := range prefixes {
		h = mix(h)
		i := h & d.mask
		for d.slots[i] != 0 {
			i = (i + 1) & d.mask
		}
		d.slots[i] = fingerprint(h) | uint32(f)
	}
	return d
}

// fingerprint is the hash bits kept in a slot (never 0: the flags are
// set in every stored slot).
func fingerprint(h uint64) uint32 { return uint32(h>>32) &^ 3 }

const dictSeed = 14695981039346656037

// dictStep extends a word hash by one byte (FNV-1a, then mixed so that
// both the slot index and the fingerprint are well spread).
func dictStep(h uint64, c byte) uint64 {
	h ^= uint64(c)
	h *= 1099511628211
	return h
}

func (d *dict) get(h uint64) uint8 {
	if d == nil || len(d.slots) == 0 {
		return 0
	}
	h = mix(h)
	fp := fingerprint(h)
	i := h & d.mask
	for {
		s := d.slots[i]
		if s == 0 {
			return 0
		}
		if s&^3 == fp {
			return uint8(s & 3)
		}
		i = (i + 1) & d.mask
	}
}

// mix is murmur3's 64-bit finalizer: FNV's low bits alone spread poorly.
func mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// isWordByte is what a segmented word may contain.
func isWordByte(c byte) bool { return c >= 'a' && c <= 'z' }

// readWordList adds the words of a word list (one per line, as Debian's
// wbritish) to words: lowercased, ASCII letters only (possessives and
// accented words are dropped), at least minWordLen long.
func readWordList(r io.Reader, words map[string]struct{}) (int, error) {
	sc := bufio.NewScanner(r)
	n := 0
	buf := make([]byte, 0, 64)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) < minWordLen || len(line) > maxWordLen {
			continue
		}
		buf = buf[:0]
		ok := true
		for _, c := range line {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if !isWordByte(c) {
				ok = false
				break
			}
			buf = append(buf, c)
		}
		if !ok {
			continue
		}
		if _, dup := words[string(buf)]; !dup {
			words[string(buf)] = struct{}{}
			n++
		}
	}
	return n, sc.Err()
}

// loadWordList reads the word list at path, or the first of
// DefaultWordLists that exists when path is empty. It returns the path
// used ("" when none was found: not an error, the model then relies on
// the tokens learnt from the lists and on n-grams).
func loadWordList(path string, words map[string]struct{}) (string, int, error) {
	paths := DefaultWordLists
	if path != "" {
		paths = []string{path}
	}
	for _, p := range paths {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) && path == "" {
			continue
		}
		if err != nil {
			return "", 0, fmt.Errorf("word list: %w", err)
		}
		n, err := readWordList(f, words)
		f.Close()
		if err != nil {
			return "", 0, fmt.Errorf("word list %s: %w", p, err)
		}
		return p, n, nil
	}
	return "", 0, nil
}
