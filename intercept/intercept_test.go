package intercept

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func newCA(t testing.TB) (tls.Certificate, string) {
	t.Helper()
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "ca", "ca.crt"), filepath.Join(dir, "ca", "ca.key")
	if _, err := CreateCA(crt, key, "Example Training Ltd", false, time.Now()); err != nil {
		t.Fatal(err)
	}
	ca, err := LoadCA(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	return ca, crt
}

func TestCreateCA(t *testing.T) {
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "ca", "ca.crt"), filepath.Join(dir, "ca", "ca.key")
	c, err := CreateCA(crt, key, "Example Training Ltd", false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !c.IsCA || c.MaxPathLen != 0 || !c.MaxPathLenZero || c.Subject.Organization[0] != "Example Training Ltd" ||
		!strings.Contains(c.Subject.CommonName, "Example Training Ltd") {
		t.Errorf("CA = %+v", c.Subject)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", c.PublicKey)
	}
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key mode = %v, %v", st.Mode(), err)
	}
	if _, err := CreateCA(crt, key, "Other", false, time.Now()); !errors.Is(err, ErrCAExists) {
		t.Errorf("second CreateCA without force: %v", err)
	}
	c2, err := CreateCA(crt, key, "Other", true, time.Now())
	if err != nil || c2.SerialNumber.Cmp(c.SerialNumber) == 0 {
		t.Fatalf("forced CreateCA: %v", err)
	}
	ca, err := LoadCA(crt, key)
	if err != nil || ca.Leaf.Subject.Organization[0] != "Other" {
		t.Fatalf("LoadCA after force: %v", err)
	}

	pemOut, err := ExportCA(crt, false)
	if err != nil {
		t.Fatal(err)
	}
	der, err := ExportCA(crt, true)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(pemOut)
	if blk == nil || string(blk.Bytes) != string(der) || string(der) != string(ca.Certificate[0]) {
		t.Error("PEM and DER exports differ from the certificate")
	}
}

func TestLoadCARefuses(t *testing.T) {
	_, crt := newCA(t)
	key := filepath.Join(filepath.Dir(crt), "ca.key")
	os.Chmod(key, 0o644)
	if _, err := LoadCA(crt, key); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key: %v", err)
	}
	os.Chmod(key, 0o600)
	// A leaf is not a CA.
	ca, _ := LoadCA(crt, key)
	m, _ := NewMinter(ca, MinterOptions{})
	leaf, err := m.Certificate("www.example.org")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lc, lk := filepath.Join(dir, "leaf.crt"), filepath.Join(dir, "leaf.key")
	os.WriteFile(lc, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]}), 0o644)
	kb, _ := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	os.WriteFile(lk, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
	if _, err := LoadCA(lc, lk); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Errorf("leaf as CA: %v", err)
	}
}

func TestLeaf(t *testing.T) {
	ca, _ := newCA(t)
	now := time.Now().UTC().Truncate(time.Second).Add(time.Hour)
	m, err := NewMinter(ca, MinterOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Leaf)
	for _, host := range []string{"www.facebook.com", "WWW.Facebook.com.", "192.0.2.7", "2001:db8::1"} {
		c, err := m.Certificate(host)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.ToLower(strings.TrimSuffix(host, "."))
		inter := x509.NewCertPool()
		if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter, CurrentTime: now}); err != nil {
			t.Errorf("%s: leaf does not verify: %v", host, err)
		}
		if n := len(c.Leaf.DNSNames) + len(c.Leaf.IPAddresses); n != 1 {
			t.Errorf("%s: %d subject alternative names, want 1", host, n)
		}
		if pub, ok := c.Leaf.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
			t.Errorf("%s: key %T", host, c.Leaf.PublicKey)
		}
		if !c.Leaf.NotBefore.Equal(now.Add(-DefaultBackdate)) || !c.Leaf.NotAfter.Equal(now.Add(DefaultValidity)) {
			t.Errorf("%s: valid %v to %v", host, c.Leaf.NotBefore, c.Leaf.NotAfter)
		}
		if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: "www.other.example", Roots: roots, CurrentTime: now}); err == nil && !strings.Contains(host, ":") && !strings.Contains(host, "192") {
			t.Errorf("%s: leaf verifies for another name", host)
		}
	}
	if _, err := m.Certificate(""); err == nil {
		t.Error("empty host minted")
	}
}

