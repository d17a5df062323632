package aupguard_test

import data.aupguard

# Allow with alert: staff reaching a hacking site is let through and the
# safeguarding team gets a record.
test_staff_hacking_allow_with_alert if {
	d := aupguard.decision with input as request(staff, "www.exploit-db.com", {"hacking": ["ut1:hacking"]})
	d == {
		"action": "allow",
		"category": "hacking",
		"rule": "hacking_allowed_with_alert",
		"reason": "Sites in the category \"hacking\" are allowed for your group, and visits are recorded (Acceptable Use Policy: monitoring).",
		"severity": "low",
		"alert": true,
		"cache_ttl_s": 300,
		"safesearch": "moderate",
	}
}

test_learner_hacking_blocked if {
	d := aupguard.decision with input as request(learner, "www.exploit-db.com", {"hacking": ["ut1:hacking"]})
	d.action == "block"
	d.rule == "hacking"
}

# Permissions are the union over a client's groups.
test_permissions_union_over_groups if {
	d := aupguard.decision with input as request({"groups": ["learners", "staff"]}, "www.exploit-db.com", {"hacking": ["h"]})
	d.action == "allow"
	d.alert == true
}

# "allow" in any group beats "alert" in another: nothing to record.
test_allow_beats_alert_across_groups if {
	groups := object.union(data.aupguard.groups, {"security-team": {"categories": {"hacking": "allow"}}})
	d := aupguard.decision with data.aupguard.groups as groups
		with input as request({"groups": ["staff", "security-team"]}, "www.exploit-db.com", {"hacking": ["h"]})
	d.action == "allow"
	d.alert == false
}

# A misspelt relaxation does not relax.
test_unknown_relaxation_value_ignored if {
	groups := object.union(data.aupguard.groups, {"typo": {"categories": {"gambling": "alow"}}})
	d := aupguard.decision with data.aupguard.groups as groups
		with input as request({"groups": ["typo"]}, "casino.example", {"gambling": ["g"]})
	d.action == "block"
}

# An alert relaxation on a never-relaxed category neither relaxes nor adds a
# misleading allow record.
test_alert_relaxation_ignored_for_never_relaxed if {
	groups := object.union(data.aupguard.groups, {"odd": {"categories": {"illegal": "alert"}}})
	d := aupguard.decision with data.aupguard.groups as groups
		with input as request({"groups": ["odd"]}, "x.example", {"illegal": ["iwf"]})
	d.action == "block"
	d.rule == "illegal"
	not illegal_allow_record with data.aupguard.groups as groups
		with input as request({"groups": ["odd"]}, "x.example", {"illegal": ["iwf"]})
}

illegal_allow_record if {
	some m in aupguard.matches
	m.action == "allow"
}

# Safe search per group: learners strict, staff moderate, default strict.
test_safesearch_learners_strict if {
	aupguard.decision.safesearch == "strict" with input as request(learner, "www.google.com", {})
}

test_safesearch_employers_strict if {
	aupguard.decision.safesearch == "strict" with input as request(employer, "www.google.com", {})
}

test_safesearch_staff_moderate if {
	aupguard.decision.safesearch == "moderate" with input as dns_query(staff, "www.google.com", {})
}

test_safesearch_unknown_group_default_strict if {
	aupguard.decision.safesearch == "strict" with input as request({"groups": ["visitors"]}, "www.google.com", {})
}

test_safesearch_no_groups_default_strict if {
	aupguard.decision.safesearch == "strict" with input as {"source": "dns", "phase": "query"}
}

# The least strict level among the client's groups applies.
test_safesearch_least_strict_of_groups if {
	aupguard.decision.safesearch == "moderate" with input as request({"groups": ["learners", "staff"]}, "www.google.com", {})
}

test_safesearch_off_group if {
	groups := object.union(data.aupguard.groups, {"it": {"safesearch": "off"}})
	aupguard.decision.safesearch == "off" with data.aupguard.groups as groups
		with input as request({"groups": ["it"]}, "www.google.com", {})
}

# YAML's unquoted off is false: ignored, so the default applies.
test_safesearch_invalid_level_ignored if {
	groups := object.union(data.aupguard.groups, {"it": {"safesearch": false}})
	aupguard.decision.safesearch == "strict" with data.aupguard.groups as groups
		with input as request({"groups": ["it"]}, "www.google.com", {})
}

test_safesearch_default_from_data if {
	aupguard.decision.safesearch == "moderate" with data.aupguard.safesearch_default as "moderate"
		with input as request({"groups": ["visitors"]}, "www.google.com", {})
}

# Safe search travels with every decision, blocks included.
test_safesearch_on_block if {
	d := aupguard.decision with input as request(staff, "casino.example", {"gambling": ["g"]})
	d.action == "block"
	d.safesearch == "moderate"
}
