package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// readSpoolFiles reads every spool file in order, failing the test on a
// line that is not a complete JSON event; it returns the IDs.
func readSpoolFiles(t *testing.T, dir string) (ids []string, files int) {
	t.Helper()
	seqs, err := listSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range seqs {
		b, err := os.ReadFile(filepath.Join(dir, spoolName(seq)))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Errorf("%s does not end in a newline", spoolName(seq))
		}
		for i, line := range bytes.Split(bytes.TrimSuffix(b, []byte{'\n'}), []byte{'\n'}) {
			if len(line) == 0 && len(b) == 0 {
				continue
			}
			var ev Event
			if err := json.Unmarshal(line, &ev); err != nil {
				t.Errorf("%s:%d: not valid JSON: %v", spoolName(seq), i+1, err)
				continue
			}
			ids = append(ids, ev.ID)
		}
	}
	return ids, len(seqs)
}

func TestSpoolSurvivesRestart(t *testing.T) {
	cfg := testConfig(t)
	for _, mode := range []FsyncMode{FsyncAlways, FsyncInterval, FsyncNever} {
		t.Run(string(mode), func(t *testing.T) {
			cfg := cfg
			cfg.DataDir = t.TempDir()
			cfg.Fsync = mode
			p := start(t, cfg, nil)
			want := emitN(t, p, 200)
			closeP(t, p)

			got, files := readSpoolFiles(t, p.Dir())
			if !slices.Equal(got, want) {
				t.Fatalf("spool holds %d events, want the %d emitted, in order", len(got), len(want))
			}
			st := p.Stats()
			if st.Emitted != 200 || st.Spooled != 200 || st.Overflow != 0 || st.Lost != 0 {
				t.Errorf("stats = %+v", st)
			}

			// A new pipeline on the same data_dir keeps the old file and
			// writes a new one after it.
			p2 := start(t, cfg, nil)
			more := emitN(t, p2, 3)
			closeP(t, p2)
			got, files2 := readSpoolFiles(t, p2.Dir())
			if files2 != files+1 {
				t.Errorf("after restart %d spool files, want %d", files2, files+1)
			}
			if !slices.Equal(got, append(want, more...)) {
				t.Errorf("after restart the spool does not hold both runs' events in order")
			}
		})
	}
}

func TestSpoolRotation(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxFileSize = 1 << 10
	p := start(t, cfg, nil)
	want := emitN(t, p, 100)
	closeP(t, p)
	got, files := readSpoolFiles(t, p.Dir())
	if !slices.Equal(got, want) {
		t.Fatalf("rotated spool lost or reordered events: %d of %d", len(got), len(want))
	}
	if files < 10 {
		t.Errorf("%d spool files for 100 events at 1KiB per file, want rotation", files)
	}
	seqs, _ := listSpool(p.Dir())
	for _, seq := range seqs {
		fi, err := os.Stat(filepath.Join(p.Dir(), spoolName(seq)))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > int64(cfg.MaxFileSize) {
			t.Errorf("%s is %d bytes, over max_file_size %d", spoolName(seq), fi.Size(), cfg.MaxFileSize)
		}
	}
}

func TestWebhookDownThenUp(t *testing.T) {
	for _, mode := range []FsyncMode{FsyncAlways, FsyncInterval, FsyncNever} {
		t.Run(string(mode), func(t *testing.T) {
			rcv := newReceiver(t, testSecret)
			rcv.mode.Store(modeDown)
			cfg := withWebhook(testConfig(t), rcv.url())
			cfg.Fsync = mode
			cfg.FsyncInterval = 20 * time.Millisecond
			cfg.MaxFileSize = 4 << 10 // delivery crosses files
			p := start(t, cfg, nil)
			ids := emitN(t, p, 60)
			eventually(t, "delivery attempts against the 503", func() bool { return p.Stats().Sinks["webhook"].Failures >= 10 })
			if n := rcv.unique(); n != 0 {
				t.Fatalf("receiver accepted %d events while down", n)
			}
			rcv.mode.Store(modeUp)
			eventually(t, "all events delivered", func() bool { return rcv.unique() == len(ids) })
			ids = append(ids, emitN(t, p, 15)...)
			eventually(t, "later events delivered", func() bool { return rcv.unique() == len(ids) })
			closeP(t, p)
			rcv.expectExactlyOnce(ids)
			rcv.checkProtocol()
			st := p.Stats().Sinks["webhook"]
			if st.Delivered != uint64(len(ids)) || st.Rejected != 0 || st.LastError == "" {
				t.Errorf("webhook stats = %+v", st)
			}
			// Delivery order follows the spool.
			_, accepted, _ := rcv.snapshot()
			for i := range accepted {
				if accepted[i].ID != ids[i] {
					t.Fatalf("delivery #%d is %s, want %s (spool order)", i, accepted[i].ID, ids[i])
				}
			}
		})
	}
}

