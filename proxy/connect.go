package proxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/aupguard/aupguard/verdict"
)

// onConnect decides a CONNECT at phase connect, on the host alone, before
// anything is dialled.
func (s *Server) onConnect(_ string, ctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
	r := ctx.Req
	t := txnFrom(r.Context())
	s.stats.connects.Add(1)
	req, err := requestFromConnect(r.URL.Host)
	if err != nil {
		return rawAnswer(http.StatusBadRequest, "aupguard: bad CONNECT: "+err.Error()+"\n"), r.URL.Host
	}
	t.req = req
	in := verdict.Input{Source: verdict.SourceProxy, Phase: verdict.PhaseConnect, Client: t.client(), Request: req}
	d, evID := s.decide(r.Context(), &in)
	if d.Blocked() {
		return rawAnswer(http.StatusForbidden, connectRefusal(&d, req.Host, evID)), r.URL.Host
	}
	intercepting := false
	if d.Action == verdict.ActionIntercept {
		switch {
		case s.opts.Leaves == nil:
			// No CA: the tunnel is opened as for allow (logged once at
			// start by the caller).
			s.log.Debug("proxy: intercept requested; no CA, tunnelling without interception", "host", req.Host)
		case !d.InterceptFailClosed && s.refusals.Refused(t.ipStr, req.Host):
			// The device rejected our certificate for this host lately
			// (no CA installed, or an app that pins): tunnel as before
			// rather than break it again.
			t.mode = modePinnedFallback
		default:
			intercepting = true
			t.failClosed = d.InterceptFailClosed
		}
	}
	if !intercepting && s.opts.SafeSearchHost != nil {
		if target, ok := s.opts.SafeSearchHost(req.Host, d.SafeSearch); ok {
			t.dialHost = target
			s.log.Debug("proxy: safe search enforced", "host", req.Host, "dial", target, "level", d.SafeSearch)
		}
	}
	if !s.tunnels.acquire(t.ip) {
		s.stats.tunnelsRejected.Add(1)
		return rawAnswer(http.StatusTooManyRequests, "aupguard: too many open connections from this device.\n"), r.URL.Host
	}
	t.tunnelSlot = true
	if intercepting {
		return &goproxy.ConnectAction{Action: goproxy.ConnectHijack, Hijack: s.mitm}, r.URL.Host
	}
	return &goproxy.ConnectAction{Action: goproxy.ConnectHijack, Hijack: s.tunnel}, r.URL.Host
}

// rawAnswer answers a CONNECT on the hijacked connection and closes it.
func rawAnswer(status int, body string) *goproxy.ConnectAction {
	return &goproxy.ConnectAction{
		Action: goproxy.ConnectHijack,
		Hijack: func(_ *http.Request, c net.Conn, _ *goproxy.ProxyCtx) {
			writeRaw(c, status, body)
		},
	}
}

// writeRaw writes a complete plain-text response on a hijacked connection.
func writeRaw(c net.Conn, status int, body string) {
	resp := &http.Response{
		StatusCode:    status,
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{},
		ContentLength: int64(len(body)),
		Body:          io.NopCloser(strings.NewReader(body)),
		Close:         true,
	}
	resp.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp.Header.Set("Cache-Control", "no-store")
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_ = resp.Write(c)
	_ = c.SetWriteDeadline(time.Time{})
}

// tunnel dials the checked destination and relays bytes both ways until
// either side closes, the tunnel idles out, or shutdown cuts it.
func (s *Server) tunnel(r *http.Request, client net.Conn, _ *goproxy.ProxyCtx) {
	t := txnFrom(r.Context())
	host := t.req.Host
	if t.dialHost != "" {
		host = t.dialHost
	}
	addr := net.JoinHostPort(host, strconv.Itoa(t.req.Port))
	dctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeouts.Dial)
	up, err := s.dialer.DialContext(dctx, "tcp", addr)
	cancel()
	if err != nil {
		if ref, ok := isRefused(err); ok {
			_, d, evID := s.refusal(r.Context(), t, t.req, ref)
			writeRaw(client, http.StatusForbidden, connectRefusal(&d, t.req.Host, evID))
			return
		}
		s.stats.upstreamErr.Add(1)
		status, msg := gatewayError(err)
		s.log.Info("proxy: tunnel origin unreachable", "client_ip", t.ipStr, "user", t.user, "host", t.req.Host, "status", status, "err", err)
		writeRaw(client, status, "aupguard: "+msg+"\n")
		return
	}
	defer up.Close()
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	if t.mode == modePinnedFallback {
		s.stats.tlsPinnedFallback.Add(1)
	} else {
		s.stats.tlsSpliced.Add(1)
	}
	var src io.Reader = client
	if t.rw != nil {
		src = withBuffered(t.rw.buffered, client)
	}
	sent, received := relay(client, src, up, &s.tunnelBufs)
	s.log.Debug("proxy: tunnel closed", "client_ip", t.ipStr, "user", t.user, "host", t.req.Host,
		"sent", sent, "received", received, "duration", time.Since(t.start))
}

// withBuffered replays the bytes the HTTP server had already read past the
// CONNECT head before reading on from the connection.
func withBuffered(br interface {
	Buffered() int
	Peek(int) ([]byte, error)
}, c io.Reader) io.Reader {
	if br == nil || br.Buffered() == 0 {
		return c
	}
	b, _ := br.Peek(br.Buffered())
	return io.MultiReader(bytes.NewReader(bytes.Clone(b)), c)
}

// relay copies both ways. A side that finishes cleanly half-closes the
// other, so protocols that shut down one direction first keep working; an
// error on either side closes both.
func relay(client net.Conn, clientSrc io.Reader, up net.Conn, bufs *bufPool) (sent, received int64) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		n, err := copyTunnel(up, clientSrc, bufs)
		sent = n
		if err != nil {
			_ = client.Close()
			_ = up.Close()
			return
		}
		closeWrite(up)
	}()
	go func() {
		defer wg.Done()
		n, err := copyTunnel(client, up, bufs)
		received = n
		if err != nil {
			_ = client.Close()
			_ = up.Close()
			return
		}
		closeWrite(client)
	}()
	wg.Wait()
	return sent, received
}

// copyTunnel copies one direction of a tunnel. Between two sockets the
// kernel moves the bytes itself (net.TCPConn.ReadFrom splices on Linux;
// one tunnel went from 1048 MB/s at 80% CPU to 1694 MB/s at 50%, see
// docs/benchmarks.md). Otherwise — bytes the HTTP server had buffered, a
// client socket whose idleness only Read and Write can see — it copies
// through a pooled buffer.
func copyTunnel(dst io.Writer, src io.Reader, bufs *bufPool) (int64, error) {
	if d, s := socketOf(dst), socketOf(src); d != nil && s != nil {
		return d.ReadFrom(s)
	}
	return bufs.copy(dst, src)
}

// socketOf returns the TCP socket under x that a splice may bypass.
func socketOf(x any) *net.TCPConn {
	switch c := x.(type) {
	case *net.TCPConn:
		return c
	case *trackedConn:
		return c.tcp
	}
	return nil
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() == nil {
			return
		}
	}
	_ = c.Close()
}
