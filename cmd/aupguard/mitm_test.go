package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aupguard/aupguard/internal/testutil"
	"github.com/aupguard/aupguard/policies"
)

// originCA is a test CA for HTTPS origins and a leaf it issued.
func originTLS(t *testing.T, names ...string) (caFile string, leaf tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "origin test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "origin-ca.pem")
	writeFile(t, caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	return caFile, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestBinaryIntercepts: `aupguard ca init`, then `serve`: a learner's
// HTTPS post to www.facebook.com (a local origin) gets 403 naming social
// media inside TLS under the new CA, never reaches the origin and becomes
// an event; a read of the same host passes; a non-social host shows the
// origin's own certificate.
func TestBinaryIntercepts(t *testing.T) {
	bin := aupguardBinary(t)
	_, err := exec.LookPath("curl")
	testutil.Require(t, err == nil, "curl not installed")

	var posts atomic.Int64
	originCA, leaf := originTLS(t, "www.facebook.com", "docs.example.org")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
		}
		_, _ = io.WriteString(w, "origin page for "+r.Host)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(interface{ String() string }).String()
	port = port[strings.LastIndex(port, ":")+1:]

	// The origin listens on an ephemeral port, which the shipped
	// connect_ports refuse: the admin's data opens them.
	data, err := fs.ReadFile(policies.FS, "data.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const ports = "  connect_ports: [443, 8443, 5223, 5228]\n"
	if !bytes.Contains(data, []byte(ports)) {
		t.Fatalf("policies/data.yaml has no %q", ports)
	}
	policyDir := t.TempDir()
	writeFile(t, filepath.Join(policyDir, "data.yaml"), string(bytes.Replace(data, []byte(ports), []byte("  connect_ports: [443, \"1024-65535\"]\n"), 1)))

	dataDir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "aupguard.yaml")
	writeFile(t, cfg, fmt.Sprintf(`data_dir: %s
lists: {mirror: %s}
log: {level: info}
admin: {listen: "127.0.0.1:0"}
policy: {dir: %s}
proxy:
  listen: "127.0.0.1:0"
  allow_destinations: [127.0.0.0/8]
  upstream_ca_file: %s
dns: {enabled: false}
intercept: {organisation: Northfield Training}
hosts:
  www.facebook.com: [127.0.0.1]
  docs.example.org: [127.0.0.1]
`, dataDir, testutil.SharedData(t), policyDir, originCA))

	out, err := exec.Command(bin, "ca", "init", "--config", cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("ca init: %v\n%s", err, out)
	}
	ourCA := filepath.Join(dataDir, "ca", "ca.crt")
	p := startBinary(t, bin, cfg)
	if !strings.Contains(p.logs.String(), "TLS interception on") {
		t.Errorf("serve did not say interception is on:\n%s", p.logs.String())
	}

	bundle := filepath.Join(t.TempDir(), "bundle.pem")
	ours, _ := os.ReadFile(ourCA)
	theirs, _ := os.ReadFile(originCA)
	writeFile(t, bundle, string(ours)+string(theirs))
	curl := func(args ...string) (string, int) {
		all := append([]string{"-sS", "--max-time", "60", "--cacert", bundle, "-x", "http://" + p.proxy, "-w", "\n%{http_code}"}, args...)
		cmd := exec.Command("curl", all...)
		cmd.Env = append(os.Environ(), "NO_PROXY=", "no_proxy=", "https_proxy=", "HTTPS_PROXY=", "ALL_PROXY=")
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("curl %v: %v", args, err)
		}
		s := string(b)
		i := strings.LastIndex(s, "\n")
		var code int
		fmt.Sscan(s[i+1:], &code)
		return s[:i], code
	}
	share := "https://www.facebook.com:" + port + "/share"
	body, code := curl("-d", "msg=provider materials", share+"?via=curl")
	if code != http.StatusForbidden || !strings.Contains(body, "Social") {
		t.Errorf("learner's post: %d %q", code, body)
	}
	if n := posts.Load(); n != 0 {
		t.Errorf("the origin received %d posts", n)
	}
	body, code = curl("https://www.facebook.com:" + port + "/")
	if code != http.StatusOK || body != "origin page for www.facebook.com:"+port {
		t.Errorf("read: %d %q", code, body)
	}

	// The certificate each host shows a client trusting both CAs.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ours)
	pool.AppendCertsFromPEM(theirs)
	c := &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(&url.URL{Scheme: "http", Host: p.proxy}),
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}, Timeout: 30 * time.Second}
	for host, want := range map[string]string{"www.facebook.com": "Northfield Training filtering CA (aupguard)", "docs.example.org": "origin test CA"} {
		resp, err := c.Get("https://" + host + ":" + port + "/")
		if err != nil {
			t.Fatalf("GET %s: %v", host, err)
		}
		resp.Body.Close()
		if got := resp.TLS.PeerCertificates[0].Issuer.CommonName; got != want {
			t.Errorf("%s shows a certificate from %q, want %q", host, got, want)
		}
	}

	// The block is an event, with the URL and no query string.
	waitFor(t, "the block event in the spool", func() bool {
		for _, ev := range spoolEvents(t, dataDir) {
			if ev["kind"] == "block" && ev["url"] == share && ev["category"] == "social" {
				return true
			}
		}
		return false
	})
}
