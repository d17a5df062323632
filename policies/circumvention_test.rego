package aupguard_test

import data.aupguard

circumvention := {"circumvention": ["ut1:vpn", "doh-endpoints"]}

test_circumvention_blocked_for_learner_and_alerts if {
	d := aupguard.decision with input as request(learner, "nordvpn.com", circumvention)
	d.action == "block"
	d.category == "circumvention"
	d.rule == "circumvention"
	d.severity == "medium"
	d.alert == true
}

# A browser looking up a public DoH resolver to bypass the DNS filter.
test_doh_endpoint_blocked_at_dns if {
	d := aupguard.decision with input as dns_query(learner, "dns.google", circumvention)
	d.action == "block"
	d.rule == "circumvention"
}

test_circumvention_blocked_for_employer if {
	d := aupguard.decision with input as connect(employer, "proxy.example", circumvention)
	d.action == "block"
	d.alert == true
}

# Group difference: staff may use VPNs.
test_circumvention_allowed_for_staff if {
	d := aupguard.decision with input as request(staff, "nordvpn.com", circumvention)
	d.action == "allow"
	d.alert == false
}

# A client in no known group is protected like a learner.
test_circumvention_blocked_for_unknown_group if {
	d := aupguard.decision with input as request({"groups": ["visitors"]}, "nordvpn.com", circumvention)
	d.action == "block"
}
