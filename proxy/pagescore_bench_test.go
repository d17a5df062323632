package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// BenchmarkProxyHTMLPage is a 1 MiB text/html page through the real proxy
// from a local origin, with page scoring of the whole page (max_bytes
// 1 MiB), of the default first 256 KiB, and off: the difference is the
// cost of scoring per page, and per MiB with the first.
func BenchmarkProxyHTMLPage(b *testing.B) {
	para := "<p>The library is open from nine until five; the bus timetable and the term dates are below.</p>\n"
	page := strings.Repeat(para, (1<<20)/len(para)+1)[:1<<20]
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, page)
	}))
	defer origin.Close()
	port := origin.URL[strings.LastIndex(origin.URL, ":")+1:]
	for _, tc := range []struct {
		name string
		max  int64
	}{{"off", 0}, {"score-256KiB", 256 << 10}, {"score-1MiB", 1 << 20}} {
		b.Run(tc.name, func(b *testing.B) {
			h := start(b, func(s *setup) {
				s.opts.Hosts[hostPages] = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
				if tc.max > 0 {
					cfg := DefaultPageScoreConfig()
					cfg.MaxBytes = tc.max
					ps, err := NewPageScorer(cfg)
					if err != nil {
						b.Fatal(err)
					}
					s.opts.PageScorer = ps
				}
			})
			c := h.client("")
			u := "http://" + hostPages + ":" + port + "/page"
			b.SetBytes(1 << 20)
			b.ReportAllocs()
			for b.Loop() {
				resp, err := c.Get(u)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || n != 1<<20 {
					b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
				}
			}
		})
	}
}
