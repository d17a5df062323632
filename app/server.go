package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aupguard/aupguard/admin"
	"github.com/aupguard/aupguard/categories"
	"github.com/aupguard/aupguard/config"
	"github.com/aupguard/aupguard/dnsfilter"
	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/identity"
	"github.com/aupguard/aupguard/proxy"
	"github.com/aupguard/aupguard/redisstore"
	"github.com/aupguard/aupguard/rego"
	"github.com/aupguard/aupguard/verdict"
)

// Server is a running aupguard: the decision core, the event pipeline, the
// proxy, the DNS filter and the admin listener.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	Core     *Core
	Events   *events.Pipeline
	Identity *identity.Identity
	Proxy    *proxy.Server
	DNS      *dnsfilter.Server
	// Redis is the shared store; nil when redis.enabled is off.
	Redis  *redisstore.Store
	fanout *redisstore.Fanout

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
	var err error
	defer func() {
		if !ok {
			cancel()
			if s.Redis != nil {
				s.Redis.Close()
			}
		}
	}()

	var shared verdict.SharedCache
	if cfg.Redis.Enabled {
		// Redis being down is not an error here: everything works in
		// process and catches up when it is back.
		s.Redis, err = redisstore.New(cfg.Redis, redisstore.Options{Logger: log, Instance: cfg.InstanceName()})
		if err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		if vc := s.Redis.VerdictCache(); vc != nil {
			shared = vc
		}
	}
	core, err := NewCore(bgctx, cfg, log, true, shared)
	if err != nil {
		return nil, err
	}
	s.Core = core

	s.Events, err = events.New(cfg.Events, cfg.InstanceName(), log)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	if err := s.wireRedis(); err != nil {
		return nil, err
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
	var protected []string
	if cfg.Admin.Listen != "" {
		protected = append(protected, cfg.Admin.Listen)
	}
	if cfg.DNS.Enabled {
		protected = append(protected, cfg.DNS.Listen)
	}
	leaves, refusals, err := interception(cfg, log)
	if err != nil {
		return nil, err
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
		SafeSearchHost: dnsfilter.SafeSearchHost,
		Leaves:         leaves,
		Refusals:       refusals,
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

// wireRedis attaches the shared store to the event pipeline (stream sink,
// shared alert de-duplication) and sets up the reload fan-out.
func (s *Server) wireRedis() error {
	if s.Redis == nil {
		return nil
	}
	if sink := s.Redis.StreamSink(); sink != nil {
		if err := s.Events.AddSink(sink); err != nil {
			return fmt.Errorf("redis stream: %w", err)
		}
	}
	if d := s.Redis.Deduper(); d != nil && s.cfg.Events.Alerts.Webhook.Enabled() {
		if err := s.Events.SetDeduper(d); err != nil {
			return fmt.Errorf("redis dedupe: %w", err)
		}
	}
	if !s.cfg.Redis.Fanout.Enabled {
		return nil
	}
	eng, lists := s.Core.Engine, s.Core.Lists
	fan, err := s.Redis.NewFanout(
		&redisstore.Target{
			Revision: func() string { return eng.Current().Revision() },
			Reload: func(ctx context.Context) error {
				_, err := eng.Reload(ctx, "fanout")
				return err
			},
		},
		&redisstore.Target{
			Revision: func() string { return lists.Current().Revision() },
			Reload:   lists.Reload,
		},
	)
	if err != nil {
		return fmt.Errorf("redis fanout: %w", err)
	}
	eng.OnActivate(func(p *rego.Policy) { fan.Announce(redisstore.KindPolicy, p.Revision()) })
	lists.OnChange(func(ix *categories.Index) { fan.Announce(redisstore.KindLists, ix.Revision()) })
	s.fanout = fan
	return nil
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
	if s.fanout != nil {
		s.goBackground(func() {
			if err := s.fanout.Run(bgctx); err != nil && bgctx.Err() == nil {
				s.log.Error("redis fan-out stopped", "error", err)
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
		if _, tcp := s.DNS.Addr(); tcp != nil {
			if err := s.protectBound(tcp); err != nil {
				return fmt.Errorf("dns: %w", err)
			}
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
	collectors := []prometheus.Collector{s.Core.Decider.Collector(), admin.ProxyCollector(s.Proxy.Stats), s.Events.Collector(), s.Core.Lists.Collector()}
	if s.DNS != nil {
		collectors = append(collectors, admin.DNSCollector(s.DNS.Stats))
	}
	if s.Redis != nil {
		stats["redis"] = func() any { return s.Redis.Stats() }
		collectors = append(collectors, s.Redis.Collector())
	}
	h, err := admin.Handler(admin.Deps{
		Policy:     s.Core.Engine,
		Lists:      s.Core.Lists,
		Stats:      stats,
		Collectors: collectors,
		Ready:      s.ready,
		Degraded:   s.degraded,
		Started:    s.started,
	})
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	ln, err := net.Listen("tcp", s.cfg.Admin.Listen)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	if err := s.protectBound(ln.Addr()); err != nil {
		_ = ln.Close()
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

// protectBound hands listeners' bound addresses to the proxy, which
// refuses to connect clients to them. The configured addresses were given
// at NewServer, but with port 0 or a host name those say nothing about
// where a listener is: every listener other than the proxy's (the admin listener,
// the DNS filter's TCP side, any added later) is passed here as soon as it
// is bound (the admin listener before it serves).
func (s *Server) protectBound(addrs ...net.Addr) error {
	strs := make([]string, len(addrs))
	for i, a := range addrs {
		strs[i] = a.String()
	}
	return s.Proxy.Protect(strs...)
}

func (s *Server) ready() error {
	if s.Core.Lists.Current() == nil {
		return errors.New("lists not loaded")
	}
	return nil
}

// degraded names what the instance runs without: list sources of which no
// copy could be had (they are retried in the background).
func (s *Server) degraded() string {
	if missing := s.Core.Lists.Missing(); len(missing) > 0 {
		return fmt.Sprintf("%d list source(s) unavailable: %s", len(missing), strings.Join(missing, ", "))
	}
	return ""
}

// AdminAddr is the admin listener's bound address (nil when disabled).
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
	if err := waitCtx(ctx, func() error { s.bg.Wait(); return nil }); err != nil {
		errs = append(errs, fmt.Errorf("background loops: %w", err))
	}
	if s.Redis != nil {
		if err := waitCtx(ctx, s.Redis.Close); err != nil {
			errs = append(errs, fmt.Errorf("redis: %w", err))
		}
	}
	return errors.Join(errs...)
}

// waitCtx runs fn, a wait that takes no context of its own, and gives up
// on it when ctx is done: a watcher or a Redis call that does not return
// must not hold a SIGTERM beyond the drain deadline. The process is
// exiting then; fn's goroutine goes with it.
func waitCtx(ctx context.Context, fn func() error) error {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("gave up waiting: %w", ctx.Err())
	}
}
