package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/aupguard/aupguard/dnsfilter"
)

// banner is a TCP service on ip:port that greets every connection with
// name, standing for a TLS origin behind a tunnel.
func banner(t *testing.T, ip, port, name string) (string, error) {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, port))
	if err != nil {
		return "", err
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, name+"\n")
			c.Close()
		}
	}()
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p, nil
}

// TestConnectDialsTheSafeSearchHost: proxied clients do not resolve
// through the DNS filter, so a tunnel to www.google.com whose decision
// asks for safe search is dialled to forcesafesearch.google.com (the
// table the DNS filter rewrites with), and the learner's TLS reaches
// Google's safe-search front end. A host that is not a search engine is
// dialled as asked.
func TestConnectDialsTheSafeSearchHost(t *testing.T) {
	// The real and the safe front end on one port, two loopback addresses.
	var port string
	for range 20 {
		p, err := banner(t, "127.0.0.2", "0", "safe front end")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := banner(t, "127.0.0.1", p, "real front end"); err == nil {
			port = p
			break
		}
	}
	if port == "" {
		t.Fatal("no port free on both 127.0.0.1 and 127.0.0.2")
	}
	h := start(t, func(s *setup) {
		s.opts.SafeSearchHost = dnsfilter.SafeSearchHost
		s.opts.Hosts["www.google.com"] = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
		s.opts.Hosts["forcesafesearch.google.com"] = []netip.Addr{netip.MustParseAddr("127.0.0.2")}
		s.opts.Hosts["www.example.org"] = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	})
	greet := func(target string) string {
		c, err := net.DialTimeout("tcp", h.proxy.Host, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		io.WriteString(c, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("CONNECT %s: %v %v", target, resp, err)
		}
		line, _ := br.ReadString('\n')
		return strings.TrimSpace(line)
	}
	if got := greet("www.google.com:" + port); got != "safe front end" {
		t.Errorf("learner's tunnel to www.google.com reached the %s", got)
	}
	if got := greet("www.example.org:" + port); got != "real front end" {
		t.Errorf("tunnel to www.example.org reached the %s", got)
	}
}

func TestSafeSearchHost(t *testing.T) {
	for _, c := range []struct{ host, level, want string }{
		{"www.google.com", "strict", "forcesafesearch.google.com"},
		{"WWW.Google.co.uk.", "moderate", "forcesafesearch.google.com"},
		{"www.youtube.com", "strict", "restrict.youtube.com"},
		{"www.youtube.com", "moderate", "restrictmoderate.youtube.com"},
		{"www.bing.com", "strict", "strict.bing.com"},
		{"www.google.com", "off", ""},
		{"www.example.org", "strict", ""},
	} {
		got, ok := dnsfilter.SafeSearchHost(c.host, c.level)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("SafeSearchHost(%q, %q) = %q, %v; want %q", c.host, c.level, got, ok, c.want)
		}
	}
}
