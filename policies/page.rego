# page.rego: what page scoring means. At phase response, for a text/html
# body, the proxy scores the first part of the page against weighted phrase
# lists (package pagescore) and passes
#
#   input.page = {"scores":   {"gambling": 130, "adult": -12, "piracy": 0},
#                 "positive": {"gambling": 135, ...},
#                 "phrases":  {"gambling": ["online casino", "free spins"]}}
#
# A score is net of benign context: a sexual-health, cancer, news or
# gambling-support page that mentions the words scores low. With the
# thresholds in data.aupguard.page (data.yaml):
#
#   score >= block, client in one of block_groups  -> block, with an alert
#   score >= alert (or >= block, other groups)     -> allow, with an alert
#
# The phrases go to the safeguarding reviewer's event, never to the
# learner's block page (the reason below names only the category). A page
# verdict is about one body, so it is never cached (cache_ttl_s 0).
package aupguard

# AUP: the same clauses as the category rules; the content, not the host,
# says what the page is.
matches contains {
	"action": "block",
	"category": category,
	"rule": sprintf("%s_page", [category]),
	"severity": model_severity(category),
	"alert": true,
	"reason": sprintf("This page's content looks like %s, so it is blocked (Acceptable Use Policy: %s). If this is a mistake, ask for a review.", [model_what[category], model_clause[category]]),
	"cache_ttl_s": 0,
} if {
	some category, score in input.page.scores
	score >= data.aupguard.page.thresholds[category].block
	page_may_decide(category)
	page_blocks_client
}

matches contains {
	"action": "allow",
	"category": category,
	"rule": sprintf("%s_page_alert", [category]),
	"severity": "low",
	"alert": true,
	"reason": sprintf("This page's content looks like %s; it is shown, and the visit is recorded for review (Acceptable Use Policy: %s).", [model_what[category], model_clause[category]]),
	"cache_ttl_s": 0,
} if {
	some category, score in input.page.scores
	t := data.aupguard.page.thresholds[category]
	score >= t.alert
	page_may_decide(category)
	not page_blocked(category, score, t)
}

page_blocked(category, score, t) if {
	score >= t.block
	page_blocks_client
}

# A host a benign list names (the admin's own allowlist is a list of
# category benign) is never blocked or alerted by its content.
page_may_decide(category) if {
	not input.categories.benign
	not relaxed(category)
}

page_blocks_client if {
	some group in input.client.groups
	group in data.aupguard.page.block_groups
}
