package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// built is the aupguard binary of this test process, built once.
var built struct {
	sync.Once
	dir, path string
	err       error
}

// AupguardBinary builds cmd/aupguard once per test process and returns its
// path, for tests that run it as a process of its own (signals, the
// environment, a container image). It is built the way the container image
// is: CGO_ENABLED=0, a static binary that needs nothing from the file
// system it runs on. A package that uses it removes it in TestMain with
// RemoveBinary.
func AupguardBinary(tb testing.TB) string {
	tb.Helper()
	built.Do(func() {
		root, err := ModuleRoot()
		if err != nil {
			built.err = err
			return
		}
		if built.dir, err = os.MkdirTemp("", "aupguard-bin"); err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(built.dir, "aupguard")
		cmd := exec.Command("go", "build", "-o", built.path, "./cmd/aupguard")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		tb.Fatal(built.err)
	}
	return built.path
}

// RemoveBinary removes what AupguardBinary built, if anything.
func RemoveBinary() {
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}
