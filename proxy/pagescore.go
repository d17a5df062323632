package proxy

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aupguard/aupguard/config/field"
	"github.com/aupguard/aupguard/pagescore"
	"github.com/aupguard/aupguard/verdict"
)

// PageScoreConfig is the page_scoring section: content scoring of HTML
// responses at phase response (package pagescore; the policy decides what
// the scores mean, policies/page.rego).
type PageScoreConfig struct {
	// Enabled scores the text/html responses the header phase allowed.
	Enabled bool `yaml:"enabled"`
	// MaxBytes is how much of a page is held back and scored before any
	// of it is forwarded (raw bytes as sent by the origin).
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxConcurrent bounds the pages held at once (so memory is at most
	// MaxBytes times this); a page beyond it is forwarded unscored and
	// counted.
	MaxConcurrent int `yaml:"max_concurrent"`
	// PhrasesPerCategory is how many matched phrases per category go to
	// the policy and the safeguarding event (strongest first).
	PhrasesPerCategory int `yaml:"phrases_per_category"`
}

// DefaultPageScoreConfig is on, 256 KiB per page, 64 pages at once.
func DefaultPageScoreConfig() PageScoreConfig {
	return PageScoreConfig{Enabled: true, MaxBytes: pagescore.DefaultMaxBytes, MaxConcurrent: 64, PhrasesPerCategory: 10}
}

// Validate checks the section; error paths are relative to it.
func (c *PageScoreConfig) Validate() error {
	var errs []error
	if c.MaxBytes < 4<<10 || c.MaxBytes > 16<<20 {
		errs = append(errs, field.Errorf("max_bytes", "must be between 4096 and 16777216, got %d", c.MaxBytes))
	}
	if c.MaxConcurrent < 1 {
		errs = append(errs, field.Errorf("max_concurrent", "must be at least 1, got %d", c.MaxConcurrent))
	}
	if c.PhrasesPerCategory < 1 {
		errs = append(errs, field.Errorf("phrases_per_category", "must be at least 1, got %d", c.PhrasesPerCategory))
	}
	return errors.Join(errs...)
}

// PageScorer holds the compiled phrase lists and bounds the pages held
// back for scoring. One serves the whole proxy; it is safe for concurrent
// use.
type PageScorer struct {
	cfg    PageScoreConfig
	scorer *pagescore.Scorer
	slots  chan struct{}
	bufs   sync.Pool // *[]byte of cap MaxBytes
	runs   sync.Pool // *pagescore.Run

	scored, bytes, blocked, alerted atomic.Uint64
	busy, encoding, errored         atomic.Uint64
}

// NewPageScorer compiles the built-in phrase lists. A disabled config
// gives a nil scorer, which scores nothing.
func NewPageScorer(cfg PageScoreConfig) (*PageScorer, error) {
	if !cfg.Enabled {
		return nil, nil
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("page_scoring: %w", err)
	}
	sc, err := pagescore.New(pagescore.Options{MaxBytes: cfg.MaxBytes})
	if err != nil {
		return nil, fmt.Errorf("page_scoring: %w", err)
	}
	ps := &PageScorer{cfg: cfg, scorer: sc, slots: make(chan struct{}, cfg.MaxConcurrent)}
	ps.bufs.New = func() any { b := make([]byte, 0, cfg.MaxBytes); return &b }
	ps.runs.New = func() any { return sc.Start() }
	return ps, nil
}

// Score scores a whole page (for `aupguard check --page`): the policy
// input and the scorer's full result.
func (ps *PageScorer) Score(body io.Reader) (*verdict.Page, pagescore.Result, error) {
	run := ps.scorer.Start()
	if _, err := io.Copy(run, io.LimitReader(body, ps.cfg.MaxBytes)); err != nil {
		return nil, pagescore.Result{}, err
	}
	res := run.Result()
	return ps.page(res), res, nil
}

// page is the policy's view of a result: the scores and, per category,
// the strongest matched phrases (positive weights only: benign context is
// not evidence).
func (ps *PageScorer) page(res pagescore.Result) *verdict.Page {
	p := &verdict.Page{Scores: res.Scores, Positive: res.Positive, Phrases: map[string][]string{}}
	for _, m := range res.Matches { // by category, strongest first
		if m.Weight > 0 && len(p.Phrases[m.Category]) < ps.cfg.PhrasesPerCategory {
			p.Phrases[m.Category] = append(p.Phrases[m.Category], m.Phrase)
		}
	}
	return p
}

// scorable reports whether a response is an HTML page the scorer can
// read: a 200 with a body, identity or gzip encoded.
func scorable(r *http.Request, resp *http.Response, mediaType string) (ok bool, gzipped bool, reason string) {
	if r.Method == http.MethodHead || resp.StatusCode != http.StatusOK || resp.Body == nil || resp.Body == http.NoBody {
		return false, false, ""
	}
	if mediaType != "text/html" && mediaType != "application/xhtml+xml" {
		return false, false, ""
	}
	switch enc := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		return true, false, ""
	case "gzip", "x-gzip":
		return true, true, ""
	default:
		return false, false, "encoding"
	}
}

