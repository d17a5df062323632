package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aupguard/aupguard/config"
	"github.com/aupguard/aupguard/console"
	"github.com/aupguard/aupguard/dnsfilter"
	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/identity"
	"github.com/aupguard/aupguard/proxy"
)

// Server is a running aupguard: the decision core, the event pipeline, the
// proxy, the DNS filter and the admin console.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	Core     *Core
	Events   *events.Pipeline
	Identity *identity.Identity
	Proxy    *proxy.Server
	DNS      *dnsfilter.Server

	admin   *http.Server
	adminLn net.Listener
	started time.Time

	bgCancel context.CancelFunc
	bg       sync.WaitGroup
}

// NewServer builds every component from cfg. Nothing listens until Start.
func NewServer(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Server, error) {
	s := &Server{cfg: cfg, log: log, started: time.Now()}
	bgctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.bgCancel = cancel
	ok := false
	defer func() {
		if !ok {
			cancel()
		}
	}()

	core, err := NewCore(bgctx, cfg, log, true)
	if err != nil {
		return nil, err
	}
	s.Core = core

	s.Events, err = events.New(cfg.Events, cfg.InstanceName(), log)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	s.Identity, err = identity.New(cfg.Identity, identity.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	hostStrs, err := cfg.HostMap()
	if err != nil {
		return nil, fmt.Errorf("hosts: %w", err)
	}
	hosts := make(map[string][]netip.Addr, len(hostStrs))
	for name, addrs := range hostStrs {
		for _, a := range addrs {
			// Validated with the config.
			hosts[name] = append(hosts[name], netip.MustParseAddr(a))
		}
	}
	protected := []string{cfg.Admin.Listen}
	if cfg.DNS.Enabled {
		protected = append(protected, cfg.DNS.Listen)
	}
	s.Proxy, err = proxy.New(cfg.Proxy, proxy.Options{
		Decider:        core.Decider,
		Emitter:        s.Events,
		Identity:       s.Identity,
		NewID:          events.NewID,
		Logger:         log.With("component", "proxy"),
		Instance:       cfg.InstanceName(),
		Hosts:          hosts,
		ProtectedAddrs: protected,
	})
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	if cfg.DNS.Enabled {
		s.DNS, err = dnsfilter.New(cfg.DNS.Config, dnsfilter.Options{
			Decider:    core.Decider,
			Identifier: s.Identity,
			Emitter:    s.Events,
			Hosts:      hosts,
			NewID:      events.NewID,
			Instance:   cfg.InstanceName(),
			Logger:     log,
		})
		if err != nil {
			return nil, fmt.Errorf("dns: %w", err)
		}
	}
	ok = true
	return s, nil
}

// Start opens the spool, starts the background loops (list refresh,
// policy and credential watchers, event delivery) and binds the listeners.
func (s *Server) Start(ctx context.Context) error {
	bgctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	prev := s.bgCancel
	s.bgCancel = func() { cancel(); prev() }

	if err := s.Events.Start(bgctx); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	if s.cfg.Policy.Watch {
		s.goBackground(func() {
			if err := s.Core.Engine.Watch(bgctx); err != nil {
				s.log.Error("policy watcher stopped", "error", err)
			}
		})
	}
	s.goBackground(func() {
		if err := s.Identity.Watch(bgctx); err != nil {
			s.log.Error("identity watcher stopped", "error", err)
		}
	})
	if err := s.Proxy.Start(ctx); err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	if s.DNS != nil {
		if err := s.DNS.Start(ctx); err != nil {
			return fmt.Errorf("dns: %w", err)
		}
	}
	if s.cfg.Admin.Listen != "" {
		if err := s.startAdmin(); err != nil {
			return err
		}
	}
	attrs := []any{"proxy", s.Proxy.Addr().String(), "policy", s.Core.Engine.Current().Revision(), "lists", s.Core.Lists.Current().Revision()}
	if s.DNS != nil {
		udp, _ := s.DNS.Addr()
		attrs = append(attrs, "dns", udp.String())
	}
	if s.adminLn != nil {
		attrs = append(attrs, "admin", s.adminLn.Addr().String())
	}
	s.log.Info("aupguard serving", attrs...)
	return nil
}

func (s *Server) goBackground(fn func()) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		fn()
	}()
}

func (s *Server) startAdmin() error {
	stats := map[string]func() any{
		"decider": func() any { return s.Core.Decider.Stats() },
		"proxy":   func() any { return s.Proxy.Stats() },
		"events":  func() any { return s.Events.Stats() },
	}
	if s.DNS != nil {
		stats["dns"] = func() any { return s.DNS.Stats() }
	}
	h, err := console.Handler(console.Deps{
		Policy:     s.Core.Engine,
		Lists:      s.Core.Lists,
		Stats:      stats,
		Metrics:    []string{"decider", "proxy", "dns"},
		Collectors: []prometheus.Collector{s.Events.Collector()},
		Ready:      s.ready,
		Started:    s.started,
	})
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	ln, err := net.Listen("tcp", s.cfg.Admin.Listen)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	s.adminLn = ln
	s.admin = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.goBackground(func() {
		if err := s.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin listener stopped", "error", err)
		}
	})
	return nil
}

func (s *Server) ready() error {
	if s.Core.Lists.Current() == nil {
		return errors.New("lists not loaded")
	}
	return nil
}

// AdminAddr is the console's bound address (nil when disabled).
func (s *Server) AdminAddr() net.Addr {
	if s.adminLn == nil {
		return nil
	}
	return s.adminLn.Addr()
}

// Reload re-reads what an operator may have changed: the policy, the
// lists and the credential files (SIGHUP). Each part keeps what it had if
// the new version fails.
func (s *Server) Reload(ctx context.Context) error {
	var errs []error
	if _, err := s.Core.Engine.Reload(ctx, "SIGHUP"); err != nil {
		errs = append(errs, err)
	}
	if err := s.Core.Lists.Reload(ctx); err != nil {
		errs = append(errs, fmt.Errorf("lists: %w", err))
	}
	if err := s.Identity.Reload(); err != nil {
		errs = append(errs, fmt.Errorf("identity: %w", err))
	}
	return errors.Join(errs...)
}

// Shutdown stops accepting, lets requests and tunnels in flight finish
// until ctx is done, then flushes the events to disk and stops delivery.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	if err := s.Proxy.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("proxy: %w", err))
	}
	if s.DNS != nil {
		if err := s.DNS.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("dns: %w", err))
		}
	}
	if s.admin != nil {
		if err := s.admin.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("admin: %w", err))
		}
	}
	// Events last: requests finishing above may still emit.
	if err := s.Events.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("events: %w", err))
	}
	s.bgCancel()
	s.bg.Wait()
	return errors.Join(errs...)
}
