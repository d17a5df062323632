package dnsfilter

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/aupguard/aupguard/config/field"
)

// BlockAnswer is how a blocked query is answered.
type BlockAnswer string

// The block answer modes.
const (
	// BlockZero answers 0.0.0.0 to A and :: to AAAA queries (NODATA for
	// other types): clients fail fast without retrying other resolvers.
	BlockZero BlockAnswer = "zero"
	// BlockNXDomain answers NXDOMAIN with an SOA in the authority section.
	BlockNXDomain BlockAnswer = "nxdomain"
	// BlockRefused answers REFUSED.
	BlockRefused BlockAnswer = "refused"
	// BlockAddress answers the block page's addresses, so browsers land on
	// the page that explains the block.
	BlockAddress BlockAnswer = "address"
)

// Config is the `dns` section of aupguard's configuration.
type Config struct {
	// Listen is the UDP and TCP address served, host:port.
	Listen string `yaml:"listen"`
	// UDPSockets is the number of UDP sockets bound to Listen with
	// SO_REUSEPORT so the kernel spreads packets over cores; 0 means one
	// per CPU (Linux), 1 disables the option.
	UDPSockets int `yaml:"udp_sockets"`
	// Upstreams are the resolvers forwarded to, tried in order:
	// "system" (the nameservers of /etc/resolv.conf), "IP", "IP:port",
	// "udp://IP:port" or "tcp://IP:port".
	Upstreams []string `yaml:"upstreams"`
	// Timeout bounds one client query end to end; when it passes without an
	// answer the client gets SERVFAIL.
	Timeout time.Duration `yaml:"timeout"`
	// UpstreamTimeout bounds one exchange with one upstream before the next
	// one is tried.
	UpstreamTimeout time.Duration `yaml:"upstream_timeout"`
	// EDNSMaxSize caps the UDP response size offered to EDNS clients and
	// advertised to upstreams (1232 avoids IP fragmentation).
	EDNSMaxSize int `yaml:"edns_max_size"`
	// LocalTTL is the TTL of answers made locally (hosts file, safe-search
	// CNAMEs, special names).
	LocalTTL time.Duration `yaml:"local_ttl"`
	// MaxInflight caps queries being answered at once; beyond it queries
	// are dropped and counted, so a flood cannot exhaust memory.
	MaxInflight int `yaml:"max_inflight"`
	// EventFoldWindow folds repeats of a block or alert event (same
	// client, name and decision) within this window of the first into that
	// first event, which is sent at once, and one follow-up carrying
	// "repeats" (the count) and "ref" (the first event's ID), sent when the
	// window closes; 0 sends one event per query.
	EventFoldWindow time.Duration   `yaml:"event_fold_window"`
	Cache           CacheConfig     `yaml:"cache"`
	Block           BlockConfig     `yaml:"block"`
	RateLimit       RateLimitConfig `yaml:"rate_limit"`
}

// CacheConfig sizes the response cache.
type CacheConfig struct {
	// Size is the maximum number of cached responses; 0 disables the cache.
	Size int `yaml:"size"`
	// MinTTL and MaxTTL clamp the TTLs of cached positive answers.
	MinTTL time.Duration `yaml:"min_ttl"`
	MaxTTL time.Duration `yaml:"max_ttl"`
	// NegativeTTL caps how long NXDOMAIN/NODATA answers are kept
	// (RFC 2308: min(SOA TTL, SOA MINIMUM)).
	NegativeTTL time.Duration `yaml:"negative_ttl"`
}

// BlockConfig says how blocked queries are answered.
type BlockConfig struct {
	// Answer is what a blocked query gets: zero (0.0.0.0 and ::), nxdomain
	// (with an SOA), refused, or address (the block page's addresses);
	// always with Extended DNS Error 15 (Blocked).
	Answer BlockAnswer `yaml:"answer"`
	// TTL of block answers: short, so an unblock takes effect quickly.
	TTL time.Duration `yaml:"ttl"`
	// Addresses are the block page's IPv4 and IPv6 addresses, for
	// answer: address.
	Addresses []string `yaml:"addresses"`
}

