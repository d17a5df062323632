package categories

import "path"

// DefaultSource is a list aupguard loads unless the admin switches it off:
// where its publisher serves it, the file that holds it in a mirror
// directory, and the credit its licence asks for. aupguard carries none of
// these lists; it fetches them, as squidGuard, e2guardian and Blocky do.
type DefaultSource struct {
	Source
	// Mirror is the file's path under lists.mirror (an air-gapped site's
	// copy, laid out like the publishers' files: "ut1-blacklists.tar.gz",
	// "lists/<name>.txt.gz").
	Mirror string `json:"mirror"`
	// Publisher is who maintains the list; Home is where it is published.
	Publisher string `json:"publisher"`
	Home      string `json:"home"`
	// License is the SPDX identifier of the list's licence; Attribution is
	// the credit the licence asks for, repeated in NOTICE and `lists stats`.
	License     string `json:"license"`
	Attribution string `json:"attribution"`
}

// UT1Map is the mapping of UT1 categories to policy categories that the
// default UT1 source uses. UT1's categories of sites learners may use
// (bank, jobsearch, press, shopping, sports, webmail, educational_games)
// load as BenignCategory: no rule blocks them; they are the benign names
// the domain-name model learns from, and a name they list is never scored
// by it. UT1's remaining categories are not loaded.
func UT1Map() map[string]string {
	return map[string]string{
		"gambling": "gambling", "arjel": "gambling",
		"adult": "adult", "mixed_adult": "mixed_adult",
		"agressif":        "hate",
		"warez":           "piracy",
		"social_networks": "social",
		"malware":         "malware", "cryptojacking": "malware", "stalkerware": "malware",
		"phishing": "phishing",
		"hacking":  "hacking", "ddos": "hacking",
		"drogue":             "drugs",
		"dangerous_material": "violence",
		"games":              "games",
		"vpn":                "circumvention", "doh": "circumvention",
		"residential-proxies": "circumvention", "redirector": "circumvention",
		"bank": BenignCategory, "jobsearch": BenignCategory, "press": BenignCategory,
		"shopping": BenignCategory, "sports": BenignCategory, "webmail": BenignCategory,
		"educational_games": BenignCategory,
	}
}

// PopularSource is the default source of popular sites, loaded as
// BenignCategory.
const PopularSource = "popular-majestic-top10k"

// github returns the raw address of a file on a repository's default
// branch (HEAD), which is where these publishers serve their lists.
func github(repo, file string) string {
	return "https://raw.githubusercontent.com/" + repo + "/HEAD/" + file
}

