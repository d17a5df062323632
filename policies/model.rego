# model.rego: what the domain-name model's scores mean. The Go side asks the
# model only about a host no list names (not even a benign list such as
# UT1's bank or the popular-sites list, nor an admin's own `benign` list),
# and passes the categories it scores at or above its floor (0.5) as
#
#   input.model      = {"gambling": 0.97}
#   input.categories = {"gambling": ["model:0.97"]}
#
# A score alone never applies a category rule (main.rego skips categories
# named only by "model:" sources); these rules decide instead, with the
# thresholds in data.aupguard.model (data.yaml):
#
#   score >= block, client in one of block_groups  -> block, with an alert
#   score >= alert (or >= block, other groups)     -> allow, with an alert
#
# Staff are never blocked by the model; a group that relaxes the category
# (data.yaml groups.<name>.categories) is neither blocked nor alerted by it.
package aupguard

# AUP: the same clauses as the lists' category rules (gambling, pornography,
# copyright). A name that says what it is ("bengalwincasino.com") is blocked
# for learners before any list knows it; the alert lets the safeguarding
# team see it and the list maintainers add it.
matches contains {
	"action": "block",
	"category": category,
	"rule": sprintf("%s_name_model", [category]),
	"severity": model_severity(category),
	"alert": true,
	"reason": sprintf("This site is not on any list yet, but its name looks like %s, so it is blocked (Acceptable Use Policy: %s). If this is a mistake, ask for a review.", [model_what[category], model_clause[category]]),
} if {
	some category, score in input.model
	score >= data.aupguard.model.thresholds[category].block
	model_may_decide(category)
	model_blocks_client
}

# Alert only: the middle band for everyone, and the block band for the
# groups the model does not block (staff, employers).
matches contains {
	"action": "allow",
	"category": category,
	"rule": sprintf("%s_name_model_alert", [category]),
	"severity": "low",
	"alert": true,
	"reason": sprintf("This site's name looks like %s; it is allowed, and the visit is recorded for review (Acceptable Use Policy: %s).", [model_what[category], model_clause[category]]),
} if {
	some category, score in input.model
	t := data.aupguard.model.thresholds[category]
	score >= t.alert
	model_may_decide(category)
	not model_blocked(category, score, t)
}

model_blocked(category, score, t) if {
	score >= t.block
	model_blocks_client
}

# The model decides only on a list miss (no list, benign ones included,
# names the host), and not for a group that relaxes the category.
model_may_decide(category) if {
	not input.categories.benign
	not relaxed(category)
}

model_blocks_client if {
	some group in input.client.groups
	group in data.aupguard.model.block_groups
}

# The category rule's severity, so a name-model block weighs like a list
# block of the same category; medium for a category with no rule.
model_severity(category) := category_rules[category].severity

model_severity(category) := "medium" if not category_rules[category]

model_what := {
	"gambling": "an online gambling site",
	"adult": "a pornographic site",
	"piracy": "a site sharing copyrighted works",
}

model_clause := {
	"gambling": "gambling",
	"adult": "pornographic or indecent material",
	"piracy": "copyright",
}
