package aupguard_test

import data.aupguard

# Every safety category blocks a learner with its own rule, severity and alert.
safety_expectations := {
	"illegal": {"severity": "critical", "alert": true},
	"extremism": {"severity": "critical", "alert": true},
	"selfharm": {"severity": "critical", "alert": true},
	"malware": {"severity": "high", "alert": false},
	"phishing": {"severity": "high", "alert": false},
	"hacking": {"severity": "medium", "alert": true},
	"drugs": {"severity": "medium", "alert": true},
	"violence": {"severity": "medium", "alert": true},
}

test_safety_categories_blocked_for_learner if {
	every category, want in safety_expectations {
		d := aupguard.decision with input as request(learner, "x.example", {category: ["list"]})
		d.action == "block"
		d.category == category
		d.rule == category
		d.severity == want.severity
		d.alert == want.alert
	}
}

test_safety_categories_blocked_at_dns if {
	every category, _ in safety_expectations {
		aupguard.decision.action == "block" with input as dns_query(learner, "x.example", {category: ["list"]})
	}
}

# Never exempt: even a group whose data tries to relax these is blocked, and
# staff are blocked too.
test_never_relaxed_categories_ignore_groups if {
	relaxing := {"categories": {c: "allow" | some c in aupguard.never_relaxed}}
	groups := object.union(data.aupguard.groups, {"everything": relaxing})
	every category in aupguard.never_relaxed {
		d := aupguard.decision with data.aupguard.groups as groups
			with input as request({"groups": ["everything"]}, "x.example", {category: ["list"]})
		d.action == "block"
		d.rule == category
	}
}

test_never_relaxed_categories_block_staff if {
	every category in aupguard.never_relaxed {
		aupguard.decision.action == "block" with input as request(staff, "x.example", {category: ["list"]})
	}
}

test_never_relaxed_is_the_documented_set if {
	aupguard.never_relaxed == {"illegal", "extremism", "selfharm", "malware", "phishing"}
}

# Group difference: staff reach hacking and security resources, allowed but
# alerted (see groups_test.rego for the record itself).
test_hacking_allowed_with_alert_for_staff if {
	d := aupguard.decision with input as request(staff, "www.kali.org", {"hacking": ["ut1:hacking"]})
	d.action == "allow"
	d.alert == true
	d.category == "hacking"
}

test_drugs_and_violence_block_staff if {
	aupguard.decision.rule == "drugs" with input as request(staff, "x.example", {"drugs": ["l"]})
	aupguard.decision.rule == "violence" with input as request(staff, "x.example", {"violence": ["l"]})
}

# A malware host that is also a hacking site stays blocked for staff: the
# block is more severe than the staff record.
test_malware_outranks_staff_hacking_record if {
	d := aupguard.decision with input as request(staff, "x.example", {"hacking": ["a"], "malware": ["b"]})
	d.action == "block"
	d.rule == "malware"
}
