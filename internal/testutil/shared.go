package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// SharedData returns the directory of public list copies kept for tests
// (../shared/data beside the module root), laid out as a lists mirror. It
// is found from the test's working directory, never from a machine path.
// Where it is missing the test is skipped, or fails when CI is set: CI
// always has it, so a skip there would hide a test that did not run.
func SharedData(tb testing.TB) string {
	tb.Helper()
	root, err := ModuleRoot()
	if err != nil {
		Require(tb, false, "shared data: %v", err)
	}
	d := filepath.Join(filepath.Dir(root), "shared", "data")
	if _, err := os.Stat(filepath.Join(d, "ut1-blacklists.tar.gz")); err != nil {
		Require(tb, false, "shared list data not found at %s (../shared/data beside the repository): %v", d, err)
	}
	return d
}

// ModuleRoot returns the directory holding go.mod, walking up from the
// working directory (a package's directory under go test).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}

// Require stops the test when ok is false: it skips with the reason, or,
// when the CI environment variable is set, fails with it, because in CI a
// missing prerequisite is a broken run, not a reason to test less.
func Require(tb testing.TB, ok bool, format string, args ...any) {
	tb.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("prerequisite missing in CI: "+format, args...)
	}
	tb.Skipf(format, args...)
}
