# groups.rego: what differs between groups, read from data.aupguard.groups
# (data.yaml). The rules stay the same for everyone; a group may only lift a
# category's block ("allow"), or lift it but still record the visit ("alert").
#
#   group      | safesearch | social_publish | categories
#   learners   | strict     | no             | (none: the most protected)
#   employers  | strict     | yes            | (none)
#   staff      | moderate   | yes            | hacking: alert, circumvention: allow, mixed_adult: allow
#
# A client with no identity arrives as ["learners"]. A client in several
# groups gets every permission any of them grants; a group missing from the
# data grants nothing. Categories in never_relaxed (safety.rego) cannot be
# relaxed: the data may say so, but it has no effect.
package aupguard

# The values a group may give a category in its "categories" table.
relaxations := {"allow", "alert"}

# relaxed(category): one of the client's groups lifts the block on category
# ("allow" or "alert", the relaxations above, inlined for speed).
relaxed(category) if {
	some group in input.client.groups
	data.aupguard.groups[group].categories[category] in {"allow", "alert"}
	not category in never_relaxed
}

# allowed_outright(category): one of the client's groups allows category
# without recording it.
allowed_outright(category) if {
	some group in input.client.groups
	data.aupguard.groups[group].categories[category] == "allow"
}

# AUP (monitoring): staff may reach some categories blocked for learners, such
# as security research sites, but the safeguarding team still sees the visit.
# The decision allows and alerts; any block that also applies ranks above it.
matches contains {
	"action": "allow",
	"category": category,
	"rule": sprintf("%s_allowed_with_alert", [category]),
	"severity": "low",
	"alert": true,
	"reason": sprintf("Sites in the category %q are allowed for your group, and visits are recorded (Acceptable Use Policy: monitoring).", [category]),
} if {
	some category, sources in input.categories
	not startswith(sources[0], "model:")
	some group in input.client.groups
	data.aupguard.groups[group].categories[category] == "alert"
	not category in never_relaxed
	not allowed_outright(category)
}

# The safe-search level the DNS filter enforces for this client: the least
# strict level any of the client's groups sets (consistent with permissions
# being the union over groups), else safesearch_default. A value that is not
# one of the three levels is ignored, so a typo falls back to the default.
safesearch := level if {
	[group] := input.client.groups
	level := data.aupguard.groups[group].safesearch
	level in {"off", "moderate", "strict"}
} else := "off" if {
	group_safesearch("off")
} else := "moderate" if {
	group_safesearch("moderate")
} else := "strict" if {
	group_safesearch("strict")
} else := default_safesearch

# data.aupguard.safesearch_default, or "strict" when data.yaml has none.
default default_safesearch := "strict"

default_safesearch := data.aupguard.safesearch_default

group_safesearch(level) if {
	some group in input.client.groups
	data.aupguard.groups[group].safesearch == level
}
