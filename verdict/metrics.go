package verdict

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// decisionBuckets spread from a cache hit (microseconds) to a slow policy
// evaluation or a Redis round trip (tens of milliseconds), in seconds.
var decisionBuckets = []float64{
	5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1,
}

// latency is the decision-latency histogram, one child per enforcement
// point, looked up without a map on every decision.
type latency struct {
	vec                      *prometheus.HistogramVec
	proxy, dns, check, other prometheus.Observer
}

func newLatency() *latency {
	vec := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "aupguard_decision_duration_seconds",
		Help:    "Time to answer a policy decision (cache lookups and policy evaluation), by enforcement point. DNS answers the fast path gives from the cache (aupguard_dns_fast_answers_total) are not timed.",
		Buckets: decisionBuckets,
	}, []string{"source"})
	return &latency{
		vec:   vec,
		proxy: vec.WithLabelValues(string(SourceProxy)),
		dns:   vec.WithLabelValues(string(SourceDNS)),
		check: vec.WithLabelValues(string(SourceCheck)),
		other: vec.WithLabelValues("other"),
	}
}

func (l *latency) observe(s Source, began time.Time) {
	o := l.other
	switch s {
	case SourceProxy:
		o = l.proxy
	case SourceDNS:
		o = l.dns
	case SourceCheck:
		o = l.check
	}
	o.Observe(time.Since(began).Seconds())
}

var (
	mDecisions   = prometheus.NewDesc("aupguard_decider_decisions_total", "Decisions answered, from a verdict cache or by evaluating the policy.", nil, nil)
	mCacheHits   = prometheus.NewDesc("aupguard_decider_cache_hits_total", "Decisions answered from a verdict cache: l1 in process, l2 shared (Redis).", []string{"cache"}, nil)
	mEvaluations = prometheus.NewDesc("aupguard_decider_evaluations_total", "Policy evaluations run.", nil, nil)
	mCollapsed   = prometheus.NewDesc("aupguard_decider_collapsed_total", "Cache misses answered by an identical evaluation already running instead of their own.", nil, nil)
	mErrors      = prometheus.NewDesc("aupguard_decider_errors_total", "Evaluations that failed, answered with the fail-closed (or fail-open) default.", nil, nil)
	mEntries     = prometheus.NewDesc("aupguard_decider_cache_entries", "Verdicts held in the in-process cache.", nil, nil)
)

// Collector exposes the decider's counters and its decision-latency
// histogram (aupguard_decision_duration_seconds{source}) to Prometheus;
// the counters are read at scrape time from Stats.
func (d *Decider) Collector() prometheus.Collector { return deciderCollector{d} }

type deciderCollector struct{ d *Decider }

func (c deciderCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range []*prometheus.Desc{mDecisions, mCacheHits, mEvaluations, mCollapsed, mErrors, mEntries} {
		ch <- m
	}
	c.d.latency.vec.Describe(ch)
}

func (c deciderCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.d.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(mDecisions, s.Decisions)
	counter(mCacheHits, s.L1Hits, "l1")
	counter(mCacheHits, s.L2Hits, "l2")
	counter(mEvaluations, s.Evaluations)
	counter(mCollapsed, s.Collapsed)
	counter(mErrors, s.Errors)
	ch <- prometheus.MustNewConstMetric(mEntries, prometheus.GaugeValue, float64(s.CacheLen))
	c.d.latency.vec.Collect(ch)
}
