package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aupguard/aupguard/config"
	"github.com/aupguard/aupguard/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveBinary()
	os.Exit(code)
}

// aupguardBinary is cmd/aupguard as the container image builds it
// (CGO_ENABLED=0, static), built once per run. (The image also strips and
// trims paths, which changes no behaviour and would cost the tests a build
// of their own.)
func aupguardBinary(t *testing.T) string { return testutil.AupguardBinary(t) }

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
