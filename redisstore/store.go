package redisstore

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/aupguard/aupguard/verdict"
)

// ErrDisabled is returned by New when the configuration leaves Redis off.
var ErrDisabled = errors.New("redisstore: redis is not enabled")

// Options are the parts of a Store that do not come from the config file.
type Options struct {
	// Logger receives the store's logs; slog.Default() when nil.
	Logger *slog.Logger
	// Instance names this process in fan-out messages, alert
	// de-duplication records and Redis CLIENT LIST; the host name when
	// empty. Give every instance a different name.
	Instance string
}

// Store is one process's connection to the shared Redis and the features
// built on it. Each feature is reached through its accessor and is nil
// (or an error, for NewFanout) when turned off in the config.
type Store struct {
	cfg      Config
	log      *slog.Logger
	instance string
	// nonce tells this process's fan-out messages and de-duplication
	// records from those of an earlier run under the same instance name.
	nonce string

	// client serves everything except verdict-cache reads: it retries and
	// has the ordinary timeouts.
	client redis.UniversalClient
	// fast serves verdict-cache reads: no retries, no dial retries, and
	// timeouts of cache.timeout, so a decision never waits long on it.
	fast redis.UniversalClient

	// tlsCfg is the built TLS config (nil without TLS), for the
	// Sentinel connections recovery opens.
	tlsCfg *tls.Config

	cache  *verdictCache
	stream *StreamSink
	dedupe *Deduper

	fanout atomic.Pointer[Fanout] // the latest made, for metrics

	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup // the cache writer
	// runMu guards isClosed and runs, so no Fanout.Run can start after
	// Close has begun waiting for the running ones.
	runMu    sync.Mutex
	isClosed bool
	runs     sync.WaitGroup
}

// ErrClosed is returned by Fanout.Run after the Store was closed.
var ErrClosed = errors.New("redisstore: store closed")

// startRun registers a Fanout.Run or a recovery watch; false when the
// Store is closed.
func (s *Store) startRun() bool {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.isClosed {
		return false
	}
	s.runs.Add(1)
	return true
}

// New connects to Redis as cfg says and starts the verdict-cache writer.
// It does not wait for Redis: an instance must start and decide while
// Redis is down (use Ping for a health check). It fails only on a bad
// config or a password file it cannot read. Call Close when done.
func New(cfg Config, opts Options) (*Store, error) {
	if !cfg.Enabled {
		return nil, ErrDisabled
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("redis config: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "redis")
	instance := opts.Instance
	if instance == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("redisstore: no instance name and no host name: %w", err)
		}
		instance = h
	}
	pw, err := cfg.password()
	if err != nil {
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	tlsCfg, err := cfg.TLS.build()
	if err != nil {
		return nil, fmt.Errorf("redis config: %w", err)
	}
	if cfg.TLS.InsecureSkipVerify {
		log.Warn("redis TLS certificate verification is off (tls.insecure_skip_verify); use it only for tests")
	}
	var nb [8]byte
	_, _ = rand.Read(nb[:])

	base := redis.UniversalOptions{
		Addrs:            cfg.Addrs,
		MasterName:       cfg.MasterName,
		ClientName:       clientName(instance),
		Username:         cfg.Username,
		Password:         pw,
		SentinelUsername: cfg.SentinelUsername,
		SentinelPassword: string(cfg.SentinelPassword),
		DB:               cfg.DB,
		TLSConfig:        tlsCfg,
		DialTimeout:      cfg.DialTimeout,
		ReadTimeout:      cfg.ReadTimeout,
		WriteTimeout:     cfg.WriteTimeout,
		PoolSize:         cfg.PoolSize,
		// CLIENT SETINFO and the maintenance-notification handshake are
		// not in every Redis we support (7.0, Sentinel setups); skipping
		// them keeps the connection handshake to what we need.
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	s := &Store{
		cfg:      cfg,
		log:      log,
		instance: instance,
		nonce:    hex.EncodeToString(nb[:]),
		tlsCfg:   tlsCfg,
		closed:   make(chan struct{}),
	}
	mainOpts := base
	// Commands already retry (MaxRetries); retrying each dial on top
	// would multiply the wait when Redis is down.
	mainOpts.DialerRetries = 1
	s.client = newClient(&mainOpts)
	if cfg.Cache.Enabled {
		fast := base
		fast.MaxRetries = -1
		fast.DialerRetries = 1
		fast.ReadTimeout = cfg.Cache.Timeout
		fast.WriteTimeout = cfg.Cache.Timeout
		fast.PoolTimeout = cfg.Cache.Timeout
		fast.ContextTimeoutEnabled = true
		s.fast = newClient(&fast)
		s.cache = newVerdictCache(s, nil)
		// Connect now, so the first decision does not pay for the dial
		// and handshake within cache.timeout.
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), cfg.DialTimeout)
			defer cancel()
			_ = s.fast.Ping(ctx).Err()
		}()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.cache.writer(s.closed)
		}()
	}
	if cfg.Stream.Enabled {
		s.stream = newStreamSink(s)
	}
	if cfg.Dedupe.Enabled {
		s.dedupe = newDeduper(s)
	}
	log.Info("redis store configured", "mode", mode(&cfg), "addrs", strings.Join(cfg.Addrs, ","),
		"key_prefix", cfg.KeyPrefix, "cache", cfg.Cache.Enabled, "stream", cfg.Stream.Enabled,
		"dedupe", cfg.Dedupe.Enabled, "fanout", cfg.Fanout.Enabled, "tls", cfg.TLS.Enabled, "instance", instance)
	return s, nil
}

