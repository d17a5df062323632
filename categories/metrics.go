package categories

import "github.com/prometheus/client_golang/prometheus"

// Collector exports the lists' standing for Prometheus: whether each
// source has a copy in force, how many have none, and how many names are
// indexed. Alert on aupguard_lists_sources_missing > 0 for a while.
func (m *Manager) Collector() prometheus.Collector { return listsCollector{m} }

type listsCollector struct{ m *Manager }

var (
	sourceUpDesc = prometheus.NewDesc("aupguard_lists_source_up",
		"Whether a copy of the list source is in force (1), fresh or the last good download, or none could be had (0).",
		[]string{"source", "state"}, nil)
	missingDesc = prometheus.NewDesc("aupguard_lists_sources_missing",
		"List sources of which no copy could be had (the filter runs with fewer lists).", nil, nil)
	namesDesc = prometheus.NewDesc("aupguard_lists_names",
		"Distinct host names and addresses in the index in force.", nil, nil)
)

func (c listsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sourceUpDesc
	ch <- missingDesc
	ch <- namesDesc
}

func (c listsCollector) Collect(ch chan<- prometheus.Metric) {
	missing := 0
	for _, s := range c.m.Sources() {
		up := 0.0
		if s.Loaded() {
			up = 1
		} else {
			missing++
		}
		ch <- prometheus.MustNewConstMetric(sourceUpDesc, prometheus.GaugeValue, up, s.Name, s.State)
	}
	ch <- prometheus.MustNewConstMetric(missingDesc, prometheus.GaugeValue, float64(missing))
	ch <- prometheus.MustNewConstMetric(namesDesc, prometheus.GaugeValue, float64(c.m.Current().Len()))
}
