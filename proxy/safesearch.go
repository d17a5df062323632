package proxy

import (
	"net/http"
	"strings"
)

// Safe search inside a request the proxy can read (plain HTTP, or inside
// an intercepted tunnel): the engines' own switches, set whatever the
// browser's settings say, when the decision asks for safe search. Google
// has one level (safe=active); Bing (adlt) and DuckDuckGo (kp) have a
// strict and a moderate one; YouTube takes the YouTube-Restrict header.
const (
	levelStrict   = "strict"
	levelModerate = "moderate"
)

// applySafeSearch sets the engine's safe-search switch on r for host
// (normalised) at level, and reports whether it did.
func applySafeSearch(r *http.Request, host, level string) bool {
	if level != levelStrict && level != levelModerate {
		return false
	}
	switch {
	case isYouTube(host):
		v := "Strict"
		if level == levelModerate {
			v = "Moderate"
		}
		r.Header.Set("YouTube-Restrict", v)
		return true
	case isGoogle(host):
		return setQuery(r, "safe", "active")
	case host == "bing.com" || host == "www.bing.com":
		return setQuery(r, "adlt", map[string]string{levelStrict: "strict", levelModerate: "moderate"}[level])
	case host == "duckduckgo.com" || strings.HasSuffix(host, ".duckduckgo.com"):
		return setQuery(r, "kp", map[string]string{levelStrict: "1", levelModerate: "-1"}[level])
	}
	return false
}

func setQuery(r *http.Request, key, value string) bool {
	q := r.URL.Query()
	if q.Get(key) == value && len(q[key]) == 1 {
		return true
	}
	q.Set(key, value)
	r.URL.RawQuery = q.Encode()
	return true
}

// isGoogle: google.<tld> or www.google.<tld> (google.com, google.co.uk).
func isGoogle(host string) bool {
	h := strings.TrimPrefix(host, "www.")
	rest, ok := strings.CutPrefix(h, "google.")
	if !ok || rest == "" {
		return false
	}
	for label := range strings.SplitSeq(rest, ".") {
		if len(label) < 2 || len(label) > 3 {
			return false
		}
	}
	return strings.Count(rest, ".") <= 1
}

func isYouTube(host string) bool {
	switch host {
	case "youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com",
		"youtubei.googleapis.com", "youtube.googleapis.com", "www.youtube-nocookie.com":
		return true
	}
	return false
}
