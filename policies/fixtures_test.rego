# fixtures_test.rego: inputs shared by the unit tests. Each test changes only
# what it is about, so a test reads as "this request, by this client, at this
# time, gives this decision".
package aupguard_test

# A learner's browser fetching a page over HTTPS, Wednesday midday.
learner := {"ip": "10.1.2.3", "groups": ["learners"]}

staff := {"ip": "10.9.0.5", "user": "tutor1", "groups": ["staff"]}

employer := {"ip": "10.5.0.7", "user": "acme-hr", "groups": ["employers"]}

wednesday_noon := {"weekday": "wednesday", "hour": 12, "date": "2026-11-25"}

# request(client, host, categories) is a GET of / on host at phase request.
request(client, host, categories) := {
	"source": "proxy",
	"phase": "request",
	"client": client,
	"request": {"method": "GET", "scheme": "https", "host": host, "port": 443, "path": "/"},
	"categories": categories,
	"time": wednesday_noon,
}

# dns_query(client, qname, categories) is an A query at phase query; the Go
# side copies the name into request.host.
dns_query(client, qname, categories) := {
	"source": "dns",
	"phase": "query",
	"client": client,
	"request": {"host": qname},
	"dns": {"qname": qname, "qtype": "A"},
	"categories": categories,
	"time": wednesday_noon,
}

# connect(client, host, categories) is an HTTPS CONNECT at phase connect.
connect(client, host, categories) := {
	"source": "proxy",
	"phase": "connect",
	"client": client,
	"request": {"host": host, "port": 443},
	"categories": categories,
	"time": wednesday_noon,
}

# The fields every decision has, whatever it says.
decision_keys := {"action", "category", "rule", "reason", "severity", "alert", "cache_ttl_s", "safesearch"}
