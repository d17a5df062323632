# circumvention.rego: ways around the filter (VPNs, web proxies, public
# DNS-over-HTTPS resolvers). The lists name them; the DNS filter separately
# answers the browsers' DoH canary so that browsers keep using it.
package aupguard

# Filtering guidance (UK Safer Internet Centre "appropriate filtering") asks
# for circumvention protection: a filter a VPN defeats protects no one, so
# every other rule depends on this one. An attempt is a safeguarding signal
# (someone may be trying to reach what is blocked), so it alerts. Applies to
# learners and employers; staff may use VPNs (data.yaml).
category_rules["circumvention"] := {
	"action": "block",
	"category": "circumvention",
	"rule": "circumvention",
	"severity": "medium",
	"alert": true,
	"reason": "VPNs, proxies and other ways around the provider's filtering are not permitted on its network (Acceptable Use Policy: circumventing the filter).",
}
