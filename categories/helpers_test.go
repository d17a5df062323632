package categories

import "sync"

var (
	defaultOnce sync.Once
	defaultIx   *Index
	defaultErrs []error
)

// withoutSeed drops the seed's lists, which every build loads, from stats.
func withoutSeed(stats []SourceStats) []SourceStats {
	var out []SourceStats
	for _, s := range stats {
		if s.Name != SeedName {
			out = append(out, s)
		}
	}
	return out
}

// seedless drops the seed from a lookup's answer.
func seedless(bc map[string][]string) map[string][]string {
	out := map[string][]string{}
	for cat, srcs := range bc {
		var keep []string
		for _, s := range srcs {
			if s != SeedName {
				keep = append(keep, s)
			}
		}
		if len(keep) > 0 {
			out[cat] = keep
		}
	}
	return out
}
