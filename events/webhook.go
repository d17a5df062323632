package events

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The webhook request headers.
const (
	HeaderSignature = "X-Aupguard-Signature"
	HeaderEventIDs  = "X-Aupguard-Event-Ids"
)

// Webhook is a Sink that POSTs each batch as a JSON array of events,
// signed with HMAC-SHA256. A 2xx response means delivered; 408, 429, 5xx
// and network errors are retried with backoff; other statuses wrap
// ErrRejected (retried slowly and logged loudly).
//
// A batch per request, not an event per request: the receiver gets fewer,
// larger requests while a backlog drains, and X-Aupguard-Event-Ids lets it
// de-duplicate a resent batch without parsing the body. With batch_size 1
// each request carries one event, still as an array, so receivers need one
// code path.
type Webhook struct {
	name    string
	url     string // never logged: chat-bridge URLs carry tokens in the path
	display string // scheme://host, safe to log
	secret  []byte
	timeout time.Duration
	policy  DeliveryPolicy
	client  *http.Client
}

// NewWebhook builds a webhook sink from its config (which must have a URL
// and a secret or secret_file).
func NewWebhook(name string, cfg WebhookConfig) (*Webhook, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("webhook %s: %w", name, err)
	}
	if !cfg.Enabled() {
		return nil, fmt.Errorf("webhook %s: no url", name)
	}
	secret, err := cfg.secret()
	if err != nil {
		return nil, fmt.Errorf("webhook %s: %w", name, err)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("webhook %s: invalid url", name)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 4
	return &Webhook{
		name:    name,
		url:     cfg.URL,
		display: u.Scheme + "://" + u.Host,
		secret:  secret,
		timeout: cfg.Timeout,
		policy:  DeliveryPolicy{BatchSize: cfg.BatchSize, BackoffMin: cfg.BackoffMin, BackoffMax: cfg.BackoffMax},
		client: &http.Client{
			Transport: tr,
			// A redirect is a configuration problem to fix, not to follow
			// with a signed body to another place.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// Name returns the sink's name (its cursor and metric label).
func (w *Webhook) Name() string { return w.name }

// Delivery returns the batch size and backoff from the config.
func (w *Webhook) Delivery() DeliveryPolicy { return w.policy }

// Deliver POSTs the batch.
func (w *Webhook) Deliver(ctx context.Context, batch []Event) error {
	body, err := marshalBatch(batch)
	if err != nil {
		return fmt.Errorf("webhook %s: encoding batch: %w", w.name, err)
	}
	ids := make([]string, len(batch))
	for i := range batch {
		ids[i] = batch[i].ID
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s: building request to %s failed", w.name, w.display)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "aupguard-events")
	req.Header.Set(HeaderSignature, Sign(w.secret, body))
	req.Header.Set(HeaderEventIDs, strings.Join(ids, ","))
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: POST %s: %w", w.name, w.display, stripURL(err))
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return &StatusError{
		Sink:     w.name,
		Endpoint: w.display,
		Status:   resp.StatusCode,
		Body:     printable(snippet, 256),
		Retry:    retryAfter(resp.Header.Get("Retry-After")),
	}
}

// marshalBatch encodes events as a JSON array without HTML escaping, so
// URLs read as sent.
func marshalBatch(batch []Event) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(batch); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// Sign returns the X-Aupguard-Signature value for body: "sha256=" and the
// hex HMAC-SHA256 of the exact body bytes under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks an X-Aupguard-Signature header against the body,
// in constant time. Receivers written in Go can use it as is.
func VerifySignature(secret, body []byte, header string) bool {
	got, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	sig, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(sig, m.Sum(nil))
}

// StatusError is a webhook response that was not 2xx.
type StatusError struct {
	// Sink is the webhook's name.
	Sink string
	// Endpoint is the URL's scheme://host only: the path may hold a token.
	Endpoint string
	// Status is the HTTP status code.
	Status int
	// Body is the start of the response body, sanitised for one log line.
	Body string
	// Retry is the receiver's Retry-After, or 0.
	Retry time.Duration
}

// Error names the sink, the endpoint (scheme://host) and the status.
func (e *StatusError) Error() string {
	msg := fmt.Sprintf("webhook %s: POST %s: HTTP %d", e.Sink, e.Endpoint, e.Status)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Rejected reports a refusal a quick retry will not cure: a 3xx or a 4xx
// other than 408 (timeout) and 429 (rate limit).
func (e *StatusError) Rejected() bool {
	return e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}

// Unwrap makes errors.Is(err, ErrRejected) true for rejections.
func (e *StatusError) Unwrap() error {
	if e.Rejected() {
		return ErrRejected
	}
	return nil
}

// RetryAfter is the receiver's Retry-After, if it sent one.
func (e *StatusError) RetryAfter() time.Duration { return e.Retry }

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// stripURL drops the request URL from client errors: it may carry a token.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// printable keeps a response body snippet safe for one log line.
func printable(b []byte, max int) string {
	s := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(string(b), "?"))
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	return s
}
