package events

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aupguard/aupguard/verdict"
)

// logBuf collects log output from every goroutine of a pipeline.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newLogger(t *testing.T) (*slog.Logger, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// Receiver modes.
const (
	modeUp     int32 = iota // 200, records the events
	modeDown                // 503
	modeReject              // 400
)

// receiver is a real HTTP webhook receiver that checks what a safeguarding
// tool would check: method, content type, signature (computed here, not
// with the package's helper), and that the ID header matches the body.
type receiver struct {
	t      *testing.T
	secret []byte
	srv    *httptest.Server
	mode   atomic.Int32

	mu       sync.Mutex
	counts   map[string]int // accepted deliveries per event ID
	accepted []Event
	requests int
	problems []string
}

func newReceiver(t *testing.T, secret string) *receiver {
	t.Helper()
	r := &receiver{t: t, secret: []byte(secret), counts: map[string]int{}}
	r.srv = httptest.NewServer(r)
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) url() string { return r.srv.URL + "/hook" }

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	problem := func(format string, args ...any) {
		r.problems = append(r.problems, fmt.Sprintf(format, args...))
		http.Error(w, "bad request", http.StatusUnauthorized)
	}
	if err != nil {
		problem("reading body: %v", err)
		return
	}
	if req.Method != http.MethodPost {
		problem("method %s", req.Method)
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" {
		problem("content type %q", ct)
		return
	}
	mac := hmac.New(sha256.New, r.secret)
	mac.Write(body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if got := req.Header.Get("X-Aupguard-Signature"); !hmac.Equal([]byte(got), []byte(want)) {
		problem("bad signature %q", got)
		return
	}
	var batch []Event
	if err := json.Unmarshal(body, &batch); err != nil {
		problem("body is not a JSON array of events: %v", err)
		return
	}
	ids := make([]string, len(batch))
	for i, ev := range batch {
		ids[i] = ev.ID
	}
	if got := req.Header.Get("X-Aupguard-Event-Ids"); got != strings.Join(ids, ",") {
		problem("X-Aupguard-Event-Ids %q does not match the body %q", got, strings.Join(ids, ","))
		return
	}
	switch r.mode.Load() {
	case modeDown:
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	case modeReject:
		http.Error(w, "no such hook", http.StatusBadRequest)
		return
	}
	for _, ev := range batch {
		r.counts[ev.ID]++
	}
	r.accepted = append(r.accepted, batch...)
	w.WriteHeader(http.StatusNoContent)
}

// snapshot returns the accepted events and any protocol problems.
func (r *receiver) snapshot() (counts map[string]int, accepted []Event, requests int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	counts = make(map[string]int, len(r.counts))
	for k, v := range r.counts {
		counts[k] = v
	}
	return counts, append([]Event(nil), r.accepted...), r.requests
}

func (r *receiver) unique() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.counts)
}

func (r *receiver) requestCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// checkProtocol fails the test if any request broke the protocol.
func (r *receiver) checkProtocol() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.problems {
		r.t.Errorf("receiver: %s", p)
	}
}

// expectExactlyOnce checks that every id was accepted exactly once and
// nothing else was.
func (r *receiver) expectExactlyOnce(ids []string) {
	r.t.Helper()
	counts, _, _ := r.snapshot()
	for _, id := range ids {
		if counts[id] != 1 {
			r.t.Errorf("event %s delivered %d times, want 1", id, counts[id])
		}
	}
	if len(counts) != len(ids) {
		r.t.Errorf("receiver has %d distinct events, want %d", len(counts), len(ids))
	}
}

// eventually polls cond until it holds; the deadline only guards against a
// hung test, it asserts nothing about speed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const testSecret = "correct horse battery staple"

// testConfig is a pipeline config in a temporary directory with fast
// retries and webhooks off.
func testConfig(t *testing.T) Config {
	t.Helper()
	c := DefaultConfig()
	c.DataDir = t.TempDir()
	c.Fsync = FsyncAlways
	fast := func(w *WebhookConfig) {
		w.Timeout = 5 * time.Second
		w.BackoffMin = 2 * time.Millisecond
		w.BackoffMax = 20 * time.Millisecond
	}
	fast(&c.Webhook)
	fast(&c.Alerts.Webhook)
	return c
}

func withWebhook(c Config, url string) Config {
	c.Webhook.URL = url
	c.Webhook.Secret = testSecret
	c.Webhook.BatchSize = 7 // not a divisor of the counts below, so batches straddle
	return c
}

// start builds and starts a pipeline and closes it at cleanup (Close is
// idempotent, so tests may close it earlier).
func start(t *testing.T, cfg Config, logger *slog.Logger) *Pipeline {
	t.Helper()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p, err := New(cfg, "test-1", logger)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { closeP(t, p) })
	return p
}

func closeP(t *testing.T, p *Pipeline) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

var eventSeq atomic.Int64

// testEvent is a block event with a unique marker in the URL.
func testEvent(user, category, severity string) Event {
	n := eventSeq.Add(1)
	return Event{
		Kind:     KindBlock,
		Source:   "proxy",
		Phase:    "request",
		Action:   "block",
		Category: category,
		Rule:     category,
		Reason:   "blocked by the acceptable use policy",
		Severity: verdict.Severity(severity),
		ClientIP: "10.1.2.3",
		User:     user,
		Groups:   []string{"learners"},
		Host:     "www.example.test",
		URL:      fmt.Sprintf("https://www.example.test/page/%d?x=<&>", n),
		Method:   "GET",
	}
}

// emitN emits n events and returns their IDs in order.
func emitN(t *testing.T, p *Pipeline, n int) []string {
	t.Helper()
	ids := make([]string, 0, n)
	for i := 0; i < n; i++ {
		ev := testEvent("jsmith", "gambling", "medium")
		ev.ID = NewID()
		if err := p.Emit(context.Background(), ev); err != nil {
			t.Fatalf("Emit: %v", err)
		}
		ids = append(ids, ev.ID)
	}
	return ids
}

func newBenchServer(b *testing.B, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return srv
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }
