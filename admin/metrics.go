package admin

import (
	"reflect"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aupguard/aupguard/dnsfilter"
	"github.com/aupguard/aupguard/proxy"
)

// A statMetric exports one numeric field of a component's Stats struct
// under a Prometheus name, with help text and a type of its own: the
// tables below are the one place these names are given, following
// Prometheus' conventions (aupguard_<component>_<what>[_<unit>], counters
// ending in _total). TestStatsTablesCoverEveryField fails when a Stats
// struct gains a numeric field that no table exports.
type statMetric struct {
	field string // the Stats field
	name  string
	help  string
	kind  prometheus.ValueType
}

const (
	counter = prometheus.CounterValue
	gauge   = prometheus.GaugeValue
)

// proxyMetrics export proxy.Stats.
var proxyMetrics = []statMetric{
	{"Requests", "aupguard_proxy_requests_total", "HTTP requests decided at phase request (plain HTTP, and inside intercepted tunnels).", counter},
	{"Connects", "aupguard_proxy_connects_total", "CONNECT (tunnel) requests decided at phase connect.", counter},
	{"Blocked", "aupguard_proxy_blocked_total", "Requests and tunnels the policy blocked.", counter},
	{"Alerts", "aupguard_proxy_alerts_total", "Requests the policy allowed but marked for attention.", counter},
	{"Refused", "aupguard_proxy_destinations_refused_total", "Connections refused because the destination address is protected or outside allow_destinations.", counter},
	{"ClientsDenied", "aupguard_proxy_clients_denied_total", "Requests from clients outside every allowed network.", counter},
	{"AuthFailures", "aupguard_proxy_auth_failures_total", "Proxy logins that failed.", counter},
	{"AuthLimited", "aupguard_proxy_auth_rate_limited_total", "Proxy logins refused by the failed-login rate limit.", counter},
	{"TunnelsActive", "aupguard_proxy_tunnels_active", "Tunnels (CONNECT and WebSocket) open now.", gauge},
	{"TunnelsRejected", "aupguard_proxy_tunnels_rejected_total", "Tunnels refused for the per-client cap.", counter},
	{"UpstreamErrors", "aupguard_proxy_upstream_errors_total", "Requests whose origin could not be reached.", counter},
	{"EmitErrors", "aupguard_proxy_emit_errors_total", "Misuse events and review requests the event pipeline did not take.", counter},
	{"Reviews", "aupguard_proxy_review_requests_total", "Review requests learners sent from the block page.", counter},
	{"TLSIntercepted", `aupguard_proxy_tls_connections_total{mode="intercepted"}`, tlsConnectionsHelp, counter},
	{"TLSSpliced", `aupguard_proxy_tls_connections_total{mode="spliced"}`, tlsConnectionsHelp, counter},
	{"TLSPinnedFallback", `aupguard_proxy_tls_connections_total{mode="pinned_fallback"}`, tlsConnectionsHelp, counter},
	{"TLSUpstreamCertRefused", `aupguard_proxy_tls_connections_total{mode="upstream_cert_refused"}`, tlsConnectionsHelp, counter},
	{"TLSClientRefusals", "aupguard_proxy_tls_client_refusals_total", "TLS handshakes in which a client rejected the interception certificate (no CA installed, or a pinning app).", counter},
}

// tlsConnectionsHelp is the help of the one labelled proxy metric: a name
// in the tables may carry constant labels as name{label="value"}.
const tlsConnectionsHelp = "CONNECT tunnels by how they were carried: intercepted (the client accepted the interception certificate), spliced (tunnelled untouched), pinned_fallback (tunnelled untouched because the client rejected the certificate for that host lately), upstream_cert_refused (intercepted, and an origin certificate failed verification; also counted as intercepted)."

