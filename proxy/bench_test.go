package proxy

import (
	"io"
	"net/http"
	"testing"
)

// BenchmarkAllowedGet measures a small allowed GET through the proxy with
// the real decision core (verdicts cached after the first request), over
// a kept-alive client connection.
func BenchmarkAllowedGet(b *testing.B) {
	h := start(b, nil)
	c := h.client("")
	u := h.url(hostAllowed, "/small")
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatal(resp.Status)
		}
	}
}

// BenchmarkBlockedGet measures a blocked GET: decision, event, block page.
func BenchmarkBlockedGet(b *testing.B) {
	h := start(b, nil)
	c := h.client("")
	u := h.url(hostCasino, "/")
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			b.Fatal(resp.Status)
		}
	}
}
