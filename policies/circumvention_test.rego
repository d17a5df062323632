package aupguard_test

import data.aupguard

circumvention := {"circumvention": ["ut1:vpn", "doh-endpoints"]}

test_circumvention_blocked_for_learner_and_alerts if {
	d := aupguard.decision with input as request(learner, "nordvpn.com", circumvention)
	d.action == "block"
	d.category == "circumvention"
	d.rule == "circumvention"
	d.severity == "medium"
	d.alert == true
}

# A browser looking up a public DoH resolver to bypass the DNS filter.
test_doh_endpoint_blocked_at_dns if {
	d := aupguard.decision with input as dns_query(learner, "dns.google", circumvention)
	d.action == "block"
	d.rule == "circumvention"
}

test_circumvention_blocked_for_employer if {
	d := aupguard.decision with input as connect(employer, "proxy.example", circumvention)
	d.action == "block"
	d.alert == true
}

# Group difference: staff may use VPNs.
test_circumvention_allowed_for_staff if {
	d := aupguard.decision with input as request(staff, "nordvpn.com", circumvention)
	d.action == "allow"
	d.alert == false
}

# A client in no known group is protected like a learner.
test_circumvention_blocked_for_unknown_group if {
	d := aupguard.decision with input as request({"groups": ["visitors"]}, "nordvpn.com", circumvention)
	d.action == "block"
}

connect_to(client, host, port) := object.union(connect(client, host, {}), {"request": {"host": host, "port": port}})

# The tests name the ports they rely on, so that an admin who opens more
# ports in data.yaml does not fail them.
shipped_ports := [443, 8443, 5223, 5228]

# A tunnel to SSH (or any port that is not the web's) is a way around every
# rule: blocked as circumvention, with an alert.
test_connect_to_ssh_port_blocked if {
	every port in [22, 2222, 1194, 3128, 8080] {
		d := aupguard.decision with input as connect_to(learner, "sshbox.example", port)
			with data.aupguard.connect_ports as shipped_ports
		d.action == "block"
		d.category == "circumvention"
		d.rule == "connect_port"
		d.alert == true
		contains(d.reason, sprintf("port %d", [port]))
	}
}

test_connect_to_web_and_push_ports_allowed if {
	every port in [443, 8443, 5223, 5228] {
		d := aupguard.decision with input as connect_to(learner, "www.example.org", port)
			with data.aupguard.connect_ports as shipped_ports
		d.action == "allow"
	}
}

# Plain HTTP to another port is seen request by request: not limited.
test_plain_http_to_other_port_not_limited if {
	d := aupguard.decision with input as object.union(request(learner, "www.example.org", {}), {"request": {"port": 8080}})
	d.action == "allow"
}

# Staff may circumvent, so their tunnels are not limited.
test_connect_port_not_limited_for_staff if {
	d := aupguard.decision with input as connect_to(staff, "sshbox.example", 22)
		with data.aupguard.connect_ports as shipped_ports
	d.action == "allow"
}

# A group's own connect_ports (numbers or ranges) open more ports for it only.
test_group_connect_ports if {
	groups := object.union(data.aupguard.groups, {"engineering": {"connect_ports": ["2000-2999"]}})
	d := aupguard.decision with input as connect_to({"groups": ["engineering"]}, "git.example", 2222)
		with data.aupguard.groups as groups
		with data.aupguard.connect_ports as shipped_ports
	d.action == "allow"
	l := aupguard.decision with input as connect_to(learner, "git.example", 2222)
		with data.aupguard.groups as groups
		with data.aupguard.connect_ports as shipped_ports
	l.action == "block"
}
