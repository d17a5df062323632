// Package config reads aupguard's one YAML file. Every key has a default
// (so no file at all is a working setup), unknown keys are errors with a
// suggestion, and every bad value is reported with its file, line and key
// path. Each component validates its own section; this package assembles
// them and locates their errors.
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/aupguard/aupguard/admin"
	"github.com/aupguard/aupguard/categories"
	"github.com/aupguard/aupguard/categories/modeltrain"
	"github.com/aupguard/aupguard/config/field"
	"github.com/aupguard/aupguard/console"
	"github.com/aupguard/aupguard/dnsfilter"
	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/identity"
	"github.com/aupguard/aupguard/intercept"
	"github.com/aupguard/aupguard/proxy"
	"github.com/aupguard/aupguard/redisstore"
)

// Config is the whole configuration. See docs/config.md for every key.
type Config struct {
	// Instance names this instance in events and logs; the host name when empty.
	Instance string `yaml:"instance"`
	// DataDir holds the event spool and its cursors (events.data_dir) and
	// downloaded lists (lists.cache_dir) unless those are set.
	DataDir  string            `yaml:"data_dir"`
	Log      LogConfig         `yaml:"log"`
	Policy   Policy            `yaml:"policy"`
	Cache    Cache             `yaml:"cache"`
	Lists    categories.Config `yaml:"lists"`
	Identity identity.Config   `yaml:"identity"`
	Proxy    proxy.Config      `yaml:"proxy"`
	DNS      DNS               `yaml:"dns"`
	Events   events.Config     `yaml:"events"`
	Redis    redisstore.Config `yaml:"redis"`
	// Hosts overrides name resolution for the proxy and the DNS filter:
	// name → addresses. Entries of HostsFile are added, Hosts wins.
	Hosts map[string][]string `yaml:"hosts"`
	// HostsFile is an /etc/hosts-style file (address, then names) read
	// into Hosts at start only: SIGHUP does not re-read it (the proxy and
	// the DNS filter take their overrides when built), so restart after
	// changing it.
	HostsFile string `yaml:"hosts_file"`
	Admin     Admin  `yaml:"admin"`
	// Intercept is selective TLS interception: the CA and its leaves.
	Intercept intercept.Config `yaml:"intercept"`
	// NameModel is the domain-name model trained from the lists, asked
	// about hosts no list names (policies/model.rego decides).
	NameModel modeltrain.Config `yaml:"name_model"`
	// PageScoring scores HTML pages at the response phase
	// (policies/page.rego decides).
	PageScoring proxy.PageScoreConfig `yaml:"page_scoring"`
	// Console is the safeguarding staff's web console (alerts, learner
	// timelines, review requests, audit log); its data is under
	// data_dir/console and its accounts in data_dir/staff/users.json.
	Console console.Config `yaml:"console"`
}

// DNS is the DNS filter's section: its own keys plus a switch.
type DNS struct {
	// Enabled runs the DNS filter next to the proxy.
	Enabled          bool `yaml:"enabled"`
	dnsfilter.Config `yaml:",inline"`
}

// LogConfig sets up log/slog.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Policy configures the Rego engine.
type Policy struct {
	// Dir is an admin's policy directory laid over the built-in policies:
	// a file with the same name as a built-in one replaces it, others add.
	Dir string `yaml:"dir"`
	// Builtin includes the built-in policies; false uses Dir alone.
	Builtin bool `yaml:"builtin"`
	// Watch reloads when a file in Dir changes (SIGHUP always reloads).
	Watch bool `yaml:"watch"`
	// Timezone is the zone of input.time (e.g. Europe/London); "Local" is
	// the machine's.
	Timezone string `yaml:"timezone"`
	// DefaultGroups are the groups of a client with no identity.
	DefaultGroups []string `yaml:"default_groups"`
	// FailOpenGroups are allowed through when the policy cannot be
	// evaluated; everyone else is blocked.
	FailOpenGroups []string `yaml:"fail_open_groups"`
}

// Cache configures the in-process verdict cache.
type Cache struct {
	// Size bounds the cached verdicts (entries); 0 turns the cache off.
	Size int `yaml:"size"`
	// DefaultTTL is how long a verdict is reused when the policy gives no
	// cache_ttl_s.
	DefaultTTL time.Duration `yaml:"default_ttl"`
	// MaxTTL caps any cache_ttl_s the policy gives.
	MaxTTL time.Duration `yaml:"max_ttl"`
}

// Admin is the operators' HTTP listener: health, metrics, the API.
type Admin struct {
	// Listen is the address of /healthz, /readyz, /metrics and /api/*; ""
	// turns it off. Keep it on loopback or a management network: the
	// proxy never lets clients reach it.
	Listen string `yaml:"listen"`
	// Auth protects /api/* (and /metrics if asked): a bearer token or an
	// admin's staff account. On by default; with no token file and no
	// admin account the API answers 401 until one exists.
	Auth admin.AuthConfig `yaml:"auth"`
}

