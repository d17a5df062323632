package intercept

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
)

// MinterOptions tune leaf minting; zero values take the defaults.
type MinterOptions struct {
	// CacheSize bounds the cached leaf certificates (one per host).
	CacheSize int
	// Validity is a leaf's lifetime. Short, because a leaf is only ever
	// presented by this proxy and is minted again at no cost to anyone.
	Validity time.Duration
	// Backdate moves NotBefore into the past, for devices whose clocks
	// run a little slow.
	Backdate time.Duration
	// Now is the clock (tests set it).
	Now func() time.Time
}

// Defaults for MinterOptions.
const (
	DefaultCacheSize = 10_000
	DefaultValidity  = 7 * 24 * time.Hour
	DefaultBackdate  = time.Hour
)

// Minter mints leaf certificates signed by the interception CA, one per
// host on first use, and keeps them in a bounded LRU cache. Concurrent
// first requests for a host mint once.
type Minter struct {
	ca    tls.Certificate
	caX   *x509.Certificate
	opts  MinterOptions
	cache *lru.Cache[string, *tls.Certificate]
	group singleflight.Group

	minted atomic.Uint64
	hits   atomic.Uint64
}

// NewMinter returns a Minter for the CA (as LoadCA returns it).
func NewMinter(ca tls.Certificate, opts MinterOptions) (*Minter, error) {
	if len(ca.Certificate) == 0 || ca.PrivateKey == nil {
		return nil, errors.New("intercept: CA has no certificate or key")
	}
	caX := ca.Leaf
	if caX == nil {
		var err error
		if caX, err = x509.ParseCertificate(ca.Certificate[0]); err != nil {
			return nil, fmt.Errorf("intercept: CA certificate: %w", err)
		}
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.Validity <= 0 {
		opts.Validity = DefaultValidity
	}
	if opts.Backdate <= 0 {
		opts.Backdate = DefaultBackdate
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cache, err := lru.New[string, *tls.Certificate](opts.CacheSize)
	if err != nil {
		return nil, fmt.Errorf("intercept: %w", err)
	}
	return &Minter{ca: ca, caX: caX, opts: opts, cache: cache}, nil
}

// CA returns the CA certificate leaves chain to.
func (m *Minter) CA() *x509.Certificate { return m.caX }

// Certificate returns the leaf for host (a DNS name or an IP literal),
// from the cache while it has more than a quarter of its life left, else
// freshly minted.
func (m *Minter) Certificate(host string) (*tls.Certificate, error) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "" {
		return nil, errors.New("intercept: no host name to mint a certificate for")
	}
	if c, ok := m.cache.Get(host); ok && m.opts.Now().Before(c.Leaf.NotAfter.Add(-m.opts.Validity/4)) {
		m.hits.Add(1)
		return c, nil
	}
	v, err, _ := m.group.Do(host, func() (any, error) {
		if c, ok := m.cache.Get(host); ok && m.opts.Now().Before(c.Leaf.NotAfter.Add(-m.opts.Validity/4)) {
			return c, nil
		}
		c, err := m.mint(host)
		if err != nil {
			return nil, err
		}
		m.cache.Add(host, c)
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*tls.Certificate), nil
}

// mint creates a leaf: a new ECDSA P-256 key, the host as the only
// subject alternative name, server authentication only.
func (m *Minter) mint(host string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("intercept: leaf key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := m.opts.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: host},
		NotBefore:    now.Add(-m.opts.Backdate),
		NotAfter:     now.Add(m.opts.Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip.AsSlice())
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, m.caX, &key.PublicKey, m.ca.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("intercept: leaf for %s: %w", host, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("intercept: leaf for %s: %w", host, err)
	}
	m.minted.Add(1)
	return &tls.Certificate{Certificate: [][]byte{der, m.ca.Certificate[0]}, PrivateKey: key, Leaf: leaf}, nil
}

// ServerConfig is the TLS configuration presented to a client whose
// CONNECT named connectHost: the leaf for the name the client sends in SNI
// (or connectHost when it sends none), HTTP/1.1 only — the proxy serves
// intercepted traffic as HTTP/1.1, so it never offers h2.
func (m *Minter) ServerConfig(connectHost string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			name := hello.ServerName
			if name == "" {
				name = connectHost
			}
			return m.Certificate(name)
		},
	}
}

// MinterStats are the Minter's counters.
type MinterStats struct {
	Minted    uint64 `json:"minted"`
	CacheHits uint64 `json:"cache_hits"`
	Cached    int    `json:"cached"`
}

// Stats returns the counters.
func (m *Minter) Stats() MinterStats {
	return MinterStats{Minted: m.minted.Load(), CacheHits: m.hits.Load(), Cached: m.cache.Len()}
}
