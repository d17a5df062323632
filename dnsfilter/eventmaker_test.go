package dnsfilter

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/aupguard/aupguard/internal/testutil"
	"github.com/aupguard/aupguard/verdict"
)

// A blocked query writes the canonical decision line at Info, with the
// keys every enforcement point uses and the event's ID, so a DNS event's
// reference finds its line in the log: on the chain (the first query) and
// on the fast path (the repeat, answered from the stored block).
func TestBlockedQueryLogsTheDecisionWithItsEventID(t *testing.T) {
	logs := &testutil.SyncBuffer{}
	e := startEnv(t, func(c *Config, o *Options) {
		c.EventFoldWindow = 0 // the repeat must make its own event, on the fast path
		o.Decider = realCore(t)
		o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	for range 2 {
		if r := exchange(t, "udp", e.udp, question("casino.test", dns.TypeA)); len(r.Answer) == 0 {
			t.Fatalf("no block answer: %v", r)
		}
	}
	if st := e.srv.Stats(); st.FastAnswers != 1 {
		t.Errorf("fast answers = %d, want the repeat answered on the fast path", st.FastAnswers)
	}
	evs := e.rec.waitEvents(t, 2)
	for _, ev := range evs {
		var line map[string]any
		deadline := time.Now().Add(10 * time.Second)
		for line == nil && time.Now().Before(deadline) {
			for _, l := range strings.Split(logs.String(), "\n") {
				var m map[string]any
				if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "decision" && m["event_id"] == ev.ID {
					line = m
				}
			}
			if line == nil {
				time.Sleep(10 * time.Millisecond)
			}
		}
		if line == nil {
			t.Fatalf("no decision line with event_id %s:\n%s", ev.ID, logs.String())
		}
		for _, k := range verdict.DecisionLogKeys {
			if _, ok := line[k]; !ok {
				t.Errorf("decision line lacks %q: %v", k, line)
			}
		}
		if line["level"] != "INFO" || line["action"] != "block" || line["source"] != "dns" || line["qname"] != "casino.test" ||
			line["host"] != "casino.test" || line["client_ip"] != "127.0.0.1" || line["category"] != ev.Category {
			t.Errorf("decision line %v", line)
		}
	}
}
