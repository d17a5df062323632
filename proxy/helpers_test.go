package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"github.com/aupguard/aupguard/internal/testutil"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/identity"
	"github.com/aupguard/aupguard/internal/testcore"
	"github.com/aupguard/aupguard/verdict"
)

// Names the tests browse to. The hosts map points them at local servers,
// the way a real deployment's DNS would point them at the internet.
const (
	hostAllowed  = "origin.test.example"
	hostCasino   = "casino.test.example"
	hostSocial   = "www.facebook.com"
	hostFiles    = "files.test.example"
	hostSecure   = "secure.test.example"
	hostUntrust  = "untrusted.test.example"
	hostHacking  = "exploits.test.example"
	hostMetadata = "metadata.test.example"
)

// testDomains are the extra list entries the decision core is built with.
var testDomains = map[string][]string{
	"gambling": {hostCasino},
	"hacking":  {hostHacking},
}

// recorder is the Emitter of the tests: it keeps every event.
type recorder struct {
	mu  sync.Mutex
	evs []events.Event
}

func (r *recorder) Emit(_ context.Context, ev events.Event) error {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
	return nil
}

func (r *recorder) all() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evs)
}

func (r *recorder) byID(t testing.TB, id string) events.Event {
	t.Helper()
	for _, ev := range r.all() {
		if ev.ID == id {
			return ev
		}
	}
	t.Fatalf("no event with id %q among %d events", id, len(r.all()))
	return events.Event{}
}

// inputRecorder wraps the decider and keeps every input it was asked
// about, so tests can check what the proxy told the policy.
type inputRecorder struct {
	inner Decider
	mu    sync.Mutex
	ins   []verdict.Input
}

func (d *inputRecorder) Decide(ctx context.Context, in *verdict.Input) verdict.Decision {
	dec := d.inner.Decide(ctx, in)
	d.mu.Lock()
	cp := *in
	if in.Response != nil {
		r := *in.Response
		cp.Response = &r
	}
	d.ins = append(d.ins, cp)
	d.mu.Unlock()
	return dec
}

func (d *inputRecorder) find(phase verdict.Phase, host string) []verdict.Input {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []verdict.Input
	for _, in := range d.ins {
		if in.Phase == phase && in.Request.Host == host {
			out = append(out, in)
		}
	}
	return out
}

// testCA issues certificates for the local TLS origins.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	pemPath string
	pool    *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "aupguard test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pemPath: p, pool: pool}
}

