package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/idna"

	"github.com/aupguard/aupguard/config/field"
	"github.com/aupguard/aupguard/identity"
)

// Config is the proxy section of the configuration.
type Config struct {
	// Listen is the address learners' devices connect to.
	Listen string `yaml:"listen"`
	// AllowDestinations are networks the proxy may connect to even though
	// they are loopback, private, link-local, CGNAT, metadata or otherwise
	// internal (CIDRs or single addresses). Empty: none.
	AllowDestinations []string `yaml:"allow_destinations"`
	// Nameservers are the DNS servers ("IP" or "IP:port", port 53 when
	// omitted) the proxy resolves origins with, queried in turn. Empty: the
	// system resolver. Every address an answer holds is still checked
	// against the internal ranges before it is dialled.
	Nameservers []string `yaml:"nameservers"`
	// UpstreamCAFile is a PEM file of extra CA certificates trusted, in
	// addition to the system roots, for origins reached over HTTPS.
	UpstreamCAFile string `yaml:"upstream_ca_file"`
	// Timeouts bound every wait.
	Timeouts Timeouts `yaml:"timeouts"`
	// MaxTunnelsPerClient caps the CONNECT tunnels and WebSockets one
	// client address may hold open at once.
	MaxTunnelsPerClient int `yaml:"max_tunnels_per_client"`
	// BlockPage configures what a blocked learner sees.
	BlockPage BlockPageConfig `yaml:"block_page"`
	// LogAllows logs allowed decisions at Info (like blocks) instead of
	// Debug.
	LogAllows bool `yaml:"log_allows"`
}

// Timeouts bound how long the proxy waits for clients and origins.
type Timeouts struct {
	// ReadHeader bounds reading a client's request line and headers.
	ReadHeader time.Duration `yaml:"read_header"`
	// ClientIdle closes a client's keep-alive connection after this long
	// without a request.
	ClientIdle time.Duration `yaml:"client_idle"`
	// Dial bounds resolving and connecting to an origin.
	Dial time.Duration `yaml:"dial"`
	// TLSHandshake bounds the TLS handshake with an HTTPS origin.
	TLSHandshake time.Duration `yaml:"tls_handshake"`
	// ResponseHeader bounds the wait for an origin's response headers
	// after the request was sent (not the body, which may stream for long).
	ResponseHeader time.Duration `yaml:"response_header"`
	// TunnelIdle closes a CONNECT tunnel or WebSocket with no traffic in
	// either direction for this long.
	TunnelIdle time.Duration `yaml:"tunnel_idle"`
}

// BlockPageConfig configures the block page.
type BlockPageConfig struct {
	// Organisation is the provider's name, shown in the page heading.
	Organisation string `yaml:"organisation"`
	// Contacts are the provider's "reporting misuse" contacts.
	Contacts []Contact `yaml:"contacts"`
	// ReviewEnabled shows the "request a review" button.
	ReviewEnabled bool `yaml:"review_enabled"`
	// ReviewHost is the made-up host name the review form posts to; the
	// proxy answers it itself and never resolves it.
	ReviewHost string `yaml:"review_host"`
}

// Contact is one person or team to report misuse to.
type Contact struct {
	// Name of the person or team (required).
	Name string `yaml:"name"`
	// Role, such as "Designated Safeguarding Lead" (optional).
	Role string `yaml:"role"`
	// Email and Phone: at least one is required.
	Email string `yaml:"email"`
	Phone string `yaml:"phone"`
}

// DefaultConfig returns every default.
func DefaultConfig() Config {
	return Config{
		Listen: "127.0.0.1:3128",
		Timeouts: Timeouts{
			ReadHeader:     10 * time.Second,
			ClientIdle:     2 * time.Minute,
			Dial:           10 * time.Second,
			TLSHandshake:   10 * time.Second,
			ResponseHeader: 60 * time.Second,
			TunnelIdle:     10 * time.Minute,
		},
		MaxTunnelsPerClient: 256,
		BlockPage: BlockPageConfig{
			Organisation:  "Your training provider",
			ReviewEnabled: true,
			ReviewHost:    "aupguard.block",
		},
	}
}

