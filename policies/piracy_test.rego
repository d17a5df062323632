package aupguard_test

import data.aupguard

test_piracy_site_blocked if {
	d := aupguard.decision with input as request(learner, "thepiratebay.example", {"piracy": ["ut1:warez"]})
	d.action == "block"
	d.rule == "piracy_site"
	d.category == "piracy"
	d.severity == "low"
	d.alert == false
}

test_piracy_site_blocked_at_dns if {
	d := aupguard.decision with input as dns_query(learner, "thepiratebay.example", {"piracy": ["ut1:warez"]})
	d.rule == "piracy_site"
}

# A .torrent URL on a site no list names.
test_torrent_url_blocked_on_any_host if {
	r := request(learner, "files.example.org", {})
	d := aupguard.decision with input as json.patch(r, [{"op": "replace", "path": "/request/path", "value": "/downloads/Film.2026.torrent"}])
	d.action == "block"
	d.rule == "piracy_torrent_file"
	d.category == "piracy"
	d.severity == "medium"
}

# Neighbour: a path that only mentions torrents is not a torrent file.
test_torrent_article_allowed if {
	r := request(learner, "news.example", {})
	d := aupguard.decision with input as json.patch(r, [{"op": "replace", "path": "/request/path", "value": "/articles/how-torrent-files-work"}])
	d.action == "allow"
}

test_magnet_link_blocked if {
	d := aupguard.decision with input as {
		"source": "proxy",
		"phase": "request",
		"client": learner,
		"request": {"scheme": "magnet", "query": "xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a"},
		"categories": {},
		"time": wednesday_noon,
	}
	d.action == "block"
	d.rule == "piracy_magnet_link"
}

test_torrent_content_type_blocked_at_response if {
	r := request(learner, "dl.example.org", {})
	d := aupguard.decision with input as object.union(r, {
		"phase": "response",
		"request": {"method": "GET", "scheme": "https", "host": "dl.example.org", "path": "/get", "query": "id=9"},
		"response": {"status": 200, "content_type": "application/x-bittorrent; charset=binary"},
	})
	d.action == "block"
	d.rule == "piracy_torrent_download"
}

test_torrent_filename_blocked_at_response if {
	r := request(learner, "dl.example.org", {})
	d := aupguard.decision with input as object.union(r, {
		"phase": "response",
		"response": {"status": 200, "content_type": "application/octet-stream", "filename": "film.torrent"},
	})
	d.rule == "piracy_torrent_download"
}

# Neighbour: an ordinary download is allowed.
test_pdf_download_allowed if {
	r := request(learner, "dl.example.org", {})
	d := aupguard.decision with input as object.union(r, {
		"phase": "response",
		"response": {"status": 200, "content_type": "application/pdf", "filename": "handbook.pdf"},
	})
	d.action == "allow"
}

# The response rule looks only at responses: a request whose content type
# mentions bittorrent is not a download.
test_torrent_response_rule_needs_response_phase if {
	r := request(learner, "dl.example.org", {})
	d := aupguard.decision with input as object.union(r, {"response": {"content_type": "application/x-bittorrent"}})
	d.action == "allow"
}
