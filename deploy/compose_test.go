package deploy

import (
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type composeFile struct {
	Services map[string]struct {
		Build *struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Image    string   `yaml:"image"`
		ReadOnly bool     `yaml:"read_only"`
		Ports    []string `yaml:"ports"`
		Volumes  []string `yaml:"volumes"`
		Secrets  []string `yaml:"secrets"`
		Command  []string `yaml:"command"`
	} `yaml:"services"`
	Secrets map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
	Volumes map[string]any `yaml:"volumes"`
}

// envDefault replaces compose's ${VAR:-default} with its default.
var envDefault = regexp.MustCompile(`\$\{[A-Z0-9_]+:-([^}]*)\}`)

// TestComposeFile reads compose/compose.yaml (no compose tool runs here:
// the Redis image needs a registry) and checks it against the code: two
// aupguard instances built from the Containerfile and one Redis; the
// configuration each mounts loads with the real loader, its secrets given
// by the compose secrets; the container ports are the ones it listens on;
// the admin port is published on loopback only; the state and cache
// directories are volumes on a read-only container; Redis is reached by
// its service name with the password it is started with.
func TestComposeFile(t *testing.T) {
	const dir = "compose"
	b, err := os.ReadFile(filepath.Join(dir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(b, &cf); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	var instances []string
	for name, s := range cf.Services {
		if s.Build != nil {
			instances = append(instances, name)
		}
	}
	slices.Sort(instances)
	if len(instances) != 2 || len(cf.Services) != 3 {
		t.Fatalf("services %v, aupguard instances %v: want two instances and Redis", slices.Collect(maps.Keys(cf.Services)), instances)
	}
	redisName := ""
	for name, s := range cf.Services {
		if s.Build == nil && strings.Contains(s.Image, "redis") {
			redisName = name
		}
	}
	if redisName == "" {
		t.Fatal("no Redis service")
	}
	secretDir := t.TempDir()
	for name, s := range cf.Secrets {
		src := filepath.Join(dir, s.File)
		if _, err := os.Stat(src); err != nil {
			t.Errorf("secret %s: %v", name, err)
		}
		copyFile(t, src, filepath.Join(secretDir, name), 0o600)
	}

	for _, name := range instances {
		s := cf.Services[name]
		built, _ := filepath.Abs(filepath.Join(dir, s.Build.Context, s.Build.Dockerfile))
		if want, _ := filepath.Abs(containerfilePath); built != want {
			t.Errorf("%s builds %s, want %s", name, built, want)
		}
		if !s.ReadOnly {
			t.Errorf("%s: read_only is not set", name)
		}
		mounts := map[string]string{} // target → source
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				t.Fatalf("%s: volume %q", name, v)
			}
			mounts[parts[1]] = parts[0]
		}
		src, ok := mounts["/etc/aupguard/aupguard.yaml"]
		if !ok {
			t.Fatalf("%s mounts no /etc/aupguard/aupguard.yaml (the image's CMD reads it)", name)
		}
		cfg := loadSample(t, filepath.Join(dir, src), map[string]string{"/run/secrets/": secretDir + "/"})
		for _, p := range []string{cfg.DataDir, cfg.Lists.CacheDir} {
			ok := false
			for target, source := range mounts {
				_, named := cf.Volumes[source]
				if named && (p == target || strings.HasPrefix(p, target+"/")) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s: %s is not on a named volume (the container is read-only)", name, p)
			}
		}
		for _, sec := range []string{filepath.Base(cfg.Redis.PasswordFile)} {
			if !slices.Contains(s.Secrets, sec) {
				t.Errorf("%s reads the secret %s but is not given it", name, sec)
			}
		}

		want := map[string]bool{}
		for _, l := range []struct{ listen, proto string }{{cfg.Proxy.Listen, "tcp"}, {cfg.DNS.Listen, "udp"}, {cfg.DNS.Listen, "tcp"}, {cfg.Admin.Listen, "tcp"}} {
			want[strconv.Itoa(port(t, l.listen))+"/"+l.proto] = true
		}
		got := map[string]bool{}
		for _, p := range s.Ports {
			spec := envDefault.ReplaceAllString(p, "$1")
			parts := strings.Split(spec, ":")
			if len(parts) != 3 {
				t.Errorf("%s: port %q is not ADDRESS:HOST:CONTAINER/PROTO", name, p)
				continue
			}
			got[parts[2]] = true
			if strings.HasPrefix(parts[2], strconv.Itoa(port(t, cfg.Admin.Listen))+"/") {
				if a, err := netip.ParseAddr(parts[0]); err != nil || !a.IsLoopback() {
					t.Errorf("%s publishes the admin port on %q, want loopback only", name, parts[0])
				}
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s publishes container ports %v, the configuration listens on %v", name, got, want)
		}

		if len(cfg.Redis.Addrs) != 1 || cfg.Redis.Addrs[0] != redisName+":6379" || !cfg.Redis.Enabled {
			t.Errorf("%s: redis %v %v, want the %s service on 6379", name, cfg.Redis.Enabled, cfg.Redis.Addrs, redisName)
		}
	}
	r := cf.Services[redisName]
	if !strings.Contains(strings.Join(r.Command, " "), "--requirepass") || len(r.Secrets) == 0 {
		t.Errorf("redis runs without the password the instances send: %v", r.Command)
	}
	if len(r.Ports) != 0 {
		t.Errorf("redis publishes %v: only the instances should reach it", r.Ports)
	}
}
