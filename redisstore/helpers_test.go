package redisstore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"github.com/aupguard/aupguard/internal/testutil"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a real redis-server on a free loopback port, which a
// test can kill, restart (same port) and pause.
type redisServer struct {
	t          testing.TB
	bin        string
	port       int
	dir        string
	persistent bool
	// tls, when set, serves TLS only (on port) with these files, and
	// clientTLS is what the readiness check connects with.
	tls       *tlsFiles
	clientTLS *tls.Config
	// extra are more arguments; a first one ending in .conf is the config
	// file (Sentinel needs one it can write).
	extra []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *syncBuffer
}

// syncBuffer collects output written concurrently.
type syncBuffer = testutil.SyncBuffer

// startRedis starts a redis-server. persistent turns on the append-only
// file with fsync on every write, so a killed server comes back with its
// data, as a production Redis would.
func startRedis(t testing.TB, persistent bool) *redisServer {
	t.Helper()
	return startRedisWith(t, persistent, nil)
}

func startRedisWith(t testing.TB, persistent bool, tf *tlsFiles, extra ...string) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	testutil.Require(t, err == nil, "redis-server is not installed (apt-get install -y redis-server; .ci/run installs it): skipping the tests that need a real Redis")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := &redisServer{t: t, bin: bin, port: port, dir: t.TempDir(), persistent: persistent, out: &syncBuffer{}, tls: tf, extra: extra}
	if tf != nil {
		r.clientTLS = &tls.Config{RootCAs: tf.pool}
	}
	r.Start()
	t.Cleanup(func() {
		r.Resume()
		r.Kill()
		if t.Failed() {
			t.Logf("redis-server output:\n%s", r.out.String())
		}
	})
	return r
}

func (r *redisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// Start starts the server (again) and waits until it answers PING.
func (r *redisServer) Start() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		r.t.Fatal("redis-server already running")
	}
	args := []string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--dir", r.dir,
		"--protected-mode", "no", "--daemonize", "no", "--loglevel", "warning"}
	if r.tls != nil {
		args[1] = "0" // no plain TCP
		args = append(args, "--tls-port", strconv.Itoa(r.port), "--tls-cert-file", r.tls.cert, "--tls-key-file", r.tls.key,
			"--tls-ca-cert-file", r.tls.ca, "--tls-auth-clients", "no")
	}
	if r.persistent {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if len(r.extra) > 0 && filepath.Ext(r.extra[0]) == ".conf" {
		args = append([]string{r.extra[0]}, append(args, r.extra[1:]...)...)
	} else {
		args = append(args, r.extra...)
	}
	cmd := exec.Command(r.bin, args...)
	cmd.Stdout, cmd.Stderr = r.out, r.out
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("starting redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	r.cmd, r.done = cmd, done

	c := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond, DisableIdentity: true, TLSConfig: r.clientTLS})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-done:
			r.t.Fatalf("redis-server exited at start: %s", r.out.String())
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server did not answer within 15s: %v\n%s", err, r.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server with SIGKILL (no shutdown save) and waits for it.
func (r *redisServer) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGCONT)
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

// Pause freezes the server (SIGSTOP): connections stay open but nothing
// answers, like a stalled or overloaded Redis.
func (r *redisServer) Pause() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		_ = r.cmd.Process.Signal(syscall.SIGSTOP)
	}
}

// Resume undoes Pause.
func (r *redisServer) Resume() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		_ = r.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// Client returns a plain client for the test's own checks.
func (r *redisServer) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), DisableIdentity: true, TLSConfig: r.clientTLS})
	r.t.Cleanup(func() { c.Close() })
	return c
}

// testConfig is an enabled config for srv with short backoffs.
func testConfig(srv *redisServer) Config {
	c := DefaultConfig()
	c.Enabled = true
	c.Addrs = []string{srv.Addr()}
	// Other work on a loaded test machine can stall a read past the
	// production 20ms; tests that are about timeouts set their own.
	c.Cache.Timeout = 500 * time.Millisecond
	c.Stream.BackoffMin = 20 * time.Millisecond
	c.Stream.BackoffMax = 200 * time.Millisecond
	return c
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

func testLoggerQuiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newStore opens a Store for the test and closes it at cleanup.
func newStore(t testing.TB, cfg Config, instance string) *Store {
	t.Helper()
	s, err := New(cfg, Options{Logger: testLogger(t), Instance: instance})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// eventually polls cond until it holds or 20s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// tlsFiles are a test CA and a server certificate for 127.0.0.1 and
// redis.test, written as PEM files.
type tlsFiles struct {
	ca, cert, key string
	pool          *x509.CertPool
}

func newTLSFiles(t testing.TB) *tlsFiles {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "aupguard test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	must(t, err)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "redis.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"redis.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	must(t, err)
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	must(t, err)
	f := &tlsFiles{ca: filepath.Join(dir, "ca.pem"), cert: filepath.Join(dir, "server.pem"), key: filepath.Join(dir, "server.key"), pool: x509.NewCertPool()}
	f.pool.AddCert(caCert)
	write := func(path, typ string, der []byte) {
		must(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
	}
	write(f.ca, "CERTIFICATE", caDER)
	write(f.cert, "CERTIFICATE", srvDER)
	write(f.key, "EC PRIVATE KEY", keyDER)
	return f
}
