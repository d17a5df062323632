# intercept.rego: where TLS interception must never happen, and who must not
# fall back to a plain tunnel when their device refuses the proxy's
# certificate.
#
# intercept_exempt: the host is, or is under, a domain in
# data.aupguard.never_intercept (banking, health, government, and services
# that pin their certificates, such as OS update and push services). Every
# rule that answers "intercept" must also say `not intercept_exempt`: the
# never-intercept set wins over any reason to look inside a connection.
# Admins extend it in their own data.yaml.
#
# intercept_fail_closed: one of the client's groups has
# intercept_fail_closed: true. The proxy then never falls back to a plain
# tunnel for that client when its device rejects the proxy's certificate (no
# CA installed, a pinning app): the connection keeps failing instead of
# passing unseen. It is carried on the intercept finding as
# "intercept_fail_closed".
package aupguard

intercept_exempt if {
	some domain in data.aupguard.never_intercept
	host_in_domain(input.request.host, domain)
}

default intercept_fail_closed := false

intercept_fail_closed if {
	some group in input.client.groups
	data.aupguard.groups[group].intercept_fail_closed == true
}
