package redisstore

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aupguard/aupguard/events"
)

func TestDeduperSharesTheWindow(t *testing.T) {
	srv := startRedis(t, false)
	ctx := t.Context()
	a := newStore(t, testConfig(srv), "a").Deduper()
	b := newStore(t, testConfig(srv), "b").Deduper()
	var _ events.Deduper = a
	const window = 300 * time.Millisecond
	key := "user:jsmith|gambling"

	admit := func(d *Deduper, wantAdmit bool, wantSuppressed int) {
		t.Helper()
		ok, n, err := d.Admit(ctx, key, window)
		if err != nil || ok != wantAdmit || n != wantSuppressed {
			t.Fatalf("Admit = %v, %d, %v; want %v, %d", ok, n, err, wantAdmit, wantSuppressed)
		}
	}
	admit(a, true, 0)
	admit(b, false, 0) // the other instance, same learner and category
	admit(a, false, 0)
	if ok, _, _ := b.Admit(ctx, "user:jsmith|adult", window); !ok {
		t.Fatal("another category was suppressed")
	}
	// After the window the next alert goes out, carrying the count held back.
	time.Sleep(window + 50*time.Millisecond)
	admit(b, true, 2)
	admit(a, false, 0)

	// Window 0 sends every alert.
	for range 3 {
		if ok, _, err := a.Admit(ctx, "user:other|gambling", 0); !ok || err != nil {
			t.Fatalf("window 0 suppressed (%v)", err)
		}
	}
}

// The events pipeline asks before it delivers, so a process that stopped
// in between asks again for the same alert at its next start; the key it
// admitted in its earlier run must not suppress that alert.
func TestDeduperAdmitsAgainAfterARestart(t *testing.T) {
	srv := startRedis(t, false)
	ctx := t.Context()
	cfg := testConfig(srv)
	key := "ip:10.1.2.3|adult"
	first := newStore(t, cfg, "a")
	if ok, _, err := first.Deduper().Admit(ctx, key, time.Hour); !ok || err != nil {
		t.Fatalf("first admit: %v %v", ok, err)
	}
	first.Close()

	restarted := newStore(t, cfg, "a")
	if ok, _, err := restarted.Deduper().Admit(ctx, key, time.Hour); !ok || err != nil {
		t.Fatalf("the restarted instance's re-read alert was suppressed: %v %v", ok, err)
	}
	if ok, _, _ := restarted.Deduper().Admit(ctx, key, time.Hour); ok {
		t.Fatal("the restarted instance admitted a second alert in the window")
	}
	if ok, _, _ := newStore(t, cfg, "b").Deduper().Admit(ctx, key, time.Hour); ok {
		t.Fatal("another instance admitted an alert in the window")
	}
}

func TestDeduperReturnsErrorWhenRedisIsDown(t *testing.T) {
	srv := startRedis(t, false)
	s := newStore(t, testConfig(srv), "a")
	srv.Kill()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, _, err := s.Deduper().Admit(ctx, "user:x|gambling", time.Minute); err == nil {
		t.Fatal("no error with redis down")
	}
	if s.Deduper().Stats().Errors != 1 {
		t.Fatalf("stats %+v", s.Deduper().Stats())
	}
}

// alertReceiver is a real HTTP receiver for the alerts webhook, checking
// the signature as a safeguarding tool would.
type alertReceiver struct {
	t      *testing.T
	secret string
	srv    *httptest.Server

	mu     sync.Mutex
	alerts []events.Event
}

