package bench

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTLSLoadTrustsOnlyItsCA checks the property every TLS benchmark row
// rests on: tlsload counts a request only when the certificate it got
// chains to the one CA it was given. Through goproxy's MITM (bareproxy
// -mitm-cert) to the HTTPS origin, trusting the proxy's CA it moves
// traffic without errors on kept-alive connections; trusting the origin's
// CA instead (as if the proxy had not intercepted) every request fails. A
// client that did not verify would pass both, and a peer that did not
// intercept would be measured as if it did.
func TestTLSLoadTrustsOnlyItsCA(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the bench programs")
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir+"/", "./cmd/origin", "./cmd/bareproxy", "./cmd/tlsload")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	originAddr := startListing(t, "https", filepath.Join(dir, "origin"),
		"-http", "127.0.0.1:0", "-https", "127.0.0.1:0", "-tls-dir", dir, "-tls-names", "tls.bench.test")
	originCA := filepath.Join(dir, "ca.crt")
	proxyCert, proxyKey := writeCA(t, dir)
	_, port, _ := strings.Cut(originAddr, ":")
	proxyAddr := startListing(t, "proxy", filepath.Join(dir, "bareproxy"),
		"-listen", "127.0.0.1:0", "-hosts", "tls.bench.test=127.0.0.1",
		"-mitm-cert", proxyCert, "-mitm-key", proxyKey, "-upstream-ca", originCA)

	load := func(ca string) map[string]any {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, filepath.Join(dir, "tlsload"), "-mode", "keepalive", "-proxy", proxyAddr,
			"-url", "https://tls.bench.test:"+port+"/1k", "-ca", ca, "-c", "2", "-warmup", "0s", "-d", "1s").Output()
		if err != nil {
			t.Fatalf("tlsload: %v", err)
		}
		var r map[string]any
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("tlsload output %q: %v", out, err)
		}
		return r
	}
	good := load(proxyCert)
	if good["errors"].(float64) != 0 || good["ops"].(float64) == 0 {
		t.Fatalf("trusting the proxy's CA: want requests and no errors, got %v", good)
	}
	// Two clients, each kept alive: goproxy's MITM keeps connections.
	if good["conns"].(float64) != 2 {
		t.Errorf("trusting the proxy's CA: want 2 connections opened, got %v", good["conns"])
	}
	bad := load(originCA)
	if bad["ops"].(float64) != 0 || bad["errors"].(float64) == 0 ||
		!strings.Contains(bad["first_error"].(string), "certificate") {
		t.Fatalf("trusting only the origin's CA through an intercepting proxy: want every request to fail on the certificate, got %v", bad)
	}
}

// startListing starts a bench program that prints "<what> <addr>" once it
// listens, and returns addr; the program is stopped when the test ends.
func startListing(t *testing.T, what, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), what+" "); ok {
				found <- addr
			}
		}
	}()
	select {
	case addr := <-found:
		return addr
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not print its %s address within 30 s", filepath.Base(bin), what)
		return ""
	}
}

// writeCA writes an ECDSA P-256 CA for the proxy and returns its files.
func writeCA(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "bench test proxy CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "proxy-ca.crt"), filepath.Join(dir, "proxy-ca.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
