package redisstore

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exposes the store's counters as Prometheus metrics
// (aupguard_redis_*), read at scrape time.
func (s *Store) Collector() prometheus.Collector { return &collector{s: s} }

type collector struct{ s *Store }

var (
	mCacheReads    = prometheus.NewDesc("aupguard_redis_cache_reads_total", "Shared verdict cache reads by result: hit, miss, error (failed or timed out), skipped (breaker open).", []string{"result"}, nil)
	mCacheWrites   = prometheus.NewDesc("aupguard_redis_cache_writes_total", "Shared verdict cache writes by result: written, dropped (buffer full), failed (Redis failed or breaker open).", []string{"result"}, nil)
	mBreakerOpens  = prometheus.NewDesc("aupguard_redis_cache_breaker_opens_total", "Times the verdict cache breaker opened.", nil, nil)
	mBreakerOpen   = prometheus.NewDesc("aupguard_redis_cache_breaker_open", "1 while the verdict cache breaker is open.", nil, nil)
	mStreamAdded   = prometheus.NewDesc("aupguard_redis_stream_added_total", "Events added to the Redis stream.", nil, nil)
	mStreamDups    = prometheus.NewDesc("aupguard_redis_stream_duplicates_total", "Redelivered events already in the stream.", nil, nil)
	mStreamFails   = prometheus.NewDesc("aupguard_redis_stream_failures_total", "Failed stream delivery attempts (retried).", nil, nil)
	mStreamWakes   = prometheus.NewDesc("aupguard_redis_stream_wakes_total", "Times Redis answered again after a failed stream delivery and the retry was made at once instead of after its back-off.", nil, nil)
	mDedupe        = prometheus.NewDesc("aupguard_redis_dedupe_total", "Shared alert de-duplication answers by result: admitted, suppressed, error.", []string{"result"}, nil)
	mFanoutPub     = prometheus.NewDesc("aupguard_redis_fanout_published_total", "Reload announcements published.", nil, nil)
	mFanoutPubErr  = prometheus.NewDesc("aupguard_redis_fanout_publish_errors_total", "Failed publish attempts (retried).", nil, nil)
	mFanoutRecv    = prometheus.NewDesc("aupguard_redis_fanout_received_total", "Reload announcements received.", nil, nil)
	mFanoutReloads = prometheus.NewDesc("aupguard_redis_fanout_reloads_total", "Reloads started by another instance's announcement.", nil, nil)
	mFanoutRelErr  = prometheus.NewDesc("aupguard_redis_fanout_reload_errors_total", "Fanned-out reloads that failed.", nil, nil)
	mFanoutSubs    = prometheus.NewDesc("aupguard_redis_fanout_subscriptions_total", "Fan-out (re)subscriptions.", nil, nil)
)

// Describe sends every metric description.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mCacheReads, mCacheWrites, mBreakerOpens, mBreakerOpen, mStreamAdded, mStreamDups,
		mStreamFails, mStreamWakes, mDedupe, mFanoutPub, mFanoutPubErr, mFanoutRecv, mFanoutReloads, mFanoutRelErr, mFanoutSubs} {
		ch <- d
	}
}

// Collect reads the counters of the features that are on.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	if c.s.cache != nil {
		st := c.s.cache.Stats()
		counter(mCacheReads, st.Hits, "hit")
		counter(mCacheReads, st.Misses, "miss")
		counter(mCacheReads, st.Errors, "error")
		counter(mCacheReads, st.Skipped, "skipped")
		counter(mCacheWrites, st.Writes, "written")
		counter(mCacheWrites, st.Drops, "dropped")
		counter(mCacheWrites, st.WriteFailed, "failed")
		counter(mBreakerOpens, st.BreakerOpens)
		open := 0.0
		if st.BreakerOpen {
			open = 1
		}
		ch <- prometheus.MustNewConstMetric(mBreakerOpen, prometheus.GaugeValue, open)
	}
	if c.s.stream != nil {
		st := c.s.stream.Stats()
		counter(mStreamAdded, st.Added)
		counter(mStreamDups, st.Duplicates)
		counter(mStreamFails, st.Failures)
		counter(mStreamWakes, st.Wakes)
	}
	if c.s.dedupe != nil {
		st := c.s.dedupe.Stats()
		counter(mDedupe, st.Admitted, "admitted")
		counter(mDedupe, st.Suppressed, "suppressed")
		counter(mDedupe, st.Errors, "error")
	}
	if f := c.s.fanout.Load(); f != nil {
		st := f.Stats()
		counter(mFanoutPub, st.Published)
		counter(mFanoutPubErr, st.PublishErrors)
		counter(mFanoutRecv, st.Received)
		counter(mFanoutReloads, st.Reloads)
		counter(mFanoutRelErr, st.ReloadErrors)
		counter(mFanoutSubs, st.Subscriptions)
	}
}