func TestWebhookConnectionRefusedThenUp(t *testing.T) {
	// Reserve a port, then free it: connections are refused until the
	// receiver starts listening there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	rcv := &receiver{t: t, secret: []byte(testSecret), counts: map[string]int{}}
	cfg := withWebhook(testConfig(t), "http://"+addr+"/hook")
	p := start(t, cfg, nil)
	ids := emitN(t, p, 30)
	eventually(t, "refused connections", func() bool { return p.Stats().Sinks["webhook"].Failures >= 3 })
	if msg := p.Stats().Sinks["webhook"].LastError; !strings.Contains(msg, "refused") {
		t.Errorf("last error %q does not say the connection was refused", msg)
	}

	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen again on %s: %v", addr, err)
	}
	rcv.srv = httptest.NewUnstartedServer(rcv)
	rcv.srv.Listener.Close()
	rcv.srv.Listener = l
	rcv.srv.Start()
	t.Cleanup(rcv.srv.Close)

	eventually(t, "all events delivered", func() bool { return rcv.unique() == len(ids) })
	closeP(t, p)
	rcv.expectExactlyOnce(ids)
	rcv.checkProtocol()
}

func TestDeliveryResumesAcrossRestart(t *testing.T) {
	rcv := newReceiver(t, testSecret)
	cfg := withWebhook(testConfig(t), rcv.url())
	cfg.MaxFileSize = 2 << 10

	// Run 1: some events delivered, then the receiver goes down and more
	// events pile up in the spool.
	p1 := start(t, cfg, nil)
	ids := emitN(t, p1, 20)
	eventually(t, "run 1 delivery", func() bool { return rcv.unique() == 20 })
	rcv.mode.Store(modeDown)
	ids = append(ids, emitN(t, p1, 30)...)
	eventually(t, "run 1 failures", func() bool { return p1.Stats().Sinks["webhook"].Failures >= 2 })
	closeP(t, p1)

	// Run 2 starts with the receiver still down, emits more, then the
	// receiver comes back.
	p2 := start(t, cfg, nil)
	ids = append(ids, emitN(t, p2, 10)...)
	eventually(t, "run 2 failures", func() bool { return p2.Stats().Sinks["webhook"].Failures >= 2 })
	if n := rcv.unique(); n != 20 {
		t.Fatalf("receiver has %d events while down, want 20", n)
	}
	rcv.mode.Store(modeUp)
	eventually(t, "run 2 delivery", func() bool { return rcv.unique() == len(ids) })
	closeP(t, p2)

	// Run 3: nothing new; a clean restart resends nothing.
	reqs := rcv.requestCount()
	p3 := start(t, cfg, nil)
	ids = append(ids, emitN(t, p3, 1)...)
	eventually(t, "run 3 delivery", func() bool { return rcv.unique() == len(ids) })
	closeP(t, p3)
	if got := rcv.requestCount() - reqs; got != 1 {
		t.Errorf("run 3 made %d requests for one new event, want 1 (a clean restart resends nothing)", got)
	}
	rcv.expectExactlyOnce(ids)
	rcv.checkProtocol()
}

