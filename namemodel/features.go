package namemodel

import (
	"strings"

	"golang.org/x/net/publicsuffix"
)

// maxFeatures bounds the features of one name (a 63-byte label has about
// 190 n-grams); extra ones are dropped.
const maxFeatures = 512

// Feature namespaces: the first byte hashed, so that the n-gram "bet" and
// the word "bet" are different features.
const (
	nsSuffix    = 'T'
	nsLabels    = 'L'
	nsDigits    = 'D'
	nsHyphens   = 'H'
	nsLength    = 'N'
	nsGram      = 'g'
	nsWord      = 'w'
	nsWordPair  = 'p'
	nsUnknown   = 'u'
	nsSubLabel  = 'S'
	nsSubWord   = 's'
	nsDigitTail = 'd'
)

// featureSet collects the hashed features of one name. names is filled
// only by Explain (collect); scoring leaves it nil and does not allocate.
type featureSet struct {
	idx     [maxFeatures]uint32
	n       int
	collect bool
	names   []string
}

func (fs *featureSet) add(h uint64, mask uint32) bool {
	if fs.n == maxFeatures {
		return false
	}
	// Fibonacci hashing: one multiply spreads FNV's output enough.
	fs.idx[fs.n] = uint32((h*0x9e3779b97f4a7c15)>>32) & mask
	fs.n++
	return true
}

// addNamed adds a feature and, for Explain, its name (kind + text).
func (fs *featureSet) addNamed(h uint64, mask uint32, kind, text string) {
	if fs.add(h, mask) && fs.collect {
		fs.names = append(fs.names, kind+text)
	}
}

// addBucket adds a count feature: namespace ns, bucket b.
func (fs *featureSet) addBucket(ns byte, b byte, mask uint32, kind string) {
	if fs.add(hashByte(hashNS(ns), b), mask) && fs.collect {
		fs.names = append(fs.names, kind+string(rune(b)))
	}
}

// hashNS starts a feature hash in namespace ns.
func hashNS(ns byte) uint64 {
	return (14695981039346656037 ^ uint64(ns)) * 1099511628211
}

