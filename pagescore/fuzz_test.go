package pagescore

import (
	"reflect"
	"testing"
)

// FuzzScore checks that any input can be scored, that the result does not
// depend on how the page is split into writes, and that scores stay within
// what the lists allow.
func FuzzScore(f *testing.F) {
	for _, p := range []string{
		"<p>online casino free spins</p>",
		"<script>porn</script><!-- x -->c&#97;sino",
		"nhà cái <b>tài</b> xỉu &amp; judi online",
		"<a title='x>y'>magnet link</a> seeders",
		"\xff\xfe<\x00&#x;",
	} {
		f.Add([]byte(p), uint16(3))
	}
	s, err := New(Options{MaxBytes: 4096})
	if err != nil {
		f.Fatal(err)
	}
	// The largest score a page can reach in each category.
	maxScore := map[string]float64{}
	for _, p := range s.phrases {
		if p.weight > 0 {
			maxScore[s.cats[p.category]] += p.weight * float64(s.maxPer)
		}
	}
	f.Fuzz(func(t *testing.T, page []byte, cut uint16) {
		whole := score(s, page)
		r := s.Start()
		c := min(int(cut), len(page))
		r.Write(page[:c])
		r.Write(page[c:])
		if split := r.Result(); !reflect.DeepEqual(split, whole) {
			t.Fatalf("split at %d: %v, whole %v", c, split, whole)
		}
		r.Reset()
		for i := range page {
			r.Write(page[i : i+1])
		}
		if bytewise := r.Result(); !reflect.DeepEqual(bytewise, whole) {
			t.Fatalf("byte by byte: %v, whole %v", bytewise, whole)
		}
		for cat, v := range whole.Scores {
			if v > maxScore[cat] {
				t.Fatalf("%s score %v over the maximum %v", cat, v, maxScore[cat])
			}
		}
		if whole.Bytes > 4096 || whole.Bytes > int64(len(page)) {
			t.Fatalf("Bytes %d for a page of %d", whole.Bytes, len(page))
		}
	})
}
