package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/aupguard/aupguard/internal/testutil"
)

// This file runs the real binary: built by the test, started as `aupguard
// serve` in a process of its own, and driven by real signals (SIGHUP,
// SIGTERM), as an operator or systemd would.

// proc is one running `aupguard serve`.
type proc struct {
	cmd    *exec.Cmd
	logs   *syncBuffer
	proxy  string
	admin  string
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
}

// startBinary runs `bin serve --config cfg` with env added to the
// environment and waits until it serves.
func startBinary(t *testing.T, bin, cfg string, env ...string) *proc {
	t.Helper()
	p := &proc{logs: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", "--config", cfg, "--drain", "20s")
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("aupguard serve output:\n%s", p.logs.String())
		}
	})
	waitFor(t, "aupguard serve to listen", func() bool {
		select {
		case <-p.exited:
			t.Fatalf("serve exited before serving (%v):\n%s", p.err, p.logs.String())
		default:
		}
		m := servingRe.FindStringSubmatch(p.logs.String())
		if m == nil {
			return false
		}
		p.proxy, p.admin = m[1], m[2]
		return true
	})
	return p
}

func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("sending %v: %v", sig, err)
	}
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// status GETs target through the proxy, optionally as user:password, and
// returns the status code.
func (p *proc) status(t *testing.T, target, user, pass string) int {
	t.Helper()
	pu := &url.URL{Scheme: "http", Host: p.proxy}
	if user != "" {
		pu.User = url.UserPassword(user, pass)
	}
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), DisableKeepAlives: true}, Timeout: 30 * time.Second}
	resp, err := c.Get(target)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// testAdminToken is the admin API's bearer token in these tests.
const testAdminToken = "test-admin-token-0123456789"

