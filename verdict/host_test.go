package verdict_test

import (
	"testing"

	"github.com/aupguard/aupguard/verdict"
)

func TestNormalizeHost(t *testing.T) {
	for in, want := range map[string]string{
		"example.com":            "example.com",
		"WWW.Example.COM":        "www.example.com",
		"example.com.":           "example.com",
		"bücher.example":         "xn--bcher-kva.example",
		"BÜCHER.example.":        "xn--bcher-kva.example",
		"xn--bcher-kva.example":  "xn--bcher-kva.example",
		"2001:DB8::1":            "2001:db8::1",
		"[2001:db8:0::1]":        "2001:db8::1",
		"10.0.0.1":               "10.0.0.1",
		"under_score.tripod.com": "under_score.tripod.com",
	} {
		if got, err := verdict.NormalizeHost(in); got != want || err != nil {
			t.Errorf("NormalizeHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ".", "a..b", "*.example.com", ".example.com", "exa mple.com", "a/b"} {
		if got, err := verdict.NormalizeHost(bad); err == nil {
			t.Errorf("NormalizeHost(%q) = %q, want an error", bad, got)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = verdict.NormalizeHost("www.example.com") }); n != 0 {
		t.Errorf("a canonical name costs %v allocations", n)
	}
}
