package categories

import (
	"embed"
	"encoding/json"
	"fmt"
	"path"
)

// The default lists are generated from the project's data directory
// (../shared/data next to the repository) by internal/bundlegen.
//go:generate go run ./internal/bundlegen -out bundle

//go:embed bundle
var bundleFS embed.FS

// Manifest describes the lists shipped in the binary.
type Manifest struct {
	Comment string          `json:"comment"`
	Sources []BundledSource `json:"sources"`
}

// BundledSource is a Source with the provenance the NOTICE file repeats.
type BundledSource struct {
	Source
	Upstream    string `json:"upstream"`
	License     string `json:"license"`
	Attribution string `json:"attribution"`
}

// BundleManifest returns the manifest of the built-in lists.
func BundleManifest() (Manifest, error) {
	b, err := bundleFS.ReadFile("bundle/manifest.json")
	if err != nil {
		return Manifest{}, fmt.Errorf("bundle manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Manifest{}, fmt.Errorf("bundle manifest: %w", err)
	}
	return m, nil
}

// BundleNotice returns the licences and attributions of the built-in lists.
func BundleNotice() string {
	b, _ := bundleFS.ReadFile("bundle/NOTICE")
	return string(b)
}

type manifestSources struct{ Sources []Source }

func loadManifest() (manifestSources, error) {
	m, err := BundleManifest()
	if err != nil {
		return manifestSources{}, err
	}
	out := manifestSources{Sources: make([]Source, len(m.Sources))}
	for i, s := range m.Sources {
		out.Sources[i] = s.Source
	}
	return out, nil
}

func bundleOrigin(p string) origin {
	return origin{fsys: bundleFS, name: path.Join("bundle", p), display: "bundle:" + p}
}
