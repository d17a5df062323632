package console

import (
	"reflect"
	"strings"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
)

// statsCollector exports the numeric fields of a component's Stats struct
// as metrics named aupguard_<component>_<field>: unsigned fields are
// counters, signed ones gauges. One generic collector keeps every
// component's counters on /metrics without each package depending on
// Prometheus.
type statsCollector struct {
	name string
	fn   func() any
	desc map[string]*prometheus.Desc
}

func newStatsCollector(name string, fn func() any) *statsCollector {
	c := &statsCollector{name: name, fn: fn, desc: map[string]*prometheus.Desc{}}
	t := reflect.TypeOf(fn())
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !numeric(f.Type.Kind()) {
			continue
		}
		m := "aupguard_" + name + "_" + metricName(f)
		c.desc[f.Name] = prometheus.NewDesc(m, name+" "+strings.ReplaceAll(metricName(f), "_", " "), nil, nil)
	}
	return c
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.desc {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	v := reflect.ValueOf(c.fn())
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	for name, d := range c.desc {
		f := v.FieldByName(name)
		switch f.Kind() {
		case reflect.Uint, reflect.Uint32, reflect.Uint64:
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(f.Uint()))
		case reflect.Int, reflect.Int32, reflect.Int64:
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(f.Int()))
		case reflect.Float64:
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, f.Float())
		}
	}
}

func numeric(k reflect.Kind) bool {
	switch k {
	case reflect.Uint, reflect.Uint32, reflect.Uint64, reflect.Int, reflect.Int32, reflect.Int64, reflect.Float64:
		return true
	}
	return false
}

// metricName is the field's JSON name, or its Go name in snake case.
func metricName(f reflect.StructField) string {
	if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag != "" && tag != "-" {
		return tag
	}
	var b strings.Builder
	rs := []rune(f.Name)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]))) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// revisionCollector exports the active policy and lists revisions as an
// info metric, so a fleet's convergence after a reload can be graphed.
type revisionCollector struct {
	d    Deps
	desc *prometheus.Desc
}

func newRevisionCollector(d Deps) *revisionCollector {
	return &revisionCollector{d: d, desc: prometheus.NewDesc("aupguard_revision_info", "active policy and lists revisions", []string{"policy", "lists"}, nil)}
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