// Validate checks the section; errors carry the key path relative to it.
func (c *Config) Validate() error {
	var errs []error
	if err := checkListen(c.Listen); err != nil {
		errs = append(errs, field.Errorf("listen", "%v", err))
	}
	for i, d := range c.AllowDestinations {
		if _, err := identity.ParsePrefix(d); err != nil {
			errs = append(errs, field.Errorf(fmt.Sprintf("allow_destinations[%d]", i), "%v", err))
		}
	}
	for i, n := range c.Nameservers {
		if _, err := nameserverAddr(n); err != nil {
			errs = append(errs, field.Errorf(fmt.Sprintf("nameservers[%d]", i), "%v", err))
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"read_header", c.Timeouts.ReadHeader},
		{"client_idle", c.Timeouts.ClientIdle},
		{"dial", c.Timeouts.Dial},
		{"tls_handshake", c.Timeouts.TLSHandshake},
		{"response_header", c.Timeouts.ResponseHeader},
		{"tunnel_idle", c.Timeouts.TunnelIdle},
	} {
		if d.v <= 0 {
			errs = append(errs, field.Errorf("timeouts."+d.key, "must be positive (like \"30s\"), got %s", d.v))
		}
	}
	if c.MaxTunnelsPerClient < 1 {
		errs = append(errs, field.Errorf("max_tunnels_per_client", "must be at least 1, got %d", c.MaxTunnelsPerClient))
	}
	bp := &c.BlockPage
	if strings.TrimSpace(bp.Organisation) == "" {
		errs = append(errs, field.Errorf("block_page.organisation", "must not be empty"))
	}
	for i, ct := range bp.Contacts {
		p := fmt.Sprintf("block_page.contacts[%d]", i)
		if strings.TrimSpace(ct.Name) == "" {
			errs = append(errs, field.Errorf(p+".name", "must not be empty"))
		}
		if ct.Email == "" && ct.Phone == "" {
			errs = append(errs, field.Errorf(p, "needs an email or a phone number"))
		}
		if ct.Email != "" {
			if a, err := mail.ParseAddress(ct.Email); err != nil || a.Address != ct.Email {
				errs = append(errs, field.Errorf(p+".email", "%q is not a plain email address (like dsl@example.ac.uk)", ct.Email))
			}
		}
		if ct.Phone != "" && !validPhone(ct.Phone) {
			errs = append(errs, field.Errorf(p+".phone", "%q is not a phone number (digits, spaces, + ( ) - only)", ct.Phone))
		}
	}
	if bp.ReviewEnabled || bp.ReviewHost != "" {
		if err := checkHostName(bp.ReviewHost); err != nil {
			errs = append(errs, field.Errorf("block_page.review_host", "%v", err))
		}
	}
	return errors.Join(errs...)
}

// nameserverAddr is a nameservers entry as host:port. The host must be an
// address: a name would need a resolver to find the resolver.
func nameserverAddr(s string) (string, error) {
	if ip, err := netip.ParseAddr(s); err == nil {
		return net.JoinHostPort(ip.String(), "53"), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("%q is not an address or address:port (like 10.0.0.53 or 127.0.0.1:5300)", s)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "", fmt.Errorf("%q: %q is not an IP address", s, host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, port)
	}
	return net.JoinHostPort(ip.String(), port), nil
}

func checkListen(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port (like 127.0.0.1:3128 or :3128)", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", s, port)
	}
	if host != "" && net.ParseIP(host) == nil {
		if err := checkHostName(host); err != nil {
			return fmt.Errorf("%q: %v", s, err)
		}
	}
	return nil
}

func checkHostName(h string) error {
	if h == "" {
		return errors.New("empty host name")
	}
	if strings.ContainsAny(h, ":/ ") {
		return fmt.Errorf("%q is not a bare host name", h)
	}
	if _, err := idna.Lookup.ToASCII(h); err != nil {
		return fmt.Errorf("%q is not a valid host name: %v", h, err)
	}
	return nil
}

func validPhone(s string) bool {
	digits := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case strings.ContainsRune(" +()-", r):
		default:
			return false
		}
	}
	return digits >= 3
}
