package aupguard_test

import data.aupguard

test_adult_blocked_and_alerts if {
	d := aupguard.decision with input as request(learner, "xx.example", {"adult": ["sinfonietta-pornography"]})
	d.action == "block"
	d.rule == "adult"
	d.category == "adult"
	d.severity == "high"
	d.alert == true
}

test_adult_blocked_for_staff_too if {
	d := aupguard.decision with input as request(staff, "xx.example", {"adult": ["ut1:adult"]})
	d.rule == "adult"
}

test_adult_blocked_at_dns if {
	d := aupguard.decision with input as dns_query(learner, "xx.example", {"adult": ["ut1:adult"]})
	d.action == "block"
}

test_mixed_adult_blocked_for_learner_without_alert if {
	d := aupguard.decision with input as request(learner, "forum.example", {"mixed_adult": ["ut1:mixed_adult"]})
	d.action == "block"
	d.rule == "mixed_adult"
	d.severity == "low"
	d.alert == false
}

test_mixed_adult_blocked_for_employer if {
	d := aupguard.decision with input as request(employer, "forum.example", {"mixed_adult": ["ut1:mixed_adult"]})
	d.rule == "mixed_adult"
}

# Group difference: staff may reach mixed-content sites, with nothing recorded.
test_mixed_adult_allowed_for_staff if {
	d := aupguard.decision with input as request(staff, "forum.example", {"mixed_adult": ["ut1:mixed_adult"]})
	d.action == "allow"
	d.alert == false
	d.rule == "default_allow"
}

# A site in both lists is treated as the more serious one, even for staff.
test_adult_outranks_mixed_adult if {
	cats := {"adult": ["a"], "mixed_adult": ["b"]}
	aupguard.decision.rule == "adult" with input as request(learner, "x.example", cats)
	aupguard.decision.rule == "adult" with input as request(staff, "x.example", cats)
}

test_hate_blocked_and_alerts if {
	d := aupguard.decision with input as request(learner, "hate.example", {"hate": ["ut1:agressif"]})
	d.action == "block"
	d.rule == "hate"
	d.category == "hate"
	d.severity == "high"
	d.alert == true
}

# Neighbour: a news site is allowed.
test_news_site_allowed if {
	d := aupguard.decision with input as request(learner, "news.example", {"press": ["ut1:press"]})
	d.action == "allow"
}
