package proxy

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestMediaType: the fast path gives what mime.ParseMediaType gives for
// valid values, and the lower-cased type before ';' for invalid ones.
func TestMediaType(t *testing.T) {
	for _, v := range []string{
		"", "text/html", "text/html; charset=utf-8", "TEXT/HTML;Charset=UTF-8",
		"  application/x-bittorrent  ", "application/octet-stream;", "image/png ; q=1",
		"text/html; charset", "text/html; =bad", "not a type", "text/html/extra; a=b", ";x=y",
	} {
		want := ""
		if v != "" {
			if mt, _, err := mime.ParseMediaType(v); err == nil {
				want = mt
			} else {
				base, _, _ := strings.Cut(v, ";")
				want = strings.ToLower(strings.TrimSpace(base))
			}
		}
		if got := mediaType(v); got != want {
			t.Errorf("mediaType(%q) = %q, want %q", v, got, want)
		}
	}
}

func TestStripHopByHop(t *testing.T) {
	h := http.Header{}
	h.Set("Connection", "keep-alive, X-Private")
	h.Add("Connection", "Upgrade")
	for _, k := range []string{"Keep-Alive", "X-Private", "Proxy-Connection", "Proxy-Authorization", "Proxy-Authenticate", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "X-Kept"} {
		h.Set(k, "1")
	}
	stripHopByHop(h, false)
	var left []string
	for k := range h {
		left = append(left, k)
	}
	if !slices.Equal(left, []string{"X-Kept"}) {
		t.Errorf("left %v, want [X-Kept]", left)
	}

	ws := http.Header{}
	ws.Set("Connection", "keep-alive, Upgrade")
	ws.Set("Upgrade", "websocket")
	ws.Set("Keep-Alive", "timeout=5")
	stripHopByHop(ws, true)
	if ws.Get("Connection") != "Upgrade" || ws.Get("Upgrade") != "websocket" || ws.Get("Keep-Alive") != "" {
		t.Errorf("websocket handshake headers after strip: %v", ws)
	}
	if !isWebSocket(http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"WebSocket"}}) {
		t.Error("isWebSocket missed a handshake")
	}
	if isWebSocket(http.Header{"Connection": {"keep-alive"}}) {
		t.Error("isWebSocket on a plain request")
	}
}

// TestBufPoolCopy: the pooled copy moves every byte and reuses its
// buffer, rather than allocating one per response as io.Copy would.
func TestBufPoolCopy(t *testing.T) {
	p := &bufPool{size: 64 << 10}
	src := bytes.Repeat([]byte("0123456789"), 20000)
	var dst bytes.Buffer
	n, err := p.copy(&dst, bytes.NewReader(src))
	if err != nil || n != int64(len(src)) || !bytes.Equal(dst.Bytes(), src) {
		t.Fatalf("copied %d bytes, err %v, equal %v", n, err, bytes.Equal(dst.Bytes(), src))
	}
	r := bytes.NewReader(src[:1024])
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(src[:1024])
		_, _ = p.copy(io.Discard, r)
	})
	// Two small interface wrappers; never the 64 KiB buffer (3 per call),
	// except once should a GC empty the pool during the run.
	if allocs > 2.5 {
		t.Errorf("copy allocates %.0f times per call", allocs)
	}
}