// RateLimitConfig is the per-client token bucket.
type RateLimitConfig struct {
	// QPS is the sustained queries per second per client; 0 disables the
	// limit.
	QPS float64 `yaml:"qps"`
	// Burst is the bucket size.
	Burst int `yaml:"burst"`
	// Clients bounds how many client buckets are remembered (least recently
	// seen are forgotten first), so spoofed sources cannot exhaust memory.
	Clients int `yaml:"clients"`
}

// DefaultConfig returns every default.
func DefaultConfig() Config {
	return Config{
		Listen:          "127.0.0.1:5353",
		UDPSockets:      0,
		Upstreams:       []string{"system"},
		Timeout:         4 * time.Second,
		UpstreamTimeout: 2 * time.Second,
		EDNSMaxSize:     1232,
		LocalTTL:        60 * time.Second,
		MaxInflight:     4096,
		EventFoldWindow: 5 * time.Second,
		Cache: CacheConfig{
			Size:        20000,
			MinTTL:      0,
			MaxTTL:      24 * time.Hour,
			NegativeTTL: 30 * time.Minute,
		},
		Block: BlockConfig{
			Answer: BlockZero,
			TTL:    60 * time.Second,
		},
		RateLimit: RateLimitConfig{
			QPS:     50,
			Burst:   200,
			Clients: 65536,
		},
	}
}

// maxFoldWindow bounds event_fold_window: the count of a folded attempt
// reaches the trail only when its window closes, and a reviewer should
// not wait long for it.
const maxFoldWindow = 10 * time.Minute

// maxTTL is RFC 2181's largest TTL.
const maxTTL = time.Duration(math.MaxInt32) * time.Second

// Validate checks every key and returns all problems at once, each naming
// its key relative to the section.
func (c *Config) Validate() error {
	var errs []error
	if _, err := netip.ParseAddrPort(c.Listen); err != nil {
		errs = append(errs, field.Errorf("listen", "%q is not an IP:port address: %v", c.Listen, err))
	}
	if c.UDPSockets < 0 || c.UDPSockets > 256 {
		errs = append(errs, field.Errorf("udp_sockets", "must be between 0 (one per CPU) and 256, got %d", c.UDPSockets))
	}
	if len(c.Upstreams) == 0 {
		errs = append(errs, field.Errorf("upstreams", "at least one upstream is required (\"system\" uses /etc/resolv.conf)"))
	}
	for i, u := range c.Upstreams {
		if _, err := parseUpstream(u); err != nil {
			errs = append(errs, field.Errorf(fmt.Sprintf("upstreams[%d]", i), "%v", err))
		}
	}
	if c.Timeout <= 0 {
		errs = append(errs, field.Errorf("timeout", "must be positive, got %s", c.Timeout))
	}
	if c.UpstreamTimeout <= 0 {
		errs = append(errs, field.Errorf("upstream_timeout", "must be positive, got %s", c.UpstreamTimeout))
	} else if c.Timeout > 0 && c.UpstreamTimeout > c.Timeout {
		errs = append(errs, field.Errorf("upstream_timeout", "%s is longer than timeout %s: no second upstream could ever be tried", c.UpstreamTimeout, c.Timeout))
	}
	if c.EDNSMaxSize < 512 || c.EDNSMaxSize > 4096 {
		errs = append(errs, field.Errorf("edns_max_size", "must be between 512 and 4096 bytes, got %d", c.EDNSMaxSize))
	}
	errs = append(errs, checkTTL("local_ttl", c.LocalTTL))
	if c.MaxInflight < 1 {
		errs = append(errs, field.Errorf("max_inflight", "must be at least 1, got %d", c.MaxInflight))
	}

	if c.EventFoldWindow < 0 || c.EventFoldWindow > maxFoldWindow {
		errs = append(errs, field.Errorf("event_fold_window", "must be between 0s (off) and %s, got %s", maxFoldWindow, c.EventFoldWindow))
	}

	if c.Cache.Size < 0 {
		errs = append(errs, field.Errorf("cache.size", "must not be negative (0 disables the cache), got %d", c.Cache.Size))
	}
	errs = append(errs, checkTTL("cache.min_ttl", c.Cache.MinTTL), checkTTL("cache.max_ttl", c.Cache.MaxTTL),
		checkTTL("cache.negative_ttl", c.Cache.NegativeTTL))
	if c.Cache.MaxTTL < c.Cache.MinTTL {
		errs = append(errs, field.Errorf("cache.max_ttl", "%s is below cache.min_ttl %s", c.Cache.MaxTTL, c.Cache.MinTTL))
	}

	switch c.Block.Answer {
	case BlockZero, BlockNXDomain, BlockRefused:
	case BlockAddress:
		if len(c.Block.Addresses) == 0 {
			errs = append(errs, field.Errorf("block.addresses", "answer: address needs at least one block page address"))
		}
	default:
		errs = append(errs, field.Errorf("block.answer", "%q is not one of zero, nxdomain, refused, address", c.Block.Answer))
	}
	errs = append(errs, checkTTL("block.ttl", c.Block.TTL))
	for i, a := range c.Block.Addresses {
		if _, err := netip.ParseAddr(a); err != nil {
			errs = append(errs, field.Errorf(fmt.Sprintf("block.addresses[%d]", i), "%q is not an IP address", a))
		}
	}

	if c.RateLimit.QPS < 0 || math.IsNaN(c.RateLimit.QPS) || math.IsInf(c.RateLimit.QPS, 0) {
		errs = append(errs, field.Errorf("rate_limit.qps", "must be a non-negative number (0 disables the limit), got %v", c.RateLimit.QPS))
	}
	if c.RateLimit.QPS > 0 {
		if c.RateLimit.Burst < 1 {
			errs = append(errs, field.Errorf("rate_limit.burst", "must be at least 1 when qps is set, got %d", c.RateLimit.Burst))
		}
		if c.RateLimit.Clients < 1 {
			errs = append(errs, field.Errorf("rate_limit.clients", "must be at least 1 when qps is set, got %d", c.RateLimit.Clients))
		}
	}
	return errors.Join(errs...)
}

