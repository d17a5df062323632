# schedule.rego: categories blocked only at certain times, from
# data.aupguard.schedule (category -> windows). The shipped window blocks
# games for learners from 09:00 to 16:59, Monday to Friday, and allows them
# otherwise.
#
# A window applies when the host is in its category, the client is in one of
# its groups (and no group of the client relaxes the category), the weekday
# is one of its days and from_hour <= input.time.hour < until_hour. Without
# input.time no window applies. Decisions about scheduled categories are
# cached for at most 60 seconds (main.rego), blocked or not.
package aupguard

# AUP: the network is provided for study; during lessons it is kept for that.
# This is housekeeping, not misuse: severity info and no alert.
matches contains {
	"action": "block",
	"category": category,
	"rule": object.get(window, "rule", "schedule"),
	"severity": "info",
	"alert": false,
	"reason": object.get(window, "reason", "This category is not available at this time (Acceptable Use Policy)."),
} if {
	some category, sources in input.categories
	not startswith(sources[0], "model:")
	some window in data.aupguard.schedule[category]
	input.time.weekday in window.days
	input.time.hour >= window.from_hour
	input.time.hour < window.until_hour
	some group in input.client.groups
	group in window.groups
	not relaxed(category)
}