func TestCorruptSpoolLinesAreReportedAndSkipped(t *testing.T) {
	cfg := testConfig(t)
	p1 := start(t, cfg, nil)
	first := emitN(t, p1, 10)
	closeP(t, p1)

	// Simulate damage and a crash mid-append: a garbage line, a valid
	// event, then half an event with no newline.
	path := filepath.Join(p1.Dir(), spoolName(1))
	good := testEvent("jsmith", "gambling", "high")
	good.ID = NewID()
	good.Time = time.Now().UTC()
	goodLine, _ := json.Marshal(good)
	half, _ := json.Marshal(testEvent("jsmith", "gambling", "high"))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("this is not json\n")
	f.Write(append(goodLine, '\n'))
	f.Write(half[:len(half)/2])
	f.Close()

	rcv := newReceiver(t, testSecret)
	logger, logs := newLogger(t)
	p2 := start(t, withWebhook(cfg, rcv.url()), logger)
	later := emitN(t, p2, 10)
	want := append(append(first, good.ID), later...)
	eventually(t, "delivery past the corrupt lines", func() bool { return rcv.unique() == len(want) })
	closeP(t, p2)
	rcv.expectExactlyOnce(want)
	rcv.checkProtocol()

	if n := p2.Stats().Sinks["webhook"].CorruptLines; n != 2 {
		t.Errorf("corrupt lines = %d, want 2", n)
	}
	out := logs.String()
	for _, at := range []string{path + ":11", path + ":13"} {
		if !strings.Contains(out, at) {
			t.Errorf("log does not name %s:\n%s", at, out)
		}
	}
	if !strings.Contains(out, "truncated line") {
		t.Errorf("log does not report the truncated line:\n%s", out)
	}
}

func TestRejectedBatchIsRetriedNotDropped(t *testing.T) {
	rcv := newReceiver(t, testSecret)
	rcv.mode.Store(modeReject)
	logger, logs := newLogger(t)
	p := start(t, withWebhook(testConfig(t), rcv.url()), logger)
	ids := emitN(t, p, 12)
	eventually(t, "rejections", func() bool { return p.Stats().Sinks["webhook"].Rejected >= 3 })
	rcv.mode.Store(modeUp)
	eventually(t, "delivery after the receiver is fixed", func() bool { return rcv.unique() == len(ids) })
	closeP(t, p)
	rcv.expectExactlyOnce(ids)
	if !strings.Contains(logs.String(), "level=ERROR msg=\"events: receiver rejected a batch") {
		t.Errorf("rejection was not logged at error level:\n%s", logs.String())
	}
	if !strings.Contains(p.Stats().Sinks["webhook"].LastError, "HTTP 400") {
		t.Errorf("last error = %q", p.Stats().Sinks["webhook"].LastError)
	}
}

func TestWrongSecretIsRejectedLoudly(t *testing.T) {
	rcv := newReceiver(t, "the receiver's secret")
	cfg := withWebhook(testConfig(t), rcv.url())
	cfg.Webhook.Secret = "a different secret"
	p := start(t, cfg, nil)
	emitN(t, p, 3)
	eventually(t, "rejections", func() bool { return p.Stats().Sinks["webhook"].Rejected >= 2 })
	closeP(t, p)
	if rcv.unique() != 0 {
		t.Errorf("receiver accepted events with a bad signature")
	}
	if p.Stats().Sinks["webhook"].Delivered != 0 {
		t.Errorf("events counted as delivered though the receiver refused them")
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	const hmacKey = "hmac-key-do-not-log-1234"
	const pathToken = "T0KEN-IN-PATH-5678"
	rcv := newReceiver(t, hmacKey)
	rcv.mode.Store(modeDown)
	logger, logs := newLogger(t)
	cfg := withWebhook(testConfig(t), rcv.srv.URL+"/services/"+pathToken)
	cfg.Webhook.Secret = hmacKey
	cfg.Alerts.Webhook.URL = "http://127.0.0.1:1/alerts/" + pathToken // refused
	cfg.Alerts.Webhook.Secret = hmacKey
	p := start(t, cfg, logger)
	// A config logged by mistake still hides the key.
	logger.Info("config", "webhook_secret", cfg.Webhook.Secret, "alerts_secret", cfg.Alerts.Webhook.Secret)
	ev := testEvent("jsmith", "gambling", "critical")
	if err := p.Emit(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	eventually(t, "failures on both webhooks", func() bool {
		s := p.Stats().Sinks
		return s["webhook"].Failures >= 2 && s["alerts"].Failures >= 2
	})
	closeP(t, p)
	out := logs.String()
	st, _ := json.Marshal(p.Stats())
	for _, secret := range []string{hmacKey, pathToken} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q:\n%s", secret, out)
		}
		if strings.Contains(string(st), secret) {
			t.Errorf("stats contain %q: %s", secret, st)
		}
	}
	if !strings.Contains(out, "HTTP 503") || !strings.Contains(out, "refused") {
		t.Errorf("log does not say why delivery failed:\n%s", out)
	}
}

