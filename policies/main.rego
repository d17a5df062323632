# main.rego assembles the one decision the proxy and the DNS filter enforce.
#
# Rules come in two shapes, both found in the concern files:
#
#  - A category rule says what it means for a host to be in a list category,
#    as one entry of category_rules:
#
#      category_rules["gambling"] := {"action": "block", "category": "gambling",
#          "rule": "gambling", "severity": "medium", "alert": true, "reason": "..."}
#
#    It applies whenever input.categories names the category, unless one of
#    the client's groups relaxes it (groups.rego). Most rules are like this.
#
#  - Any other rule adds its finding to the set `matches` directly:
#
#      matches contains {"action": "block", "category": "piracy", ...} if { ... }
#
# A finding may also carry "cache_ttl_s". This file picks the finding that
# wins and fills in the rest. To add a rule, write a new file in package
# aupguard with either shape; nothing here needs to change.
#
# Every request is decided here, so this file is written for speed: the
# common case (no finding) does as little as it can, category rules are found
# by looking each of the request's categories up rather than by trying every
# rule, and small constants are written inline where they are used.
package aupguard

# The answer to the query data.aupguard.decision. It is always defined, with
# every field present: when nothing matches the request is allowed; otherwise
# the winning finding decides, its missing fields filled in from the defaults
# below (a forgotten action blocks: when in doubt, fail closed). A finding's
# own cache_ttl_s replaces the default one. The defaults are written out in
# both branches rather than named once, because naming them would cost a rule
# evaluation on every request.
decision := {
	"action": "allow",
	"category": "",
	"rule": "default_allow",
	"reason": "",
	"severity": "info",
	"alert": false,
	"cache_ttl_s": cache_ttl_s,
	"safesearch": safesearch,
} if {
	matches == set()
} else := object.union(
	{
		"action": "block", "category": "", "rule": "unnamed_rule", "reason": "", "severity": "info", "alert": false,
		"cache_ttl_s": cache_ttl_s, "safesearch": safesearch,
	},
	finding,
) if {
	# One finding, the usual case when there is any: nothing to rank.
	count(matches) == 1
	some finding in matches
} else := object.union(
	{
		"action": "block", "category": "", "rule": "unnamed_rule", "reason": "", "severity": "info", "alert": false,
		"cache_ttl_s": cache_ttl_s, "safesearch": safesearch,
	},
	ranked[0][3],
)

# Each category the host is in brings in its category rule, unless one of the
# client's groups relaxes that category or a time-limited exception approved by
# the safeguarding team lifts it (exceptions.rego). A category only the
# domain-name model gives (sources ["model:0.97"]) is model.rego's to decide.
matches contains rule if {
	some category, sources in input.categories
	rule := category_rules[category]
	not relaxed(category)
	not startswith(sources[0], "model:")
	not excepted(category)
}

# The most severe finding wins (critical > high > medium > low > info). At
# the same severity a block beats an intercept and an intercept beats an
# allow, so an allow-with-alert record can never hide a block of equal
# weight. Remaining ties go to the alphabetically first rule name, so the
# same input always gives the same decision. An unknown severity ranks as
# info.
severity_rank := {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

action_rank := {"allow": 0, "intercept": 1, "block": 2}

# Sorting [-severity, -action, rule, finding] puts the winner first.
ranked := sort([[
	0 - object.get(severity_rank, object.get(m, "severity", "info"), 0),
	0 - object.get(action_rank, object.get(m, "action", "block"), 2),
	object.get(m, "rule", "unnamed_rule"),
	m,
] |
	some m in matches
])

# How long the Go side may cache the decision for the same input: 300
# seconds, unless the winning rule sets its own cache_ttl_s. Decisions
# that depend on the time of day are cached for 60 seconds at most, so that a
# window opening or closing takes effect within a minute whichever way the
# decision went: that is any decision about a host in a category that
# data.aupguard.schedule names (schedule.rego).
default cache_ttl_s := 300

cache_ttl_s := 60 if {
	some category, _ in input.categories
	data.aupguard.schedule[category]
}
