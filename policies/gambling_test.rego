package aupguard_test

import data.aupguard

gambling := {"gambling": ["ut1:gambling", "sinfonietta-gambling"]}

test_gambling_blocked_for_learner if {
	d := aupguard.decision with input as request(learner, "www.bet365.com", gambling)
	d.action == "block"
	d.category == "gambling"
	d.rule == "gambling"
	d.severity == "medium"
	d.alert == true
	d.reason == "Online gambling is not permitted on the provider's network (Acceptable Use Policy: gambling)."
}

test_gambling_blocked_at_dns if {
	d := aupguard.decision with input as dns_query(learner, "casino.example", gambling)
	d.action == "block"
	d.rule == "gambling"
}

test_gambling_blocked_at_connect if {
	d := aupguard.decision with input as connect(learner, "casino.example", gambling)
	d.action == "block"
	d.rule == "gambling"
}

# The AUP's gambling clause covers everyone on the network.
test_gambling_blocked_for_employers_and_staff if {
	aupguard.decision.rule == "gambling" with input as request(employer, "casino.example", gambling)
	aupguard.decision.rule == "gambling" with input as request(staff, "casino.example", gambling)
}

# Neighbour: a sports news site is not gambling.
test_sports_site_allowed if {
	d := aupguard.decision with input as request(learner, "www.bbc.co.uk", {"sports": ["ut1:sports"]})
	d.action == "allow"
}

# A group the admin relaxes gambling for is let through.
test_gambling_relaxable_by_data if {
	groups := object.union(data.aupguard.groups, {"research": {"categories": {"gambling": "allow"}}})
	d := aupguard.decision with data.aupguard.groups as groups
		with input as request({"groups": ["research"]}, "casino.example", gambling)
	d.action == "allow"
	d.alert == false
}
