package app

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/aupguard/aupguard/internal/testredis"
	"github.com/aupguard/aupguard/internal/testutil"
)

// The running server's /metrics passes promlint (Prometheus' own naming
// and help-text rules), and both enforcement points have their decision
// latency histogram once they have decided something.
func TestMetricsExpositionIsLintClean(t *testing.T) {
	yaml := fmt.Sprintf(`instance: lint
data_dir: %s
lists: {mirror: %s}
admin: {listen: "127.0.0.1:0"}
dns: {enabled: true, listen: "127.0.0.1:0", upstreams: ["127.0.0.1:9"], udp_sockets: 1}
proxy: {listen: "127.0.0.1:0", allow_destinations: [127.0.0.0/8]}
hosts: {www.pokerstars.com: [127.0.0.1]}
redis: {enabled: true, addrs: ["%s"]}
`, t.TempDir(), testutil.SharedData(t), testredis.Start(t))
	s := startServer(t, "lint.yaml", yaml)

	// One decision through each enforcement point.
	if code := get(t, s, "http://www.pokerstars.com/"); code != http.StatusForbidden {
		t.Fatalf("proxy: %d, want the block", code)
	}
	udp, _ := s.DNS.Addr()
	m := new(dns.Msg)
	m.SetQuestion("pokerstars.com.", dns.TypeA) // not in hosts: the policy answers
	if _, _, err := new(dns.Client).Exchange(m, udp.String()); err != nil {
		t.Fatalf("dns: %v", err)
	}

	resp, err := http.Get((&url.URL{Scheme: "http", Host: s.AdminAddr().String(), Path: "/metrics"}).String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatalf("promlint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	for _, want := range []string{
		`aupguard_decision_duration_seconds_count{source="proxy"} 1`,
		`aupguard_decision_duration_seconds_count{source="dns"} 1`,
		"aupguard_proxy_blocked_total 1",
		`aupguard_proxy_tls_connections_total{mode="intercepted"} 0`,
		`aupguard_proxy_tls_connections_total{mode="spliced"} 0`,
		"aupguard_dns_blocked_total 1",
		"aupguard_events_emit_timeouts_total 0",
		"aupguard_redis_cache_reads_total",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Each component's README names every metric it exports, in a
	// "Metrics" section.
	readmes := map[string]string{
		"aupguard_proxy_": "../proxy/README.md", "aupguard_dns_": "../dnsfilter/README.md",
		"aupguard_events_": "../events/README.md", "aupguard_redis_": "../redisstore/README.md",
		"aupguard_decider_": "../verdict/README.md", "aupguard_decision_": "../verdict/README.md",
		"aupguard_lists_": "../categories/README.md",
	}
	for _, line := range strings.Split(string(body), "\n") {
		name, ok := strings.CutPrefix(line, "# TYPE ")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, " ")
		for prefix, readme := range readmes {
			if !strings.HasPrefix(name, prefix) {
				continue
			}
			doc, err := os.ReadFile(readme)
			if err != nil {
				t.Fatal(err)
			}
			_, section, found := strings.Cut(string(doc), "\n## Metrics\n")
			section, _, _ = strings.Cut(section, "\n## ")
			if !found || !strings.Contains(section, "`"+name+"`") && !strings.Contains(section, "`"+name+"{") {
				t.Errorf("%s: the Metrics section does not name %s", readme, name)
			}
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}
