package deploy

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/aupguard/aupguard/internal/testutil"
)

const containerfilePath = "container/Containerfile"

// podmanLimits lower the open-files and process limits of the container:
// podman raises them for root by default, which needs CAP_SYS_RESOURCE,
// and a CI container does not have it. Lowering is always allowed.
var podmanLimits = []string{"--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"}

// testImage builds the Containerfile's final stage as written, on a build
// stage replaced by the binary this test run built (the real build stage
// starts FROM golang, which needs a registry this machine cannot reach).
// It checks first that the Containerfile builds the way the tests do.
func testImage(t *testing.T, podman string) string {
	t.Helper()
	b, err := os.ReadFile(containerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	cf := string(b)
	for _, want := range []string{"CGO_ENABLED=0 go build", "-o /out/aupguard ./cmd/aupguard", " AS build\n"} {
		if !strings.Contains(cf, want) {
			t.Fatalf("%s: no %q: the test's binary would not be the image's", containerfilePath, want)
		}
	}
	i := strings.LastIndex(cf, "\nFROM scratch\n")
	if i < 0 {
		t.Fatalf("%s: the final stage is not FROM scratch", containerfilePath)
	}
	final := cf[i+1:]

	ctx := t.TempDir()
	root := filepath.Join(ctx, "rootfs")
	for _, d := range []string{"out/var/lib/aupguard", "out/var/cache/aupguard", "out/etc/aupguard", "etc/ssl/certs"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, aupguardBinary(t), filepath.Join(root, "out/aupguard"), 0o755)
	ca := "/etc/ssl/certs/ca-certificates.crt"
	_, err = os.Stat(ca)
	testutil.Require(t, err == nil, "%s missing (Debian: apt-get install ca-certificates): %v", ca, err)
	copyFile(t, ca, filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"), 0o644)
	stage := "FROM scratch AS build\nCOPY rootfs/ /\n\n" + final
	if err := os.WriteFile(filepath.Join(ctx, "Containerfile"), []byte(stage), 0o644); err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("localhost/aupguard-deploy-test:%d", os.Getpid())
	if out, err := exec.Command(podman, "build", "--pull=never", "--layers=false", "-t", tag, "-f", filepath.Join(ctx, "Containerfile"), ctx).CombinedOutput(); err != nil {
		t.Fatalf("podman build: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command(podman, "rmi", "-f", tag).Run() })
	return tag
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

// podmanRuntime finds run flags that work on this machine: podman's
// default runtime (crun) first, then runc, which also runs on hosts with
// both cgroup versions mounted (crun refuses "hybrid" cgroups).
func podmanRuntime(t *testing.T, podman, image string) []string {
	t.Helper()
	var msgs []string
	for _, rt := range [][]string{nil, {"--runtime", "runc"}} {
		args := append(append(append([]string{}, rt...), "run", "--rm", "--network", "none"), podmanLimits...)
		out, err := exec.Command(podman, append(args, image, "version")...).CombinedOutput()
		if err == nil && strings.HasPrefix(string(out), "aupguard ") {
			return rt
		}
		msgs = append(msgs, fmt.Sprintf("%v: %v: %s", rt, err, out))
	}
	testutil.Require(t, false, "podman cannot run a container here:\n%s", strings.Join(msgs, "\n"))
	return nil
}

var containerServingRe = regexp.MustCompile(`msg="aupguard serving" proxy=(\S+) .*dns=(\S+) admin=(\S+)`)

// TestContainerImage builds the image of container/Containerfile with
// podman and checks it: FROM scratch with nothing but the binary, the CA
// roots and its directories (no shell), a non-root user; then runs it with
// a mounted configuration (the lists from the shared mirror), read-only
// root file system, as the image's user, and waits for /readyz; the proxy
// blocks a gambling site and passes another, the DNS filter blocks it too,
// and SIGTERM stops it with status 0.
func TestContainerImage(t *testing.T) {
	podman, err := exec.LookPath("podman")
	testutil.Require(t, err == nil, "podman not installed (Debian: apt-get install podman runc): %v", err)
	mirror := testutil.SharedData(t)
	image := testImage(t, podman)
	rt := podmanRuntime(t, podman, image)

	// The image as shipped: user and files.
	out, err := exec.Command(podman, "image", "inspect", "--format", "{{.Config.User}}", image).Output()
	if err != nil || strings.TrimSpace(string(out)) != "65532:65532" {
		t.Errorf("image user %q (%v), want 65532:65532", out, err)
	}
	files := imageFiles(t, podman, image)
	for _, f := range []string{"usr/local/bin/aupguard", "etc/ssl/certs/ca-certificates.crt"} {
		if _, ok := files[f]; !ok {
			t.Errorf("the image lacks %s", f)
		}
	}
	for f, hdr := range files {
		if hdr.Typeflag == tar.TypeReg && f != "usr/local/bin/aupguard" && f != "etc/ssl/certs/ca-certificates.crt" {
			t.Errorf("the image holds %s: want only the binary and the CA roots (no shell, no tools)", f)
		}
	}
	for _, d := range []string{"var/lib/aupguard", "var/cache/aupguard"} {
		if hdr, ok := files[d]; !ok || hdr.Uid != 65532 {
			t.Errorf("%s is missing or not owned by the runtime user", d)
		}
	}

	// Running it.
	originPort := origin(t)
	cfgDir := t.TempDir()
	os.Chmod(cfgDir, 0o755)
	cfg := `log: {level: info}
data_dir: /var/lib/aupguard
policy: {timezone: Europe/London}
lists: {mirror: /mirror, cache_dir: /var/cache/aupguard/lists}
identity: {networks: [127.0.0.0/8]}
proxy: {listen: "127.0.0.1:0", allow_destinations: [127.0.0.0/8]}
dns: {enabled: true, listen: "127.0.0.1:0", udp_sockets: 1, upstreams: ["127.0.0.1:9"]}
admin: {listen: "127.0.0.1:0"}
console: {listen: ""}
hosts:
  www.bet365.com: [127.0.0.1]
  www.bbc.co.uk: [127.0.0.1]
`
	if err := os.WriteFile(filepath.Join(cfgDir, "aupguard.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("aupguard-deploy-test-%d", os.Getpid())
	args := append(append([]string{}, rt...), "run", "--rm", "--name", name, "--network", "host", "--read-only")
	args = append(append(args, podmanLimits...), "-v", cfgDir+":/etc/aupguard:ro", "-v", mirror+":/mirror:ro", image)
	cmd := exec.Command(podman, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command(podman, append(append([]string{}, rt...), "rm", "-f", "-v", name)...).Run()
		cmd.Process.Kill()
		cmd.Wait()
	})
	logs := &testutil.SyncBuffer{}
	serving := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(io.TeeReader(stderr, logs))
		for sc.Scan() {
			if m := containerServingRe.FindStringSubmatch(sc.Text()); m != nil {
				serving <- m[1:]
			}
		}
	}()
	var proxyAddr, dnsAddr, adminAddr string
	select {
	case m := <-serving:
		proxyAddr, dnsAddr, adminAddr = m[0], m[1], m[2]
	case <-time.After(2 * time.Minute):
		t.Fatalf("the container did not start serving:\n%s", logs.String())
	}

	// Ready once the mirror's lists are loaded.
	deadline := time.Now().Add(2 * time.Minute)
	var body string
	for {
		resp, err := http.Get("http://" + adminAddr + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			if resp.StatusCode == 200 && body == "ready\n" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never said ready: %q %v\n%s", body, err, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}

	pu, _ := url.Parse("http://" + proxyAddr)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}, Timeout: 30 * time.Second}
	for host, want := range map[string]int{"www.bet365.com": 403, "www.bbc.co.uk": 200} {
		resp, err := client.Get("http://" + host + ":" + originPort + "/")
		if err != nil {
			t.Fatalf("%s through the container's proxy: %v", host, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: status %d, want %d", host, resp.StatusCode, want)
		}
	}
	m := new(dns.Msg)
	m.SetQuestion("www.pokerstars.com.", dns.TypeA)
	r, _, err := (&dns.Client{Timeout: 10 * time.Second}).Exchange(m, dnsAddr)
	if err != nil {
		t.Fatalf("DNS query to the container: %v", err)
	}
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "0.0.0.0" {
		t.Errorf("www.pokerstars.com through the container's DNS filter: %v, want the block answer 0.0.0.0", r.Answer)
	}

	if out, err := exec.Command(podman, append(append([]string{}, rt...), "stop", "-t", "40", name)...).CombinedOutput(); err != nil {
		t.Fatalf("podman stop: %v\n%s", err, out)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the container exited with %v after SIGTERM:\n%s", err, logs.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("the container did not stop")
	}
}

// imageFiles lists the files of an image by exporting a container made
// from it (never started).
func imageFiles(t *testing.T, podman, image string) map[string]*tar.Header {
	t.Helper()
	out, err := exec.Command(podman, "create", image).Output()
	if err != nil {
		t.Fatalf("podman create: %v", err)
	}
	id := strings.TrimSpace(string(out))
	defer exec.Command(podman, "rm", "-f", "-v", id).Run()
	cmd := exec.Command(podman, "export", id)
	r, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	files := map[string]*tar.Header{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[strings.Trim(filepath.Clean("/"+h.Name), "/")] = h
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("podman export: %v", err)
	}
	return files
}

// origin serves a page on a loopback port and returns the port.
func origin(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "origin\n") })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}