// DefaultSources returns the lists loaded by default, in load order. A
// source of the configuration with the same name replaces one; listing its
// name under lists.disable switches it off.
func DefaultSources() []DefaultSource {
	type def struct {
		name, category, format, mirror, repo string
		files                                []string
		license, attribution                 string
	}
	const (
		blp    = "blocklistproject/Lists"
		sinf   = "Sinfonietta/hostfiles"
		shadow = "ShadowWhisperer/BlockLists"
		hvn    = "bigdargon/hostsVN"
		ndp    = "nextdns/piracy-blocklists"
		nds    = "nextdns/services"
	)
	blpAttr := "The Block List Project"
	defs := []def{
		{"blocklistproject-gambling", "gambling", FormatDomains, "blocklistproject-gambling.txt.gz", blp, []string{"alt-version/gambling-nl.txt"}, "Unlicense", blpAttr},
		{"blocklistproject-piracy", "piracy", FormatDomains, "blocklistproject-piracy.txt.gz", blp, []string{"alt-version/piracy-nl.txt"}, "Unlicense", blpAttr},
		{"blocklistproject-torrent", "piracy", FormatDomains, "blocklistproject-torrent.txt.gz", blp, []string{"alt-version/torrent-nl.txt"}, "Unlicense", blpAttr},
		{"blocklistproject-drugs", "drugs", FormatDomains, "blocklistproject-drugs.txt.gz", blp, []string{"alt-version/drugs-nl.txt"}, "Unlicense", blpAttr},
		{"blocklistproject-facebook", "social", FormatDomains, "blocklistproject-facebook.txt.gz", blp, []string{"alt-version/facebook-nl.txt"}, "Unlicense", blpAttr},
		{"blocklistproject-tiktok", "social", FormatDomains, "blocklistproject-tiktok.txt.gz", blp, []string{"alt-version/tiktok-nl.txt"}, "Unlicense", blpAttr},
		{"blocklistproject-twitter", "social", FormatDomains, "blocklistproject-twitter.txt.gz", blp, []string{"alt-version/twitter-nl.txt"}, "Unlicense", blpAttr},
		{"blocklistproject-whatsapp", "social", FormatDomains, "blocklistproject-whatsapp.txt.gz", blp, []string{"alt-version/whatsapp-nl.txt"}, "Unlicense", blpAttr},
		{"sinfonietta-gambling", "gambling", FormatHosts, "sinfonietta-gambling-hosts.gz", sinf, []string{"gambling-hosts"}, "MIT", "Sinfonietta/hostfiles"},
		{"sinfonietta-pornography", "adult", FormatHosts, "sinfonietta-pornography-hosts.gz", sinf, []string{"pornography-hosts"}, "MIT", "Sinfonietta/hostfiles"},
		{"sinfonietta-social", "social", FormatHosts, "sinfonietta-social-hosts.gz", sinf, []string{"social-hosts"}, "MIT", "Sinfonietta/hostfiles"},
		{"shadowwhisperer-adult", "adult", FormatAuto, "shadowwhisperer-adult.txt.gz", shadow, []string{"RAW/Adult"}, "Unlicense", "ShadowWhisperer/BlockLists"},
		{"shadowwhisperer-gambling", "gambling", FormatAuto, "shadowwhisperer-gambling.txt.gz", shadow, []string{"RAW/Gambling"}, "Unlicense", "ShadowWhisperer/BlockLists"},
		{"shadowwhisperer-dating", "dating", FormatAuto, "shadowwhisperer-dating.txt.gz", shadow, []string{"RAW/Dating"}, "Unlicense", "ShadowWhisperer/BlockLists"},
		{"hostsvn-adult", "adult", FormatAuto, "hostsvn-adult.txt.gz", hvn, []string{"extensions/adult/domain.txt", "extensions/adult/domain-VN.txt"}, "MIT", "hostsVN (bigdargon/hostsVN)"},
		{"hostsvn-gambling", "gambling", FormatAuto, "hostsvn-gambling.txt.gz", hvn, []string{"extensions/gambling/domain.txt", "extensions/gambling/domain-VN.txt"}, "MIT", "hostsVN (bigdargon/hostsVN)"},
		{"4skinskywalker-porn", "adult", FormatAuto, "4skinskywalker-porn.txt.gz", "4skinSkywalker/Anti-Porn-HOSTS-File", []string{"HOSTS.txt"}, "MIT", "4skinSkywalker/Anti-Porn-HOSTS-File"},
		{"pornaway-porn", "adult", FormatAuto, "pornaway-porn.txt.gz", "mhxion/pornaway", []string{"hosts/porn_sites.txt"}, "MIT", "mhxion/pornaway"},
		{"clefspeare13-porn", "adult", FormatAuto, "clefspeare13-porn.txt.gz", "StevenBlack/hosts", []string{"extensions/porn/clefspeare13/hosts"}, "MIT", "Clefspeare13/pornhosts (via StevenBlack/hosts)"},
		{"tiuxo-porn", "adult", FormatAuto, "tiuxo-porn.txt.gz", "tiuxo/hosts", []string{"porn"}, "CC-BY-4.0", "tiuxo/hosts"},
		{"acma-gambling", "gambling", FormatAuto, "acma-gambling.txt.gz", "elliotwutingfeng/ACMA-blocked-gambling-websites", []string{"urls.txt"}, "CC-BY-4.0", "Australian Communications and Media Authority (ACMA), Commonwealth of Australia; compiled by elliotwutingfeng"},
		{"estonia-gambling", "gambling", FormatAuto, "estonia-gambling.txt.gz", "elliotwutingfeng/Estonia-Blocked-Gambling-Websites", []string{"blocklist.txt"}, "BSD-3-Clause", "elliotwutingfeng/Estonia-Blocked-Gambling-Websites (Estonian Tax and Customs Board data)"},
		{"nextdns-piracy", "piracy", FormatAuto, "nextdns-piracy.txt.gz", ndp, []string{"warez", "file-hosting", "streaming-video", "streaming-audio", "usenet"}, "MIT", "NextDNS (nextdns/piracy-blocklists)"},
		{"nextdns-torrent", "piracy", FormatAuto, "nextdns-torrent.txt.gz", ndp, []string{"torrent-websites", "torrent-trackers", "torrent-clients"}, "MIT", "NextDNS (nextdns/piracy-blocklists)"},
		// The services where learners publish: the policy lets them read
		// and blocks posting.
		{"nextdns-social", "social", FormatAuto, "nextdns-social.txt.gz", nds, []string{
			"services/facebook", "services/instagram", "services/messenger", "services/whatsapp", "services/twitter",
			"services/tiktok", "services/snapchat", "services/reddit", "services/tumblr", "services/pinterest",
			"services/discord", "services/telegram", "services/vk", "services/mastodon", "services/bluesky",
			"services/9gag", "services/imgur", "services/signal",
		}, "MIT", "NextDNS (nextdns/services)"},
		{"jmdugan-facebook", "social", FormatAuto, "jmdugan-facebook.txt.gz", "jmdugan/blocklists", []string{"corporations/facebook/all"}, "CC0-1.0", "jmdugan/blocklists"},
		// Not a block list: the most visited sites, as benign names for
		// the domain-name model (a name it lists is never scored). MISP
		// publishes Majestic's top 10,000 as a JSON warning list; the
		// mirror may hold it as JSON or as one name per line.
		{PopularSource, BenignCategory, FormatAuto, "popular-majestic-top10k.txt.gz", "MISP/misp-warninglists", []string{"lists/majestic_million/list.json"}, "CC-BY-3.0", "Majestic Million (majestic.com), via MISP/misp-warninglists"},
	}
	out := []DefaultSource{{
		Source: Source{Name: "ut1", Format: FormatUT1, URL: "https://dsi.ut-capitole.fr/blacklists/download/blacklists.tar.gz", Map: UT1Map()},
		Mirror: "ut1-blacklists.tar.gz", Publisher: "Université Toulouse Capitole", Home: "https://dsi.ut-capitole.fr/blacklists/",
		License: "CC-BY-SA-4.0", Attribution: "UT1 blacklists, Université Toulouse Capitole",
	}}
	for _, d := range defs {
		s := Source{Name: d.name, Category: d.category, Format: d.format}
		if len(d.files) == 1 {
			s.URL = github(d.repo, d.files[0])
		} else {
			for _, f := range d.files {
				s.URLs = append(s.URLs, github(d.repo, f))
			}
		}
		out = append(out, DefaultSource{Source: s, Mirror: path.Join("lists", d.mirror), Publisher: d.repo,
			Home: "https://github.com/" + d.repo, License: d.license, Attribution: d.attribution})
	}
	return out
}
