package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"

	"github.com/elazarl/goproxy"
)

// mitmConfig is the -mitm-* flags.
type mitmConfig struct {
	certFile, keyFile, upstreamCA string
}

// apply makes gp intercept every CONNECT with goproxy's MITM over the CA,
// and tr verify origins against the system roots plus upstreamCA.
func (mc mitmConfig) apply(gp *goproxy.ProxyHttpServer, tr *http.Transport) error {
	if mc.keyFile == "" {
		return errors.New("-mitm-cert needs -mitm-key")
	}
	ca, err := tls.LoadX509KeyPair(mc.certFile, mc.keyFile)
	if err != nil {
		return fmt.Errorf("loading the MITM CA: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if mc.upstreamCA != "" {
		b, err := os.ReadFile(mc.upstreamCA)
		if err != nil {
			return fmt.Errorf("-upstream-ca: %w", err)
		}
		if !roots.AppendCertsFromPEM(b) {
			return fmt.Errorf("-upstream-ca %s: no PEM certificate", mc.upstreamCA)
		}
	}
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	// HTTP/1.1 to origins, as aupguard's interception and the other
	// peers speak to them.
	tr.ForceAttemptHTTP2 = false
	tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	action := &goproxy.ConnectAction{Action: goproxy.ConnectMitm, TLSConfig: goproxy.TLSConfigFromCA(&ca)}
	gp.OnRequest().HandleConnectFunc(func(host string, _ *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
		return action, host
	})
	gp.CertStore = &certCache{m: map[string]*tls.Certificate{}}
	return nil
}

// certCache keeps every leaf goproxy mints (the benchmark's host names are
// few): a first visit mints, later ones reuse. Concurrent first requests
// for one host may both mint; the last one is kept.
type certCache struct {
	mu sync.RWMutex
	m  map[string]*tls.Certificate
}

func (c *certCache) Fetch(host string, gen func() (*tls.Certificate, error)) (*tls.Certificate, error) {
	c.mu.RLock()
	cert, ok := c.m[host]
	c.mu.RUnlock()
	if ok {
		return cert, nil
	}
	cert, err := gen()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.m[host] = cert
	c.mu.Unlock()
	return cert, nil
}
