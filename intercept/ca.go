package intercept

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/aupguard/aupguard/internal/atomicfile"
)

// CAValidity is how long a new interception CA is valid. Devices keep it
// installed for years; rotating it means redeploying it to every device.
const CAValidity = 10 * 365 * 24 * time.Hour

// ErrCAExists is returned by CreateCA when a CA is already at the paths
// and force is not set: overwriting it would break every device that
// trusts the old one.
var ErrCAExists = errors.New("a CA already exists (use --force to replace it; every device must then trust the new one)")

// CreateCA writes a new interception CA: an ECDSA P-256 key (0600) and a
// self-signed certificate whose subject names the organisation, limited to
// signing server certificates (path length 0).
func CreateCA(certFile, keyFile, organisation string, force bool, now time.Time) (*x509.Certificate, error) {
	if !force {
		for _, p := range []string{certFile, keyFile} {
			if _, err := os.Stat(p); err == nil {
				return nil, fmt.Errorf("%s: %w", p, ErrCAExists)
			}
		}
	}
	if organisation == "" {
		organisation = "aupguard"
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: organisation + " filtering CA (aupguard)", Organization: []string{organisation}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	for _, dir := range []string{filepath.Dir(certFile), filepath.Dir(keyFile)} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("CA directory: %w", err)
		}
	}
	if err := atomicfile.Write(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	if err := atomicfile.Write(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// LoadCA reads the CA certificate and key. It refuses a certificate that
// is not a CA, a key that does not match it, and a key file others can
// read.
func LoadCA(certFile, keyFile string) (tls.Certificate, error) {
	st, err := os.Stat(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("CA key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return tls.Certificate{}, fmt.Errorf("CA key %s: mode %v lets others read it; chmod 600 it", keyFile, st.Mode().Perm())
	}
	ca, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("CA %s, %s: %w", certFile, keyFile, err)
	}
	if ca.Leaf == nil {
		if ca.Leaf, err = x509.ParseCertificate(ca.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("CA certificate %s: %w", certFile, err)
		}
	}
	if !ca.Leaf.IsCA || ca.Leaf.KeyUsage&x509.KeyUsageCertSign == 0 {
		return tls.Certificate{}, fmt.Errorf("CA certificate %s is not a CA (no basic constraints CA:TRUE or no keyCertSign)", certFile)
	}
	return ca, nil
}

// ExportCA returns the CA certificate as PEM, or DER for tools that want
// it (Windows GPO imports .cer files of either kind; some MDMs want DER).
func ExportCA(certFile string, der bool) ([]byte, error) {
	b, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("CA certificate %s: no PEM CERTIFICATE block", certFile)
	}
	if der {
		return blk.Bytes, nil
	}
	return pem.EncodeToMemory(blk), nil
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}