func TestEmitOverflowIsCountedAndReported(t *testing.T) {
	cfg := testConfig(t)
	cfg.QueueSize = 2
	p, err := New(cfg, "test-1", quiet())
	if err != nil {
		t.Fatal(err)
	}
	// Not started: the writer is not draining, so the queue fills.
	kept := emitN(t, p, 2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := 0; i < 3; i++ {
		err := p.Emit(ctx, testEvent("jsmith", "gambling", "high"))
		if !errors.Is(err, ErrOverflow) || !errors.Is(err, context.Canceled) {
			t.Fatalf("Emit on a full queue = %v, want ErrOverflow and the context error", err)
		}
	}
	if st := p.Stats(); st.Overflow != 3 || st.Emitted != 2 || st.Queued != 2 {
		t.Errorf("stats = %+v, want 3 overflows, 2 emitted, 2 queued", st)
	}
	// Close without Start still writes what was queued.
	closeP(t, p)
	got, _ := readSpoolFiles(t, p.Dir())
	if !slices.Equal(got, kept) {
		t.Errorf("spool = %v, want the queued events %v", got, kept)
	}
	if err := p.Emit(context.Background(), testEvent("a", "b", "high")); !errors.Is(err, ErrClosed) {
		t.Errorf("Emit after Close = %v, want ErrClosed", err)
	}
	if p.Stats().Refused != 1 {
		t.Errorf("refused = %d, want 1", p.Stats().Refused)
	}
}

// With the queue full, an Emit whose context is never cancelled (what an
// enforcement point passes, so a client hanging up cannot cancel its own
// event) still returns, after emit_timeout, refused and counted; and so
// does EmitDurable, the review request's emit.
func TestEmitOnAFullQueueIsBoundedByEmitTimeout(t *testing.T) {
	cfg := testConfig(t)
	cfg.QueueSize = 1
	cfg.EmitTimeout = 20 * time.Millisecond
	p, err := New(cfg, "test-1", quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeP(t, p) })
	emitN(t, p, 1) // not started: nothing drains the queue
	errs := make(chan error, 2)
	go func() { errs <- p.Emit(context.Background(), testEvent("jsmith", "gambling", "high")) }()
	go func() { errs <- p.EmitDurable(context.Background(), testEvent("jsmith", "review", "info")) }()
	for range 2 {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrOverflow) || !strings.Contains(err.Error(), "emit_timeout") {
				t.Errorf("Emit on a full queue = %v, want ErrOverflow after emit_timeout", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Emit on a full queue with an uncancelled context did not return")
		}
	}
	if st := p.Stats(); st.EmitTimeouts != 2 || st.Overflow != 2 {
		t.Errorf("stats = %+v, want 2 emit timeouts counted as overflows", st)
	}
}

