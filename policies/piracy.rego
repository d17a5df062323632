# piracy.rego: copyright theft. Whole sites (warez, torrent indexes) are
# named by the lists; torrent files and magnet links are recognised wherever
# they come from, because new torrent sites appear faster than lists grow.
package aupguard

# AUP: learners and employers must not download, store, copy or transmit
# others' works in breach of copyright. Visiting the site is the first step,
# so it is blocked but not alerted.
category_rules["piracy"] := {
	"action": "block",
	"category": "piracy",
	"rule": "piracy_site",
	"severity": "low",
	"alert": false,
	"reason": "Sites that share copyrighted software, films, music or games without permission are not permitted on the provider's network (Acceptable Use Policy: copyright).",
}

# AUP: copyright. A URL naming a .torrent file fetches a download
# descriptor, on any site, at any phase that has a path. The comparison is
# exact (".TORRENT" is not caught here) so that rule indexing can skip this
# rule for every other path; the response rule below catches a torrent
# whatever its URL says.
matches contains {
	"action": "block",
	"category": "piracy",
	"rule": "piracy_torrent_file",
	"severity": "medium",
	"alert": false,
	"reason": "Downloading torrent files is not permitted on the provider's network (Acceptable Use Policy: copyright).",
} if {
	endswith(input.request.path, ".torrent")
	not relaxed("piracy")
}

# AUP: copyright. A magnet link starts a peer-to-peer download directly; the
# Go side passes it with scheme "magnet" and no host.
matches contains {
	"action": "block",
	"category": "piracy",
	"rule": "piracy_magnet_link",
	"severity": "medium",
	"alert": false,
	"reason": "Magnet links start peer-to-peer downloads, which are not permitted on the provider's network (Acceptable Use Policy: copyright).",
} if {
	input.request.scheme == "magnet"
	not relaxed("piracy")
}

# AUP: copyright. A response that is a torrent file, whatever its URL said
# (download links often hide the file name in a query string).
matches contains {
	"action": "block",
	"category": "piracy",
	"rule": "piracy_torrent_download",
	"severity": "medium",
	"alert": false,
	"reason": "Downloading torrent files is not permitted on the provider's network (Acceptable Use Policy: copyright).",
} if {
	input.phase == "response"
	torrent_response
	not relaxed("piracy")
}

# The content type may carry parameters ("; charset=..."), hence startswith.
torrent_response if startswith(lower(input.response.content_type), "application/x-bittorrent")

torrent_response if endswith(lower(input.response.filename), ".torrent")
