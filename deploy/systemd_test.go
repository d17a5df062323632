package deploy

import (
	"bufio"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aupguard/aupguard/internal/testutil"
)

const (
	unitPath     = "systemd/aupguard.service"
	unitYAMLPath = "systemd/aupguard.yaml"
	// credDir is where systemd puts the unit's LoadCredential= files.
	credDir = "/run/credentials/aupguard.service/"
)

// unit is a parsed unit file: section → key → values in file order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	sec := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			sec = strings.Trim(line, "[]")
			u[sec] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || sec == "" {
				t.Fatalf("%s: cannot read %q", path, line)
			}
			u[sec][k] = append(u[sec][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// one returns the single value of a key, failing when it is missing or set
// more than once.
func (u unit) one(t *testing.T, sec, key string) string {
	t.Helper()
	v := u[sec][key]
	if len(v) != 1 {
		t.Fatalf("[%s] %s= is set %d times, want once", sec, key, len(v))
	}
	return v[0]
}

// unitWithBinary writes the unit into a fresh directory with ExecStart
// pointed at bin, as an install would, and returns its path.
func unitWithBinary(t *testing.T, bin string) string {
	t.Helper()
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	const installed = "ExecStart=/usr/local/bin/aupguard "
	if !strings.Contains(string(b), installed) {
		t.Fatalf("%s: no %q line to point at the built binary", unitPath, installed)
	}
	s := strings.Replace(string(b), installed, "ExecStart="+bin+" ", 1)
	p := filepath.Join(t.TempDir(), "aupguard.service")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	testutil.Require(t, err == nil, "systemd-analyze not installed (Debian: apt-get install systemd): %v", err)
	return p
}

// TestSystemdUnitVerifies runs systemd-analyze verify on the unit with
// ExecStart pointed at a freshly built binary. verify works offline (no
// systemd as PID 1 is needed for a unit file given by path); it fails on a
// missing executable and prints a warning, with status 0, for an unknown
// or misspelt key, so any output at all fails the test.
func TestSystemdUnitVerifies(t *testing.T) {
	sa := systemdAnalyze(t)
	p := unitWithBinary(t, aupguardBinary(t))
	out, err := exec.Command(sa, "verify", p).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", unitPath, err, out)
	}
}

var exposureRe = regexp.MustCompile(`Overall exposure level for aupguard\.service: (\d+\.\d+) (\S+)`)

// TestSystemdUnitExposure records systemd-analyze security's exposure
// score of the unit (offline: from the file alone), fails above 2.0 ("OK"
// ends there), and checks that the figure in systemd/README.md is the one
// measured, so the README cannot drift from the unit.
func TestSystemdUnitExposure(t *testing.T) {
	sa := systemdAnalyze(t)
	p := unitWithBinary(t, aupguardBinary(t))
	out, err := exec.Command(sa, "security", "--offline=true", "--no-pager", p).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := exposureRe.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no overall exposure level in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(m[1], 64)
	t.Logf("systemd-analyze security --offline=true: %s %s", m[1], m[2])
	if score > 2.0 {
		t.Errorf("exposure %s %s, want at most 2.0 (OK):\n%s", m[1], m[2], out)
	}
	readme, err := os.ReadFile("systemd/README.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := "exposure level " + m[1] + " " + m[2]; !strings.Contains(string(readme), want) {
		t.Errorf("systemd/README.md does not record the measured %q", want)
	}
}

// TestSystemdSampleConfigLoads loads the sample /etc/aupguard/aupguard.yaml
// with the real loader, its credential files standing in a temporary
// directory, and checks it is the site it says it is.
func TestSystemdSampleConfigLoads(t *testing.T) {
	creds := secretsDir(t, "webhook.secret", "alerts.secret", "redis.password", "smtp.password")
	cfg := loadSample(t, unitYAMLPath, map[string]string{credDir: creds + "/"})
	if !cfg.DNS.Enabled || port(t, cfg.DNS.Listen) != 53 {
		t.Errorf("dns: enabled %v on %q, want port 53", cfg.DNS.Enabled, cfg.DNS.Listen)
	}
	if port(t, cfg.Proxy.Listen) != 3128 {
		t.Errorf("proxy.listen %q, want port 3128", cfg.Proxy.Listen)
	}
	if a := netip.MustParseAddrPort(cfg.Admin.Listen); !a.Addr().IsLoopback() {
		t.Errorf("admin.listen %q is not on loopback", cfg.Admin.Listen)
	}
	if len(cfg.Identity.Groups) == 0 || !slices.Contains(cfg.Policy.DefaultGroups, "learners") {
		t.Errorf("identity.groups %v, default groups %v: want learner networks mapped and learners as default", cfg.Identity.Groups, cfg.Policy.DefaultGroups)
	}
	if !cfg.Events.Alerts.Webhook.Enabled() || !cfg.Events.Webhook.Enabled() {
		t.Error("events: the webhook and the alerts webhook should both be on")
	}
	if !cfg.Redis.Enabled {
		t.Error("redis is off")
	}
	if !cfg.Events.Alerts.Email.Enabled() {
		t.Error("events.alerts.email is off: the safeguarding team gets no e-mail")
	}
	if a := netip.MustParseAddrPort(cfg.Console.Listen); !a.Addr().IsLoopback() {
		t.Errorf("console.listen %q is not on loopback (the sample puts it behind a TLS reverse proxy)", cfg.Console.Listen)
	}
}

// TestSystemdUnitMatchesConfig checks what the unit and the sample
// configuration must agree on: the config path, data_dir in the
// StateDirectory, the lists cache in the CacheDirectory, a LoadCredential=
// for every credential the YAML reads, and CAP_NET_BIND_SERVICE (and no
// other capability) because the YAML binds a port below 1024.
func TestSystemdUnitMatchesConfig(t *testing.T) {
	u := parseUnit(t, unitPath)
	b, err := os.ReadFile(unitYAMLPath)
	if err != nil {
		t.Fatal(err)
	}
	creds := map[string]bool{}
	for _, m := range regexp.MustCompile(regexp.QuoteMeta(credDir)+`([\w.-]+)`).FindAllStringSubmatch(string(b), -1) {
		creds[m[1]] = true
	}
	dir := secretsDir(t, slices.Collect(maps.Keys(creds))...)
	cfg := loadSample(t, unitYAMLPath, map[string]string{credDir: dir + "/"})

	if exec := u.one(t, "Service", "ExecStart"); !strings.HasSuffix(exec, " serve --config /etc/aupguard/aupguard.yaml") {
		t.Errorf("ExecStart=%s does not serve /etc/aupguard/aupguard.yaml", exec)
	}
	if got := u.one(t, "Service", "ExecReload"); got != "/bin/kill -HUP $MAINPID" {
		t.Errorf("ExecReload=%s, want SIGHUP to the main process", got)
	}
	if want := "/var/lib/" + u.one(t, "Service", "StateDirectory"); cfg.DataDir != want {
		t.Errorf("data_dir %q, want the StateDirectory %q", cfg.DataDir, want)
	}
	if want := "/var/cache/" + u.one(t, "Service", "CacheDirectory") + "/"; !strings.HasPrefix(cfg.Lists.CacheDir, want) {
		t.Errorf("lists.cache_dir %q is not under the CacheDirectory %q", cfg.Lists.CacheDir, want)
	}
	loaded := map[string]bool{}
	for _, lc := range u["Service"]["LoadCredential"] {
		name, src, _ := strings.Cut(lc, ":")
		loaded[name] = true
		if !strings.HasPrefix(src, "/etc/aupguard/") {
			t.Errorf("LoadCredential=%s: source outside /etc/aupguard", lc)
		}
	}
	for c := range creds {
		if !loaded[c] {
			t.Errorf("%s reads %s%s but the unit has no LoadCredential=%s:…", unitYAMLPath, credDir, c, c)
		}
	}
	if len(creds) == 0 {
		t.Error("the sample reads no credentials: secrets would sit in the YAML")
	}
	low := false
	for _, l := range []string{cfg.Proxy.Listen, cfg.DNS.Listen, cfg.Admin.Listen} {
		low = low || port(t, l) < 1024
	}
	for _, k := range []string{"CapabilityBoundingSet", "AmbientCapabilities"} {
		want := ""
		if low {
			want = "CAP_NET_BIND_SERVICE"
		}
		if got := strings.Join(u["Service"][k], " "); got != want {
			t.Errorf("%s=%s, want %q", k, got, want)
		}
	}
	for _, k := range []string{"DynamicUser", "NoNewPrivileges", "ProtectSystem", "LimitNOFILE", "Restart"} {
		if len(u["Service"][k]) == 0 {
			t.Errorf("%s= is not set", k)
		}
	}
	if got := u.one(t, "Service", "ProtectSystem"); got != "strict" {
		t.Errorf("ProtectSystem=%s, want strict", got)
	}
	if n, err := strconv.Atoi(u.one(t, "Service", "LimitNOFILE")); err != nil || n < 65536 {
		t.Errorf("LimitNOFILE=%s: want a number of at least 65536 (two descriptors per proxied connection)", u.one(t, "Service", "LimitNOFILE"))
	}
}

func port(t *testing.T, hostport string) int {
	t.Helper()
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	return int(ap.Port())
}