func (ca *testCA) leaf(t testing.TB, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// pattern returns n deterministic bytes: a body whose every byte can be
// checked without keeping a copy.
type pattern struct {
	n, off int64
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n-p.off {
		b = b[:p.n-p.off]
	}
	for i := range b {
		x := p.off + int64(i)
		b[i] = byte(x*7 + x>>11)
	}
	p.off += int64(len(b))
	return len(b), nil
}

func patternSum(n int64) string {
	h := sha256.New()
	_, _ = io.Copy(h, &pattern{n: n})
	return hex.EncodeToString(h.Sum(nil))
}

const (
	smallSize = 1 << 10
	largeSize = 50 << 20
)

// origin is the local plain-HTTP origin every test name points at.
type origin struct {
	srv     *httptest.Server
	hits    atomic.Int64
	release chan struct{} // closes to let /slow finish
	slowHit chan struct{}
}

func newOrigin(t testing.TB) *origin {
	o := &origin{release: make(chan struct{}), slowHit: make(chan struct{}, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = io.Copy(w, &pattern{n: smallSize})
	})
	mux.HandleFunc("/large", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", fmt.Sprint(largeSize))
		_, _ = io.Copy(w, &pattern{n: largeSize})
	})
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<p>hello from "+r.Host+"</p>")
	})
	echo := func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("X-Body-Sha256", hex.EncodeToString(h.Sum(nil)))
		w.Header().Set("X-Body-Length", fmt.Sprint(n))
		w.Header().Set("X-Transfer-Encoding", strings.Join(r.TransferEncoding, ","))
		w.Header().Set("X-Content-Length", fmt.Sprint(r.ContentLength))
		_, _ = io.WriteString(w, "ok")
	}
	mux.HandleFunc("/echo", echo)
	mux.HandleFunc("/share", echo)
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "must not reach the client")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-End", "reaches the client")
		_ = r.Header.Write(w)
	})
	mux.HandleFunc("/download", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="film.torrent"`)
		_, _ = io.WriteString(w, "d8:announce35:udp://tracker.example:1337/announcee")
	})
	mux.HandleFunc("/bt", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-bittorrent")
		_, _ = io.WriteString(w, "d8:announce35:udp://tracker.example:1337/announcee")
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(200)
		_, _ = io.WriteString(w, "first half;")
		w.(http.Flusher).Flush()
		o.slowHit <- struct{}{}
		<-o.release
		_, _ = io.WriteString(w, "second half")
	})
	mux.Handle("/ws", websocket.Handler(func(c *websocket.Conn) {
		for {
			var msg string
			if websocket.Message.Receive(c, &msg) != nil || websocket.Message.Send(c, msg) != nil {
				return
			}
		}
	}))
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		select {
		case <-o.release:
		default:
			close(o.release)
		}
		o.srv.Close()
	})
	return o
}

func (o *origin) port() string {
	_, p, _ := net.SplitHostPort(o.srv.Listener.Addr().String())
	return p
}

// harness is a running proxy with its origins and recorders.
type harness struct {
	t       testing.TB
	srv     *Server
	cfg     Config
	emit    *recorder
	inputs  *inputRecorder
	origin  *origin
	tls     *httptest.Server
	untrust *httptest.Server
	ca      *testCA
	logs    *syncBuffer
	proxy   *url.URL
}

// syncBuffer collects output written concurrently.
type syncBuffer = testutil.SyncBuffer

type setup struct {
	cfg      Config
	identity identity.Config
	opts     Options
	logLevel slog.Level
	// dataEdits, when set, edit the policy data the decision core is
	// built with (testcore.NewEdited).
	dataEdits [][2]string
}

// start runs a proxy on 127.0.0.1:0 in front of local origins. mutate may
// change the config and options before New.
func start(t testing.TB, mutate func(*setup)) *harness {
	t.Helper()
	h := &harness{t: t, emit: &recorder{}, ca: newTestCA(t), logs: &syncBuffer{}}
	h.origin = newOrigin(t)

	h.tls = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello over TLS from "+r.Host)
	}))
	h.tls.TLS = &tls.Config{Certificates: []tls.Certificate{h.ca.leaf(t, hostSecure)}}
	h.tls.StartTLS()
	t.Cleanup(h.tls.Close)
	// httptest's own certificate names example.com, not this host, and is
	// not signed by the test CA: the proxy must refuse it.
	h.untrust = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "you should not see this")
	}))
	t.Cleanup(h.untrust.Close)

	lo := netip.MustParseAddr("127.0.0.1")
	s := &setup{
		cfg:      DefaultConfig(),
		identity: identity.DefaultConfig(),
		opts: Options{
			Emitter:  h.emit,
			NewID:    events.NewID,
			Instance: "test",
			Hosts: map[string][]netip.Addr{
				hostAllowed:  {lo},
				hostCasino:   {lo},
				hostSocial:   {lo},
				hostFiles:    {lo},
				hostSecure:   {lo},
				hostUntrust:  {lo},
				hostHacking:  {lo},
				hostMetadata: {netip.MustParseAddr("169.254.169.254")},
			},
		},
		logLevel: slog.LevelInfo,
	}
	// Loopback clients are learners unless a test maps a narrower prefix.
	s.identity.Groups = map[string][]string{"127.0.0.0/8": {"learners"}}
	s.cfg.Listen = "127.0.0.1:0"
	// The origins live on loopback: the tests must allow it explicitly.
	s.cfg.AllowDestinations = []string{"127.0.0.0/8"}
	s.cfg.UpstreamCAFile = h.ca.pemPath
	s.cfg.BlockPage.Organisation = "Northfield Training"
	s.cfg.BlockPage.Contacts = []Contact{
		{Name: "Sam Patel", Role: "Designated Safeguarding Lead", Email: "safeguarding@northfield.example", Phone: "+44 20 7946 0018"},
		{Name: "IT Service Desk", Email: "it@northfield.example"},
	}
	if mutate != nil {
		mutate(s)
	}
	if s.dataEdits != nil {
		h.inputs = &inputRecorder{inner: testcore.NewEdited(t, testDomains, s.dataEdits...)}
	} else {
		h.inputs = &inputRecorder{inner: newDecider(t, testDomains)}
	}
	if s.opts.Decider == nil {
		s.opts.Decider = h.inputs
	}
	if s.opts.Identity == nil {
		id, err := identity.New(s.identity, identity.Options{})
		if err != nil {
			t.Fatal(err)
		}
		s.opts.Identity = id
	}
	s.opts.Logger = slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: s.logLevel}))
	h.cfg = s.cfg
	srv, err := New(s.cfg, s.opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if t.Failed() {
			t.Logf("proxy log:\n%s", h.logs.String())
		}
	})
	h.srv = srv
	h.proxy = &url.URL{Scheme: "http", Host: srv.Addr().String()}
	return h
}

// url names path on the plain origin under a test host name.
func (h *harness) url(host, path string) string {
	return "http://" + host + ":" + h.origin.port() + path
}

func (h *harness) secureURL(path string) string {
	_, p, _ := net.SplitHostPort(h.tls.Listener.Addr().String())
	return "https://" + hostSecure + ":" + p + path
}

// client is a Go HTTP client configured to use the proxy, trusting the
// test CA, from local address src ("" for 127.0.0.1).
func (h *harness) client(src string) *http.Client {
	d := &net.Dialer{}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:              http.ProxyURL(h.proxy),
			DialContext:        d.DialContext,
			TLSClientConfig:    &tls.Config{RootCAs: h.ca.pool},
			DisableCompression: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// connect asks the proxy for a tunnel to the TLS origin on a connection
// of its own (closed at cleanup) and returns it, a reader positioned
// after the proxy's answer, and the answer's status.
func (h *harness) connect(t testing.TB) (net.Conn, *bufio.Reader, int) {
	t.Helper()
	_, sp, _ := net.SplitHostPort(h.tls.Listener.Addr().String())
	c, err := net.Dial("tcp", h.proxy.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_, _ = io.WriteString(c, "CONNECT "+hostSecure+":"+sp+" HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("CONNECT: %v", err)
	}
	return c, br, resp.StatusCode
}

// raw sends a hand-written request to the proxy and returns the response.
func (h *harness) raw(t testing.TB, req string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", h.proxy.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: strings.Fields(req)[0]})
	if err != nil {
		t.Fatalf("reading the proxy's answer to %q: %v", strings.SplitN(req, "\r\n", 2)[0], err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// curl runs curl through the proxy and returns stdout, stderr and the exit
// code.
func (h *harness) curl(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	_, lookErr := exec.LookPath("curl")
	testutil.Require(t, lookErr == nil, "curl not installed")
	all := append([]string{"-sS", "--max-time", "60", "-x", h.proxy.String()}, args...)
	cmd := exec.Command("curl", all...)
	cmd.Env = append(os.Environ(), "NO_PROXY=", "no_proxy=", "http_proxy=", "https_proxy=", "HTTPS_PROXY=", "ALL_PROXY=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("curl: %v", err)
	}
	return out.String(), errb.String(), code
}

func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return string(b)
}

func get(t testing.TB, c *http.Client, u string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp
}
