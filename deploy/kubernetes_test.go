package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/aupguard/aupguard/admin"
	"github.com/aupguard/aupguard/config"
	"github.com/aupguard/aupguard/identity"
	"github.com/aupguard/aupguard/internal/testutil"
)

// Just enough of the Kubernetes objects to check them.
type (
	object struct {
		Kind     string            `yaml:"kind"`
		Metadata meta              `yaml:"metadata"`
		Data     map[string]string `yaml:"data"`
		// Secret
		StringData map[string]string `yaml:"stringData"`
		Spec       spec              `yaml:"spec"`
	}
	meta struct {
		Name string `yaml:"name"`
	}
	spec struct {
		// Deployment, StatefulSet
		Replicas    *int     `yaml:"replicas"`
		ServiceName string   `yaml:"serviceName"`
		Selector    selector `yaml:"selector"`
		Template    struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
		// Service
		Type                  string        `yaml:"type"`
		ExternalTrafficPolicy string        `yaml:"externalTrafficPolicy"`
		Ports                 []servicePort `yaml:"ports"`
		// NetworkPolicy
		PodSelector selector `yaml:"podSelector"`
		Ingress     []struct {
			From []struct {
				IPBlock *struct {
					CIDR string `yaml:"cidr"`
				} `yaml:"ipBlock"`
				NamespaceSelector *selector `yaml:"namespaceSelector"`
				PodSelector       *selector `yaml:"podSelector"`
			} `yaml:"from"`
			Ports []struct {
				Port     any    `yaml:"port"`
				Protocol string `yaml:"protocol"`
			} `yaml:"ports"`
		} `yaml:"ingress"`
		// PodDisruptionBudget
		MinAvailable any `yaml:"minAvailable"`
		// HorizontalPodAutoscaler
		ScaleTargetRef struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicas int `yaml:"minReplicas"`
	}
	selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	servicePort struct {
		Name       string `yaml:"name"`
		Port       int    `yaml:"port"`
		TargetPort any    `yaml:"targetPort"`
		Protocol   string `yaml:"protocol"`
	}
	podSpec struct {
		SecurityContext struct {
			RunAsNonRoot bool `yaml:"runAsNonRoot"`
			RunAsUser    int  `yaml:"runAsUser"`
			FSGroup      int  `yaml:"fsGroup"`
		} `yaml:"securityContext"`
		Affinity struct {
			PodAntiAffinity map[string]any `yaml:"podAntiAffinity"`
		} `yaml:"affinity"`
		Containers []container `yaml:"containers"`
		Volumes    []struct {
			Name      string `yaml:"name"`
			ConfigMap *struct {
				Name string `yaml:"name"`
			} `yaml:"configMap"`
			Secret *struct {
				SecretName  string `yaml:"secretName"`
				DefaultMode *int   `yaml:"defaultMode"`
			} `yaml:"secret"`
			EmptyDir map[string]any `yaml:"emptyDir"`
		} `yaml:"volumes"`
	}
	container struct {
		Name  string   `yaml:"name"`
		Args  []string `yaml:"args"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
			Protocol      string `yaml:"protocol"`
		} `yaml:"ports"`
		ReadinessProbe probe `yaml:"readinessProbe"`
		LivenessProbe  probe `yaml:"livenessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext struct {
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
				Add  []string `yaml:"add"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	}
	probe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port any    `yaml:"port"`
		} `yaml:"httpGet"`
	}
)

// rendered is the output of kubectl kustomize.
type rendered []object

// kustomize renders dir with kubectl kustomize and decodes every object.
func kustomize(t *testing.T, dir string) rendered {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	testutil.Require(t, err == nil, "kubectl not installed (it renders the kustomizations): %v", err)
	var stderr bytes.Buffer
	cmd := exec.Command(kubectl, "kustomize", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	var objs rendered
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var o object
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("kubectl kustomize %s: output is not YAML: %v", dir, err)
		}
		objs = append(objs, o)
	}
	return objs
}

// get returns the one object of kind whose name is name, or starts with
// name- followed by kustomize's hash for generated ones.
func (r rendered) get(t *testing.T, kind, name string) *object {
	t.Helper()
	var found []*object
	for i := range r {
		o := &r[i]
		if o.Kind == kind && (o.Metadata.Name == name || regexp.MustCompile(`^`+regexp.QuoteMeta(name)+`-[a-z0-9]{10}$`).MatchString(o.Metadata.Name)) {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d objects %s/%s rendered, want 1", len(found), kind, name)
	}
	return found[0]
}

func (c *container) port(t *testing.T, name, proto string) int {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			if pr := cmp(p.Protocol, "TCP"); pr != proto {
				t.Errorf("container port %s is %s, want %s", name, pr, proto)
			}
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %s", c.Name, name)
	return 0
}

func (c *container) mount(path string) (name string, readOnly, ok bool) {
	best := ""
	for _, m := range c.VolumeMounts {
		if (path == m.MountPath || strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")) && len(m.MountPath) > len(best) {
			best, name, readOnly, ok = m.MountPath, m.Name, m.ReadOnly, true
		}
	}
	return name, readOnly, ok
}

func cmp(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// aupguardPod returns the aupguard Deployment and its container.
func aupguardPod(t *testing.T, r rendered) (*object, *container) {
	t.Helper()
	d := r.get(t, "Deployment", "aupguard")
	for i := range d.Spec.Template.Spec.Containers {
		if c := &d.Spec.Template.Spec.Containers[i]; c.Name == "aupguard" {
			return d, c
		}
	}
	t.Fatal("the aupguard Deployment has no container named aupguard")
	return nil, nil
}

// podConfig loads the aupguard.yaml of the ConfigMap that the pod mounts
// at its --config path, with the real loader, its secret files given the
// keys of the rendered Secret it mounts (so a key the YAML reads and the
// Secret lacks fails the load).
func podConfig(t *testing.T, r rendered, d *object, c *container) *config.Config {
	t.Helper()
	cfgPath := ""
	for i, a := range c.Args {
		if a == "--config" && i+1 < len(c.Args) {
			cfgPath = c.Args[i+1]
		}
	}
	if len(c.Args) == 0 || c.Args[0] != "serve" || cfgPath == "" {
		t.Fatalf("container args %q: want serve --config PATH", c.Args)
	}
	vol, ro, ok := c.mount(cfgPath)
	if !ok || !ro {
		t.Fatalf("--config %s is not on a read-only mount", cfgPath)
	}
	var cmName, secretName, secretMount string
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == vol && v.ConfigMap != nil {
			cmName = v.ConfigMap.Name
		}
		if v.Secret != nil {
			secretName = v.Secret.SecretName
			// The files are root's, in the pod's fsGroup: a non-root
			// process reads them only if the group may.
			if m := v.Secret.DefaultMode; m != nil && *m&0o040 == 0 {
				t.Errorf("Secret volume %s: defaultMode %#o is not group-readable, and the pod runs as non-root in its fsGroup", v.Name, *m)
			}
			for _, m := range c.VolumeMounts {
				if m.Name == v.Name {
					secretMount = m.MountPath
				}
			}
		}
	}
	var cm *object
	for i := range r {
		if r[i].Kind == "ConfigMap" && r[i].Metadata.Name == cmName {
			cm = &r[i]
		}
	}
	if cm == nil {
		t.Fatalf("the pod mounts ConfigMap %q at %s, which is not rendered", cmName, cfgPath)
	}
	text, ok := cm.Data[path.Base(cfgPath)]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s", cmName, path.Base(cfgPath))
	}
	if secretMount == "" {
		t.Fatal("the pod mounts no Secret")
	}
	secret := r.get(t, "Secret", secretName)
	var keys []string
	for k := range secret.StringData {
		keys = append(keys, k)
	}
	dir := secretsDir(t, keys...)
	text = strings.ReplaceAll(text, strings.TrimSuffix(secretMount, "/")+"/", dir+"/")
	cfg, err := config.Parse("ConfigMap "+cmName+" "+path.Base(cfgPath), []byte(text))
	if err != nil {
		t.Fatalf("the ConfigMap's YAML does not load with the real config loader (or names a file the Secret %s lacks):\n%v", secretName, err)
	}
	// Writable places the config names must be writable mounts.
	for _, p := range []string{cfg.DataDir, cfg.Lists.CacheDir} {
		if _, ro, ok := c.mount(p); !ok || ro {
			t.Errorf("%s is not on a writable volume (the root file system is read-only)", p)
		}
	}
	return cfg
}

// TestKubernetesBase renders the kustomize base and checks it against the
// code: the ConfigMap's YAML loads with the real config loader; the
// container ports are the ports it listens on, which are the defaults; the
// probe paths are answered by the real admin handler on the admin port; the
// Service maps 3128/TCP and 53/UDP+TCP to them; the NetworkPolicy lets the
// configured client networks reach the proxy and DNS and never the admin
// port; the pod runs non-root on a read-only root file system.
func TestKubernetesBase(t *testing.T) {
	r := kustomize(t, "kubernetes/base")
	d, c := aupguardPod(t, r)
	cfg := podConfig(t, r, d, c)
	def := config.Default()

	// Ports: what the YAML listens on, what the container declares, and
	// the defaults, all the same.
	for _, p := range []struct {
		name, proto, listen, def string
	}{
		{"proxy", "TCP", cfg.Proxy.Listen, def.Proxy.Listen},
		{"dns-udp", "UDP", cfg.DNS.Listen, def.DNS.Listen},
		{"dns-tcp", "TCP", cfg.DNS.Listen, def.DNS.Listen},
		{"admin", "TCP", cfg.Admin.Listen, def.Admin.Listen},
	} {
		got := c.port(t, p.name, p.proto)
		if port(t, p.listen) != got || port(t, p.def) != got {
			t.Errorf("container port %s %d: the ConfigMap listens on %s, the default is %s", p.name, got, p.listen, p.def)
		}
		// Listening on loopback would hide it from the Service and the kubelet.
		if a := netip.MustParseAddrPort(p.listen).Addr(); !a.IsUnspecified() {
			t.Errorf("%s listens on %s: in a pod it must be the unspecified address", p.name, p.listen)
		}
	}
	if !cfg.DNS.Enabled {
		t.Error("dns.enabled is false in the ConfigMap")
	}

	// Probes: the paths the real admin handler answers, on the admin port.
	h, err := admin.Handler(admin.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	for name, pr := range map[string]probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if pr.HTTPGet == nil || pr.HTTPGet.Port != "admin" {
			t.Errorf("%s probe: want an httpGet on the admin port, got %+v", name, pr.HTTPGet)
			continue
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, pr.HTTPGet.Path, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("%s probe %s: the admin handler answers %d", name, pr.HTTPGet.Path, rec.Code)
		}
	}
	if c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet != nil && c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Error("readiness must be /readyz (lists and policy loaded), liveness /healthz (the process answers)")
	}

	// The Service learners use.
	svc := r.get(t, "Service", "aupguard")
	if svc.Spec.ExternalTrafficPolicy != "Local" {
		t.Errorf("Service externalTrafficPolicy %q: want Local, or clients' addresses (and so their groups) are lost", svc.Spec.ExternalTrafficPolicy)
	}
	want := map[string]int{"3128/TCP": 3128, "53/UDP": c.port(t, "dns-udp", "UDP"), "53/TCP": c.port(t, "dns-tcp", "TCP")}
	got := map[string]int{}
	for _, p := range svc.Spec.Ports {
		proto := cmp(p.Protocol, "TCP")
		name, _ := p.TargetPort.(string)
		got[fmt.Sprintf("%d/%s", p.Port, proto)] = c.port(t, name, proto)
		if name == "admin" {
			t.Error("the learners' Service exposes the admin port")
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Service ports → container ports %v, want %v", got, want)
	}

	// Security.
	psc := d.Spec.Template.Spec.SecurityContext
	if !psc.RunAsNonRoot {
		t.Error("runAsNonRoot is not set")
	}
	cf, err := os.ReadFile(containerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("\nUSER %d:%d\n", psc.RunAsUser, psc.FSGroup); !strings.Contains(string(cf), want) {
		t.Errorf("the pod runs as %d in group %d, not as the image's user (%s has no %q)", psc.RunAsUser, psc.FSGroup, containerfilePath, strings.TrimSpace(want))
	}
	sc := c.SecurityContext
	if !sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || !reflect.DeepEqual(sc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("container securityContext %+v: want a read-only root, no privilege escalation, every capability dropped", sc)
	}
	low := false
	for _, l := range []string{cfg.Proxy.Listen, cfg.DNS.Listen, cfg.Admin.Listen} {
		low = low || port(t, l) < 1024
	}
	if wantAdd := map[bool][]string{true: {"NET_BIND_SERVICE"}, false: nil}[low]; !reflect.DeepEqual(sc.Capabilities.Add, wantAdd) {
		t.Errorf("capabilities add %v, want %v (a port below 1024: %v)", sc.Capabilities.Add, wantAdd, low)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 || len(d.Spec.Template.Spec.Affinity.PodAntiAffinity) == 0 {
		t.Error("want at least 2 replicas kept apart by pod anti-affinity")
	}
	for _, k := range []string{"cpu", "memory"} {
		if c.Resources.Requests[k] == "" {
			t.Errorf("no %s request (the HPA scales on it, the scheduler places by it)", k)
		}
	}
	if c.Resources.Limits["memory"] == "" {
		t.Error("no memory limit")
	}

	checkNetworkPolicy(t, r.get(t, "NetworkPolicy", "aupguard"), d, cfg)

	pdb := r.get(t, "PodDisruptionBudget", "aupguard")
	if !reflect.DeepEqual(pdb.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels) || pdb.Spec.MinAvailable == nil {
		t.Errorf("PodDisruptionBudget selects %v with minAvailable %v, want the Deployment's pods", pdb.Spec.Selector.MatchLabels, pdb.Spec.MinAvailable)
	}
	hpa := r.get(t, "HorizontalPodAutoscaler", "aupguard")
	if hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != d.Metadata.Name || hpa.Spec.MinReplicas < 2 {
		t.Errorf("HorizontalPodAutoscaler targets %+v from %d replicas, want the Deployment from at least 2", hpa.Spec.ScaleTargetRef, hpa.Spec.MinReplicas)
	}
}

// checkNetworkPolicy: every client network of identity.networks (but
// loopback) may reach the proxy and both DNS ports, and no rule that opens
// the admin port (or every port) admits an address block.
func checkNetworkPolicy(t *testing.T, np *object, d *object, cfg *config.Config) {
	t.Helper()
	if !reflect.DeepEqual(np.Spec.PodSelector.MatchLabels, d.Spec.Selector.MatchLabels) {
		t.Errorf("NetworkPolicy selects %v, not the aupguard pods", np.Spec.PodSelector.MatchLabels)
	}
	reach := map[string][]netip.Prefix{} // port "name/proto" → blocks
	for _, rule := range np.Spec.Ingress {
		var blocks []netip.Prefix
		for _, f := range rule.From {
			if f.IPBlock != nil {
				blocks = append(blocks, netip.MustParsePrefix(f.IPBlock.CIDR))
			}
		}
		if len(rule.From) == 0 || len(rule.Ports) == 0 {
			t.Errorf("an ingress rule admits everyone or every port: %+v", rule)
		}
		for _, p := range rule.Ports {
			name := fmt.Sprint(p.Port)
			if name == "admin" || name == "9090" {
				if len(blocks) > 0 {
					t.Errorf("the admin port is open to address blocks %v: learners could reach it", blocks)
				}
			}
			k := name + "/" + cmp(p.Protocol, "TCP")
			reach[k] = append(reach[k], blocks...)
		}
	}
	for _, n := range cfg.Identity.Networks {
		p, err := identity.ParsePrefix(n)
		if err != nil {
			t.Fatal(err)
		}
		if p.Addr().IsLoopback() {
			continue
		}
		for _, port := range []string{"proxy/TCP", "dns-udp/UDP", "dns-tcp/TCP"} {
			if !covered(p, reach[port]) {
				t.Errorf("client network %s (identity.networks) cannot reach %s through the NetworkPolicy", n, port)
			}
		}
	}
}

func covered(p netip.Prefix, blocks []netip.Prefix) bool {
	for _, b := range blocks {
		if b.Bits() <= p.Bits() && b.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// TestKubernetesSentinelOverlay renders the overlay with Redis and
// Sentinel and checks the wiring: the configuration loads, uses Sentinel
// with the master name the Sentinels monitor and the Sentinel port of the
// StatefulSet's pods by their stable names, reads the Redis password from
// the Secret, and differs from the base's only in its redis section.
func TestKubernetesSentinelOverlay(t *testing.T) {
	r := kustomize(t, "kubernetes/overlays/sentinel")
	d, c := aupguardPod(t, r)
	cfg := podConfig(t, r, d, c)
	if !cfg.Redis.Enabled || cfg.Redis.MasterName == "" || len(cfg.Redis.Addrs) < 3 {
		t.Fatalf("redis: enabled %v, master_name %q, addrs %v: want Sentinel with three Sentinels", cfg.Redis.Enabled, cfg.Redis.MasterName, cfg.Redis.Addrs)
	}
	if cfg.Redis.PasswordFile == "" {
		t.Error("redis.password_file is not set: the Redis of redis.yaml requires a password")
	}

	script, err := os.ReadFile("kubernetes/overlays/sentinel/redis-init.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`sentinel monitor (\S+) `, `get-master-addr-by-name (\S+)`, `sentinel auth-pass (\S+) `} {
		m := regexp.MustCompile(re).FindSubmatch(script)
		if m == nil || string(m[1]) != cfg.Redis.MasterName {
			t.Errorf("redis-init.sh: %q names %q, the config's master_name is %q", re, m, cfg.Redis.MasterName)
		}
	}

	sts := r.get(t, "StatefulSet", "redis")
	r.get(t, "Service", sts.Spec.ServiceName)
	sentinelPort := 0
	for _, ct := range sts.Spec.Template.Spec.Containers {
		for _, p := range ct.Ports {
			if p.Name == "sentinel" {
				sentinelPort = p.ContainerPort
			}
		}
	}
	addrRe := regexp.MustCompile(`^` + regexp.QuoteMeta(sts.Metadata.Name) + `-(\d+)\.([a-z0-9-]+):(\d+)$`)
	for _, a := range cfg.Redis.Addrs {
		m := addrRe.FindStringSubmatch(a)
		if m == nil {
			t.Errorf("redis.addrs %q is not %s-N.<service>:port", a, sts.Metadata.Name)
			continue
		}
		n, _ := strconv.Atoi(m[1])
		p, _ := strconv.Atoi(m[3])
		if m[2] != sts.Spec.ServiceName || n >= *sts.Spec.Replicas || p != sentinelPort {
			t.Errorf("redis.addrs %q: want a pod of the StatefulSet (0-%d) through %s on the Sentinel port %d", a, *sts.Spec.Replicas-1, sts.Spec.ServiceName, sentinelPort)
		}
	}

	// The overlay's config is the base's plus Redis.
	var base, over map[string]any
	for file, v := range map[string]*map[string]any{"kubernetes/base/aupguard.yaml": &base, "kubernetes/overlays/sentinel/aupguard.yaml": &over} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
		delete(*v, "redis")
	}
	if !reflect.DeepEqual(base, over) {
		t.Error("overlays/sentinel/aupguard.yaml differs from base/aupguard.yaml outside the redis section: copy the base's changes")
	}
}