func checkTTL(path string, d time.Duration) error {
	if d < 0 || d > maxTTL {
		return field.Errorf(path, "must be between 0s and %s, got %s", maxTTL, d)
	}
	return nil
}

// upstreamSpec is one parsed entry of Config.Upstreams.
type upstreamSpec struct {
	system bool
	net    string // "udp" (with TCP retry on truncation) or "tcp"
	addr   string // host:port
}

// parseUpstream accepts "system", "IP", "IP:port", "[v6]:port" and the same
// with a udp:// or tcp:// prefix. Host names are refused: resolving the
// resolver would need the resolver.
func parseUpstream(s string) (upstreamSpec, error) {
	if s == "system" {
		return upstreamSpec{system: true}, nil
	}
	spec := upstreamSpec{net: "udp"}
	rest := s
	if scheme, after, ok := strings.Cut(s, "://"); ok {
		switch scheme {
		case "udp", "tcp":
			spec.net, rest = scheme, after
		default:
			return spec, fmt.Errorf("%q: scheme %q is not udp or tcp", s, scheme)
		}
	}
	host, port := rest, "53"
	if h, p, err := net.SplitHostPort(rest); err == nil {
		host, port = h, p
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return spec, fmt.Errorf("%q: %q is not an IP address (a host name would need DNS to reach DNS)", s, host)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return spec, fmt.Errorf("%q: port %q is not 1-65535", s, port)
	}
	spec.addr = net.JoinHostPort(ip.String(), port)
	return spec, nil
}

// blockAddrs splits the validated block page addresses by family.
func (c *BlockConfig) blockAddrs() (v4, v6 []netip.Addr) {
	for _, a := range c.Addresses {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			continue
		}
		ip = ip.Unmap()
		if ip.Is4() {
			v4 = append(v4, ip)
		} else {
			v6 = append(v6, ip)
		}
	}
	return v4, v6
}
