package aupguard_test

import data.aupguard

# The shipped never-intercept set covers banking, health, government and
# pinned OS services, and a subdomain of an entry matches it.
test_never_intercept_shipped if {
	every host in ["www.hsbc.co.uk", "www.nhs.uk", "www.gov.uk", "courier.push.apple.com", "fe2.update.microsoft.com", "mtalk.google.com"] {
		aupguard.intercept_exempt with input as connect(learner, host, {})
	}
	not aupguard.intercept_exempt with input as connect(learner, "www.facebook.com", social)
	not aupguard.intercept_exempt with input as connect(learner, "notnhs.uk", {})
}

# A social host an admin adds to never_intercept is tunnelled untouched for
# a learner: never-intercept wins over social_inspect.
test_never_intercept_wins_over_social_inspect if {
	d := aupguard.decision with input as connect(learner, "www.facebook.com", social)
		with data.aupguard.never_intercept as ["facebook.com"]
	d.action == "allow"
	d.rule == "default_allow"
}

# No finding at all may ask to intercept a never-intercept host, whatever
# category lists put it in: the guard for rules written later.
test_no_intercept_finding_for_never_intercept_hosts if {
	cats := {"social": ["x"], "gambling": ["x"], "adult": ["x"], "hacking": ["x"], "piracy": ["x"], "circumvention": ["x"]}
	findings := aupguard.matches with input as connect(learner, "www.nhs.uk", cats)
		with data.aupguard.never_intercept as ["nhs.uk"]
	count(findings) > 0
	every f in findings {
		f.action != "intercept"
	}
}

# Fail closed is off by default and set per group; it rides on the
# intercept decision.
test_intercept_fail_closed_default_off if {
	d := aupguard.decision with input as connect(learner, "www.facebook.com", social)
	d.action == "intercept"
	d.intercept_fail_closed == false
}

test_intercept_fail_closed_for_group if {
	groups := object.union(data.aupguard.groups, {"learners": {"intercept_fail_closed": true}})
	d := aupguard.decision with input as connect(learner, "www.facebook.com", social)
		with data.aupguard.groups as groups
	d.action == "intercept"
	d.intercept_fail_closed == true
}
