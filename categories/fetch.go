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
	"strconv"
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

// part is one file of a URL source: the source itself when it has one URL,
// else one of its URLs. key names its cache files and its download.
type part struct {
	key  string
	url  string
	name string // the source's name, for messages
}

// parts returns the files of a URL source. The "~" in a part's key cannot
// occur in a source name, so parts never collide with another source.
func parts(src Source) []part {
	if src.URL != "" {
		return []part{{key: src.Name, url: src.URL, name: src.Name}}
	}
	out := make([]part, len(src.URLs))
	for i, u := range src.URLs {
		out[i] = part{key: src.Name + "~" + strconv.Itoa(i), url: u, name: src.Name}
	}
	return out
}

// sourceURLs returns every URL a source is fetched from.
func sourceURLs(src Source) []string {
	if src.URL != "" {
		return []string{src.URL}
	}
	return src.URLs
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

func (f *fetcher) paths(pt part) (data, meta string) {
	base := filepath.Join(f.dir, pt.key)
	return base + ".list", base + ".meta.json"
}

func (f *fetcher) meta(pt part) (cacheMeta, bool) {
	if f.dir == "" {
		return cacheMeta{}, false
	}
	data, metaPath := f.paths(pt)
	b, err := os.ReadFile(metaPath)
	if err != nil {
		return cacheMeta{}, false
	}
	var m cacheMeta
	if json.Unmarshal(b, &m) != nil || m.URL != pt.url {
		// A cached body from another URL is another list.
		return cacheMeta{}, false
	}
	if _, err := os.Stat(data); err != nil {
		return cacheMeta{}, false
	}
	return m, true
}

// cached returns the last good body of pt, if there is one.
func (f *fetcher) cached(pt part) (string, bool) {
	if _, ok := f.meta(pt); !ok {
		return "", false
	}
	data, _ := f.paths(pt)
	return data, true
}

// get fetches pt.url, conditionally when a cached copy exists. It returns
// nil and no error when the server says the cached copy is current (304).
func (f *fetcher) get(ctx context.Context, pt part) (*download, error) {
	if f.dir == "" {
		return nil, errors.New("cache_dir is not set")
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pt.url, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", pt.url, err)
	}
	req.Header.Set("User-Agent", "aupguard-lists/1")
	m, haveCache := f.meta(pt)
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
		return nil, fmt.Errorf("GET %s: status %s", pt.url, resp.Status)
	}
	if err := os.MkdirAll(f.dir, 0o750); err != nil {
		return nil, fmt.Errorf("cache dir: %w", err)
	}
	tmp, err := os.CreateTemp(f.dir, "."+pt.key+".*.part")
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
		return nil, fmt.Errorf("GET %s: %w", pt.url, err)
	}
	return &download{path: tmp.Name(), etag: resp.Header.Get("ETag"), lastModified: resp.Header.Get("Last-Modified"),
		sha256: hex.EncodeToString(h.Sum(nil))}, nil
}

// commit makes a download that parsed the cached copy: rename over the old
// body, then the metadata, each atomically.
func (f *fetcher) commit(pt part, dl *download) error {
	data, metaPath := f.paths(pt)
	if err := os.Rename(dl.path, data); err != nil {
		os.Remove(dl.path)
		return fmt.Errorf("cache %s: %w", pt.key, err)
	}
	b, err := json.MarshalIndent(cacheMeta{URL: pt.url, ETag: dl.etag, LastModified: dl.lastModified,
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

// fetchAll fetches every part of every URL source, four at a time. Both
// maps are keyed by part; parts whose cached copy is current are in
// neither.
func (l *loader) fetchAll(ctx context.Context) (map[string]*download, map[string]error) {
	dls := map[string]*download{}
	errs := map[string]error{}
	type res struct {
		pt  part
		dl  *download
		err error
	}
	var pts []part
	for _, s := range l.remoteSources() {
		pts = append(pts, parts(s)...)
	}
	out := make([]res, len(pts))
	var g errgroup.Group
	g.SetLimit(4)
	for i, pt := range pts {
		g.Go(func() error {
			dl, err := l.fetch.get(ctx, pt)
			out[i] = res{pt, dl, err}
			return nil
		})
	}
	_ = g.Wait()
	for _, r := range out {
		switch {
		case r.err != nil:
			errs[r.pt.key] = r.err
			l.logger.Debug("list fetch failed", "source", r.pt.name, "url", r.pt.url, "err", r.err)
		case r.dl != nil:
			dls[r.pt.key] = r.dl
			l.logger.Info("list downloaded", "source", r.pt.name, "url", r.pt.url, "sha256", r.dl.sha256[:16], "etag", r.dl.etag)
		default:
			l.logger.Debug("list not modified", "source", r.pt.name, "url", r.pt.url)
		}
	}
	return dls, errs
}
