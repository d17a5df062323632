package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// TestBundleUpToDate regenerates the bundle from the data directory and
// compares it with the committed categories/bundle, byte for byte: the
// generator is deterministic, so a difference means someone changed the
// data or the generator without running `go generate ./categories/...`.
func TestBundleUpToDate(t *testing.T) {
	data, err := findData()
	if err != nil {
		t.Skipf("real list data not found (../shared/data next to the repository root): %v", err)
	}
	out := t.TempDir()
	if err := run(data, out, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	committed := filepath.Join("..", "..", "bundle")
	gen, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadDir(committed)
	if err != nil {
		t.Fatal(err)
	}
	if len(gen) != len(have) {
		t.Errorf("generated %d files, committed %d", len(gen), len(have))
	}
	total := int64(0)
	for _, e := range gen {
		a, _ := os.ReadFile(filepath.Join(out, e.Name()))
		b, err := os.ReadFile(filepath.Join(committed, e.Name()))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs from the committed copy (run go generate ./categories/...): %v", e.Name(), err)
		}
		total += int64(len(a))
	}
	if total > 4<<20 {
		t.Errorf("bundle is %d bytes; keep it to a few MB", total)
	}
}

func TestDohList(t *testing.T) {
	dir := t.TempDir()
	tsv := filepath.Join(dir, "x.tsv")
	os.WriteFile(tsv, []byte("# domain\taction\n a.example\tblock\treason\nb.example\tNXDOMAIN\tr\nbroken-row\n"), 0o644)
	if _, err := dohList(tsv); err == nil {
		t.Fatal("a row without an action must be an error")
	}
	os.WriteFile(tsv, []byte("b.example\tNXDOMAIN\tr\n"), 0o644)
	if _, err := dohList(tsv); err == nil {
		t.Fatal("no block rows must be an error")
	}
}