// clusterReload bounds how long a Cluster client keeps a slot map
// without being told it is wrong. go-redis reloads on MOVED and ASK, but a
// master that died answers nothing, so without this the slots it served
// would point at it for go-redis's default of 60s after its replica took
// over. A reload is one CLUSTER SLOTS, made only while commands flow.
const clusterReload = 5 * time.Second

// newClient is redis.NewUniversalClient with clusterReload for Cluster.
func newClient(o *redis.UniversalOptions) redis.UniversalClient {
	if o.MasterName == "" && len(o.Addrs) > 1 {
		co := o.Cluster()
		co.ClusterStateReloadInterval = clusterReload
		return redis.NewClusterClient(co)
	}
	return redis.NewUniversalClient(o)
}

// reloadTopology asks the Cluster clients to reload the slot map now
// (asynchronously, coalesced by go-redis): called when commands fail, so a
// replica promoted in a dead master's place is found at once. A no-op
// outside Cluster, where Sentinel or the single address already say where
// to go.
func (s *Store) reloadTopology(ctx context.Context) {
	for _, c := range []redis.UniversalClient{s.client, s.fast} {
		if cc, ok := c.(*redis.ClusterClient); ok {
			cc.ReloadState(ctx)
		}
	}
}

func mode(c *Config) string {
	switch {
	case c.MasterName != "":
		return "sentinel"
	case len(c.Addrs) > 1:
		return "cluster"
	default:
		return "single"
	}
}

// clientName makes the instance name acceptable to CLIENT SETNAME (no
// spaces or newlines).
func clientName(instance string) string {
	return "aupguard:" + strings.Map(func(r rune) rune {
		if r <= ' ' || r > '~' {
			return '_'
		}
		return r
	}, instance)
}

// VerdictCache returns the shared verdict cache for verdict.Options.Shared,
// or nil when cache.enabled is off.
func (s *Store) VerdictCache() verdict.SharedCache {
	if s.cache == nil {
		return nil
	}
	return s.cache
}

// CacheStats returns the verdict cache's counters (zero when it is off).
func (s *Store) CacheStats() CacheStats {
	if s.cache == nil {
		return CacheStats{}
	}
	return s.cache.Stats()
}

// Stats gathers every feature's counters (zero for features that are off).
type Stats struct {
	Cache  CacheStats  `json:"cache"`
	Stream StreamStats `json:"stream"`
	Dedupe DedupeStats `json:"dedupe"`
	Fanout FanoutStats `json:"fanout"`
}

// Stats returns every feature's counters.
func (s *Store) Stats() Stats {
	var st Stats
	st.Cache = s.CacheStats()
	if s.stream != nil {
		st.Stream = s.stream.Stats()
	}
	if s.dedupe != nil {
		st.Dedupe = s.dedupe.Stats()
	}
	if f := s.fanout.Load(); f != nil {
		st.Fanout = f.Stats()
	}
	return st
}

// StreamSink returns the events sink that adds misuse events to the Redis
// stream, or nil when stream.enabled is off.
func (s *Store) StreamSink() *StreamSink { return s.stream }

// Deduper returns the shared alert de-duplication, or nil when
// dedupe.enabled is off.
func (s *Store) Deduper() *Deduper { return s.dedupe }

// Instance returns the name this process uses in Redis.
func (s *Store) Instance() string { return s.instance }

// Ping checks that Redis answers, for health checks.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}

// Close stops the cache writer (sending what it holds, within
// write_timeout) and any running Fanout, then closes the connections. It
// is safe to call more than once.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.runMu.Lock()
		s.isClosed = true
		s.runMu.Unlock()
		close(s.closed)
		s.runs.Wait()
		s.wg.Wait()
		errs := []error{s.client.Close()}
		if s.fast != nil {
			errs = append(errs, s.fast.Close())
		}
		err = errors.Join(errs...)
	})
	return err
}

// key returns the full name of a key or channel.
func (s *Store) key(parts ...string) string {
	return s.cfg.KeyPrefix + strings.Join(parts, "")
}
