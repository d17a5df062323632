package categories

import (
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/aupguard/aupguard/config/field"
)

// Source describes one list. Config.Sources is a list of these.
type Source struct {
	// Name identifies the source in Match.Source: "<name>:<ut1 category>"
	// for UT1 trees, "<name>" for every other format. Lowercase letters,
	// digits, '.', '_' and '-'. A configured source with the name of a
	// bundled one replaces it (and falls back to it when it cannot load).
	Name string `yaml:"name" json:"name"`
	// Category is the policy category of a single-category list. Not used
	// for UT1 trees (see Map).
	Category string `yaml:"category,omitempty" json:"category,omitempty"`
	// Format is "ut1", "hosts", "domains", "adblock", "urls" or "auto"
	// (the default), which recognizes a UT1 directory or tar archive and
	// sniffs the others from their first lines.
	Format string `yaml:"format,omitempty" json:"format,omitempty"`
	// Path is a file or directory; gzip is detected by its magic bytes.
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// URL is an http(s) address, fetched with If-None-Match and
	// If-Modified-Since and cached under Config.CacheDir. Exactly one of
	// Path and URL is set.
	URL string `yaml:"url,omitempty" json:"url,omitempty"`
	// Map maps UT1 categories to policy categories ("drogue": "drugs").
	// UT1 categories not in the map are not loaded.
	Map map[string]string `yaml:"map,omitempty" json:"map,omitempty"`
	// Expressions also loads each mapped UT1 category's "expressions" file
	// as regular expressions (RE2) matched against "host/path?query".
	// Off by default: they cost time on every URL lookup.
	Expressions bool `yaml:"expressions,omitempty" json:"expressions,omitempty"`
}

// Config is the "categories" section of the configuration.
type Config struct {
	// Bundle loads the lists shipped in the binary (see bundle/manifest.json).
	Bundle bool `yaml:"bundle"`
	// Sources are the lists to load, in addition to the bundle.
	Sources []Source `yaml:"sources"`
	// Refresh is how often URL sources are re-fetched and local files
	// re-checked for changes; 0 turns refreshing off.
	Refresh time.Duration `yaml:"refresh"`
	// CacheDir keeps the last good download of each URL source, used at the
	// next start when the URL is unreachable.
	CacheDir string `yaml:"cache_dir"`
	// FetchTimeout bounds one download, headers to last byte.
	FetchTimeout time.Duration `yaml:"fetch_timeout"`
	// MaxDownloadBytes bounds one downloaded body as sent (compressed).
	MaxDownloadBytes int64 `yaml:"max_download_bytes"`
	// MaxListBytes bounds one list file after decompression, so a
	// decompression bomb fails the source instead of the process.
	MaxListBytes int64 `yaml:"max_list_bytes"`
}

// DefaultConfig returns the defaults: the bundle on, no extra sources,
// daily refresh.
func DefaultConfig() Config {
	return Config{
		Bundle:           true,
		Refresh:          24 * time.Hour,
		CacheDir:         "/var/cache/aupguard/lists",
		FetchTimeout:     2 * time.Minute,
		MaxDownloadBytes: 1 << 30,
		MaxListBytes:     4 << 30,
	}
}

var (
	sourceNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	categoryRE   = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	ut1NameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
)

var formats = []string{FormatAuto, FormatUT1, FormatHosts, FormatDomains, FormatAdblock, FormatURLs}

// Validate checks the section; error paths are relative to it
// ("sources[2].category").
func (c *Config) Validate() error {
	var errs []error
	if c.Refresh < 0 || (c.Refresh > 0 && c.Refresh < time.Minute) {
		errs = append(errs, field.Errorf("refresh", "must be 0 (off) or at least 1m, got %s", c.Refresh))
	}
	if c.FetchTimeout <= 0 {
		errs = append(errs, field.Errorf("fetch_timeout", "must be positive, got %s", c.FetchTimeout))
	}
	if c.MaxDownloadBytes <= 0 {
		errs = append(errs, field.Errorf("max_download_bytes", "must be positive, got %d", c.MaxDownloadBytes))
	}
	if c.MaxListBytes <= 0 {
		errs = append(errs, field.Errorf("max_list_bytes", "must be positive, got %d", c.MaxListBytes))
	}
	seen := map[string]int{}
	remote := false
	for i := range c.Sources {
		s := &c.Sources[i]
		p := "sources[" + strconv.Itoa(i) + "]"
		if j, dup := seen[s.Name]; dup && s.Name != "" {
			errs = append(errs, field.Errorf(p+".name", "%q is already used by sources[%d]", s.Name, j))
		}
		seen[s.Name] = i
		remote = remote || s.URL != ""
		errs = append(errs, s.validate(p)...)
	}
	if remote && c.CacheDir == "" {
		errs = append(errs, field.Errorf("cache_dir", "required when a source has a url"))
	}
	return errors.Join(errs...)
}

func (s *Source) validate(p string) []error {
	var errs []error
	if !sourceNameRE.MatchString(s.Name) {
		errs = append(errs, field.Errorf(p+".name", "%q must be 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit", s.Name))
	}
	switch {
	case s.Path == "" && s.URL == "":
		errs = append(errs, field.Errorf(p, "one of path or url is required"))
	case s.Path != "" && s.URL != "":
		errs = append(errs, field.Errorf(p, "path and url are mutually exclusive"))
	case s.URL != "":
		u, err := url.Parse(s.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, field.Errorf(p+".url", "%q is not an http(s) URL", s.URL))
		}
	}
	format := s.Format
	if format == "" {
		format = FormatAuto
	}
	if !slices.Contains(formats, format) {
		errs = append(errs, field.Errorf(p+".format", "unknown format %q (want one of ut1, hosts, domains, adblock, urls, auto)", s.Format))
		return errs
	}
	switch {
	case format == FormatUT1 && len(s.Map) == 0:
		errs = append(errs, field.Errorf(p+".map", "required for format ut1: map UT1 categories to policy categories"))
	case format == FormatUT1 && s.Category != "":
		errs = append(errs, field.Errorf(p+".category", "not used for format ut1; use map"))
	case format == FormatAuto && (s.Category == "") == (len(s.Map) == 0):
		errs = append(errs, field.Errorf(p, "set category (a single list) or map (a UT1 tree), not both or neither"))
	case format != FormatUT1 && format != FormatAuto && s.Category == "":
		errs = append(errs, field.Errorf(p+".category", "required for format %s", format))
	case format != FormatUT1 && format != FormatAuto && len(s.Map) > 0:
		errs = append(errs, field.Errorf(p+".map", "only used for format ut1"))
	}
	if s.Category != "" && !categoryRE.MatchString(s.Category) {
		errs = append(errs, field.Errorf(p+".category", "%q must be lowercase letters, digits and '_', starting with a letter", s.Category))
	}
	if s.Expressions && len(s.Map) == 0 {
		errs = append(errs, field.Errorf(p+".expressions", "only UT1 trees have expressions"))
	}
	keys := make([]string, 0, len(s.Map))
	for k := range s.Map {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !ut1NameRE.MatchString(k) {
			errs = append(errs, field.Errorf(p+".map", "%q is not a UT1 category name", k))
		}
		if v := s.Map[k]; !categoryRE.MatchString(v) {
			errs = append(errs, field.Errorf(p+".map."+k, "%q must be lowercase letters, digits and '_', starting with a letter", v))
		}
	}
	return errs
}
