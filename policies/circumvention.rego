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

# A CONNECT tunnel carries whatever the client sends through it: to any port
# but the web's it is a way around every other rule (SSH, VPN protocols,
# other proxies). As squid's SSL_ports rule does, tunnels may only go to the
# ports in data.aupguard.connect_ports (443 and the few services devices
# need); a group's own connect_ports add more, and a group that may
# circumvent (staff) is not limited. Plain HTTP to another port is not a
# tunnel: the proxy sees every request of it, so it is not limited here.
matches contains {
	"action": "block",
	"category": "circumvention",
	"rule": "connect_port",
	"severity": "medium",
	"alert": true,
	"reason": sprintf("Tunnels to port %v are not permitted on the provider's network: only secure web traffic (HTTPS) may go through the proxy (Acceptable Use Policy: circumventing the filter).", [input.request.port]),
} if {
	input.phase == "connect"
	not connect_port_allowed
	not relaxed("circumvention")
}

connect_port_allowed if {
	some p in data.aupguard.connect_ports
	port_matches(p, input.request.port)
}

connect_port_allowed if {
	some g in input.client.groups
	some p in data.aupguard.groups[g].connect_ports
	port_matches(p, input.request.port)
}

# A port entry is a number or a range written "low-high".
port_matches(p, port) if p == port

port_matches(p, port) if {
	is_string(p)
	[lo, hi] := split(p, "-")
	to_number(lo) <= port
	port <= to_number(hi)
}