func hashBytes(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func hashByte(h uint64, c byte) uint64 {
	h ^= uint64(c)
	return h * 1099511628211
}

func bucket(n int, bounds ...int) byte {
	for i, b := range bounds {
		if n <= b {
			return byte('0' + i)
		}
	}
	return byte('0' + len(bounds))
}

// splitHost returns the public suffix, the registrable label and what is
// left of the name before it (subdomain labels). ok is false for names
// the model does not score: empty, IP literals, names with a port.
func splitHost(host string, suffixes suffixSet) (suffix, reg, subs string, ok bool) {
	if host == "" || len(host) > 253 || strings.IndexByte(host, ':') >= 0 {
		return "", "", "", false
	}
	last := host[strings.LastIndexByte(host, '.')+1:]
	if last == "" {
		return "", "", "", false
	}
	allDigits := true
	for i := 0; i < len(last); i++ {
		if last[i] < '0' || last[i] > '9' {
			allDigits = false
			break
		}
	}
	if allDigits { // an IPv4 literal
		return "", "", "", false
	}
	suffix = suffixes.longest(host)
	if len(suffix) >= len(host) {
		return suffix, "", "", true
	}
	rest := host[:len(host)-len(suffix)-1]
	dot := strings.LastIndexByte(rest, '.')
	reg = rest[dot+1:]
	if dot > 0 {
		subs = rest[:dot]
	}
	return suffix, reg, subs, true
}

// suffixSet holds the public suffixes (publicsuffix.org, through
// golang.org/x/net/publicsuffix) of the training names. Scoring looks a
// name's suffix up here rather than in the publicsuffix package, which
// allocates on every call; a suffix no training name had carries no weight
// anyway, and such a name is cut at its last label.
type suffixSet map[string]struct{}

func (s suffixSet) addName(host string) {
	if _, _, _, ok := splitHost(host, nil); !ok {
		return
	}
	ps, _ := publicsuffix.PublicSuffix(host)
	if strings.IndexByte(ps, '.') >= 0 {
		s[ps] = struct{}{}
	}
}

// longest returns host's longest suffix in s (at least its last label).
func (s suffixSet) longest(host string) string {
	for i := 0; i < len(host); i++ {
		if i == 0 || host[i-1] == '.' {
			if _, ok := s[host[i:]]; ok {
				return host[i:]
			}
		}
	}
	return host[strings.LastIndexByte(host, '.')+1:]
}

// span is a piece of a label found by segmentation.
type span struct {
	start, end uint8
	known      bool
}

// segment cuts a run of letters into dictionary words and unknown letters,
// minimizing the cost (a word costs 10, an unknown letter 14, so
// "bengalwincasino" becomes bengal·win·casino rather than ben·gal·win·…).
// It fills out and returns the number of spans; it does not allocate.
func segment(d *dict, run string, out *[64]span) int {
	n := len(run)
	if n == 0 || n > 63 {
		return 0
	}
	const inf = 1 << 30
	var cost [64]int32
	var prev [64]uint8
	var known [64]bool
	for i := 1; i <= n; i++ {
		cost[i] = inf
	}
	for j := 0; j < n; j++ {
		if cost[j] == inf {
			continue
		}
		if c := cost[j] + 14; c < cost[j+1] {
			cost[j+1], prev[j+1], known[j+1] = c, uint8(j), false
		}
		h := uint64(dictSeed)
		for i := j; i < n && i-j < maxWordLen; i++ {
			h = dictStep(h, run[i])
			var f uint8
			switch l := i + 1 - j; l {
			case 1:
				continue
			case 2, 3:
				f = d.short[shortIndex(run[j], run[j+1], run[i], l)]
			default:
				f = d.get(h)
			}
			if f == 0 {
				break
			}
			if f&flagWord != 0 {
				if c := cost[j] + 10; c < cost[i+1] || (c == cost[i+1] && !known[i+1]) {
					cost[i+1], prev[i+1], known[i+1] = c, uint8(j), true
				}
			}
		}
	}
	// Backtrack, then merge adjacent unknown letters into one span.
	var rev [64]span
	k := 0
	for i := n; i > 0; {
		j := int(prev[i])
		rev[k] = span{uint8(j), uint8(i), known[i]}
		k++
		i = j
	}
	m := 0
	for i := k - 1; i >= 0; i-- {
		s := rev[i]
		if m > 0 && !s.known && !out[m-1].known {
			out[m-1].end = s.end
			continue
		}
		out[m] = s
		m++
	}
	return m
}

// extract fills fs with the features of host (lowercase, as
// categories.Normalize gives it). It reports false when the name is not
// one the model scores.
func (m *Model) extract(host string, fs *featureSet) bool {
	host = strings.TrimSuffix(host, ".")
	suffix, reg, subs, ok := splitHost(host, m.suffixes)
	if !ok {
		return false
	}
	mask := m.mask
	fs.addNamed(hashBytes(hashNS(nsSuffix), suffix), mask, "suffix:", suffix)
	fs.addBucket(nsLabels, bucket(strings.Count(host, ".")+1, 1, 2, 3, 4), mask, "labels:")
	if reg == "" {
		return true
	}
	digits, hyphens := 0, 0
	for i := 0; i < len(reg); i++ {
		switch c := reg[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '-':
			hyphens++
		}
	}
	fs.addBucket(nsDigits, bucket(digits, 0, 1, 2, 4), mask, "digits:")
	fs.addBucket(nsHyphens, bucket(hyphens, 0, 1, 2), mask, "hyphens:")
	fs.addBucket(nsLength, bucket(len(reg), 4, 7, 10, 14, 20, 28), mask, "length:")
	if tail := reg[len(reg)-1]; tail >= '0' && tail <= '9' && digits < len(reg) {
		fs.addNamed(hashNS(nsDigitTail), mask, "ends-in-digit", "")
	}

	// Character n-grams of "^reg$".
	var pad [66]byte
	pad[0] = '^'
	n := copy(pad[1:65], reg)
	pad[n+1] = '$'
	p := pad[:n+2]
	for g := 3; g <= 5; g++ {
		for i := 0; i+g <= len(p); i++ {
			h := hashNS(nsGram)
			for _, c := range p[i : i+g] {
				h = hashByte(h, c)
			}
			if fs.add(h, mask) && fs.collect {
				fs.names = append(fs.names, "ngram:"+string(p[i:i+g]))
			}
		}
	}
	m.words(reg, nsWord, fs, true)
	for subs != "" {
		dot := strings.IndexByte(subs, '.')
		label := subs
		if dot >= 0 {
			label, subs = subs[:dot], subs[dot+1:]
		} else {
			subs = ""
		}
		if label == "www" || label == "m" || label == "" {
			continue
		}
		fs.addNamed(hashBytes(hashNS(nsSubLabel), label), mask, "sublabel:", label)
		m.words(label, nsSubWord, fs, false)
	}
	return true
}

// words adds the words of a label: letter runs are segmented; digit runs
// and hyphens separate runs. pairs also adds consecutive word pairs.
func (m *Model) words(label string, ns byte, fs *featureSet, pairs bool) {
	var spans [64]span
	prevWord := ""
	for i := 0; i < len(label); {
		if !isWordByte(label[i]) {
			i++
			prevWord = ""
			continue
		}
		j := i
		for j < len(label) && isWordByte(label[j]) {
			j++
		}
		run := label[i:j]
		k := segment(m.dict, run, &spans)
		for _, s := range spans[:k] {
			w := run[s.start:s.end]
			if !s.known {
				fs.addNamed(hashByte(hashNS(nsUnknown), bucket(len(w), 1, 2, 4)), m.mask, "unknown:", w)
				prevWord = ""
				continue
			}
			kind := "word:"
			if ns == nsSubWord {
				kind = "subword:"
			}
			fs.addNamed(hashBytes(hashNS(ns), w), m.mask, kind, w)
			if pairs && prevWord != "" {
				h := hashByte(hashBytes(hashNS(nsWordPair), prevWord), ' ')
				if fs.add(hashBytes(h, w), m.mask) && fs.collect {
					fs.names = append(fs.names, "words:"+prevWord+" "+w)
				}
			}
			prevWord = w
		}
		i = j
	}
}
