# social.rego: publishing on social media. Reading social media is allowed;
# posting or uploading to it needs prior approval.
#
# A client may publish when one of its groups has social_publish: true
# (data.aupguard.groups), or when an approval in data.aupguard.approvals names
# the client's user or one of its groups, covers the platform of the host
# ("*" covers every platform and any host in the social category), and has
# not expired: input.time.date is on or before its "expires" date. Without
# input.time.date no approval can be checked, so none applies.
package aupguard

# AUP: learners must not publish the provider's materials on social media
# (Facebook, YouTube, Instagram, WhatsApp, LinkedIn, Twitter/X, blogs, any
# site where text can be posted) without prior approval. Only requests that
# carry a body count, so a form-less POST (a "like", a search) is not
# mistaken for publishing. POST, PUT and PATCH are the methods that send
# content; the set is written inline so that rule indexing skips this rule
# for every other method.
matches contains {
	"action": "block",
	"category": "social",
	"rule": "social_publish_unapproved",
	"severity": "low",
	"alert": false,
	"reason": "Posting or uploading to social media from the provider's network needs prior approval. Ask your tutor if you need it (Acceptable Use Policy: publishing on social media).",
} if {
	input.phase == "request"
	input.categories.social
	input.request.method in {"POST", "PUT", "PATCH"}
	sends_body
	not may_publish
}

# For HTTPS the proxy sees only the host until it opens the connection, so at
# the connect phase it is told to intercept social-media hosts for clients
# that may not publish; the request phase then sees the method and the body.
# Clients that may publish are left untouched, and so are hosts in the
# never-intercept set (intercept.rego).
matches contains {
	"action": "intercept",
	"category": "social",
	"rule": "social_inspect",
	"severity": "info",
	"alert": false,
	"reason": "Social-media connections are inspected so that posting can be checked against the approvals (Acceptable Use Policy: publishing on social media).",
	"intercept_fail_closed": intercept_fail_closed,
} if {
	input.phase == "connect"
	input.categories.social
	not may_publish
	not intercept_exempt
}

# A request carries a body when it says how long the body is, or when its
# length is unknown (a chunked upload, or a check that did not say): an
# unknown length is treated as a body, so a publishing method with an
# unknown body is never waved through. Only a declared length of 0 is "no
# body".
sends_body if input.request.content_length > 0

sends_body if not input.request.content_length

# may_publish: one of the client's groups may post to social media without
# an individual approval (social_publish: true in data.aupguard.groups), or an
# approval names the client's user or one of its groups. Each way is its own
# rule, written out rather than through helper rules, because this is
# evaluated for every social-media connection and post.
may_publish if {
	some group in input.client.groups
	data.aupguard.groups[group].social_publish == true
}

# The user is read first so that rule indexing skips this rule for a client
# without one.
may_publish if {
	user := input.client.user
	some approval in data.aupguard.approvals
	approval.user == user
	input.time.date <= approval.expires
	approval_covers_host(approval)
}

may_publish if {
	some approval in data.aupguard.approvals
	approval.group in input.client.groups
	input.time.date <= approval.expires
	approval_covers_host(approval)
}

approval_covers_host(approval) if "*" in approval.platforms

approval_covers_host(approval) if {
	some platform in approval.platforms
	some domain in data.aupguard.platforms[platform].domains
	host_in_domain(input.request.host, domain)
}

# host_in_domain: host is domain or one of its subdomains
# (www.facebook.com is in facebook.com; notfacebook.com is not).
host_in_domain(host, domain) if host == domain

host_in_domain(host, domain) if endswith(host, concat("", [".", domain]))