func newAlertReceiver(t *testing.T) *alertReceiver {
	r := &alertReceiver{t: t, secret: "alert-secret"}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil || !events.VerifySignature([]byte(r.secret), body, req.Header.Get("X-Aupguard-Signature")) {
			t.Errorf("alert with a bad signature (read error %v)", err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var batch []events.Event
		if err := json.Unmarshal(body, &batch); err != nil {
			t.Errorf("alert body: %v", err)
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.alerts = append(r.alerts, batch...)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *alertReceiver) received() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.alerts...)
}

// newPipeline starts an events pipeline whose alerts go to recv, with the
// Redis deduper (when d is not nil) and extra sinks.
func newPipeline(t *testing.T, dir, instance string, recv *alertReceiver, d events.Deduper, sinks ...events.Sink) *events.Pipeline {
	t.Helper()
	cfg := events.DefaultConfig()
	cfg.DataDir = dir
	cfg.Fsync = events.FsyncAlways
	if recv != nil {
		cfg.Alerts.Webhook.URL = recv.srv.URL + "/alerts"
		cfg.Alerts.Webhook.Secret = events.Secret(recv.secret)
		cfg.Alerts.Webhook.BackoffMin = 10 * time.Millisecond
		cfg.Alerts.Webhook.BackoffMax = 100 * time.Millisecond
	}
	p, err := events.New(cfg, instance, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if d != nil {
		must(t, p.SetDeduper(d))
	}
	for _, s := range sinks {
		must(t, p.AddSink(s))
	}
	must(t, p.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	return p
}

func alertEvent(user string) events.Event {
	return events.Event{
		Kind: events.KindBlock, Source: "proxy", Phase: "request", Action: "block", Category: "adult", Rule: "adult",
		Severity: "high", Alert: true, ClientIP: "10.1.2.3", User: user, Host: "adult.example", URL: "https://adult.example/",
	}
}

// A learner whose requests land on two instances raises one alert.
func TestSharedAlertDedupAcrossInstances(t *testing.T) {
	srv := startRedis(t, false)
	ctx := t.Context()
	recv := newAlertReceiver(t)
	cfg := testConfig(srv)
	pa := newPipeline(t, t.TempDir(), "a", recv, newStore(t, cfg, "a").Deduper())
	pb := newPipeline(t, t.TempDir(), "b", recv, newStore(t, cfg, "b").Deduper())

	must(t, pa.Emit(ctx, alertEvent("jsmith")))
	must(t, pb.Emit(ctx, alertEvent("jsmith")))
	must(t, pb.Emit(ctx, alertEvent("jsmith")))
	must(t, pa.Emit(ctx, alertEvent("adoe"))) // another learner: its own alert

	considered := func() uint64 { return pa.Stats().Alerts.Considered + pb.Stats().Alerts.Considered }
	eventually(t, "both alert stages to consider every event", func() bool {
		return considered() == 4 && pa.Stats().Sinks["alerts"].Processed == 2 && pb.Stats().Sinks["alerts"].Processed == 2
	})
	got := recv.received()
	users := map[string]int{}
	for _, a := range got {
		users[a.User]++
	}
	if len(got) != 2 || users["jsmith"] != 1 || users["adoe"] != 1 {
		t.Fatalf("received %d alerts %v, want one per learner", len(got), users)
	}
	if sup := pa.Stats().Alerts.Suppressed + pb.Stats().Alerts.Suppressed; sup != 2 {
		t.Fatalf("suppressed %d, want 2", sup)
	}

	// The same two pipelines with in-process de-duplication would each
	// have sent one: the shared store is what made it one.
	recv2 := newAlertReceiver(t)
	pc := newPipeline(t, t.TempDir(), "c", recv2, nil)
	pd := newPipeline(t, t.TempDir(), "d", recv2, nil)
	must(t, pc.Emit(ctx, alertEvent("jsmith")))
	must(t, pd.Emit(ctx, alertEvent("jsmith")))
	eventually(t, "the in-process control pair", func() bool { return len(recv2.received()) == 2 })
}

// With Redis down the pipeline sends the alert: fail towards telling staff.
func TestAlertIsSentWhenRedisIsDown(t *testing.T) {
	srv := startRedis(t, false)
	recv := newAlertReceiver(t)
	cfg := testConfig(srv)
	cfg.ReadTimeout = 200 * time.Millisecond
	cfg.DialTimeout = 200 * time.Millisecond
	p := newPipeline(t, t.TempDir(), "a", recv, newStore(t, cfg, "a").Deduper())
	srv.Kill()
	must(t, p.Emit(t.Context(), alertEvent("jsmith")))
	must(t, p.Emit(t.Context(), alertEvent("jsmith")))
	eventually(t, "the alerts", func() bool { return len(recv.received()) == 2 })
	if st := p.Stats().Alerts; st.DedupErrors != 2 || st.Suppressed != 0 {
		t.Fatalf("alert stats %+v", st)
	}
}