// revision reads the policy or lists revision from the admin API.
func (p *proc) revision(t *testing.T, what string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.admin+"/api/"+what, nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("/api/%s: %v", what, err)
	}
	defer resp.Body.Close()
	var v struct {
		Revision string `json:"revision"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v.Revision == "" {
		t.Fatalf("/api/%s: %v (%+v)", what, err, v)
	}
	return v.Revision
}

// adminPolicy blocks each of hosts, as an admin's own file in policy.dir.
func adminPolicy(hosts ...string) string {
	var b strings.Builder
	b.WriteString("package aupguard\n")
	for _, h := range hosts {
		fmt.Fprintf(&b, `
matches contains {"action": "block", "category": "provider_rule", "rule": "provider_block", "severity": "low", "reason": "Blocked by the provider."} if input.request.host == %q
`, h)
	}
	return b.String()
}

// listsYAML is the lists section: the default lists from the shared test
// data as a mirror (no network), plus a small local list the test edits
// to see SIGHUP reload it.
func listsYAML(t *testing.T, listFile string) string {
	return fmt.Sprintf(`lists:
  mirror: %q
  refresh: 0s
  sources:
    - {name: test-gambling, category: gambling, format: domains, path: %q}
`, testutil.SharedData(t), listFile)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func htpasswdLine(t *testing.T, user, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return user + ":" + string(h) + "\n"
}

// The binary reloads on a real SIGHUP: a new policy, a list file and the
// credential files are picked up (none of them is watched or refreshed
// otherwise in this setup); a broken policy is refused and the previous one
// keeps answering. Then a real SIGTERM with a request in flight: the
// request completes and the process exits 0.
func TestBinarySignals(t *testing.T) {
	bin := aupguardBinary(t)
	dir := t.TempDir()
	policyDir := filepath.Join(dir, "policy")
	if err := os.Mkdir(policyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	const (
		hostPolicy  = "homework-answers.test.example"
		hostCasino  = "casino-new.test.example"
		hostSlow    = "slow.test.example"
		policyFile  = "provider.rego"
		passwordBob = "correct horse"
	)
	writeFile(t, filepath.Join(policyDir, policyFile), adminPolicy("old-rule.test.example"))
	listFile := filepath.Join(dir, "gambling.txt")
	writeFile(t, listFile, "casino-old.test.example\n")

	// The identity watcher follows changes in the credential files'
	// directory. The htpasswd path is a symlink into another directory,
	// whose file the test rewrites: no event reaches the watcher, so only
	// SIGHUP can make the change seen.
	credDir, realDir := filepath.Join(dir, "creds"), filepath.Join(dir, "creds-real")
	for _, d := range []string{credDir, realDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	realHtpasswd := filepath.Join(realDir, "htpasswd")
	writeFile(t, realHtpasswd, htpasswdLine(t, "alice", "alice's password"))
	htpasswd := filepath.Join(credDir, "htpasswd")
	if err := os.Symlink(realHtpasswd, htpasswd); err != nil {
		t.Fatal(err)
	}

	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	originPort := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			w.Header().Set("Content-Length", fmt.Sprint(len("first half;second half")))
			_, _ = io.WriteString(w, "first half;")
			w.(http.Flusher).Flush()
			arrived <- struct{}{}
			<-release
			_, _ = io.WriteString(w, "second half")
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	// Registered after the origin's cleanup, so run before it: a handler
	// still waiting would make the origin's Close wait forever.
	t.Cleanup(releaseOnce)
	cfg := filepath.Join(dir, "aupguard.yaml")
	tokenFile := filepath.Join(dir, "admin.token")
	writeFile(t, tokenFile, testAdminToken+"\n")
	writeFile(t, cfg, fmt.Sprintf(`data_dir: %q
log: {level: info}
admin: {listen: "127.0.0.1:0", auth: {token_file: %q}}
console: {listen: ""}
proxy:
  listen: "127.0.0.1:0"
  allow_destinations: [127.0.0.0/8]
dns: {enabled: true, listen: "127.0.0.1:0"}
policy: {dir: %q, watch: false}
identity:
  auth: {htpasswd: %q}
hosts:
  %s: [127.0.0.1]
  %s: [127.0.0.1]
  %s: [127.0.0.1]
%s`, filepath.Join(dir, "data"), tokenFile, policyDir, htpasswd, hostPolicy, hostCasino, hostSlow, listsYAML(t, listFile)))

	p := startBinary(t, bin, cfg)
	u := func(host, path string) string { return "http://" + host + ":" + originPort + path }

	// Before: the host is allowed, the casino is not in the list yet, and
	// bob is not a user.
	if got := p.status(t, u(hostPolicy, "/"), "", ""); got != http.StatusOK {
		t.Fatalf("before SIGHUP, %s: %d; want 200", hostPolicy, got)
	}
	if got := p.status(t, u(hostCasino, "/"), "", ""); got != http.StatusOK {
		t.Fatalf("before SIGHUP, %s: %d; want 200", hostCasino, got)
	}
	if got := p.status(t, u(hostPolicy, "/"), "bob", passwordBob); got != http.StatusProxyAuthRequired {
		t.Fatalf("before SIGHUP, bob: %d; want 407", got)
	}
	policyRev, listsRev := p.revision(t, "policy"), p.revision(t, "lists")

	reloaded := t.Run("SIGHUP reloads policy, lists and credentials", func(t *testing.T) {
		writeFile(t, filepath.Join(policyDir, policyFile), adminPolicy("old-rule.test.example", hostPolicy))
		writeFile(t, listFile, "casino-old.test.example\n"+hostCasino+"\n")
		writeFile(t, realHtpasswd, htpasswdLine(t, "alice", "alice's password")+htpasswdLine(t, "bob", passwordBob))
		p.signal(t, syscall.SIGHUP)

		waitFor(t, "a new policy revision", func() bool { return p.revision(t, "policy") != policyRev })
		waitFor(t, "a new lists revision", func() bool { return p.revision(t, "lists") != listsRev })
		waitFor(t, "bob's credentials", func() bool {
			return p.status(t, u(hostSlow, "/"), "bob", passwordBob) == http.StatusOK
		})
		if got := p.status(t, u(hostPolicy, "/"), "", ""); got != http.StatusForbidden {
			t.Errorf("after SIGHUP, %s: %d; want 403 from the new policy", hostPolicy, got)
		}
		if got := p.status(t, u(hostCasino, "/"), "", ""); got != http.StatusForbidden {
			t.Errorf("after SIGHUP, %s: %d; want 403 from the new list", hostCasino, got)
		}
		if got := p.status(t, u(hostCasino, "/"), "bob", passwordBob); got != http.StatusForbidden {
			t.Errorf("after SIGHUP, bob to %s: %d; want 403 (authenticated, then blocked)", hostCasino, got)
		}
		policyRev, listsRev = p.revision(t, "policy"), p.revision(t, "lists")
	})

	t.Run("SIGHUP with a broken policy keeps the old one", func(t *testing.T) {
		if !reloaded {
			t.Skip("the reload before it failed")
		}
		before := strings.Count(p.logs.String(), "reload incomplete")
		writeFile(t, filepath.Join(policyDir, policyFile), "package aupguard\n\nmatches contains {\"action\": \"block\" if {\n")
		p.signal(t, syscall.SIGHUP)
		waitFor(t, "the refused reload to be logged", func() bool {
			return strings.Count(p.logs.String(), "reload incomplete") > before
		})
		if got := p.revision(t, "policy"); got != policyRev {
			t.Errorf("policy revision %s after a broken reload; want %s kept", got, policyRev)
		}
		if got := p.status(t, u(hostPolicy, "/"), "", ""); got != http.StatusForbidden {
			t.Errorf("after a broken reload, %s: %d; want 403 from the previous policy", hostPolicy, got)
		}
		if got := p.status(t, u(hostCasino, "/"), "", ""); got != http.StatusForbidden {
			t.Errorf("after a broken reload, %s: %d; want 403 (lists unchanged)", hostCasino, got)
		}
		if got := p.revision(t, "lists"); got != listsRev {
			t.Errorf("lists revision %s after a reload with unchanged lists; want %s", got, listsRev)
		}
	})

	t.Run("SIGTERM drains the request in flight and exits 0", func(t *testing.T) {
		type result struct {
			body string
			err  error
		}
		res := make(chan result, 1)
		go func() {
			pu := &url.URL{Scheme: "http", Host: p.proxy}
			c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}, Timeout: 60 * time.Second}
			resp, err := c.Get(u(hostSlow, "/slow"))
			if err != nil {
				res <- result{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			res <- result{string(b), err}
		}()
		select {
		case <-arrived:
		case r := <-res:
			t.Fatalf("the slow request ended before reaching the origin: %+v", r)
		case <-time.After(60 * time.Second):
			t.Fatal("the slow request did not reach the origin")
		}
		p.signal(t, syscall.SIGTERM)
		// The request is still in flight when the proxy stops accepting.
		waitFor(t, "the proxy to stop accepting", func() bool {
			c, err := net.DialTimeout("tcp", p.proxy, time.Second)
			if err != nil {
				return true
			}
			c.Close()
			return false
		})
		select {
		case <-p.exited:
			t.Fatalf("serve exited (%v) with a request in flight", p.err)
		default:
		}
		releaseOnce()
		r := <-res
		if r.err != nil || r.body != "first half;second half" {
			t.Fatalf("the request in flight: %q, %v; want it complete", r.body, r.err)
		}
		select {
		case <-p.exited:
		case <-time.After(60 * time.Second):
			t.Fatal("serve did not exit after SIGTERM")
		}
		if p.err != nil || p.cmd.ProcessState.ExitCode() != 0 {
			t.Fatalf("serve exit: %v (code %d); want 0", p.err, p.cmd.ProcessState.ExitCode())
		}
	})
}
