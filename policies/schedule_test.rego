package aupguard_test

import data.aupguard

games := {"games": ["ut1:games"]}

# at(client, weekday, hour) is a learner-style request to a games site.
at(client, weekday, hour) := object.union(request(client, "www.miniclip.com", games), {
	"time": {"weekday": weekday, "hour": hour},
})

test_games_blocked_for_learner_in_lesson_hours if {
	d := aupguard.decision with input as at(learner, "wednesday", 12)
	d.action == "block"
	d.category == "games"
	d.rule == "games_during_lessons"
	d.severity == "info"
	d.alert == false
	d.cache_ttl_s == 60
}

# Boundaries: 09:00 is inside, 08:59 is not; Friday 16:59 is inside, 17:00 is not.
test_games_window_opens_at_nine if {
	aupguard.decision.action == "block" with input as at(learner, "monday", 9)
	aupguard.decision.action == "allow" with input as at(learner, "monday", 8)
}

test_games_window_closes_at_five if {
	aupguard.decision.action == "block" with input as at(learner, "friday", 16)
	aupguard.decision.action == "allow" with input as at(learner, "friday", 17)
}

test_games_allowed_at_weekend if {
	aupguard.decision.action == "allow" with input as at(learner, "saturday", 12)
	aupguard.decision.action == "allow" with input as at(learner, "sunday", 10)
}

# The allowed decision also depends on the clock, so it is cached briefly too.
test_games_allowed_decision_cached_briefly if {
	d := aupguard.decision with input as at(learner, "friday", 17)
	d.action == "allow"
	d.cache_ttl_s == 60
}

test_other_categories_cached_normally if {
	aupguard.decision.cache_ttl_s == 300 with input as request(learner, "www.bbc.co.uk", {"press": ["p"]})
}

# Group differences: the window names learners only.
test_games_allowed_for_staff_and_employers_in_lesson_hours if {
	aupguard.decision.action == "allow" with input as at(staff, "tuesday", 10)
	aupguard.decision.action == "allow" with input as at(employer, "tuesday", 10)
}

test_games_blocked_at_dns_in_lesson_hours if {
	q := object.union(dns_query(learner, "www.miniclip.com", games), {"time": {"weekday": "thursday", "hour": 14}})
	aupguard.decision.rule == "games_during_lessons" with input as q
}

# Without a clock no window applies.
test_games_allowed_without_time if {
	d := aupguard.decision with input as json.remove(at(learner, "monday", 10), ["time"])
	d.action == "allow"
}

# A games site in a serious category is blocked as that category, with the
# normal TTL capped by the schedule's.
test_schedule_ranks_below_blocks if {
	d := aupguard.decision with input as object.union(at(learner, "monday", 10), {"categories": {"gambling": ["g"]}})
	d.rule == "gambling"
	d.cache_ttl_s == 60
}
