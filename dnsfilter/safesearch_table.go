package dnsfilter

import "net/netip"

// The safe-search table, written from the facts collected in the shared
// data's safesearch.tsv (../shared/data beside the repository; public
// safe-search mappings: AdGuard Home's rules, OpenWrt's safe-search hosts).
// safesearch_table_test.go checks it against that file entry by entry.

// safeSearchRule is how one search-engine host is rewritten: a CNAME to
// the engine's safe host, or (Yandex, which publishes no such host) fixed
// addresses.
type safeSearchRule struct {
	engine string
	// moderate is the CNAME target for "moderate", and for "strict" unless
	// strict is set (only YouTube distinguishes the two).
	moderate string
	strict   string
	addrs    []netip.Addr
}

// target is the CNAME target for mode.
func (r safeSearchRule) target(mode string) string {
	if mode == safeSearchStrict && r.strict != "" {
		return r.strict
	}
	return r.moderate
}

// The engines' safe hosts.
const (
	googleSafe       = "forcesafesearch.google.com."
	youtubeStrict    = "restrict.youtube.com."
	youtubeModerate  = "restrictmoderate.youtube.com."
	bingSafe         = "strict.bing.com."
	duckduckgoSafe   = "safe.duckduckgo.com."
	ecosiaSafe       = "strict-safe-search.ecosia.org."
	pixabaySafe      = "safesearch.pixabay.com."
	braveSafe        = "forcesafe.search.brave.com."
	yandexFamilyIPv4 = "213.180.193.56"
)

// safeSearchTable returns the rewrite table keyed by lowercased FQDN.
func safeSearchTable() map[string]safeSearchRule {
	t := make(map[string]safeSearchRule, 512)
	// Google: the www and bare names of every country domain.
	google := safeSearchRule{engine: "google", moderate: googleSafe}
	for _, tld := range []string{
		"ad", "ae", "al", "am", "as", "at", "az", "ba", "be", "bf", "bg", "bi", "bj", "bs", "bt", "by",
		"ca", "cat", "cd", "cf", "cg", "ch", "ci", "cl", "cm", "cn", "co", "co.ao", "co.bw", "co.ck",
		"co.cr", "co.id", "co.il", "co.in", "co.jp", "co.ke", "co.kr", "co.ls", "co.ma", "co.mz",
		"co.nz", "co.th", "co.tz", "co.ug", "co.uk", "co.uz", "co.ve", "co.vi", "co.za", "co.zm",
		"co.zw", "com", "com.af", "com.ag", "com.ai", "com.ar", "com.au", "com.bd", "com.bh", "com.bn",
		"com.bo", "com.br", "com.bz", "com.co", "com.cu", "com.cy", "com.do", "com.ec", "com.eg",
		"com.et", "com.fj", "com.gh", "com.gi", "com.gt", "com.hk", "com.jm", "com.kh", "com.kw",
		"com.lb", "com.ly", "com.mm", "com.mt", "com.mx", "com.my", "com.na", "com.nf", "com.ng",
		"com.ni", "com.np", "com.om", "com.pa", "com.pe", "com.pg", "com.ph", "com.pk", "com.pr",
		"com.py", "com.qa", "com.sa", "com.sb", "com.sg", "com.sl", "com.sv", "com.tj", "com.tr",
		"com.tw", "com.ua", "com.uy", "com.vc", "com.vn", "cv", "cz", "de", "dj", "dk", "dm", "dz", "ee",
		"es", "fi", "fm", "fr", "ga", "ge", "gg", "gl", "gm", "gp", "gr", "gy", "hn", "hr", "ht", "hu",
		"ie", "im", "iq", "is", "it", "je", "jo", "kg", "ki", "kz", "la", "li", "lk", "lt", "lu", "lv",
		"md", "me", "mg", "mk", "ml", "mn", "ms", "mu", "mv", "mw", "ne", "nl", "no", "nr", "nu", "pl",
		"pn", "ps", "pt", "ro", "rs", "ru", "rw", "sc", "se", "sh", "si", "sk", "sm", "sn", "so", "sr",
		"st", "td", "tg", "tk", "tl", "tm", "tn", "to", "tt", "vg", "vu", "ws",
	} {
		t["www.google."+tld+"."] = google
		t["google."+tld+"."] = google
	}
	// YouTube: moderate and strict restricted modes differ.
	youtube := safeSearchRule{engine: "youtube", moderate: youtubeModerate, strict: youtubeStrict}
	for _, h := range []string{"www.youtube.com", "m.youtube.com", "youtubei.googleapis.com",
		"youtube.googleapis.com", "www.youtube-nocookie.com"} {
		t[h+"."] = youtube
	}
	bing := safeSearchRule{engine: "bing", moderate: bingSafe}
	t["www.bing.com."] = bing
	t["edgeservices.bing.com."] = bing
	ddg := safeSearchRule{engine: "duckduckgo", moderate: duckduckgoSafe}
	for _, h := range []string{"duckduckgo.com", "www.duckduckgo.com", "start.duckduckgo.com"} {
		t[h+"."] = ddg
	}
	t["www.ecosia.org."] = safeSearchRule{engine: "ecosia", moderate: ecosiaSafe}
	t["pixabay.com."] = safeSearchRule{engine: "pixabay", moderate: pixabaySafe}
	t["search.brave.com."] = safeSearchRule{engine: "brave", moderate: braveSafe}
	// Yandex: the family search address, for the www and bare names.
	yandex := safeSearchRule{engine: "yandex", addrs: []netip.Addr{netip.MustParseAddr(yandexFamilyIPv4)}}
	for _, h := range []string{
		"ya.ru", "xn--d1acpjx3f.xn--p1ai", "yandex.az", "yandex.by", "yandex.co.il", "yandex.com",
		"yandex.com.am", "yandex.com.ge", "yandex.com.ru", "yandex.com.tr", "yandex.de", "yandex.ee",
		"yandex.eu", "yandex.fi", "yandex.fr", "yandex.kz", "yandex.lt", "yandex.lv", "yandex.md",
		"yandex.net", "yandex.org", "yandex.pl", "yandex.ru", "yandex.tj", "yandex.tm", "yandex.uz",
	} {
		t[h+"."] = yandex
		t["www."+h+"."] = yandex
	}
	return t
}

// safeSearchVIPs are the safe hosts' published virtual IPs, answered when
// the target cannot be resolved so that search keeps working.
func safeSearchVIPs() map[string][]netip.Addr {
	mustAddrs := func(ss ...string) []netip.Addr {
		out := make([]netip.Addr, len(ss))
		for i, s := range ss {
			out[i] = netip.MustParseAddr(s)
		}
		return out
	}
	strict := mustAddrs("216.239.38.120", "2001:4860:4802:32::78")
	return map[string][]netip.Addr{
		googleSafe:      strict,
		youtubeStrict:   strict,
		youtubeModerate: mustAddrs("216.239.38.119", "2001:4860:4802:32::77"),
		bingSafe:        mustAddrs("204.79.197.220"),
	}
}