func TestEmitDurable(t *testing.T) {
	for _, mode := range []FsyncMode{FsyncAlways, FsyncInterval, FsyncNever} {
		t.Run(string(mode), func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Fsync = mode
			cfg.FsyncInterval = 50 * time.Millisecond
			p := start(t, cfg, nil)
			for i := 0; i < 3; i++ {
				ev := testEvent("jsmith", "gambling", "high")
				ev.Kind = KindReviewRequest
				ev.ID = NewID()
				if err := p.EmitDurable(context.Background(), ev); err != nil {
					t.Fatal(err)
				}
				// Durable means readable from disk now, before Close.
				b, err := os.ReadFile(filepath.Join(p.Dir(), spoolName(1)))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Contains(b, []byte(ev.ID)) {
					t.Fatalf("event %s not in the spool after EmitDurable", ev.ID)
				}
			}
		})
	}
}

func TestEventsFilledIn(t *testing.T) {
	rcv := newReceiver(t, testSecret)
	p := start(t, withWebhook(testConfig(t), rcv.url()), nil)
	ev := testEvent("jsmith", "gambling", "high")
	if err := p.Emit(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	eventually(t, "delivery", func() bool { return rcv.unique() == 1 })
	_, got, _ := rcv.snapshot()
	e := got[0]
	if _, err := NormalizeID(e.ID); err != nil || e.Time.IsZero() || e.Instance != "test-1" {
		t.Errorf("Emit did not fill id/time/instance: %+v", e)
	}
	if e.URL != ev.URL {
		t.Errorf("URL = %q, want %q unescaped", e.URL, ev.URL)
	}
}

func TestPruneKeepsUndeliveredFiles(t *testing.T) {
	rcv := newReceiver(t, testSecret)
	rcv.mode.Store(modeDown)
	cfg := withWebhook(testConfig(t), rcv.url())
	cfg.MaxFileSize = 1 << 10
	cfg.Retention = 0
	p := start(t, cfg, nil)
	ids := emitN(t, p, 40)
	eventually(t, "spooled", func() bool { return p.Stats().Spooled == 40 })
	before := p.Stats().SpoolFiles
	removed, err := p.Prune()
	if err != nil || len(removed) != 0 {
		t.Fatalf("Prune with an undelivered sink removed %v (err %v)", removed, err)
	}

	rcv.mode.Store(modeUp)
	eventually(t, "delivery", func() bool { return rcv.unique() == len(ids) })
	eventually(t, "cursor at the current file", func() bool {
		cur, _, _ := p.spool.state.get()
		return p.Stats().Sinks["webhook"].Cursor.Seq == cur
	})
	removed, err = p.Prune()
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != before-1 {
		t.Errorf("Prune removed %d files, want all %d but the current one", len(removed), before-1)
	}
	if n := p.Stats().SpoolFiles; n != 1 {
		t.Errorf("%d spool files left, want 1", n)
	}

	// Within retention nothing goes, delivered or not.
	cfg2 := withWebhook(testConfig(t), rcv.url())
	cfg2.MaxFileSize = 1 << 10
	p2 := start(t, cfg2, nil)
	ids2 := emitN(t, p2, 40)
	eventually(t, "delivery", func() bool { return rcv.unique() == len(ids)+len(ids2) })
	if removed, _ := p2.Prune(); len(removed) != 0 {
		t.Errorf("Prune removed %v within the 7-day retention", removed)
	}
}

func TestDataDirIsLocked(t *testing.T) {
	cfg := testConfig(t)
	p := start(t, cfg, nil)
	if _, err := New(cfg, "test-2", quiet()); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second pipeline on the same data_dir: err = %v, want 'in use'", err)
	}
	closeP(t, p)
	p2, err := New(cfg, "test-2", quiet())
	if err != nil {
		t.Fatalf("after Close the data_dir should be free: %v", err)
	}
	closeP(t, p2)
}

