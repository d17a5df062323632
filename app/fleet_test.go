package app

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/aupguard/aupguard/internal/testutil"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/internal/testredis"
)

// instance starts one aupguard (proxy only) sharing redisAddr and a policy
// directory with its peers, as a fleet behind a load balancer would.
func instance(t *testing.T, name, redisAddr, policyDir, alertURL string) *Server {
	t.Helper()
	yaml := fmt.Sprintf(`instance: %s
data_dir: %s
lists: {mirror: %s}
admin: {listen: ""}
console: {listen: ""}
dns: {enabled: false}
policy: {dir: %s, watch: false}
proxy: {listen: "127.0.0.1:0", allow_destinations: [127.0.0.0/8]}
hosts: {www.pokerstars.com: [127.0.0.1]}
events:
  alerts:
    window: 10m
    webhook: {url: "%s", secret: s3cret, backoff_min: 50ms, backoff_max: 200ms}
redis:
  enabled: true
  addrs: ["%s"]
  fanout: {enabled: true}
`, name, t.TempDir(), testutil.SharedData(t), policyDir, alertURL, redisAddr)
	s := startServer(t, name+".yaml", yaml)
	return s
}

func get(t *testing.T, s *Server, target string) int {
	t.Helper()
	pu, _ := url.Parse("http://" + s.Proxy.Addr().String())
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}, Timeout: 10 * time.Second}
	resp, err := c.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Two instances share one Redis: the second answers from Redis without
// evaluating, one learner's attempt on both raises one alert, and a policy
// reload on one reaches the other.
func TestFleetSharesVerdictsAlertsAndReloads(t *testing.T) {
	addr := testredis.Start(t)
	var mu sync.Mutex
	var alerts []events.Event
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var batch []events.Event
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &batch); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		alerts = append(alerts, batch...)
		mu.Unlock()
	}))
	defer hook.Close()
	policyDir := t.TempDir()
	a := instance(t, "site-a", addr, policyDir, hook.URL)
	b := instance(t, "site-b", addr, policyDir, hook.URL)

	if code := get(t, a, "http://www.pokerstars.com/"); code != http.StatusForbidden {
		t.Fatalf("site-a: %d", code)
	}
	// The verdict reaches Redis asynchronously.
	eventually(t, "the verdict in Redis", func() bool { return a.Redis.CacheStats().Writes > 0 })
	if code := get(t, b, "http://www.pokerstars.com/"); code != http.StatusForbidden {
		t.Fatalf("site-b: %d", code)
	}
	if st := b.Core.Decider.Stats(); st.L2Hits != 1 || st.Evaluations != 0 {
		t.Fatalf("site-b should answer from Redis without evaluating: %+v", st)
	}

	// Gambling is an alert: the same learner (client 127.0.0.1) on both
	// sites within the window raises one alert.
	// Wait until each instance's alert stage has decided on every event it
	// spooled (sent or suppressed), so a late duplicate cannot be missed;
	// then hold the webhook under watch a while longer for one sent anyway.
	eventually(t, "both alert stages to decide", func() bool {
		for _, s := range []*Server{a, b} {
			st := s.Events.Stats()
			if st.Spooled == 0 || st.Alerts.Considered == 0 || st.Sinks["alerts"].Processed < st.Spooled {
				return false
			}
		}
		return true
	})
	sa, sb := a.Events.Stats().Alerts, b.Events.Stats().Alerts
	if sent, supp := sa.Sent+sb.Sent, sa.Suppressed+sb.Suppressed; sent != 1 || supp != 1 {
		t.Fatalf("one learner and category across two instances: %d alerts sent, %d suppressed (site-a %+v, site-b %+v)", sent, supp, sa, sb)
	}
	eventually(t, "the alert at the webhook", func() bool { mu.Lock(); defer mu.Unlock(); return len(alerts) >= 1 })
	for quiet := time.Now().Add(time.Second); time.Now().Before(quiet); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := len(alerts)
		mu.Unlock()
		if n != 1 {
			t.Fatalf("%d alerts at the webhook for one learner and category across two instances", n)
		}
	}

	// A policy change activated on one instance reaches the other.
	before := b.Core.Engine.Current().Revision()
	if err := os.WriteFile(filepath.Join(policyDir, "local.rego"), []byte("package aupguard\n\n# fleet test\nlocal_marker := true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if changed, err := a.Core.Engine.Reload(context.Background(), "test"); err != nil || !changed {
		t.Fatalf("reload on site-a: %v %v", changed, err)
	}
	want := a.Core.Engine.Current().Revision()
	eventually(t, "site-b to reload", func() bool { return b.Core.Engine.Current().Revision() == want })
	if want == before {
		t.Fatal("revision did not change")
	}
}
