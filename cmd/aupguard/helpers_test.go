package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// newOriginServer starts a local HTTP server and returns its base URL.
func newOriginServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// newOrigin starts a local HTTP server and returns its port, for URLs
// that name the origin by a host from the hosts map.
func newOrigin(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	u, _ := url.Parse(newOriginServer(t, h))
	return u.Port()
}
