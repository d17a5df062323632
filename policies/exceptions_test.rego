package aupguard_test

import data.aupguard

excepted_learner := {"ip": "10.1.2.9", "user": "jsmith", "groups": ["learners"]}

casino_categories := {"gambling": ["ut1:gambling"]}

# An exception for excepted_learner to reach casino.example until 30 November 2026.
host_exception := {
	"id": "EXC-1", "user": "jsmith", "host": "casino.example",
	"expires": "2026-11-30", "approved_by": "dsl",
}

# An exception for the learners group to reach the drugs category (say, a
# health course) until the same day.
group_exception := {
	"id": "EXC-2", "group": "learners", "category": "drugs",
	"expires": "2026-11-30", "approved_by": "dsl",
}

on(date, doc) := object.union(doc, {"time": {"weekday": "wednesday", "hour": 12, "date": date}})

test_host_exception_allows_and_names_itself if {
	d := aupguard.decision with input as request(excepted_learner, "casino.example", casino_categories)
		with data.aupguard.exceptions as [host_exception]
	d.action == "allow"
	d.rule == "exception:EXC-1"
	d.category == "gambling"
	d.alert == false
	contains(d.reason, "EXC-1")
	contains(d.reason, "dsl")
}

test_host_exception_covers_subdomains_connect_and_dns if {
	aupguard.decision.rule == "exception:EXC-1" with input as request(excepted_learner, "www.casino.example", casino_categories)
		with data.aupguard.exceptions as [host_exception]
	aupguard.decision.rule == "exception:EXC-1" with input as connect(excepted_learner, "casino.example", casino_categories)
		with data.aupguard.exceptions as [host_exception]
	aupguard.decision.rule == "exception:EXC-1" with input as on("2026-11-25", dns_query(excepted_learner, "casino.example", casino_categories))
		with data.aupguard.exceptions as [host_exception]
}

# A name that merely ends in the same letters is another host.
test_host_exception_not_lookalike if {
	d := aupguard.decision with input as request(excepted_learner, "evilcasino.example", casino_categories)
		with data.aupguard.exceptions as [host_exception]
	d.rule == "gambling"
}

test_host_exception_only_for_its_user if {
	other := object.union(excepted_learner, {"user": "kjones"})
	aupguard.decision.rule == "gambling" with input as request(other, "casino.example", casino_categories)
		with data.aupguard.exceptions as [host_exception]
	aupguard.decision.rule == "gambling" with input as request(learner, "casino.example", casino_categories)
		with data.aupguard.exceptions as [host_exception]
}

test_exception_valid_through_its_last_day if {
	aupguard.decision.action == "allow" with input as on("2026-11-30", request(excepted_learner, "casino.example", casino_categories))
		with data.aupguard.exceptions as [host_exception]
	aupguard.decision.rule == "gambling" with input as on("2026-12-01", request(excepted_learner, "casino.example", casino_categories))
		with data.aupguard.exceptions as [host_exception]
}

# Without a date an exception cannot be checked, so none applies.
test_exception_needs_a_date if {
	doc := object.remove(request(excepted_learner, "casino.example", casino_categories), ["time"])
	aupguard.decision.rule == "gambling" with input as doc
		with data.aupguard.exceptions as [host_exception]
}

test_group_category_exception if {
	drugs := {"drugs": ["ut1:drug"]}
	d := aupguard.decision with input as request(learner, "harm-reduction.example", drugs)
		with data.aupguard.exceptions as [group_exception]
	d.action == "allow"
	d.rule == "exception:EXC-2"

	# Only that category: gambling stays blocked for the same group.
	aupguard.decision.rule == "gambling" with input as request(learner, "casino.example", casino_categories)
		with data.aupguard.exceptions as [group_exception]

	# Only that group.
	aupguard.decision.rule == "drugs" with input as request(staff, "harm-reduction.example", drugs)
		with data.aupguard.exceptions as [group_exception]
}

# A host exception lifts only category rules: another category of the same
# host that no exception covers would still block, and the safety
# categories can never be lifted.
test_exception_never_lifts_safety_categories if {
	ex := object.union(host_exception, {"host": "bad.example"})
	d := aupguard.decision with input as request(excepted_learner, "bad.example", {"malware": ["ut1:malware"]})
		with data.aupguard.exceptions as [ex]
	d.action == "block"
	d.rule == "malware"
	cat := object.union(group_exception, {"category": "illegal"})
	aupguard.decision.action == "block" with input as request(learner, "x.example", {"illegal": ["iwf"]})
		with data.aupguard.exceptions as [cat]
}

test_category_exception_leaves_other_categories if {
	both := {"drugs": ["ut1:drug"], "gambling": ["ut1:gambling"]}
	d := aupguard.decision with input as request(learner, "mixed.example", both)
		with data.aupguard.exceptions as [group_exception]
	d.rule == "gambling"
}

# A malformed entry (no expiry) lifts nothing.
test_malformed_exception_lifts_nothing if {
	ex := object.remove(host_exception, ["expires"])
	aupguard.decision.rule == "gambling" with input as request(excepted_learner, "casino.example", casino_categories)
		with data.aupguard.exceptions as [ex]
}

test_no_exceptions_shipped if {
	count(data.aupguard.exceptions) == 0
}
