package config

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/aupguard/aupguard/config/internal/docgen"
)

//go:generate go run ./internal/docgen/cmd ../docs/config.md

// TestConfigReferenceIsCurrent fails when docs/config.md no longer matches
// the configuration types; run `go generate ./config` to refresh it.
func TestConfigReferenceIsCurrent(t *testing.T) {
	want, err := docgen.Generate("..", Default())
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join("..", "docs", "config.md"))
	if err != nil {
		t.Fatalf("docs/config.md: %v (run go generate ./config)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("docs/config.md is stale: run `go generate ./config`")
	}
	// Every key has a description.
	for _, line := range bytes.Split(want, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("| `")) && bytes.HasSuffix(line, []byte("|  |")) {
			t.Errorf("undocumented key: %s", line)
		}
	}
}