func TestAddSink(t *testing.T) {
	cfg := testConfig(t)
	p, err := New(cfg, "t", quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer closeP(t, p)
	rcv := newReceiver(t, testSecret)
	wc := withWebhook(cfg, rcv.url()).Webhook
	mk := func(name string) Sink {
		w, err := NewWebhook(name, wc)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	if err := p.AddSink(mk("siem")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"siem", "alerts", "Bad Name", "../x"} {
		if err := p.AddSink(mk(name)); err == nil {
			t.Errorf("AddSink(%q) succeeded", name)
		}
	}
	ids := emitN(t, p, 5)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.AddSink(mk("late")); err == nil {
		t.Error("AddSink after Start succeeded")
	}
	eventually(t, "delivery to the added sink", func() bool { return rcv.unique() == len(ids) })
	rcv.expectExactlyOnce(ids)
}

// The webhook request is a POST that a receiver can parse with nothing but
// the documented format.
func TestWebhookRequestFormat(t *testing.T) {
	var got *http.Request
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		body, _ = readAll(r)
	}))
	defer srv.Close()
	wc := DefaultConfig().Webhook
	wc.URL, wc.Secret = srv.URL, "k"
	w, err := NewWebhook("webhook", wc)
	if err != nil {
		t.Fatal(err)
	}
	evs := []Event{testEvent("a", "gambling", "high"), testEvent("b", "porn", "critical")}
	evs[0].ID, evs[1].ID = NewID(), NewID()
	if err := w.Deliver(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	if got.Header.Get("X-Aupguard-Event-Ids") != evs[0].ID+","+evs[1].ID {
		t.Errorf("ids header = %q", got.Header.Get("X-Aupguard-Event-Ids"))
	}
	if !VerifySignature([]byte("k"), body, got.Header.Get("X-Aupguard-Signature")) {
		t.Errorf("signature does not verify")
	}
	if VerifySignature([]byte("k"), append(body, ' '), got.Header.Get("X-Aupguard-Signature")) {
		t.Errorf("signature verifies a different body")
	}
	var back []Event
	if err := json.Unmarshal(body, &back); err != nil || len(back) != 2 || back[1].ID != evs[1].ID {
		t.Errorf("body %s: %v", body, err)
	}
}

func readAll(r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r.Body)
	return b.Bytes(), err
}

func TestWebhookStatusClassification(t *testing.T) {
	cases := []struct {
		status     int
		retryAfter string
		rejected   bool
		wait       time.Duration
	}{
		{http.StatusBadRequest, "", true, 0},
		{http.StatusUnauthorized, "", true, 0},
		{http.StatusFound, "", true, 0},
		{http.StatusRequestTimeout, "", false, 0},
		{http.StatusTooManyRequests, "7", false, 7 * time.Second},
		{http.StatusServiceUnavailable, "", false, 0},
		{http.StatusBadGateway, "", false, 0},
	}
	for _, c := range cases {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c.retryAfter != "" {
				w.Header().Set("Retry-After", c.retryAfter)
			}
			if c.status == http.StatusFound {
				w.Header().Set("Location", "/elsewhere")
			}
			w.WriteHeader(c.status)
			w.Write([]byte("reason\x00text"))
		}))
		wc := DefaultConfig().Webhook
		wc.URL, wc.Secret = srv.URL, "k"
		w, _ := NewWebhook("webhook", wc)
		err := w.Deliver(context.Background(), []Event{testEvent("a", "b", "high")})
		srv.Close()
		var se *StatusError
		if !errors.As(err, &se) || se.Status != c.status {
			t.Errorf("HTTP %d: err = %v", c.status, err)
			continue
		}
		if errors.Is(err, ErrRejected) != c.rejected {
			t.Errorf("HTTP %d: rejected = %v, want %v", c.status, !c.rejected, c.rejected)
		}
		if se.RetryAfter() != c.wait {
			t.Errorf("HTTP %d: retry after %s, want %s", c.status, se.RetryAfter(), c.wait)
		}
		if !strings.Contains(err.Error(), "reason text") {
			t.Errorf("HTTP %d: error %q lacks the sanitised body", c.status, err)
		}
	}
}

func TestBackoffIsBoundedAndGrows(t *testing.T) {
	p := DeliveryPolicy{BatchSize: 1, BackoffMin: 100 * time.Millisecond, BackoffMax: 2 * time.Second}
	for attempt := 0; attempt < 40; attempt++ {
		want := p.BackoffMin << min(attempt, 10)
		want = min(want, p.BackoffMax)
		for i := 0; i < 50; i++ {
			d := backoff(p, attempt)
			if d < want/2 || d > want {
				t.Fatalf("attempt %d: backoff %s outside [%s, %s]", attempt, d, want/2, want)
			}
		}
	}
}

