package app

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aupguard/aupguard/internal/testutil"
)

// serve with the defaults trains the name model in the background after
// the lists load, exports its metrics, and once the model is in force a
// spam casino no list names is blocked for a learner through the proxy.
func TestServeTrainsNameModel(t *testing.T) {
	yaml := fmt.Sprintf(`instance: model
data_dir: %s
lists: {mirror: %s}
admin: {listen: "127.0.0.1:0"}
console: {listen: ""}
dns: {enabled: false}
proxy: {listen: "127.0.0.1:0", allow_destinations: [127.0.0.0/8]}
hosts: {bengalwincasino.com: [127.0.0.1]}
`, t.TempDir(), testutil.SharedData(t))
	s := startServer(t, "model.yaml", yaml)
	if s.Core.Model == nil || s.pages == nil {
		t.Fatal("name model or page scoring off by default")
	}
	metrics := func() string {
		resp, err := http.Get((&url.URL{Scheme: "http", Host: s.AdminAddr().String(), Path: "/metrics"}).String())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	deadline := time.Now().Add(5 * time.Minute) // seconds on an idle machine; this one is shared
	for s.Core.Model.Current() == nil {
		if time.Now().After(deadline) {
			t.Fatal("no model trained within 5 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	body := metrics()
	for _, want := range []string{"aupguard_namemodel_trained_timestamp ", `aupguard_namemodel_names{kind="benign"}`, `aupguard_namemodel_trainings_total{outcome="ok"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if got := s.Core.Model.Current().ListsRevision; got != s.Core.Lists.Current().Revision() {
		t.Errorf("model of lists %s, lists in force %s", got, s.Core.Lists.Current().Revision())
	}
	if code := get(t, s, "http://bengalwincasino.com/"); code != http.StatusForbidden {
		t.Errorf("bengalwincasino.com through the proxy: %d, want the model's block", code)
	}
}