// dnsMetrics export dnsfilter.Stats.
var dnsMetrics = []statMetric{
	{"Queries", "aupguard_dns_queries_total", "DNS requests the handler saw.", counter},
	{"Refused", "aupguard_dns_refused_total", "Queries from clients outside the served networks.", counter},
	{"RateLimited", "aupguard_dns_rate_limited_total", "Queries dropped by the per-client rate limit.", counter},
	{"Overloaded", "aupguard_dns_overloaded_total", "Queries dropped because max_inflight was reached.", counter},
	{"Malformed", "aupguard_dns_malformed_total", "Requests answered FORMERR, NOTIMP, BADVERS or REFUSED for their form.", counter},
	{"Blocked", "aupguard_dns_blocked_total", "Queries the policy blocked.", counter},
	{"CNAMEBlocked", "aupguard_dns_cname_blocked_total", "Blocked queries blocked for a name in the answer's CNAME chain (part of blocked).", counter},
	{"Alerts", "aupguard_dns_alerts_total", "Queries the policy allowed but marked for attention.", counter},
	{"DecisionErrors", "aupguard_dns_decision_errors_total", "Decisions made without a working policy (the fail-closed default).", counter},
	{"Special", "aupguard_dns_special_total", "DoH canary and iCloud Private Relay answers.", counter},
	{"Hosts", "aupguard_dns_hosts_answers_total", "Answers from the hosts overrides.", counter},
	{"SafeSearch", "aupguard_dns_safesearch_rewrites_total", "Safe-search rewrites.", counter},
	{"AnyMinimal", "aupguard_dns_any_minimal_total", "ANY queries given the RFC 8482 minimal answer.", counter},
	{"CacheHits", "aupguard_dns_cache_hits_total", "Answers from the response cache.", counter},
	{"CacheMisses", "aupguard_dns_cache_misses_total", "Response cache misses.", counter},
	{"CacheEntries", "aupguard_dns_cache_entries", "Responses held in the cache.", gauge},
	{"FastAnswers", "aupguard_dns_fast_answers_total", "Queries answered on the fast path from a stored reply (also counted as cache hits or blocks).", counter},
	{"UpstreamQueries", "aupguard_dns_upstream_queries_total", "Exchanges with upstream resolvers.", counter},
	{"UpstreamErrors", "aupguard_dns_upstream_errors_total", "Failed exchanges with upstream resolvers.", counter},
	{"UpstreamTCP", "aupguard_dns_upstream_tcp_retries_total", "Upstream retries over TCP after a truncated answer.", counter},
	{"ServFail", "aupguard_dns_servfail_total", "Queries answered SERVFAIL (every upstream failed, or an internal error).", counter},
	{"Truncated", "aupguard_dns_truncated_total", "UDP answers cut to the client's size with TC set.", counter},
	{"EventErrors", "aupguard_dns_event_errors_total", "Misuse events the event pipeline did not take.", counter},
	{"Panics", "aupguard_dns_panics_total", "Handler panics recovered (each one is a bug).", counter},
	{"EventsFolded", "aupguard_dns_events_folded_total", "Repeats of a block or alert within event_fold_window, counted instead of sent as events.", counter},
}

// ProxyCollector exports the proxy's counters (proxy.Stats) read at
// scrape time.
func ProxyCollector(stats func() proxy.Stats) prometheus.Collector {
	return newStatsCollector(proxyMetrics, func() any { return stats() })
}

// DNSCollector exports the DNS filter's counters (dnsfilter.Stats) read
// at scrape time.
func DNSCollector(stats func() dnsfilter.Stats) prometheus.Collector {
	return newStatsCollector(dnsMetrics, func() any { return stats() })
}

// statsCollector exports the fields its table names from a Stats struct,
// read once per scrape.
type statsCollector struct {
	table []statMetric
	desc  []*prometheus.Desc
	read  func() any
}

func newStatsCollector(table []statMetric, read func() any) *statsCollector {
	c := &statsCollector{table: table, read: read}
	for _, m := range table {
		name, labels := splitMetricName(m.name)
		c.desc = append(c.desc, prometheus.NewDesc(name, m.help, nil, labels))
	}
	return c
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.desc {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	v := reflect.ValueOf(c.read())
	for i, m := range c.table {
		f := v.FieldByName(m.field)
		var x float64
		switch f.Kind() {
		case reflect.Uint, reflect.Uint32, reflect.Uint64:
			x = float64(f.Uint())
		case reflect.Int, reflect.Int32, reflect.Int64:
			x = float64(f.Int())
		case reflect.Float64:
			x = f.Float()
		default:
			continue // a renamed field: the table test names it
		}
		ch <- prometheus.MustNewConstMetric(c.desc[i], m.kind, x)
	}
}

// revisionCollector exports the active policy and lists revisions as an
// info metric, so a fleet's convergence after a reload can be graphed.
type revisionCollector struct {
	d    Deps
	desc *prometheus.Desc
}

func newRevisionCollector(d Deps) *revisionCollector {
	return &revisionCollector{d: d, desc: prometheus.NewDesc("aupguard_revision_info", "The policy and lists revisions in force (always 1; the revisions are labels), so a fleet's convergence after a reload can be graphed.", []string{"policy", "lists"}, nil)}
}

func (c *revisionCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *revisionCollector) Collect(ch chan<- prometheus.Metric) {
	var pol, lists string
	if c.d.Policy != nil {
		pol = c.d.Policy.Current().Revision()
	}
	if c.d.Lists != nil {
		lists = c.d.Lists.Current().Revision()
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, 1, pol, lists)
}

// splitMetricName splits `name{key="value"}` into the name and its
// constant label (one at most); a plain name has none.
func splitMetricName(s string) (string, prometheus.Labels) {
	name, rest, ok := strings.Cut(s, "{")
	if !ok {
		return s, nil
	}
	k, v, _ := strings.Cut(strings.TrimSuffix(rest, "}"), "=")
	return name, prometheus.Labels{k: strings.Trim(v, `"`)}
}
