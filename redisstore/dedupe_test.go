package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
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

	type result struct {
		admit bool
		n     int
		err   error
	}
	call := func(d *Deduper, key string, window time.Duration) result {
		ok, n, err := d.Admit(ctx, key, window)
		return result{ok, n, err}
	}
	check := func(what string, got, want result) {
		t.Helper()
		if got != want {
			t.Fatalf("%s: Admit = %+v, want %+v", what, got, want)
		}
	}
	// The calls meant to fall inside the window must all do so, and a busy
	// machine can stretch them past any fixed window. A try whose calls
	// took longer than its window proves nothing either way: it is run
	// again on fresh keys with twice the window. The local clock bounds
	// the Redis clock's elapsed time from above (same machine), so a try
	// that is judged was inside the window.
	window := 300 * time.Millisecond
	for try := 0; ; try++ {
		key := fmt.Sprintf("user:jsmith%d|gambling", try)
		began := time.Now()
		first := call(a, key, window)
		fromB := call(b, key, window) // the other instance, same learner and category
		again := call(a, key, window)
		otherCategory := call(b, fmt.Sprintf("user:jsmith%d|adult", try), window)
		if elapsed := time.Since(began); elapsed >= window {
			if window >= time.Minute {
				t.Fatalf("four Admit calls took %v, longer than a %v window", elapsed, window)
			}
			t.Logf("four Admit calls took %v, not within the %v window: trying again with a longer one", elapsed, window)
			window *= 2
			continue
		}
		check("first", first, result{admit: true})
		check("other instance in the window", fromB, result{})
		check("same instance in the window", again, result{})
		check("another category", otherCategory, result{admit: true})

		// After the window by Redis's clock (the one the script reads), the
		// next alert goes out, carrying the count held back.
		waitRedisWindow(t, b, key, window)
		check("after the window", call(b, key, window), result{admit: true, n: 2})
		check("in the new window", call(a, key, window), result{})
		break
	}

	// Window 0 sends every alert.
	for range 3 {
		if ok, _, err := a.Admit(ctx, "user:other|gambling", 0); !ok || err != nil {
			t.Fatalf("window 0 suppressed (%v)", err)
		}
	}
}

// waitRedisWindow waits until Redis's clock is window past the time key's
// last alert was admitted.
func waitRedisWindow(t *testing.T, d *Deduper, key string, window time.Duration) {
	t.Helper()
	ctx := t.Context()
	deadline := time.Now().Add(time.Minute)
	for {
		sent, err := d.s.client.HGet(ctx, d.s.key("dd:", key), "sent").Int64()
		if err != nil {
			t.Fatalf("reading the admitted time of %q: %v", key, err)
		}
		now, err := d.s.client.Time(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		if now.UnixMilli()-sent >= window.Milliseconds() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis's clock did not pass %v after the admitted time", window)
		}
		time.Sleep(10 * time.Millisecond)
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
