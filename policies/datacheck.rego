# datacheck.rego: mistakes in data.yaml that would otherwise make a rule
# silently stop applying (a misspelt safe-search level, an approval without an
# expiry date, YAML turning off into false). datacheck_test.rego fails when
# data.aupguard.datacheck.problems is not empty, and a policy whose tests fail
# is never activated, so a broken data.yaml is caught at `aupguard policy test`
# and at reload, with the key named.
package aupguard.datacheck

import data.aupguard

safesearch_levels := {"strict", "moderate", "off"}

weekdays := {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}

# problems: one message per mistake, starting with the key it is about.
problems contains sprintf("safesearch_default: %v is not one of strict, moderate, off", [v]) if {
	v := aupguard.safesearch_default
	not v in safesearch_levels
}

problems contains sprintf("groups.%s: must be a mapping", [name]) if {
	some name, group in aupguard.groups
	not is_object(group)
}

problems contains sprintf("groups.%s.safesearch: %v is not one of strict, moderate, off (quote \"off\" in YAML)", [name, v]) if {
	some name, group in aupguard.groups
	v := group.safesearch
	not v in safesearch_levels
}

problems contains sprintf("groups.%s.social_publish: %v is not true or false", [name, v]) if {
	some name, group in aupguard.groups
	v := group.social_publish
	not is_boolean(v)
}

problems contains sprintf("groups.%s.categories: must be a mapping of category to \"allow\" or \"alert\"", [name]) if {
	some name, group in aupguard.groups
	not is_object(object.get(group, "categories", {}))
}

problems contains sprintf("groups.%s.categories.%s: %v is not \"allow\" or \"alert\"", [name, category, v]) if {
	some name, group in aupguard.groups
	some category, v in group.categories
	not v in aupguard.relaxations
}

problems contains sprintf("groups.%s.categories.%s: %s can never be relaxed", [name, category, category]) if {
	some name, group in aupguard.groups
	some category, _ in group.categories
	category in aupguard.never_relaxed
}

problems contains sprintf("platforms.%s.domains: must be a non-empty list of domains", [name]) if {
	some name, platform in aupguard.platforms
	not non_empty_array(object.get(platform, "domains", null))
}

problems contains sprintf("platforms.%s.domains[%d]: %v is not a lower-case domain without a leading dot", [name, i, d]) if {
	some name, platform in aupguard.platforms
	some i, d in platform.domains
	not domain(d)
}

problems contains sprintf("approvals: must be a list", []) if {
	v := aupguard.approvals
	not is_array(v)
}

problems contains sprintf("approvals[%d]: names neither a group nor a user", [i]) if {
	some i, approval in aupguard.approvals
	not is_string(object.get(approval, "group", null))
	not is_string(object.get(approval, "user", null))
}

problems contains sprintf("approvals[%d].platforms: must be a non-empty list of platform names or \"*\"", [i]) if {
	some i, approval in aupguard.approvals
	not non_empty_array(object.get(approval, "platforms", null))
}

problems contains sprintf("approvals[%d].platforms[%d]: %v is not a platform listed under platforms", [i, j, p]) if {
	some i, approval in aupguard.approvals
	some j, p in approval.platforms
	p != "*"
	not aupguard.platforms[p]
}

problems contains sprintf("approvals[%d].expires: %v is not a quoted date \"YYYY-MM-DD\"", [i, v]) if {
	some i, approval in aupguard.approvals
	v := object.get(approval, "expires", null)
	not iso_date(v)
}

problems contains "schedule: must be a mapping of category to a list of windows" if {
	v := aupguard.schedule
	not is_object(v)
}

problems contains sprintf("schedule.%s: must be a list of windows", [category]) if {
	some category, windows in aupguard.schedule
	not is_array(windows)
}

problems contains sprintf("schedule.%s[%d].%s: must be a non-empty string", [category, i, key]) if {
	some category, windows in aupguard.schedule
	some i, window in windows
	some key in ["rule", "reason"]
	not non_empty_string(object.get(window, key, null))
}

problems contains sprintf("schedule.%s[%d].groups: must be a non-empty list of group names", [category, i]) if {
	some category, windows in aupguard.schedule
	some i, window in windows
	not non_empty_array(object.get(window, "groups", null))
}

problems contains sprintf("schedule.%s[%d].days: must be a non-empty list of weekday names", [category, i]) if {
	some category, windows in aupguard.schedule
	some i, window in windows
	not non_empty_array(object.get(window, "days", null))
}

problems contains sprintf("schedule.%s[%d].days[%d]: %v is not a lower-case weekday name", [category, i, j, d]) if {
	some category, windows in aupguard.schedule
	some i, window in windows
	some j, d in window.days
	not d in weekdays
}

problems contains sprintf("schedule.%s[%d].%s: %v is not a whole hour from 0 to 24", [category, i, key, v]) if {
	some category, windows in aupguard.schedule
	some i, window in windows
	some key in ["from_hour", "until_hour"]
	v := object.get(window, key, null)
	not hour(v)
}

problems contains sprintf("schedule.%s[%d]: from_hour %v is not before until_hour %v", [category, i, window.from_hour, window.until_hour]) if {
	some category, windows in aupguard.schedule
	some i, window in windows
	hour(window.from_hour)
	hour(window.until_hour)
	window.from_hour >= window.until_hour
}

non_empty_array(x) if {
	is_array(x)
	count(x) > 0
}

non_empty_string(x) if {
	is_string(x)
	x != ""
}

domain(x) if {
	is_string(x)
	x == lower(x)
	regex.match(`^[a-z0-9-]+(\.[a-z0-9-]+)+$`, x)
}

iso_date(x) if {
	is_string(x)
	regex.match(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`, x)
}

hour(x) if {
	is_number(x)
	x == floor(x)
	x >= 0
	x <= 24
}

problems contains sprintf("connect_ports: %v is not a list of ports (1-65535) or \"low-high\" ranges", [v]) if {
	v := aupguard.connect_ports
	not valid_ports(v)
}

problems contains sprintf("groups.%s.connect_ports: %v is not a list of ports (1-65535) or \"low-high\" ranges", [name, v]) if {
	some name, group in aupguard.groups
	v := group.connect_ports
	not valid_ports(v)
}

valid_ports(v) if {
	is_array(v)
	every p in v {
		valid_port_entry(p)
	}
}

valid_port_entry(p) if valid_port(p)

valid_port_entry(p) if {
	is_string(p)
	[lo, hi] := split(p, "-")
	regex.match(`^[0-9]+$`, lo)
	regex.match(`^[0-9]+$`, hi)
	valid_port(to_number(lo))
	valid_port(to_number(hi))
	to_number(lo) <= to_number(hi)
}

valid_port(p) if {
	is_number(p)
	p == round(p)
	p >= 1
	p <= 65535
}

problems contains sprintf("never_intercept: %v is not a list of domains", [v]) if {
	v := aupguard.never_intercept
	not is_array(v)
}

problems contains sprintf("never_intercept[%d]: %v is not a lower-case domain without a leading dot", [i, d]) if {
	some i, d in aupguard.never_intercept
	not domain(d)
}

problems contains sprintf("groups.%s.intercept_fail_closed: %v is not true or false", [name, v]) if {
	some name, group in aupguard.groups
	v := group.intercept_fail_closed
	not is_boolean(v)
}
