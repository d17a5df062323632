package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// tracker counts work in flight so Shutdown can wait for it. Unlike a
// sync.WaitGroup it may be added to while someone waits (a keep-alive
// connection can start one last request as shutdown begins).
type tracker struct {
	mu   sync.Mutex
	n    int
	zero chan struct{}
}

func (t *tracker) add() {
	t.mu.Lock()
	if t.n == 0 {
		t.zero = make(chan struct{})
	}
	t.n++
	t.mu.Unlock()
}

func (t *tracker) done() {
	t.mu.Lock()
	t.n--
	if t.n == 0 {
		close(t.zero)
	}
	t.mu.Unlock()
}

func (t *tracker) wait(ctx context.Context) error {
	t.mu.Lock()
	if t.n == 0 {
		t.mu.Unlock()
		return nil
	}
	ch := t.zero
	t.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tunnelLimit caps concurrent tunnels (CONNECT and WebSocket) per client.
type tunnelLimit struct {
	max    int
	mu     sync.Mutex
	n      map[netip.Addr]int
	active atomic.Int64
}

func (l *tunnelLimit) acquire(ip netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[ip] >= l.max {
		return false
	}
	l.n[ip]++
	l.active.Add(1)
	return true
}

func (l *tunnelLimit) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[ip] <= 1 {
		delete(l.n, ip)
	} else {
		l.n[ip]--
	}
	l.active.Add(-1)
}

// connSet holds hijacked client connections (tunnels and WebSockets),
// which http.Server.Shutdown neither waits for nor closes.
type connSet struct {
	mu sync.Mutex
	m  map[*trackedConn]struct{}
}

func (s *connSet) add(c *trackedConn) {
	s.mu.Lock()
	s.m[c] = struct{}{}
	s.mu.Unlock()
}

func (s *connSet) remove(c *trackedConn) {
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	cs := make([]*trackedConn, 0, len(s.m))
	for c := range s.m {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
}

// closeIdle closes the connections with no traffic for quiet: during a
// drain, a tunnel idling between requests is cut like an idle keep-alive
// connection, while one still carrying data is left to finish.
func (s *connSet) closeIdle(quiet time.Duration) {
	s.mu.Lock()
	var cs []*trackedConn
	for c := range s.m {
		if c.quiet() >= quiet {
			cs = append(cs, c)
		}
	}
	s.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
}

// trackedConn is a hijacked client connection. Every byte of a tunnel or
// WebSocket passes through it in one direction or the other, so it is
// where idleness is measured: a watchdog closes it after idle without
// traffic either way, which ends both relay directions.
type trackedConn struct {
	net.Conn
	// tcp is the socket itself when the kernel can say how long it has
	// been quiet (Linux's TCP_INFO): then the socket's own clock measures
	// idleness, and tunnels may splice(2) bytes past Read and Write.
	tcp     *net.TCPConn
	idle    time.Duration
	last    atomic.Int64
	timer   *time.Timer
	once    sync.Once
	onClose func(*trackedConn)
}

func newTrackedConn(c net.Conn, idle time.Duration, onClose func(*trackedConn)) *trackedConn {
	t := &trackedConn{Conn: c, idle: idle, onClose: onClose}
	if tc, ok := c.(*net.TCPConn); ok {
		if _, ok := socketQuiet(tc); ok {
			t.tcp = tc
		}
	}
	t.touch()
	t.timer = time.AfterFunc(idle, t.watch)
	return t
}

func (c *trackedConn) touch() { c.last.Store(time.Now().UnixNano()) }

// quiet is how long no byte has passed either way: since the last Read or
// Write, or, when the kernel tells, since the socket last sent or received
// data (bytes spliced by a tunnel never pass through Read or Write).
func (c *trackedConn) quiet() time.Duration {
	q := time.Since(time.Unix(0, c.last.Load()))
	if c.tcp != nil {
		if k, ok := socketQuiet(c.tcp); ok && k < q {
			q = k
		}
	}
	return q
}

func (c *trackedConn) watch() {
	quiet := c.quiet()
	if quiet >= c.idle {
		_ = c.Close()
		return
	}
	c.timer.Reset(c.idle - quiet)
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *trackedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

// CloseWrite half-closes, so a client that finished sending still gets
// the rest of the origin's answer.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

func (c *trackedConn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		c.timer.Stop()
		err = c.Conn.Close()
		if c.onClose != nil {
			c.onClose(c)
		}
	})
	return err
}

// respWriter wraps the client's ResponseWriter for goproxy so that a
// hijack (CONNECT, WebSocket) is seen: the connection is tracked for
// shutdown and idleness, and closed when the handler returns (goproxy
// leaves a WebSocket client connection open otherwise).
type respWriter struct {
	http.ResponseWriter
	conn *trackedConn
	// buffered holds bytes the HTTP server read past the request head
	// before the hijack (a client may pipeline its first tunnel bytes).
	buffered *bufio.Reader
	hijack   func(net.Conn) *trackedConn
	bufs     *bufPool
}

// ReadFrom is where goproxy's io.Copy of a response body lands. Without
// it io.Copy would allocate a 32 KiB buffer for every response (three
// quarters of the proxy's garbage under load); with the server's own
// ReadFrom a small body would go out in two writes (the first 512 bytes
// and the header, then the rest). Copying through the ResponseWriter with
// a pooled buffer keeps a small response in one write and a large one in
// large writes.
func (w *respWriter) ReadFrom(r io.Reader) (int64, error) {
	return w.bufs.copy(w.ResponseWriter, r)
}

func (w *respWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("proxy: connection cannot be hijacked")
	}
	c, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = w.hijack(c)
	w.buffered = rw.Reader
	return w.conn, rw, nil
}

func (w *respWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// bufPool reuses copy buffers of one size. Response bodies use 64 KiB
// (held only while a response streams, so a download moves in few system
// calls); tunnels use 32 KiB, as io.Copy did, because a tunnel holds its
// two buffers for as long as it is open and browsers keep many idle
// tunnels.
type bufPool struct {
	size int
	p    sync.Pool
}

// copy copies src to dst through a pooled buffer. Both are hidden behind
// plain Reader and Writer so neither side's ReadFrom or WriteTo swaps the
// buffer for a fresh allocation of its own (net.TCPConn falls back to
// io.Copy for sources it cannot splice, which allocates).
func (b *bufPool) copy(dst io.Writer, src io.Reader) (int64, error) {
	bp, _ := b.p.Get().(*[]byte)
	if bp == nil {
		buf := make([]byte, b.size)
		bp = &buf
	}
	defer b.p.Put(bp)
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, *bp)
}
