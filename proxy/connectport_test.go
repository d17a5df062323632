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

	"github.com/aupguard/aupguard/internal/testcore"
)

// TestConnectToOtherPortsRefused: with the policy data as shipped, a
// learner's CONNECT to an SSH service is refused with 403 and an event, and
// the service's banner never comes back; the same host on 443's stand-in
// (a port the data lists) would be tunnelled. Staff, who may circumvent,
// are not limited.
func TestConnectToOtherPortsRefused(t *testing.T) {
	ssh, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ssh.Close()
	go func() {
		for {
			c, err := ssh.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ssh.Addr().String())
	h := start(t, func(s *setup) {
		s.opts.Decider = testcore.NewShipped(t, testDomains)
		s.opts.Hosts["sshbox.example"] = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
		s.identity.Groups = map[string][]string{"127.0.0.1/32": {"learners"}, "127.0.0.2/32": {"staff"}}
	})
	tunnel := func(src, target string) (int, string) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
		c, err := d.Dial("tcp", h.proxy.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		io.WriteString(c, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil {
			t.Fatalf("CONNECT %s: %v", target, err)
		}
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		line, _ := br.ReadString('\n')
		return resp.StatusCode, line
	}
	for _, target := range []string{"sshbox.example:" + port, "sshbox.example:22"} {
		code, body := tunnel("127.0.0.1", target)
		if code != http.StatusForbidden || strings.Contains(body, "SSH-2.0") {
			t.Errorf("learner CONNECT %s: %d %q", target, code, body)
		}
	}
	var found bool
	for _, ev := range h.emit.all() {
		if ev.Rule == "connect_port" && ev.Category == "circumvention" && ev.Host == "sshbox.example" {
			found = true
		}
	}
	if !found {
		t.Errorf("no circumvention event for the tunnel: %+v", h.emit.all())
	}
	if code, line := tunnel("127.0.0.2", "sshbox.example:"+port); code != http.StatusOK || !strings.HasPrefix(line, "SSH-2.0") {
		t.Errorf("staff CONNECT: %d %q", code, line)
	}
}
