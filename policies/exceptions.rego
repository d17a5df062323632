# exceptions.rego: time-limited exceptions the safeguarding team approves in
# the web console when a learner asks for a block to be reviewed.
#
# An exception in data.aupguard.exceptions names
#   who:   "user" (input.client.user) or "group" (one of input.client.groups);
#   what:  "host" (that host and its subdomains) or "category";
#   until: "expires", the last day it is valid on ("YYYY-MM-DD"), checked
#          against input.time.date (without a date no exception applies);
# plus "id" (named in the decision), "approved_by", "ref" and "note".
#
# An exception lifts category rules only (main.rego asks `excepted`), and
# never a category in never_relaxed (illegal, extremism, self-harm, malware,
# phishing): no approval in a console may open those. A host exception lifts
# the rules of every other category the host is in; a category exception
# lifts that category on every host. Rules that are not category rules (social
# publishing, piracy downloads, circumvention by port) still apply.
#
# When an exception lifts a rule, the decision names it: rule
# "exception:<id>", action allow, not an alert.
package aupguard

# excepted(category): an exception lifts category's rule for this request.
# The user is read first so that rule indexing skips the rule for clients
# without one when no group exception matches.
excepted(category) if {
	some e in data.aupguard.exceptions
	exception_lifts(e, category)
}

# exception_lifts(e, category): e is in force today, is for this client, and
# covers this request's host or category.
exception_lifts(e, category) if {
	not category in never_relaxed
	input.time.date <= e.expires
	exception_for_client(e)
	exception_covers(e, category)
}

exception_for_client(e) if e.user == input.client.user

exception_for_client(e) if e.group in input.client.groups

exception_covers(e, category) if e.category == category

exception_covers(e, _) if host_in_domain(input.request.host, e.host)

# The decision names the exception that let the request through. Another
# finding (a category no exception covers, a non-category rule) still wins
# over it, as any block ranks above an allow.
matches contains {
	"action": "allow",
	"category": category,
	"rule": sprintf("exception:%s", [e.id]),
	"severity": "info",
	"alert": false,
	"reason": sprintf("Allowed by exception %s, approved by %s until %s.", [e.id, object.get(e, "approved_by", "the safeguarding team"), e.expires]),
} if {
	some category, _ in input.categories
	category_rules[category]
	some e in data.aupguard.exceptions
	exception_lifts(e, category)
}
