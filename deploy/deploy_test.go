package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aupguard/aupguard/config"
	"github.com/aupguard/aupguard/internal/testutil"
)

// binDir holds the binary the tests build; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "aupguard-deploy")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

var buildOnce struct {
	sync.Once
	path string
	err  error
}

// aupguardBinary builds cmd/aupguard once per run the way the container
// image does: CGO_ENABLED=0, a static binary that needs nothing from the
// file system it runs on. (The image also strips and trims paths, which
// changes no behaviour and would cost the tests a build of their own.)
func aupguardBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := testutil.ModuleRoot()
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(binDir, "aupguard")
		cmd := exec.Command("go", "build", "-o", buildOnce.path, "./cmd/aupguard")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

// loadSample parses a sample configuration with the real loader after
// replacing each key of repl with its value (machine paths of the target,
// such as the credentials directory, with places that exist here). Secret
// files the sample names must exist for the loader, so repl targets are
// usually directories the caller filled.
func loadSample(t *testing.T, path string, repl map[string]string) *config.Config {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for from, to := range repl {
		s = strings.ReplaceAll(s, from, to)
	}
	cfg, err := config.Parse(path, []byte(s))
	if err != nil {
		t.Fatalf("%s does not load with the real config loader:\n%v", path, err)
	}
	return cfg
}

// secretsDir makes a directory holding a placeholder for each named secret.
func secretsDir(t *testing.T, names ...string) string {
	t.Helper()
	d := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(d, n), []byte("placeholder-"+n+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return d
}
