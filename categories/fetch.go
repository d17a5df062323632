package categories

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"
)

// download is a fresh body for a URL source, not yet trusted: it becomes
// the cached copy only after it parses.
type download struct {
	path         string
	etag         string
	lastModified string
	sha256       string
}

// cacheMeta sits next to each cached body and carries the validators for
// the next conditional request.
type cacheMeta struct {
	URL          string    `json:"url"`
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"last_modified,omitempty"`
	SHA256       string    `json:"sha256"`
	FetchedAt    time.Time `json:"fetched_at"`
}

type fetcher struct {
	dir      string
	client   *http.Client
	timeout  time.Duration
	maxBytes int64
	logger   *slog.Logger
}

func newFetcher(cfg Config, logger *slog.Logger) *fetcher {
	def := DefaultConfig()
	f := &fetcher{dir: cfg.CacheDir, timeout: cfg.FetchTimeout, maxBytes: cfg.MaxDownloadBytes, logger: logger}
	if f.timeout <= 0 {
		f.timeout = def.FetchTimeout
	}
	if f.maxBytes <= 0 {
		f.maxBytes = def.MaxDownloadBytes
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	f.client = &http.Client{Transport: tr}
	return f
}

func (f *fetcher) paths(src Source) (data, meta string) {
	base := filepath.Join(f.dir, src.Name)
	return base + ".list", base + ".meta.json"
}

func (f *fetcher) meta(src Source) (cacheMeta, bool) {
	if f.dir == "" {
		return cacheMeta{}, false
	}
	data, metaPath := f.paths(src)
	b, err := os.ReadFile(metaPath)
	if err != nil {
		return cacheMeta{}, false
	}
	var m cacheMeta
	if json.Unmarshal(b, &m) != nil || m.URL != src.URL {
		// A cached body from another URL is another list.
		return cacheMeta{}, false
	}
	if _, err := os.Stat(data); err != nil {
		return cacheMeta{}, false
	}
	return m, true
}

// cached returns the last good body of src, if there is one.
func (f *fetcher) cached(src Source) (string, bool) {
	if _, ok := f.meta(src); !ok {
		return "", false
	}
	data, _ := f.paths(src)
	return data, true
}

// get fetches src.URL, conditionally when a cached copy exists. It returns
// nil and no error when the server says the cached copy is current (304).
func (f *fetcher) get(ctx context.Context, src Source) (*download, error) {
	if f.dir == "" {
		return nil, errors.New("cache_dir is not set")
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", src.URL, err)
	}
	req.Header.Set("User-Agent", "aupguard-categories/1")
	m, haveCache := f.meta(src)
	if haveCache {
		if m.ETag != "" {
			req.Header.Set("If-None-Match", m.ETag)
		}
		if m.LastModified != "" {
			req.Header.Set("If-Modified-Since", m.LastModified)
		}
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err // *url.Error names the method and the URL
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && haveCache:
		return nil, nil
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET %s: status %s", src.URL, resp.Status)
	}
	if err := os.MkdirAll(f.dir, 0o750); err != nil {
		return nil, fmt.Errorf("cache dir: %w", err)
	}
	tmp, err := os.CreateTemp(f.dir, "."+src.Name+".*.part")
	if err != nil {
		return nil, fmt.Errorf("cache dir: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(resp.Body, f.maxBytes+1))
	if err == nil && n > f.maxBytes {
		err = fmt.Errorf("body larger than max_download_bytes (%d)", f.maxBytes)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("GET %s: %w", src.URL, err)
	}
	return &download{path: tmp.Name(), etag: resp.Header.Get("ETag"), lastModified: resp.Header.Get("Last-Modified"),
		sha256: hex.EncodeToString(h.Sum(nil))}, nil
}

// commit makes a download that parsed the cached copy: rename over the old
// body, then the metadata, each atomically.
func (f *fetcher) commit(src Source, dl *download) error {
	data, metaPath := f.paths(src)
	if err := os.Rename(dl.path, data); err != nil {
		os.Remove(dl.path)
		return fmt.Errorf("cache %s: %w", src.Name, err)
	}
	b, err := json.MarshalIndent(cacheMeta{URL: src.URL, ETag: dl.etag, LastModified: dl.lastModified,
		SHA256: dl.sha256, FetchedAt: time.Now().UTC()}, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(metaPath, b)
}

func (f *fetcher) discard(dl *download) { os.Remove(dl.path) }

func writeFileAtomic(name string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*.part")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// fetchAll fetches every URL source, four at a time. Sources whose cached
// copy is current are absent from both maps.
func (l *loader) fetchAll(ctx context.Context) (map[string]*download, map[string]error) {
	dls := map[string]*download{}
	errs := map[string]error{}
	type res struct {
		name string
		dl   *download
		err  error
	}
	var srcs []Source
	for _, s := range l.cfg.Sources {
		if s.URL != "" {
			srcs = append(srcs, s)
		}
	}
	out := make([]res, len(srcs))
	var g errgroup.Group
	g.SetLimit(4)
	for i, s := range srcs {
		g.Go(func() error {
			dl, err := l.fetch.get(ctx, s)
			out[i] = res{s.Name, dl, err}
			return nil
		})
	}
	_ = g.Wait()
	for _, r := range out {
		switch {
		case r.err != nil:
			errs[r.name] = r.err
			l.logger.Warn("category source fetch failed", "source", r.name, "err", r.err)
		case r.dl != nil:
			dls[r.name] = r.dl
			l.logger.Info("category source downloaded", "source", r.name, "sha256", r.dl.sha256[:16], "etag", r.dl.etag)
		default:
			l.logger.Debug("category source not modified", "source", r.name)
		}
	}
	return dls, errs
}
