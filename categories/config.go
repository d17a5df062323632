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
	// default one replaces it.
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
	// Path, URL and URLs is set.
	URL string `yaml:"url,omitempty" json:"url,omitempty"`
	// URLs are several files of one publisher read as one list (a
	// publisher that splits a category by service or by kind). Each is
	// fetched and cached on its own; a file that cannot be had is left out
	// and reported, the others still load.
	URLs []string `yaml:"urls,omitempty" json:"urls,omitempty"`
	// Map maps UT1 categories to policy categories ("drogue": "drugs").
	// UT1 categories not in the map are not loaded.
	Map map[string]string `yaml:"map,omitempty" json:"map,omitempty"`
	// Expressions also loads each mapped UT1 category's "expressions" file
	// as regular expressions (RE2) matched against "host/path?query".
	// Off by default: they cost time on every URL lookup.
	Expressions bool `yaml:"expressions,omitempty" json:"expressions,omitempty"`
}

// Config is the "lists" section of the configuration.
type Config struct {
	// Defaults loads the default sources (DefaultSources: UT1, The Block
	// List Project, Sinfonietta and the others in docs), fetched from their
	// publishers, or read from Mirror.
	Defaults bool `yaml:"defaults"`
	// Disable switches default sources off by name.
	Disable []string `yaml:"disable"`
	// Mirror is a directory holding the default sources' files under their
	// mirror names (ut1-blacklists.tar.gz, lists/<name>.txt.gz…), read
	// instead of the publishers' URLs: for sites without internet access.
	Mirror string `yaml:"mirror"`
	// Sources are lists to load in addition to the defaults; one with a
	// default source's name replaces it.
	Sources []Source `yaml:"sources"`
	// Refresh is how often URL sources are re-fetched and local files
	// re-checked for changes; 0 turns refreshing off.
	Refresh time.Duration `yaml:"refresh"`
	// Retry is the first wait before fetching again a source that could
	// not be had; it doubles up to Refresh (or an hour).
	Retry time.Duration `yaml:"retry"`
	// CacheDir keeps the last good download of each URL source, loaded at
	// start before anything is fetched. Empty means data_dir/lists.
	CacheDir string `yaml:"cache_dir"`
	// FetchTimeout bounds one download, headers to last byte.
	FetchTimeout time.Duration `yaml:"fetch_timeout"`
	// MaxDownloadBytes bounds one downloaded body as sent (compressed).
	MaxDownloadBytes int64 `yaml:"max_download_bytes"`
	// MaxListBytes bounds one list file after decompression, so a
	// decompression bomb fails the source instead of the process.
	MaxListBytes int64 `yaml:"max_list_bytes"`
	// SampleNames, when positive, keeps a sample of up to about this
	// many names of each list (Index.NameSamples) for training the
	// domain-name model. Set by the program, not the configuration file.
	SampleNames int `yaml:"-" json:"-"`
}

// DefaultConfig returns the defaults: the default sources on, fetched from
// their publishers, refreshed daily.
func DefaultConfig() Config {
	return Config{
		Defaults:         true,
		Refresh:          24 * time.Hour,
		Retry:            time.Minute,
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

var formats = []string{FormatAuto, FormatUT1, FormatHosts, FormatDomains, FormatAdblock, FormatURLs, FormatMISP}

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
	if c.Retry < time.Second {
		errs = append(errs, field.Errorf("retry", "must be at least 1s, got %s", c.Retry))
	}
	defaults := map[string]bool{}
	for _, d := range DefaultSources() {
		defaults[d.Name] = true
	}
	for i, name := range c.Disable {
		switch {
		case name == SeedName:
			errs = append(errs, field.Errorf("disable["+strconv.Itoa(i)+"]", "%s is always loaded: it is the floor when no other list can be had", SeedName))
		case !defaults[name]:
			errs = append(errs, field.Errorf("disable["+strconv.Itoa(i)+"]", "%q is not a default source (see `aupguard lists defaults`)", name))
		}
	}
	remote := c.Defaults && c.Mirror == ""
	seen := map[string]int{}
	for i := range c.Sources {
		s := &c.Sources[i]
		p := "sources[" + strconv.Itoa(i) + "]"
		if j, dup := seen[s.Name]; dup && s.Name != "" {
			errs = append(errs, field.Errorf(p+".name", "%q is already used by sources[%d]", s.Name, j))
		}
		seen[s.Name] = i
		if s.Name == SeedName {
			errs = append(errs, field.Errorf(p+".name", "%q is aupguard's own seed list and cannot be replaced", s.Name))
		}
		remote = remote || s.URL != "" || len(s.URLs) > 0
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
	set := 0
	for _, ok := range []bool{s.Path != "", s.URL != "", len(s.URLs) > 0} {
		if ok {
			set++
		}
	}
	switch {
	case set == 0:
		errs = append(errs, field.Errorf(p, "one of path, url or urls is required"))
	case set > 1:
		errs = append(errs, field.Errorf(p, "path, url and urls are mutually exclusive"))
	case s.URL != "":
		if !httpURL(s.URL) {
			errs = append(errs, field.Errorf(p+".url", "%q is not an http(s) URL", s.URL))
		}
	case len(s.URLs) > 0:
		if s.Format == FormatUT1 || len(s.Map) > 0 {
			errs = append(errs, field.Errorf(p+".urls", "a UT1 tree is one archive: use url"))
		}
		for i, u := range s.URLs {
			if !httpURL(u) {
				errs = append(errs, field.Errorf(p+".urls["+strconv.Itoa(i)+"]", "%q is not an http(s) URL", u))
			}
		}
	}
	format := s.Format
	if format == "" {
		format = FormatAuto
	}
	if !slices.Contains(formats, format) {
		errs = append(errs, field.Errorf(p+".format", "unknown format %q (want one of ut1, hosts, domains, adblock, urls, misp, auto)", s.Format))
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

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
