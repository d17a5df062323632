package categories

// NameSample is a bounded, deterministic sample of the domain names one
// list contributed to an Index, kept so that the domain-name model can be
// trained from the lists in force without reading them a second time (the
// Index itself keeps only hashes).
type NameSample struct {
	// Source is the list's Match.Source ("ut1:gambling", "hostsvn-adult").
	Source string
	// Category is the list's policy category ("gambling", "benign"…).
	Category string
	// Names are normalized domain names (no IPs, no URL rules).
	Names []string
	// Total is how many names the list had before sampling.
	Total int
}

// BenignCategory is the policy category of the lists that name sites
// learners may use (UT1's bank, jobsearch, press… and the popular-sites
// list). No rule blocks it; it is loaded so that the domain-name model has
// benign names to learn from and so that the model never scores a name a
// benign list names (such a name is not a list miss).
const BenignCategory = "benign"

// nameSample keeps the names whose hash is at most cut; when more than
// twice max are kept, cut is halved and the names above it dropped. The
// result is a uniform sample of between max and 2*max names (all of them
// when the list is smaller) that depends only on the names, not on their
// order or the build.
type nameSample struct {
	max    int
	cut    uint64
	total  int
	names  []string
	hashes []uint64
}

func newNameSample(max int) *nameSample {
	if max <= 0 {
		return nil
	}
	return &nameSample{max: max, cut: ^uint64(0)}
}

func (s *nameSample) add(name []byte) {
	s.total++
	h := fnv64(name)
	if h > s.cut {
		return
	}
	s.names = append(s.names, string(name))
	s.hashes = append(s.hashes, h)
	for len(s.names) > 2*s.max {
		s.cut /= 2
		j := 0
		for i, h := range s.hashes {
			if h <= s.cut {
				s.names[j], s.hashes[j] = s.names[i], h
				j++
			}
		}
		clear(s.names[j:])
		s.names, s.hashes = s.names[:j], s.hashes[:j]
	}
}

// fnv64 is FNV-1a: a fixed hash, so that the same list gives the same
// sample in every build and every process.
func fnv64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	// FNV's low bits mix poorly for short inputs; finish with a
	// multiply-xorshift so that the cut compares well-mixed values.
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}

// NameSamples returns the samples of the lists' names collected while
// the Index was built (Config.SampleNames names per list at most, up to
// twice that); nil when sampling was off. The slices are shared: do not
// modify them.
func (ix *Index) NameSamples() []NameSample { return ix.samples }