// Default returns the built-in defaults: a working, safe configuration
// listening on loopback only.
func Default() *Config {
	lists := categories.DefaultConfig()
	lists.CacheDir = "" // under data_dir
	ev := events.DefaultConfig()
	ev.DataDir = "" // data_dir
	return &Config{
		DataDir: "aupguard-data",
		Log:     LogConfig{Level: "info", Format: "text"},
		Policy: Policy{
			Builtin:       true,
			Watch:         true,
			Timezone:      "Local",
			DefaultGroups: []string{"learners"},
		},
		Cache:     Cache{Size: 100_000, DefaultTTL: 5 * time.Minute, MaxTTL: time.Hour},
		Lists:     lists,
		Identity:  identity.DefaultConfig(),
		Proxy:     proxy.DefaultConfig(),
		DNS:       DNS{Enabled: true, Config: dnsfilter.DefaultConfig()},
		Events:    ev,
		Redis:     redisstore.DefaultConfig(),
		Intercept: intercept.DefaultConfig(),
		Admin:     Admin{Listen: "127.0.0.1:9090"},

		NameModel:   modeltrain.DefaultConfig(),
		PageScoring: proxy.DefaultPageScoreConfig(),
		Console:     console.DefaultConfig(),
	}
}

// resolve fills the paths that default to places under DataDir, after
// the file is read and before validation.
func (c *Config) resolve() {
	if c.Events.DataDir == "" {
		c.Events.DataDir = c.DataDir
	}
	if c.Lists.CacheDir == "" {
		c.Lists.CacheDir = filepath.Join(c.DataDir, "lists")
	}
	if c.Intercept.CACert == "" && c.Intercept.CAKey == "" {
		c.Intercept.CACert = filepath.Join(c.DataDir, "ca", "ca.crt")
		c.Intercept.CAKey = filepath.Join(c.DataDir, "ca", "ca.key")
	}
}

// Validate checks every section.
func (c *Config) Validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add(field.Errorf("log.level", "%q is not one of debug, info, warn, error", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		add(field.Errorf("log.format", "%q is not text or json", c.Log.Format))
	}
	if c.DataDir == "" {
		add(field.Errorf("data_dir", "must not be empty"))
	}
	if _, err := c.Location(); err != nil {
		add(field.Errorf("policy.timezone", "%v", err))
	}
	if !c.Policy.Builtin && c.Policy.Dir == "" {
		add(field.Errorf("policy.builtin", "false needs policy.dir: there would be no policy at all"))
	}
	if c.Policy.Dir != "" {
		if st, err := os.Stat(c.Policy.Dir); err != nil {
			add(field.Errorf("policy.dir", "%v", err))
		} else if !st.IsDir() {
			add(field.Errorf("policy.dir", "%s is not a directory", c.Policy.Dir))
		}
	}
	if len(c.Policy.DefaultGroups) == 0 {
		add(field.Errorf("policy.default_groups", "must name at least one group (the design's default is learners)"))
	}
	if c.Cache.Size < 0 {
		add(field.Errorf("cache.size", "must be 0 (off) or more"))
	}
	if c.Cache.DefaultTTL < 0 {
		add(field.Errorf("cache.default_ttl", "must not be negative"))
	}
	if c.Cache.MaxTTL <= 0 {
		add(field.Errorf("cache.max_ttl", "must be positive"))
	}
	for name, addrs := range c.Hosts {
		for i, a := range addrs {
			if _, err := netip.ParseAddr(a); err != nil {
				add(field.Errorf(fmt.Sprintf("hosts.%s[%d]", name, i), "%q is not an IP address", a))
			}
		}
	}
	if c.HostsFile != "" {
		if _, err := ParseHostsFile(c.HostsFile); err != nil {
			add(field.Errorf("hosts_file", "%v", err))
		}
	}
	if c.Admin.Listen != "" {
		if _, err := netip.ParseAddrPort(c.Admin.Listen); err != nil {
			add(field.Errorf("admin.listen", "%q is not an address:port (%v)", c.Admin.Listen, err))
		}
	}
	add(field.Prefix("admin.auth", c.Admin.Auth.Validate()))
	add(field.Prefix("lists", c.Lists.Validate()))
	add(field.Prefix("identity", c.Identity.Validate()))
	add(field.Prefix("proxy", c.Proxy.Validate()))
	if c.DNS.Enabled {
		add(field.Prefix("dns", c.DNS.Config.Validate()))
	}
	add(field.Prefix("events", c.Events.Validate()))
	add(field.Prefix("redis", c.Redis.Validate()))
	add(field.Prefix("intercept", c.Intercept.Validate()))
	if c.NameModel.Enabled {
		add(field.Prefix("name_model", c.NameModel.Validate()))
	}
	if c.PageScoring.Enabled {
		add(field.Prefix("page_scoring", c.PageScoring.Validate()))
	}
	add(field.Prefix("console", c.Console.Validate()))
	if c.Console.Listen != "" && c.Console.Listen == c.Admin.Listen {
		add(field.Errorf("console.listen", "%s is also admin.listen: the console needs its own address", c.Console.Listen))
	}
	return errors.Join(errs...)
}

// Location returns the policy time zone.
func (c *Config) Location() (*time.Location, error) {
	if c.Policy.Timezone == "" || c.Policy.Timezone == "Local" {
		return time.Local, nil
	}
	return time.LoadLocation(c.Policy.Timezone)
}

// InstanceName returns Instance, or the host name.
func (c *Config) InstanceName() string {
	if c.Instance != "" {
		return c.Instance
	}
	if h, err := os.Hostname(); err == nil {
		return h
	}
	return "aupguard"
}
