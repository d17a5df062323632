package namemodel

import (
	"context"
	"math"
	"testing"
)

// FuzzScore: any host a client sends (SNI, Host header, DNS question)
// scores without panicking, within [0, 1], and Explain names every
// feature it found.
func FuzzScore(f *testing.F) {
	m, err := Train(context.Background(), smallSet(), Options{Bits: 12})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"bengalwincasino.com", "www.bbc.co.uk", "pin-up-casino-5ion4.cfd", "", ".", "..", "a", "1.2.3.4", "::1",
		"xn--mnchen-3ya.de", "UPPER.Case.COM.", "a-.-b", "___.com", "münchen.de", string(make([]byte, 300))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		s := m.Score(host)
		for c, v := range s {
			if v < 0 || v > 1 || math.IsNaN(float64(v)) {
				t.Fatalf("Score(%q)[%s] = %v", host, Category(c), v)
			}
		}
		var fs featureSet
		fs.collect = true
		if m.extract(lower(host), &fs) && len(fs.names) != fs.n {
			t.Fatalf("%q: %d features, %d names", host, fs.n, len(fs.names))
		}
	})
}
