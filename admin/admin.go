// Package admin is the operators' HTTP listener: liveness and readiness
// probes, Prometheus metrics, and a JSON status API (policy revision and
// its change history, list sources, counters). It listens on the admin
// address only, which the proxy refuses to reach, and its API needs a
// bearer token or an admin's staff account (see Auth).
package admin

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aupguard/aupguard/categories"
	"github.com/aupguard/aupguard/rego"
)

// Deps are what the admin listener reports on. Nil parts are left out.
type Deps struct {
	Policy *rego.Engine
	Lists  *categories.Manager
	// Stats are named counter sources ("decider", "proxy", "dns",
	// "events"), each returning a struct; all are shown on /api/stats.
	Stats map[string]func() any
	// Collectors are the components' Prometheus collectors (the
	// decider's, ProxyCollector, DNSCollector, the event pipeline's, ...),
	// exported on /metrics with the Go and process collectors.
	Collectors []prometheus.Collector
	// Ready reports whether the instance should receive traffic.
	Ready func() error
	// Degraded says what the instance is running without (list sources
	// that could not be had…), "" when nothing. A degraded instance is
	// still ready: a filter with fewer lists is better than no filter.
	Degraded func() string
	// Started is when the process started.
	Started time.Time
	// Auth guards everything but the probes (and /metrics unless
	// admin.auth.metrics); nil serves without authentication, which only
	// admin.auth.disabled: true should lead to.
	Auth *Auth
}

// Handler returns the admin listener's routes.
func Handler(d Deps) (http.Handler, error) {
	reg := prometheus.NewRegistry()
	cs := []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newRevisionCollector(d),
	}
	cs = append(cs, d.Collectors...)
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if d.Ready != nil {
			if err := d.Ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte("not ready: " + err.Error() + "\n"))
				return
			}
		}
		if d.Degraded != nil {
			if why := d.Degraded(); why != "" {
				w.Write([]byte("ready, degraded: " + why + "\n"))
				return
			}
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /api/policy", func(w http.ResponseWriter, _ *http.Request) {
		if d.Policy == nil {
			http.NotFound(w, nil)
			return
		}
		p := d.Policy.Current()
		writeJSON(w, map[string]any{
			"revision":     p.Revision(),
			"activated_at": p.Activated(),
			"files":        p.Files(),
			"history":      d.Policy.History(),
		})
	})
	mux.HandleFunc("GET /api/lists", func(w http.ResponseWriter, _ *http.Request) {
		if d.Lists == nil {
			http.NotFound(w, nil)
			return
		}
		idx := d.Lists.Current()
		writeJSON(w, map[string]any{
			"revision": idx.Revision(),
			"built_at": idx.BuiltAt(),
			"names":    idx.Len(),
			"status":   d.Lists.Sources(),
			"sources":  idx.Stats(),
		})
	})
	mux.HandleFunc("GET /api/stats", func(w http.ResponseWriter, _ *http.Request) {
		out := map[string]any{"uptime_s": int(time.Since(d.Started).Seconds())}
		for name, fn := range d.Stats {
			out[name] = fn()
		}
		writeJSON(w, out)
	})
	if d.Auth != nil {
		return d.Auth.Wrap(mux), nil
	}
	return mux, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
