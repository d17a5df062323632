package aupguard_test

import data.aupguard

# page(client, host, scores) is the response phase of an HTML page on a host
# no list names, with the page scorer's net scores.
page(client, host, scores) := {
	"source": "proxy",
	"phase": "response",
	"client": client,
	"request": {"method": "GET", "scheme": "http", "host": host, "port": 80, "path": "/"},
	"response": {"status": 200, "content_type": "text/html"},
	"categories": {},
	"page": {"scores": scores, "positive": scores, "phrases": {c: ["online casino"] | some c, _ in scores}},
	"time": wednesday_noon,
}

test_page_blocks_learner_at_100 if {
	d := aupguard.decision with input as page(learner, "new-casino.example", {"gambling": 130, "adult": 0})
	d.action == "block"
	d.rule == "gambling_page"
	d.category == "gambling"
	d.alert == true
	d.cache_ttl_s == 0
	not contains(d.reason, "online casino")
}

test_page_blocks_employers_too if {
	d := aupguard.decision with input as page(employer, "new-casino.example", {"gambling": 100})
	d.action == "block"
}

test_page_alert_band if {
	d := aupguard.decision with input as page(learner, "news.example", {"gambling": 50})
	d.action == "allow"
	d.rule == "gambling_page_alert"
	d.alert == true
	d.cache_ttl_s == 0
}

test_page_below_alert_nothing if {
	d := aupguard.decision with input as page(learner, "nhs.example", {"adult": 49, "gambling": -20})
	d.rule == "default_allow"
}

test_page_staff_alert_only if {
	d := aupguard.decision with input as page(staff, "tube.example", {"adult": 600})
	d.action == "allow"
	d.rule == "adult_page_alert"
	d.alert == true
}

test_page_never_blocks_benign_listed_host if {
	inp := object.union(page(learner, "www.bbc.co.uk", {"gambling": 300}), {"categories": {"benign": ["ut1:press"]}})
	d := aupguard.decision with input as inp
	d.action == "allow"
	d.alert == false
}

# The more severe finding wins: a list block of the host ranks with the
# page's own block by severity.
test_page_and_list_block if {
	inp := object.union(page(learner, "casino.example", {"gambling": 300}), {"categories": {"gambling": ["ut1:gambling"]}})
	d := aupguard.decision with input as inp
	d.action == "block"
	d.category == "gambling"
}
