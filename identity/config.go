package identity

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/aupguard/aupguard/config/field"
)

// Config is the identity section of the configuration.
type Config struct {
	// Networks are the client networks allowed to use the proxy and the DNS
	// filter at all. Everyone else is refused, so the service is never an
	// open proxy or an open resolver.
	Networks []string `yaml:"networks"`
	// Groups maps a client network (CIDR) to the policy groups of every
	// client in it. The most specific (longest) prefix wins.
	Groups map[string][]string `yaml:"groups"`
	// Auth configures optional proxy authentication.
	Auth AuthConfig `yaml:"auth"`
}

// AuthConfig configures proxy authentication (HTTP Basic against an
// htpasswd file of bcrypt hashes).
type AuthConfig struct {
	// Required makes every proxy request authenticate. Without it, an
	// htpasswd file makes authentication optional: credentials a client
	// offers are checked, and a client that offers none is identified by
	// its network.
	Required bool `yaml:"required"`
	// HTPasswd is the path of an htpasswd file with bcrypt hashes
	// (htpasswd -B). Empty disables authentication.
	HTPasswd string `yaml:"htpasswd"`
	// UsersGroups is the path of a file of "user: group1,group2" lines
	// giving authenticated users their policy groups. Optional.
	UsersGroups string `yaml:"users_groups"`
	// Realm is shown by browsers in the login prompt.
	Realm string `yaml:"realm"`
	// MaxFailures is how many failed logins a client address may make at
	// once before it is refused without checking.
	MaxFailures int `yaml:"max_failures"`
	// FailureWindow is how long the allowance takes to refill: it comes back
	// at MaxFailures per FailureWindow, so a refused client may try again
	// after FailureWindow/MaxFailures.
	FailureWindow time.Duration `yaml:"failure_window"`
	// CacheTTL is how long a checked user and password is remembered, so
	// that every request does not pay for bcrypt. 0 disables the cache.
	CacheTTL time.Duration `yaml:"cache_ttl"`
}

// DefaultConfig returns every default: loopback clients only, no groups
// (the decider's default group applies) and no authentication.
func DefaultConfig() Config {
	return Config{
		Networks: []string{"127.0.0.0/8", "::1/128"},
		Auth: AuthConfig{
			Realm:         "aupguard",
			MaxFailures:   10,
			FailureWindow: 5 * time.Minute,
			CacheTTL:      5 * time.Minute,
		},
	}
}

// Validate checks the section; errors carry the key path relative to it.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Networks) == 0 {
		errs = append(errs, field.Errorf("networks", "must list at least one client network (for example 10.0.0.0/8); an empty list would refuse every client"))
	}
	for i, n := range c.Networks {
		if _, err := ParsePrefix(n); err != nil {
			errs = append(errs, field.Errorf(fmt.Sprintf("networks[%d]", i), "%v", err))
		}
	}
	keys := make([]string, 0, len(c.Groups))
	for k := range c.Groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	seen := map[netip.Prefix]string{}
	for _, k := range keys {
		p, err := ParsePrefix(k)
		if err != nil {
			errs = append(errs, field.Errorf("groups."+k, "%v", err))
			continue
		}
		if prev, ok := seen[p]; ok {
			errs = append(errs, field.Errorf("groups."+k, "same network as %q", prev))
		}
		seen[p] = k
		if len(c.Groups[k]) == 0 {
			errs = append(errs, field.Errorf("groups."+k, "must list at least one group"))
		}
		for i, g := range c.Groups[k] {
			if err := checkGroupName(g); err != nil {
				errs = append(errs, field.Errorf(fmt.Sprintf("groups.%s[%d]", k, i), "%v", err))
			}
		}
	}
	errs = append(errs, c.Auth.validate()...)
	return errors.Join(errs...)
}

func (a *AuthConfig) validate() []error {
	var errs []error
	if a.Required && a.HTPasswd == "" {
		errs = append(errs, field.Errorf("auth.required", "authentication is required but auth.htpasswd names no file"))
	}
	if a.UsersGroups != "" && a.HTPasswd == "" {
		errs = append(errs, field.Errorf("auth.users_groups", "needs auth.htpasswd: groups are only given to authenticated users"))
	}
	if a.Realm == "" {
		errs = append(errs, field.Errorf("auth.realm", "must not be empty"))
	} else if strings.ContainsAny(a.Realm, "\"\\\r\n") {
		errs = append(errs, field.Errorf("auth.realm", "must not contain quotes, backslashes or line breaks (it is sent in the Proxy-Authenticate header)"))
	}
	if a.MaxFailures < 1 {
		errs = append(errs, field.Errorf("auth.max_failures", "must be at least 1, got %d", a.MaxFailures))
	}
	if a.FailureWindow <= 0 {
		errs = append(errs, field.Errorf("auth.failure_window", "must be positive, got %s", a.FailureWindow))
	}
	if a.CacheTTL < 0 {
		errs = append(errs, field.Errorf("auth.cache_ttl", "must not be negative, got %s", a.CacheTTL))
	}
	return errs
}

// ParsePrefix accepts a CIDR or a single address (a /32 or /128) and
// normalises it, so that 10.1.2.3/8 and 10.0.0.0/8 are the same network
// and an IPv4-mapped IPv6 prefix is its IPv4 one. The proxy parses its
// destination allow-list with it too.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, errors.New("empty network")
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR (like 10.0.0.0/8) or an IP address", s)
		}
		a = a.Unmap().WithZone("")
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR (like 10.0.0.0/8)", s)
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// checkGroupName rejects names that could not survive the users_groups
// line format or a log line.
func checkGroupName(g string) error {
	if g == "" {
		return errors.New("empty group name")
	}
	if strings.ContainsAny(g, ",: \t\r\n#") {
		return fmt.Errorf("group name %q must not contain spaces, commas, colons or '#'", g)
	}
	return nil
}
