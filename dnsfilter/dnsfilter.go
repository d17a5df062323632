// Package dnsfilter is aupguard's filtering DNS server: devices that do not
// use the proxy still resolve names through it, so the same policy applies
// to them. Each query passes a chain of resolvers (client network, rate
// limit, special names, hosts file, policy, RFC 8482, safe search, cache,
// upstream; see chain.go); blocked names get a configurable block answer
// with an Extended DNS Error, and blocks and alerts become misuse events.
package dnsfilter

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/verdict"
)

// Decider is the decision core. It fills in categories itself and never
// fails: on evaluation error it returns a fail-closed decision with Error
// set.
type Decider interface {
	Decide(ctx context.Context, in *verdict.Input) verdict.Decision
}

// Emitter receives misuse events.
type Emitter interface {
	Emit(ctx context.Context, ev events.Event) error
}

// Identifier maps a client address to its groups, and says whether the
// address belongs to a network the filter serves at all.
type Identifier interface {
	Identify(ip netip.Addr) (groups []string, allowed bool)
}

// Options are the collaborators and run-time inputs that do not belong in
// the YAML section.
type Options struct {
	// Decider is required.
	Decider Decider
	// Identifier is required: without it the server would be an open
	// resolver.
	Identifier Identifier
	// Emitter receives block and alert events; nil discards them (for
	// tools that only resolve).
	Emitter Emitter
	// Hosts answers names locally (aupguard's hosts file): name → addresses.
	// Names are matched case-insensitively, with or without trailing dot.
	Hosts map[string][]netip.Addr
	// NewID returns a fresh event ID; nil uses random UUIDs.
	NewID func() string
	// Instance names this process in events.
	Instance string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock for cache ages and event times; nil is time.Now.
	// Tests inject one to age cache entries without sleeping.
	Now func() time.Time
	// ResolvConf is the file read for the "system" upstream; empty means
	// /etc/resolv.conf.
	ResolvConf string
	// PacketConns and Listeners, when set, are served instead of binding
	// Config.Listen: that is how systemd socket activation hands over
	// port 53 without running aupguard as root.
	PacketConns []net.PacketConn
	Listeners   []net.Listener
}
