package events

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestCollector(t *testing.T) {
	rcv := newReceiver(t, testSecret)
	cfg := withWebhook(testConfig(t), rcv.url())
	cfg.Alerts.Webhook.URL = rcv.url()
	cfg.Alerts.Webhook.Secret = testSecret
	p := start(t, cfg, nil)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(p.Collector()); err != nil {
		t.Fatal(err)
	}
	ids := emitN(t, p, 4)
	eventually(t, "delivery", func() bool { return p.Stats().Sinks["webhook"].Delivered == uint64(len(ids)) })
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case m.GetCounter() != nil:
				values[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				values[key] = m.GetGauge().GetValue()
			}
		}
	}
	for key, want := range map[string]float64{
		"aupguard_events_emitted_total":                      4,
		"aupguard_events_spooled_total":                      4,
		"aupguard_events_overflow_total":                     0,
		"aupguard_events_emit_timeouts_total":                0,
		"aupguard_events_sink_delivered_total{sink=webhook}": 4,
		"aupguard_events_alerts_sent_total":                  0,
	} {
		if got, ok := values[key]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", key, got, ok, want)
		}
	}
	if w := values["aupguard_events_spool_writes_total"]; w < 1 || w > 4 {
		t.Errorf("aupguard_events_spool_writes_total = %v, want 1 to 4 for 4 events", w)
	}
	if values["aupguard_events_spool_files"] < 1 {
		t.Error("no spool files reported")
	}
}
