package aupguard_test

import data.aupguard

# model(client, host, scores) is a request for a host no list names, with
# the domain-name model's scores as the Go side passes them.
model(client, host, scores) := object.union(request(client, host, {c: [sprintf("model:%.2f", [s])] | some c, s in scores}), {"model": scores})

test_model_blocks_learner_at_block_threshold if {
	d := aupguard.decision with input as model(learner, "bengalwincasino.com", {"gambling": 0.99})
	d.action == "block"
	d.category == "gambling"
	d.rule == "gambling_name_model"
	d.severity == "medium"
	d.alert == true
	contains(d.reason, "its name looks like an online gambling site")
}

test_model_adult_block_is_high if {
	d := aupguard.decision with input as model(learner, "hotcams-xxx.example", {"adult": 1})
	d.rule == "adult_name_model"
	d.severity == "high"
}

# The middle band alerts and lets the learner through.
test_model_middle_band_alerts_only if {
	d := aupguard.decision with input as model(learner, "lucky-spin.example", {"gambling": 0.97})
	d.action == "allow"
	d.rule == "gambling_name_model_alert"
	d.alert == true
}

test_model_below_alert_does_nothing if {
	d := aupguard.decision with input as model(learner, "spinach-recipes.example", {"gambling": 0.94})
	d.action == "allow"
	d.rule == "default_allow"
	d.alert == false
}

# A model category never brings in the list category rule by itself: at a
# score below the alert threshold nothing happens although
# input.categories names gambling.
test_model_category_is_not_a_list_hit if {
	d := aupguard.decision with input as model(learner, "x.example", {"gambling": 0.6})
	d.rule == "default_allow"
}

# Staff are never blocked by the model: the block band alerts for them.
test_model_never_blocks_staff if {
	d := aupguard.decision with input as model(staff, "bengalwincasino.com", {"gambling": 1})
	d.action == "allow"
	d.rule == "gambling_name_model_alert"
	d.alert == true
}

test_model_employers_alert_only if {
	d := aupguard.decision with input as model(employer, "bengalwincasino.com", {"gambling": 1})
	d.action == "allow"
	d.alert == true
}

# A name a benign list (or the admin's allowlist, a benign list) names is
# never judged by the model, whatever the score says.
test_model_never_blocks_a_benign_name if {
	inp := object.union(model(learner, "casino-royale-film.example", {"gambling": 1}), {"categories": {"benign": ["admin-allow"], "gambling": ["model:1.00"]}})
	d := aupguard.decision with input as inp
	d.action == "allow"
	d.alert == false
}

# A group that relaxes the category is not blocked or alerted by the model.
test_model_respects_relaxation if {
	groups := object.union(data.aupguard.groups, {"research": {"categories": {"gambling": "allow"}}})
	d := aupguard.decision with data.aupguard.groups as groups
		with input as model({"groups": ["research"]}, "bengalwincasino.com", {"gambling": 1})
	d.action == "allow"
	d.alert == false
}

# A list hit wins over the model: the list's rule decides.
test_list_hit_rule_wins if {
	d := aupguard.decision with input as request(learner, "www.bet365.com", {"gambling": ["ut1:gambling"]})
	d.rule == "gambling"
}

# Thresholds are data: an admin who raises the block threshold gets alerts.
test_model_thresholds_are_data if {
	m := object.union(data.aupguard.model, {"thresholds": {"gambling": {"block": 1, "alert": 0.9}}})
	d := aupguard.decision with data.aupguard.model as m
		with input as model(learner, "bengalwincasino.com", {"gambling": 0.99})
	d.action == "allow"
	d.rule == "gambling_name_model_alert"
}
