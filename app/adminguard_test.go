package app

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aupguard/aupguard/internal/testutil"
)

// serveAdmin runs a whole aupguard with its admin listener on adminListen and the
// proxy allowed to reach all of loopback, as a test deployment would.
func serveAdmin(t *testing.T, adminListen string) *Server {
	t.Helper()
	yaml := fmt.Sprintf(`data_dir: %s
lists: {mirror: %q}
admin: {listen: %q}
console: {listen: ""}
dns: {enabled: false}
policy: {watch: false}
proxy: {listen: "127.0.0.1:0", allow_destinations: [127.0.0.0/8, "::1/128"]}
`, t.TempDir(), testutil.SharedData(t), adminListen)
	s := startServer(t, "admin-guard.yaml", yaml)
	return s
}

// fetch GETs target through s's proxy and returns the status and body.
func fetch(t *testing.T, s *Server, target string) (int, string) {
	t.Helper()
	pu, _ := url.Parse("http://" + s.Proxy.Addr().String())
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), DisableKeepAlives: true}, Timeout: 20 * time.Second}
	resp, err := c.Get(target)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The console's port is only known once bound (admin.listen with port 0):
// the proxy must refuse it by the bound address, although
// allow_destinations opens loopback, while a loopback origin stays
// reachable.
func TestAdminUnreachableThroughProxyOnBoundPort(t *testing.T) {
	for _, listen := range []string{"127.0.0.1:0", "0.0.0.0:0"} {
		t.Run(listen, func(t *testing.T) {
			s := serveAdmin(t, listen)
			_, port, _ := net.SplitHostPort(s.AdminAddr().String())

			// The admin listener answers directly, so a refusal below is the guard.
			resp, err := http.Get("http://127.0.0.1:" + port + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("admin /readyz directly: %d", resp.StatusCode)
			}
			origin := newLoopbackOrigin(t)
			if code, body := fetch(t, s, origin+"/"); code != http.StatusOK || body != "origin" {
				t.Fatalf("loopback origin through the proxy: %d %q", code, body)
			}

			// By name, the admin listener must not answer either (localhost may
			// also name ::1, where nothing listens: a 502 then).
			if code, body := fetch(t, s, "http://localhost:"+port+"/readyz"); code == http.StatusOK {
				t.Errorf("/readyz via localhost through the proxy: %d %q", code, body)
			}
			targets := []string{"127.0.0.1", "0.0.0.0", "[::ffff:127.0.0.1]"}
			if strings.HasPrefix(listen, "0.0.0.0") {
				// Bound to every address: the port is the admin listener's on
				// all of loopback and on every interface address.
				targets = append(targets, "127.0.0.9")
				targets = append(targets, interfaceAddrs(t)...)
			}
			for _, host := range targets {
				code, body := fetch(t, s, "http://"+host+":"+port+"/readyz")
				if code != http.StatusForbidden || !strings.Contains(body, "own listeners") {
					t.Errorf("/readyz via %s through the proxy: %d %q; want 403 (own listener)", host, code, body)
				}
			}
		})
	}
}

// newLoopbackOrigin is a plain origin on 127.0.0.1, returned as a base URL.
func newLoopbackOrigin(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "origin")
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// interfaceAddrs are this host's non-loopback unicast IPv4 addresses, as
// URL hosts (there may be none in a sandbox).
func interfaceAddrs(t *testing.T) []string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.To4() == nil {
			continue
		}
		out = append(out, ipn.IP.String())
	}
	return out
}

// The DNS filter's TCP side is one of aupguard's listeners too.
func TestDNSListenerUnreachableThroughProxy(t *testing.T) {
	yaml := fmt.Sprintf(`data_dir: %s
lists: {mirror: %q}
admin: {listen: ""}
console: {listen: ""}
dns: {enabled: true, listen: "127.0.0.1:0", udp_sockets: 1}
policy: {watch: false}
proxy: {listen: "127.0.0.1:0", allow_destinations: [127.0.0.0/8]}
`, t.TempDir(), testutil.SharedData(t))
	s := startServer(t, "dns-guard.yaml", yaml)
	_, tcp := s.DNS.Addr()
	_, port, _ := net.SplitHostPort(tcp.String())
	code, body := fetch(t, s, "http://127.0.0.1:"+port+"/")
	if code != http.StatusForbidden || !strings.Contains(body, "own listeners") {
		t.Errorf("DNS TCP port through the proxy: %d %q; want 403 (own listener)", code, body)
	}
}
