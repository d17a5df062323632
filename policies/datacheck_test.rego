package aupguard_test

import data.aupguard
import data.aupguard.datacheck

# The shipped data.yaml (or the admin's replacement) has no mistakes; a
# failure here lists them.
test_data_has_no_problems if {
	count(datacheck.problems) == 0
}

test_unquoted_off_reported if {
	groups := object.union(data.aupguard.groups, {"it": {"safesearch": false}})
	problems := datacheck.problems with data.aupguard.groups as groups
	"groups.it.safesearch: false is not one of strict, moderate, off (quote \"off\" in YAML)" in problems
}

test_bad_relaxations_reported if {
	groups := object.union(data.aupguard.groups, {"x": {"categories": {"gambling": "yes", "illegal": "allow"}}})
	problems := datacheck.problems with data.aupguard.groups as groups
	"groups.x.categories.gambling: yes is not \"allow\" or \"alert\"" in problems
	"groups.x.categories.illegal: illegal can never be relaxed" in problems
}

test_bad_approvals_reported if {
	approvals := [
		{"group": "a", "platforms": ["facebook"], "expires": "2027-08-31"},
		{"platforms": ["myspace"], "expires": "31/08/2027"},
		{"user": "b", "platforms": []},
	]
	problems := datacheck.problems with data.aupguard.approvals as approvals
	problems == {
		"approvals[1]: names neither a group nor a user",
		"approvals[1].platforms[0]: myspace is not a platform listed under platforms",
		"approvals[1].expires: 31/08/2027 is not a quoted date \"YYYY-MM-DD\"",
		"approvals[2].platforms: must be a non-empty list of platform names or \"*\"",
		"approvals[2].expires: null is not a quoted date \"YYYY-MM-DD\"",
	}
}

test_bad_schedule_reported if {
	schedule := {"games": [{
		"rule": "late",
		"groups": ["learners"],
		"days": ["Monday"],
		"from_hour": 18,
		"until_hour": 9,
	}]}
	problems := datacheck.problems with data.aupguard.schedule as schedule
	problems == {
		"schedule.games[0].reason: must be a non-empty string",
		"schedule.games[0].days[0]: Monday is not a lower-case weekday name",
		"schedule.games[0]: from_hour 18 is not before until_hour 9",
	}
}

test_schedule_list_reported if {
	schedule := [{"rule": "old-style", "category": "games"}]
	problems := datacheck.problems with data.aupguard.schedule as schedule
	"schedule: must be a mapping of category to a list of windows" in problems
}

test_bad_platform_reported if {
	platforms := object.union(data.aupguard.platforms, {"myspace": {"domains": [".MySpace.com"]}})
	problems := datacheck.problems with data.aupguard.platforms as platforms
	problems == {"platforms.myspace.domains[0]: .MySpace.com is not a lower-case domain without a leading dot"}
}

test_bad_default_reported if {
	problems := datacheck.problems with data.aupguard.safesearch_default as "high"
	problems == {"safesearch_default: high is not one of strict, moderate, off"}
}

test_connect_ports_checked if {
	p := datacheck.problems with data.aupguard.connect_ports as [443, "8443", 70000]
	p == {`connect_ports: [443, "8443", 70000] is not a list of ports (1-65535) or "low-high" ranges`}
	q := datacheck.problems with data.aupguard.connect_ports as [443, "8000-8999"]
	q == set()
	r := datacheck.problems with data.aupguard.connect_ports as ["9000-8000"]
	count(r) == 1
}

test_never_intercept_checked if {
	p := datacheck.problems with data.aupguard.never_intercept as ["nhs.uk", "*.gov.uk"]
	p == {"never_intercept[1]: *.gov.uk is not a lower-case domain without a leading dot"}
	q := datacheck.problems with data.aupguard.never_intercept as "nhs.uk"
	q == {"never_intercept: nhs.uk is not a list of domains"}
}

test_intercept_fail_closed_checked if {
	groups := object.union(data.aupguard.groups, {"learners": {"intercept_fail_closed": "yes"}})
	p := datacheck.problems with data.aupguard.groups as groups
	p == {"groups.learners.intercept_fail_closed: yes is not true or false"}
}