func TestLeafCache(t *testing.T) {
	ca, _ := newCA(t)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	m, _ := NewMinter(ca, MinterOptions{CacheSize: 2, Now: clock})

	// Concurrent first requests mint once.
	var wg sync.WaitGroup
	certs := make([]*tls.Certificate, 64)
	for i := range certs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			certs[i], _ = m.Certificate("www.instagram.com")
		}()
	}
	wg.Wait()
	for _, c := range certs {
		if c == nil || c != certs[0] {
			t.Fatal("concurrent first requests got different certificates")
		}
	}
	if st := m.Stats(); st.Minted != 1 {
		t.Fatalf("minted %d, want 1", st.Minted)
	}
	// Bounded: a third host evicts the least recently used.
	m.Certificate("a.example")
	m.Certificate("b.example")
	if st := m.Stats(); st.Cached != 2 {
		t.Errorf("cached %d, want 2", st.Cached)
	}
	// A leaf past three quarters of its life is minted again.
	first, _ := m.Certificate("b.example")
	mu.Lock()
	now = now.Add(DefaultValidity * 3 / 4).Add(time.Minute)
	mu.Unlock()
	again, _ := m.Certificate("b.example")
	if again == first || !again.Leaf.NotAfter.After(first.Leaf.NotAfter) {
		t.Error("an ageing leaf was not renewed")
	}
}

// TestHandshake: a real client trusting the CA completes the handshake
// with the leaf chosen by SNI and gets HTTP/1.1 even when it offers h2; a
// client without the CA refuses, and the server side sees a refusal.
func TestHandshake(t *testing.T) {
	ca, _ := newCA(t)
	m, _ := NewMinter(ca, MinterOptions{})
	roots := x509.NewCertPool()
	roots.AddCert(ca.Leaf)

	serve := func(clientCfg *tls.Config) (proto string, clientErr, serverErr error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		done := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				done <- err
				return
			}
			defer c.Close()
			s := tls.Server(c, m.ServerConfig("connect-host.example"))
			done <- s.Handshake()
		}()
		c, err := tls.Dial("tcp", ln.Addr().String(), clientCfg)
		if err == nil {
			proto = c.ConnectionState().NegotiatedProtocol
			c.Close()
		}
		return proto, err, <-done
	}

	proto, cErr, sErr := serve(&tls.Config{ServerName: "www.facebook.com", RootCAs: roots, NextProtos: []string{"h2", "http/1.1"}})
	if cErr != nil || sErr != nil || proto != "http/1.1" {
		t.Fatalf("trusting client: %v / %v, protocol %q", cErr, sErr, proto)
	}
	_, cErr, sErr = serve(&tls.Config{ServerName: "www.facebook.com"}) // system roots only: no CA
	if cErr == nil {
		t.Fatal("a client without the CA accepted the leaf")
	}
	if !IsClientRefusal(sErr) {
		t.Errorf("server-side error %v not seen as a refusal", sErr)
	}
	if IsClientRefusal(errors.New("tls: first record does not look like a TLS handshake")) || IsClientRefusal(nil) {
		t.Error("a non-TLS client counted as a refusal")
	}
}

func TestRefusals(t *testing.T) {
	r := NewRefusals(2, 50*time.Millisecond)
	r.Remember("10.0.0.5", "WWW.Facebook.com")
	if !r.Refused("10.0.0.5", "www.facebook.com") || r.Refused("10.0.0.6", "www.facebook.com") || r.Refused("10.0.0.5", "x.com") {
		t.Error("refusal not kept per client and host")
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.Refused("10.0.0.5", "www.facebook.com") {
		if time.Now().After(deadline) {
			t.Fatal("a refusal never expired")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r.Count() != 1 {
		t.Errorf("count %d", r.Count())
	}
}

// BenchmarkMint is the cost of a first visit to a new host (key, signature,
// parse); BenchmarkCached the cost of every later one.
func BenchmarkMint(b *testing.B) {
	ca, _ := newCA(b)
	m, _ := NewMinter(ca, MinterOptions{CacheSize: 1})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := m.mint(fmt.Sprintf("host%d.example", i)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCached(b *testing.B) {
	ca, _ := newCA(b)
	m, _ := NewMinter(ca, MinterOptions{})
	m.Certificate("www.facebook.com")
	b.ReportAllocs()
	for b.Loop() {
		m.Certificate("www.facebook.com")
	}
}

// BenchmarkCacheMemory reports the heap a cached leaf costs.
func BenchmarkCacheMemory(b *testing.B) {
	ca, _ := newCA(b)
	const n = 2000
	for b.Loop() {
		m, _ := NewMinter(ca, MinterOptions{CacheSize: n})
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range n {
			m.Certificate(fmt.Sprintf("host%d.example.org", i))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/leaf")
		runtime.KeepAlive(m)
	}
}

// BenchmarkMintLatency reports the distribution of first-visit mint times
// (what a learner's first connection to a new host waits for, on top of
// the handshake), so the p99 can be read off, not only the mean.
func BenchmarkMintLatency(b *testing.B) {
	ca, _ := newCA(b)
	m, _ := NewMinter(ca, MinterOptions{CacheSize: 1})
	var took []time.Duration
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	for i := 0; b.Loop(); i++ {
		began := time.Now()
		if _, err := m.mint(fmt.Sprintf("host%d.example", i)); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(began))
	}
	if cpu := threadCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu)/float64(len(took)), "cpu-µs/op")
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
}
