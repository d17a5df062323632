package app

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aupguard/aupguard/internal/testsmtp"
	"github.com/aupguard/aupguard/internal/testutil"
)

// End to end through the real decision path: a learner's request to a
// gambling site through the proxy is blocked, and the safeguarding team
// gets one e-mail (over STARTTLS, verified with ca_file) that names
// gambling and the host, with the reference the block page showed.
func TestGamblingBlockSendsOneEmail(t *testing.T) {
	ca := testsmtp.NewCA(t)
	relay := testsmtp.Start(t, testsmtp.Options{TLS: ca.Server})
	yaml := fmt.Sprintf(`instance: mail-e2e
data_dir: %s
lists: {mirror: %s}
admin: {listen: ""}
console: {listen: ""}
dns: {enabled: false}
policy: {watch: false, timezone: Europe/London}
proxy: {listen: "127.0.0.1:0", allow_destinations: [127.0.0.0/8]}
hosts: {www.pokerstars.com: [127.0.0.1]}
events:
  alerts:
    min_severity: low
    email:
      smtp: %s
      from: aupguard@school.example
      to: [dsl@school.example]
      ca_file: %s
      console_url: https://console.school.example
      backoff_min: 20ms
      backoff_max: 200ms
`, t.TempDir(), testutil.SharedData(t), relay.Addr(), ca.File)
	s := startServer(t, "mail-e2e.yaml", yaml)

	pu, _ := url.Parse("http://" + s.Proxy.Addr().String())
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}, Timeout: 10 * time.Second}
	resp, err := c.Get("http://www.pokerstars.com/poker/tables?seat=4")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ref := resp.Header.Get("X-Aupguard-Reference")
	if resp.StatusCode != http.StatusForbidden || ref == "" {
		t.Fatalf("proxy answered %d (reference %q); want the block page", resp.StatusCode, ref)
	}
	eventually(t, "the alert e-mail", func() bool { return len(relay.Messages()) >= 1 })
	eventually(t, "the e-mail stage to finish", func() bool {
		st := s.Events.Stats()
		return st.Sinks["alerts-email"].Processed >= 1 && st.EmailAlerts.Sent == 1
	})
	msgs := relay.Messages()
	if len(msgs) != 1 {
		t.Fatalf("relay got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if !m.TLS {
		t.Error("the alert was not sent over TLS")
	}
	subj := m.Subject()
	if !strings.HasPrefix(subj, "[aupguard] ") || !strings.Contains(subj, "gambling") {
		t.Errorf("subject %q does not name gambling", subj)
	}
	text := m.Part("text/plain")
	for _, want := range []string{"gambling", "www.pokerstars.com/poker/tables", ref, "https://console.school.example/events/" + ref} {
		if !strings.Contains(text, want) {
			t.Errorf("e-mail lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "seat=4") {
		t.Errorf("e-mail carries the query string:\n%s", text)
	}
}
