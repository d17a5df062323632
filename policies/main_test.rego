package aupguard_test

import data.aupguard

# The decision is defined, complete and an allow for inputs that name no
# category, down to an empty input.
test_decision_defined_for_empty_input if {
	d := aupguard.decision with input as {}
	object.keys(d) == decision_keys
	d.action == "allow"
	d.safesearch == "strict"
}

test_decision_defined_for_dns_query if {
	d := aupguard.decision with input as dns_query(learner, "example.org", {})
	object.keys(d) == decision_keys
	d.action == "allow"
}

test_default_allow_fields if {
	d := aupguard.decision with input as request(learner, "www.bbc.co.uk", {})
	d == {
		"action": "allow",
		"category": "",
		"rule": "default_allow",
		"reason": "",
		"severity": "info",
		"alert": false,
		"cache_ttl_s": 300,
		"safesearch": "strict",
	}
}

# A category no rule knows about is allowed: lists may carry more categories
# than the policy uses (UT1 has dozens).
test_unknown_category_allowed if {
	d := aupguard.decision with input as request(learner, "shop.example", {"shopping": ["ut1:shopping"]})
	d.action == "allow"
	d.rule == "default_allow"
}

# Inputs with unexpected types do not make the decision undefined.
test_decision_defined_for_odd_types if {
	d := aupguard.decision with input as {
		"client": {"groups": "learners"},
		"request": {"path": 42, "method": null},
		"categories": [],
		"time": "now",
	}
	d.action == "allow"
}

# Severity precedence: an adult (high) and gambling (medium) site is reported
# as adult.
test_most_severe_rule_wins if {
	d := aupguard.decision with input as request(learner, "casino-cams.example", {
		"gambling": ["ut1:gambling"],
		"adult": ["sinfonietta-pornography"],
	})
	d.rule == "adult"
	d.severity == "high"
	d.alert == true
}

test_critical_beats_everything if {
	d := aupguard.decision with input as request(learner, "bad.example", {
		"gambling": ["x"], "adult": ["x"], "piracy": ["x"], "illegal": ["iwf"],
	})
	d.rule == "illegal"
	d.severity == "critical"
}

# Equal severity: the alphabetically first rule name wins, whichever order
# the categories come in.
test_tie_broken_by_rule_name if {
	cats := {"drugs": ["ut1:drogue"], "hacking": ["ut1:hacking"]}
	d := aupguard.decision with input as request(learner, "x.example", cats)
	d.rule == "drugs"
	d.severity == "medium"
}

test_tie_broken_by_rule_name_circumvention_before_gambling if {
	d := aupguard.decision with input as request(learner, "x.example", {"gambling": ["a"], "circumvention": ["b"]})
	d.rule == "circumvention"
}

# Equal severity: a block beats an allow-with-alert record, even when the
# allowing rule's name sorts first.
test_block_beats_allow_at_equal_severity if {
	d := aupguard.decision with aupguard.matches as {
		{"action": "allow", "rule": "a_allow", "category": "c", "severity": "low", "alert": true, "reason": ""},
		{"action": "block", "rule": "z_block", "category": "c", "severity": "low", "alert": false, "reason": "r"},
	}
		with input as request(learner, "x.example", {})
	d.action == "block"
	d.rule == "z_block"
}

# A more severe allow-with-alert outranks a less severe block.
test_severity_before_action if {
	d := aupguard.decision with aupguard.matches as {
		{"action": "allow", "rule": "record", "category": "c", "severity": "medium", "alert": true, "reason": ""},
		{"action": "block", "rule": "minor", "category": "c", "severity": "info", "alert": false, "reason": "r"},
	}
		with input as request(learner, "x.example", {})
	d.rule == "record"
}

# A hand-written rule that leaves out fields still yields a complete decision.
test_incomplete_match_filled_in if {
	d := aupguard.decision with aupguard.matches as {{"action": "block", "rule": "partial"}}
		with input as request(learner, "x.example", {})
	object.keys(d) == decision_keys
	d.action == "block"
	d.severity == "info"
	d.alert == false
	d.category == ""
}

# An unknown severity ranks lowest rather than dropping the match.
test_unknown_severity_ranks_lowest if {
	d := aupguard.decision with aupguard.matches as {
		{"action": "block", "rule": "odd", "severity": "severe"},
		{"action": "block", "rule": "known", "severity": "low"},
	}
		with input as request(learner, "x.example", {})
	d.rule == "known"
}

test_unknown_severity_alone_still_blocks if {
	d := aupguard.decision with aupguard.matches as {{"action": "block", "rule": "odd", "severity": "severe"}}
		with input as request(learner, "x.example", {})
	d.action == "block"
	d.rule == "odd"
}

# cache_ttl_s: 300 by default, a rule's own value when it sets one.
test_cache_ttl_default if {
	d := aupguard.decision with input as request(learner, "casino.example", {"gambling": ["x"]})
	d.cache_ttl_s == 300
}

test_cache_ttl_per_rule if {
	d := aupguard.decision with aupguard.matches as {{"action": "block", "rule": "short", "severity": "low", "cache_ttl_s": 5}}
		with input as request(learner, "x.example", {})
	d.cache_ttl_s == 5
}

# Every category rule is complete and filed under its own category. This also
# evaluates every entry, so two files defining the same category (a conflict
# that would otherwise only show when such a host is visited) fail here.
test_every_category_rule_is_complete if {
	every category, rule in aupguard.category_rules {
		rule.category == category
		rule.action in {"allow", "block", "intercept"}
		rule.severity in object.keys(aupguard.severity_rank)
		is_boolean(rule.alert)
		is_string(rule.rule)
		rule.rule != ""
		is_string(rule.reason)
		rule.reason != ""
	}
}

# The categories of the filtering guidance all have a category rule (games
# and social are handled by schedule.rego and social.rego).
test_guidance_categories_covered if {
	every category in {
		"gambling", "adult", "mixed_adult", "hate", "piracy", "malware", "phishing", "hacking",
		"drugs", "violence", "circumvention", "extremism", "selfharm", "illegal",
	} {
		aupguard.category_rules[category]
	}
}
