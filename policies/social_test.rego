package aupguard_test

import data.aupguard

social := {"social": ["ut1:social_networks", "sinfonietta-social"]}

# post(client, host, date) is a POST of 1234 bytes to host on date.
post(client, host, date) := object.union(request(client, host, social), {
	"request": {"method": "POST", "path": "/share", "content_type": "multipart/form-data; boundary=x", "content_length": 1234},
	"time": {"date": date},
})

publisher := {"ip": "10.1.2.40", "user": "mkt1", "groups": ["learners", "approved-publishers"]}

jsmith := {"ip": "10.1.2.41", "user": "jsmith", "groups": ["learners"]}

jsmith_facebook := [{"user": "jsmith", "platforms": ["facebook"], "expires": "2026-12-31"}]

# The tests bring their own approvals, so that an admin who replaces
# approvals.yaml keeps these tests passing; this one mirrors the shipped
# example.
example_approval := [{"group": "approved-publishers", "platforms": ["*"], "expires": "2027-08-31"}]

test_learner_post_blocked if {
	d := aupguard.decision with input as post(learner, "www.facebook.com", "2026-11-25")
	d.action == "block"
	d.category == "social"
	d.rule == "social_publish_unapproved"
	d.severity == "low"
	d.alert == false
}

test_learner_put_and_patch_blocked if {
	p := post(learner, "upload.youtube.com", "2026-11-25")
	aupguard.decision.action == "block" with input as json.patch(p, [{"op": "replace", "path": "/request/method", "value": "PUT"}])
	aupguard.decision.action == "block" with input as json.patch(p, [{"op": "replace", "path": "/request/method", "value": "PATCH"}])
}

# A chunked upload has a content type but no length.
test_learner_chunked_upload_blocked if {
	p := post(learner, "www.facebook.com", "2026-11-25")
	d := aupguard.decision with input as json.remove(p, ["request/content_length"]) with data.aupguard.approvals as example_approval
	d.rule == "social_publish_unapproved"
}

# Neighbours: reading is allowed, and so is a POST without a body.
test_learner_get_allowed if {
	d := aupguard.decision with input as request(learner, "www.facebook.com", social)
	d.action == "allow"
	d.rule == "default_allow"
}

test_learner_head_allowed if {
	p := post(learner, "www.facebook.com", "2026-11-25")
	d := aupguard.decision with input as json.patch(p, [{"op": "replace", "path": "/request/method", "value": "HEAD"}])
	d.action == "allow"
}

# Only POST, PUT and PATCH publish: a DELETE with a body is not a post.
test_learner_delete_allowed if {
	p := post(learner, "www.facebook.com", "2026-11-25")
	d := aupguard.decision with input as json.patch(p, [{"op": "replace", "path": "/request/method", "value": "DELETE"}])
	d.action == "allow"
}

test_learner_empty_post_allowed if {
	p := post(learner, "www.facebook.com", "2026-11-25")
	d := aupguard.decision with input as json.patch(p, [{"op": "replace", "path": "/request/content_length", "value": 0}])
	d.action == "allow"
}

# An unknown length is a possible body: never waved through.
test_learner_post_of_unknown_length_blocked if {
	p := post(learner, "www.facebook.com", "2026-11-25")
	d := aupguard.decision with input as json.remove(p, ["request/content_length", "request/content_type"]) with data.aupguard.approvals as example_approval
	d.rule == "social_publish_unapproved"
}

test_post_to_non_social_host_allowed if {
	p := post(learner, "forms.example.ac.uk", "2026-11-25")
	d := aupguard.decision with input as json.patch(p, [{"op": "replace", "path": "/categories", "value": {}}])
	d.action == "allow"
}

test_social_dns_query_allowed if {
	d := aupguard.decision with input as dns_query(learner, "www.facebook.com", social)
	d.action == "allow"
}

# At connect the proxy is told to open the TLS connection, so that the POST
# can be seen at all.
test_learner_connect_intercepted if {
	d := aupguard.decision with input as connect(learner, "www.facebook.com", social)
	d.action == "intercept"
	d.rule == "social_inspect"
	d.severity == "info"
	d.alert == false
}

# An approval for group approved-publishers, every platform, until
# 2027-08-31 inclusive (the shipped example's shape).
test_approved_publisher_post_allowed if {
	d := aupguard.decision with input as post(publisher, "www.facebook.com", "2026-11-25") with data.aupguard.approvals as example_approval
	d.action == "allow"
}

test_approved_publisher_post_allowed_on_expiry_date if {
	d := aupguard.decision with input as post(publisher, "www.linkedin.com", "2027-08-31") with data.aupguard.approvals as example_approval
	d.action == "allow"
}

test_approved_publisher_post_blocked_after_expiry if {
	d := aupguard.decision with input as post(publisher, "www.facebook.com", "2027-09-01") with data.aupguard.approvals as example_approval
	d.action == "block"
	d.rule == "social_publish_unapproved"
}

test_approved_publisher_not_intercepted if {
	d := aupguard.decision with input as connect(publisher, "www.facebook.com", social) with data.aupguard.approvals as example_approval
	d.action == "allow"
}

# Without a date no approval can be checked, so none applies.
test_approval_needs_a_date if {
	p := post(publisher, "www.facebook.com", "2026-11-25")
	d := aupguard.decision with input as json.remove(p, ["time/date"]) with data.aupguard.approvals as example_approval
	d.action == "block"
}

# Group differences: staff and employers may publish.
test_staff_post_allowed if {
	d := aupguard.decision with input as post(staff, "www.facebook.com", "2026-11-25")
	d.action == "allow"
}

test_employer_post_allowed if {
	d := aupguard.decision with input as post(employer, "www.linkedin.com", "2026-11-25")
	d.action == "allow"
}

test_staff_connect_not_intercepted if {
	d := aupguard.decision with input as connect(staff, "www.facebook.com", social)
	d.action == "allow"
}

# A per-user approval for one platform covers that platform's domains and
# subdomains only.
test_user_approval_covers_platform if {
	aupguard.decision.action == "allow" with data.aupguard.approvals as jsmith_facebook
		with input as post(jsmith, "www.facebook.com", "2026-12-01")
	aupguard.decision.action == "allow" with data.aupguard.approvals as jsmith_facebook
		with input as post(jsmith, "fb.com", "2026-12-01")
}

test_user_approval_other_platform_blocked if {
	d := aupguard.decision with data.aupguard.approvals as jsmith_facebook
		with input as post(jsmith, "twitter.com", "2026-12-01")
	d.action == "block"
}

test_user_approval_lookalike_domain_blocked if {
	d := aupguard.decision with data.aupguard.approvals as jsmith_facebook
		with input as post(jsmith, "notfacebook.com", "2026-12-01")
	d.action == "block"
}

test_user_approval_other_user_blocked if {
	d := aupguard.decision with data.aupguard.approvals as jsmith_facebook
		with input as post(learner, "www.facebook.com", "2026-12-01")
	d.action == "block"
}

test_user_approval_expired_blocked if {
	d := aupguard.decision with data.aupguard.approvals as jsmith_facebook
		with input as post(jsmith, "www.facebook.com", "2027-01-01")
	d.action == "block"
}

# Social publishing ranks below anything serious on the same host.
test_social_host_in_adult_list_blocked_as_adult if {
	p := post(publisher, "x.example", "2026-11-25")
	d := aupguard.decision with input as json.patch(p, [{"op": "add", "path": "/categories/adult", "value": ["a"]}]) with data.aupguard.approvals as example_approval
	d.rule == "adult"
}