// scorePage holds back the first MaxBytes of an HTML response the header
// phase allowed, scores them and decides again with input.page: a block
// replaces the page with the block page (nothing of it was forwarded);
// otherwise the held bytes and the rest of the body go on unchanged. It is
// the response hook of plain HTTP and of intercepted HTTPS alike.
func (s *Server) scorePage(r *http.Request, t *txn, in *verdict.Input, resp *http.Response) *http.Response {
	ps := s.opts.PageScorer
	if ps == nil || in.Response == nil {
		return resp
	}
	ok, gzipped, why := scorable(r, resp, in.Response.ContentType)
	if !ok {
		if why != "" {
			ps.encoding.Add(1)
		}
		return resp
	}
	select {
	case ps.slots <- struct{}{}:
	default:
		ps.busy.Add(1)
		return resp
	}
	release := func() { <-ps.slots }
	bp := ps.bufs.Get().(*[]byte)
	buf := (*bp)[:0]
	n, err := io.ReadFull(resp.Body, buf[:ps.cfg.MaxBytes])
	buf = buf[:n]
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		// The origin failed mid-body: forward what came and let the
		// client see the same failure.
		ps.errored.Add(1)
		resp.Body = &heldBody{held: bytes.NewReader(buf), rest: errReader{err}, origin: resp.Body, done: func() { ps.bufs.Put(bp); release() }}
		return resp
	}
	run := ps.runs.Get().(*pagescore.Run)
	run.Reset()
	if gzipped {
		if zr, zerr := gzip.NewReader(bytes.NewReader(buf)); zerr == nil {
			// A page longer than the held bytes ends mid-stream: what
			// was decompressed is scored.
			_, _ = io.Copy(run, io.LimitReader(zr, ps.cfg.MaxBytes))
		}
	} else {
		_, _ = run.Write(buf)
	}
	res := run.Result()
	ps.runs.Put(run)
	ps.scored.Add(1)
	ps.bytes.Add(uint64(n))

	page := *in
	page.Page = ps.page(res)
	d, evID := s.decide(r.Context(), &page)
	if d.Blocked() {
		ps.blocked.Add(1)
		_ = resp.Body.Close()
		ps.bufs.Put(bp)
		release()
		return s.final(t, s.blockResponse(r, &page, &d, evID))
	}
	if d.Alert {
		ps.alerted.Add(1)
	}
	resp.Body = &heldBody{held: bytes.NewReader(buf), rest: resp.Body, origin: resp.Body, done: func() { ps.bufs.Put(bp); release() }}
	return resp
}

// heldBody forwards the bytes held back for scoring, then the rest of the
// origin's body. Close closes the origin body and returns the buffer.
type heldBody struct {
	held   *bytes.Reader
	rest   io.Reader
	origin io.Closer
	once   sync.Once
	done   func()
}

func (h *heldBody) Read(p []byte) (int, error) {
	if h.held.Len() > 0 {
		return h.held.Read(p)
	}
	return h.rest.Read(p)
}

func (h *heldBody) Close() error {
	err := h.origin.Close()
	h.once.Do(h.done)
	return err
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// PageScoreStats are the page scorer's counters.
type PageScoreStats struct {
	Scored  uint64 `json:"scored"`
	Bytes   uint64 `json:"bytes"`
	Blocked uint64 `json:"blocked"`
	Alerted uint64 `json:"alerted"`
	// Unscored pages, by why: all slots busy, an encoding the scorer
	// cannot read (br, zstd), the origin failing mid-body.
	Busy     uint64 `json:"unscored_busy"`
	Encoding uint64 `json:"unscored_encoding"`
	Errored  uint64 `json:"unscored_error"`
}

// Stats returns the counters; zero for a nil scorer.
func (ps *PageScorer) Stats() PageScoreStats {
	if ps == nil {
		return PageScoreStats{}
	}
	return PageScoreStats{Scored: ps.scored.Load(), Bytes: ps.bytes.Load(), Blocked: ps.blocked.Load(), Alerted: ps.alerted.Load(),
		Busy: ps.busy.Load(), Encoding: ps.encoding.Load(), Errored: ps.errored.Load()}
}

var (
	pageScoredDesc = prometheus.NewDesc("aupguard_page_scored_total",
		"HTML pages scored at the response phase, by outcome of the decision with the scores.", []string{"outcome"}, nil)
	pageBytesDesc = prometheus.NewDesc("aupguard_page_scored_bytes_total",
		"Bytes of HTML held back and scored.", nil, nil)
	pageUnscoredDesc = prometheus.NewDesc("aupguard_page_unscored_total",
		"HTML pages forwarded unscored, by reason.", []string{"reason"}, nil)
)

// Collector exports the counters for Prometheus.
func (ps *PageScorer) Collector() prometheus.Collector { return pageCollector{ps} }

type pageCollector struct{ ps *PageScorer }

func (c pageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pageScoredDesc
	ch <- pageBytesDesc
	ch <- pageUnscoredDesc
}

func (c pageCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.ps.Stats()
	allowed := st.Scored - st.Blocked - st.Alerted
	for _, o := range []struct {
		name string
		n    uint64
	}{{"block", st.Blocked}, {"alert", st.Alerted}, {"allow", allowed}} {
		ch <- prometheus.MustNewConstMetric(pageScoredDesc, prometheus.CounterValue, float64(o.n), o.name)
	}
	ch <- prometheus.MustNewConstMetric(pageBytesDesc, prometheus.CounterValue, float64(st.Bytes))
	for _, o := range []struct {
		name string
		n    uint64
	}{{"busy", st.Busy}, {"encoding", st.Encoding}, {"error", st.Errored}} {
		ch <- prometheus.MustNewConstMetric(pageUnscoredDesc, prometheus.CounterValue, float64(o.n), o.name)
	}
}
