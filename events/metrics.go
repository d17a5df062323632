package events

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exposes Stats as Prometheus metrics (aupguard_events_*),
// read at scrape time so there is no second set of counters to keep.
func (p *Pipeline) Collector() prometheus.Collector { return &collector{p: p} }

type collector struct{ p *Pipeline }

var (
	mEmitted     = prometheus.NewDesc("aupguard_events_emitted_total", "Events queued by Emit.", nil, nil)
	mSpooled     = prometheus.NewDesc("aupguard_events_spooled_total", "Events written to the spool.", nil, nil)
	mOverflow    = prometheus.NewDesc("aupguard_events_overflow_total", "Events refused because the queue stayed full.", nil, nil)
	mEmitTimeout = prometheus.NewDesc("aupguard_events_emit_timeouts_total", "Events refused after waiting emit_timeout for room in a full queue (also counted in overflow).", nil, nil)
	mRefused     = prometheus.NewDesc("aupguard_events_refused_total", "Events emitted after Close.", nil, nil)
	mLost        = prometheus.NewDesc("aupguard_events_lost_total", "Events queued but never written (shutdown during a failing disk).", nil, nil)
	mSpoolWrites = prometheus.NewDesc("aupguard_events_spool_writes_total", "Write calls appending events to the spool (spooled ÷ writes is the mean batch).", nil, nil)
	mSpoolErrors = prometheus.NewDesc("aupguard_events_spool_errors_total", "Failed spool writes and fsyncs.", nil, nil)
	mQueued      = prometheus.NewDesc("aupguard_events_queue_length", "Events waiting for the spool writer.", nil, nil)
	mFiles       = prometheus.NewDesc("aupguard_events_spool_files", "Spool files on disk.", nil, nil)
	mBytes       = prometheus.NewDesc("aupguard_events_spool_bytes", "Bytes of spool files on disk.", nil, nil)
	mProcessed   = prometheus.NewDesc("aupguard_events_sink_processed_total", "Events a stage has read from the spool and finished with.", []string{"sink"}, nil)
	mDelivered   = prometheus.NewDesc("aupguard_events_sink_delivered_total", "Events a sink accepted.", []string{"sink"}, nil)
	mFailures    = prometheus.NewDesc("aupguard_events_sink_failures_total", "Failed delivery attempts.", []string{"sink"}, nil)
	mRejected    = prometheus.NewDesc("aupguard_events_sink_rejected_total", "Delivery attempts the receiver refused (4xx).", []string{"sink"}, nil)
	mCorrupt     = prometheus.NewDesc("aupguard_events_sink_corrupt_lines_total", "Bad spool lines skipped.", []string{"sink"}, nil)
	mCursorErrs  = prometheus.NewDesc("aupguard_events_sink_cursor_errors_total", "Failed cursor saves.", []string{"sink"}, nil)
	mLastOK      = prometheus.NewDesc("aupguard_events_sink_last_delivery_timestamp_seconds", "Time of the last accepted delivery.", []string{"sink"}, nil)
	mConsidered  = prometheus.NewDesc("aupguard_events_alerts_considered_total", "Events that met the alert threshold.", nil, nil)
	mSuppressed  = prometheus.NewDesc("aupguard_events_alerts_suppressed_total", "Alerts de-duplicated.", nil, nil)
	mSent        = prometheus.NewDesc("aupguard_events_alerts_sent_total", "Alerts delivered to the alerts webhook.", nil, nil)
	mDedupErrs   = prometheus.NewDesc("aupguard_events_alerts_dedup_errors_total", "De-duplication failures (the alert was sent).", nil, nil)
)

// Describe sends every metric description.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mEmitted, mSpooled, mOverflow, mEmitTimeout, mRefused, mLost, mSpoolWrites, mSpoolErrors, mQueued, mFiles, mBytes,
		mProcessed, mDelivered, mFailures, mRejected, mCorrupt, mCursorErrs, mLastOK, mConsidered, mSuppressed, mSent, mDedupErrs} {
		ch <- d
	}
}

// Collect reads Stats once per scrape.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.p.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(mEmitted, s.Emitted)
	counter(mSpooled, s.Spooled)
	counter(mOverflow, s.Overflow)
	counter(mEmitTimeout, s.EmitTimeouts)
	counter(mRefused, s.Refused)
	counter(mLost, s.Lost)
	counter(mSpoolWrites, s.SpoolWrites)
	counter(mSpoolErrors, s.SpoolErrors)
	gauge(mQueued, float64(s.Queued))
	gauge(mFiles, float64(s.SpoolFiles))
	gauge(mBytes, float64(s.SpoolBytes))
	for name, ss := range s.Sinks {
		counter(mProcessed, ss.Processed, name)
		counter(mDelivered, ss.Delivered, name)
		counter(mFailures, ss.Failures, name)
		counter(mRejected, ss.Rejected, name)
		counter(mCorrupt, ss.CorruptLines, name)
		counter(mCursorErrs, ss.CursorErrors, name)
		if !ss.LastDelivery.IsZero() {
			gauge(mLastOK, float64(ss.LastDelivery.UnixNano())/1e9, name)
		}
	}
	if c.p.alerts != nil {
		counter(mConsidered, s.Alerts.Considered)
		counter(mSuppressed, s.Alerts.Suppressed)
		counter(mSent, s.Alerts.Sent)
		counter(mDedupErrs, s.Alerts.DedupErrors)
	}
}
