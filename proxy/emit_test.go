package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aupguard/aupguard/events"
)

// newPipeline opens a real event pipeline under a temporary directory;
// started or not (not started, nothing drains its queue).
func newPipeline(t *testing.T, queue int, started bool) *events.Pipeline {
	t.Helper()
	cfg := events.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.QueueSize = queue
	cfg.EmitTimeout = 50 * time.Millisecond
	p, err := events.New(cfg, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if started {
		if err := p.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return p
}

// bounded runs f and fails the test if it has not returned within a
// generous deadline: the property is "returns", not "returns fast".
func bounded[T any](t *testing.T, what string, f func() T) T {
	t.Helper()
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not return with the event queue full", what)
		var zero T
		return zero
	}
}

func postReview(t *testing.T, c *http.Client, ref string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://aupguard.block/review", strings.NewReader(url.Values{"ref": {ref}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	return resp
}

// With the event queue full, a blocked request still gets its block page
// (the emit gives up after emit_timeout, counted), and a review request
// is refused rather than falsely confirmed.
func TestBlockWithTheEventQueueFull(t *testing.T) {
	p := newPipeline(t, 1, false)
	h := start(t, func(s *setup) { s.opts.Emitter = p })
	first := get(t, h.client(""), h.url(hostCasino, "/"), "Accept", "text/html")
	readAll(t, first)
	resp := bounded(t, "a blocked request", func() *http.Response {
		return get(t, h.client(""), h.url(hostCasino, "/again"), "Accept", "text/html")
	})
	readAll(t, resp)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("block with the queue full: %d", resp.StatusCode)
	}
	if st := h.srv.Stats(); st.EmitErrors != 1 {
		t.Errorf("proxy emit errors = %d, want 1", st.EmitErrors)
	}
	if st := p.Stats(); st.EmitTimeouts != 1 {
		t.Errorf("pipeline emit timeouts = %d, want 1", st.EmitTimeouts)
	}
	review := bounded(t, "a review request", func() *http.Response {
		return postReview(t, h.client(""), first.Header.Get("X-Aupguard-Reference"))
	})
	if review.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("review with the queue full: %d, want 503", review.StatusCode)
	}
}

// durableSpy is the real pipeline, noting which events went through
// EmitDurable.
type durableSpy struct {
	*events.Pipeline
	mu      sync.Mutex
	durable []events.Kind
}

func (d *durableSpy) EmitDurable(ctx context.Context, ev events.Event) error {
	d.mu.Lock()
	d.durable = append(d.durable, ev.Kind)
	d.mu.Unlock()
	return d.Pipeline.EmitDurable(ctx, ev)
}

// A review request is confirmed to the learner only once it is on disk.
func TestReviewRequestIsDurable(t *testing.T) {
	spy := &durableSpy{Pipeline: newPipeline(t, 16, true)}
	h := start(t, func(s *setup) { s.opts.Emitter = spy })
	block := get(t, h.client(""), h.url(hostCasino, "/"), "Accept", "text/html")
	readAll(t, block)
	ref := block.Header.Get("X-Aupguard-Reference")
	if resp := postReview(t, h.client(""), ref); resp.StatusCode != http.StatusOK {
		t.Fatalf("review: %d", resp.StatusCode)
	}
	spy.mu.Lock()
	durable := append([]events.Kind(nil), spy.durable...)
	spy.mu.Unlock()
	if len(durable) != 1 || durable[0] != events.KindReviewRequest {
		t.Fatalf("emitted durably: %v, want the review request alone", durable)
	}
	// On disk as the page is served.
	files, _ := filepath.Glob(filepath.Join(spy.Dir(), "spool-*.jsonl"))
	var all string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		all += string(b)
	}
	if !strings.Contains(all, `"kind":"review_request"`) || !strings.Contains(all, `"ref":"`+ref+`"`) {
		t.Errorf("review request not in the spool when confirmed:\n%s", all)
	}
}
