package rego

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing/fstest"
)

// policyFile reports whether name is part of a policy set: Rego modules and
// the data documents OPA's loader understands.
func policyFile(name string) bool {
	switch path.Ext(name) {
	case ".rego", ".json", ".yaml", ".yml":
		return true
	}
	return false
}

// Files is one policy set as file name → content, after the admin's
// directory has been laid over the built-in policies.
type Files map[string][]byte

// Gather reads the built-in policy files from builtin (may be nil) and lays
// the files of dir (may be empty) over them: a file in dir with the same
// relative name replaces the built-in one, any other file is added. An
// admin therefore customises a built-in rule by copying its file into the
// directory and editing it.
func Gather(builtin fs.FS, dir string) (Files, error) {
	files := Files{}
	if builtin != nil {
		if err := readTree(builtin, files); err != nil {
			return nil, fmt.Errorf("built-in policies: %w", err)
		}
	}
	if dir != "" {
		st, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("policy directory: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("policy directory %s: not a directory", dir)
		}
		if err := readTree(os.DirFS(dir), files); err != nil {
			return nil, fmt.Errorf("policy directory %s: %w", dir, err)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no policy files (no built-in policies and no policy directory)")
	}
	return files, nil
}

// WithOverlays returns a copy of f with each overlay data file laid over it
// under its base name (replacing a file of that name). A missing overlay is
// skipped, so the file it would replace stays: the console's exceptions
// file (data_dir/console/exceptions.yaml over the built-in, empty
// exceptions.yaml) exists only once staff approve the first exception.
func (f Files) WithOverlays(overlays []string) (Files, error) {
	out := make(Files, len(f)+len(overlays))
	for n, b := range f {
		out[n] = b
	}
	for _, p := range overlays {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("policy data overlay: %w", err)
		}
		if !policyFile(p) || path.Ext(p) == ".rego" {
			return nil, fmt.Errorf("policy data overlay %s: not a .yaml, .yml or .json data file", p)
		}
		out[filepath.Base(p)] = b
	}
	return out, nil
}

func readTree(fsys fs.FS, into Files) error {
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// Hidden directories hold editor and VCS state, never policy.
			if p != "." && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") || !policyFile(p) {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		into[p] = b
		return nil
	})
}

// Revision is the content hash of the set: file names and contents, in
// name order, so the same files always give the same revision on every
// instance.
func (f Files) Revision() string {
	names := f.Names()
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(f[n]))
		h.Write(f[n])
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// Names returns the file names in order.
func (f Files) Names() []string {
	names := make([]string, 0, len(f))
	for n := range f {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (f Files) fs() fstest.MapFS {
	m := fstest.MapFS{}
	for n, b := range f {
		m[filepath.ToSlash(n)] = &fstest.MapFile{Data: b, Mode: 0o444}
	}
	return m
}

// isTestFile reports whether a module holds Rego unit tests rather than
// rules, by OPA's naming convention.
func isTestFile(name string) bool {
	return strings.HasSuffix(name, "_test.rego")
}
