package admin

import (
	"reflect"
	"strings"
	"testing"

	"github.com/aupguard/aupguard/dnsfilter"
	"github.com/aupguard/aupguard/proxy"
)

// Every numeric field of a component's Stats is exported, under a name
// that follows the convention, and every table row names a real field: a
// counter added to a Stats struct is not silently missing from /metrics.
func TestStatsTablesCoverEveryField(t *testing.T) {
	for _, tc := range []struct {
		stats  any
		table  []statMetric
		prefix string
	}{
		{proxy.Stats{}, proxyMetrics, "aupguard_proxy_"},
		{dnsfilter.Stats{}, dnsMetrics, "aupguard_dns_"},
	} {
		typ := reflect.TypeOf(tc.stats)
		inTable := map[string]statMetric{}
		for _, m := range tc.table {
			inTable[m.field] = m
			f, ok := typ.FieldByName(m.field)
			if !ok {
				t.Errorf("%s: %s names no field of %s", m.name, m.field, typ)
				continue
			}
			signed := f.Type.Kind() >= reflect.Int && f.Type.Kind() <= reflect.Int64
			m.name, _ = splitMetricName(m.name)
			if !strings.HasPrefix(m.name, tc.prefix) {
				t.Errorf("%s does not start with %s", m.name, tc.prefix)
			}
			if (m.kind == counter) != strings.HasSuffix(m.name, "_total") {
				t.Errorf("%s: counters, and only counters, end in _total", m.name)
			}
			if m.kind == counter && signed {
				t.Errorf("%s: a signed field (%s) is a gauge", m.name, m.field)
			}
			if len(m.help) < 15 {
				t.Errorf("%s: help %q says too little", m.name, m.help)
			}
		}
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			switch f.Type.Kind() {
			case reflect.Uint, reflect.Uint32, reflect.Uint64, reflect.Int, reflect.Int32, reflect.Int64, reflect.Float64:
				if _, ok := inTable[f.Name]; !ok {
					t.Errorf("%s.%s is not exported on /metrics: add it to the table in admin/metrics.go", typ, f.Name)
				}
			}
		}
	}
}