// Close lets a request in flight finish and saves its cursor, so a clean
// restart resends nothing (exactly once across the restart).
func TestCloseLetsDeliveryInFlightFinish(t *testing.T) {
	rcv := newReceiver(t, testSecret)
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	inner := rcv.srv.Config.Handler
	rcv.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first := false
		once.Do(func() { first = true })
		if first {
			close(entered)
			<-release
		}
		inner.ServeHTTP(w, r)
	})
	cfg := withWebhook(testConfig(t), rcv.url())
	p := start(t, cfg, nil)
	ids := emitN(t, p, 3)
	<-entered
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		closed <- p.Close(ctx)
	}()
	// Release the receiver only once Close has asked the deliverers to stop.
	<-p.stop
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	// The batch in flight (at least the first event) was accepted.
	if counts, _, _ := rcv.snapshot(); counts[ids[0]] != 1 {
		t.Fatalf("the batch in flight during Close was not accepted")
	}

	// The restart sends the rest, and the accepted batch not again.
	p2 := start(t, cfg, nil)
	more := emitN(t, p2, 1)
	eventually(t, "delivery after restart", func() bool { return rcv.unique() == 4 })
	closeP(t, p2)
	rcv.expectExactlyOnce(append(ids, more...))
}

// newWithLinger is start with the writer's linger set before it runs.
func newWithLinger(t *testing.T, cfg Config, linger time.Duration) *Pipeline {
	t.Helper()
	p, err := New(cfg, "test-1", quiet())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	p.writeLinger = linger
	if err := p.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { closeP(t, p) })
	return p
}

// A trickle of events, each queued after the writer has drained the last,
// is written in a few writes rather than one each.
func TestWriterGathersATrickle(t *testing.T) {
	for _, tc := range []struct {
		linger   time.Duration
		gathered bool
	}{{linger: 0, gathered: false}, {linger: 2 * time.Second, gathered: true}} {
		t.Run(tc.linger.String(), func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Fsync = FsyncInterval
			cfg.FsyncInterval = 10 * time.Millisecond
			p := newWithLinger(t, cfg, tc.linger)
			const n = 40
			for i := 0; i < n; i++ {
				emitN(t, p, 1)
				// Let the writer take what is queued before the next one.
				eventually(t, "queue drained", func() bool { return p.Stats().Queued == 0 })
				time.Sleep(200 * time.Microsecond)
			}
			closeP(t, p)
			s := p.Stats()
			if s.Spooled != n {
				t.Fatalf("spooled %d of %d", s.Spooled, n)
			}
			// Without a linger every event is its own write; with one, the
			// 40 events (well under a second) fill one or two.
			if tc.gathered && s.SpoolWrites > 4 {
				t.Errorf("%d writes for %d events with a %v linger, want a few", s.SpoolWrites, n, tc.linger)
			}
			if !tc.gathered && s.SpoolWrites < n/2 {
				t.Errorf("%d writes for %d events without a linger: the test no longer tells them apart", s.SpoolWrites, n)
			}
		})
	}
}

// A caller of EmitDurable never waits out the linger.
func TestEmitDurableSkipsLinger(t *testing.T) {
	cfg := testConfig(t)
	cfg.Fsync = FsyncInterval
	cfg.FsyncInterval = 10 * time.Millisecond
	p := newWithLinger(t, cfg, time.Hour)
	emitN(t, p, 3) // the writer now lingers for an hour over these
	ev := testEvent("jsmith", "gambling", "high")
	ev.Kind = KindReviewRequest
	ev.ID = NewID()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.EmitDurable(ctx, ev); err != nil {
		t.Fatalf("EmitDurable behind a lingering writer: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(p.Dir(), spoolName(1)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(ev.ID)) {
		t.Fatalf("event %s not in the spool after EmitDurable", ev.ID)
	}
}
