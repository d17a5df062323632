package redisstore

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aupguard/aupguard/config/field"
	"github.com/aupguard/aupguard/events"
)

// Config is the `redis` section of the configuration.
type Config struct {
	// Enabled turns the shared store on; off, every instance works alone.
	Enabled bool `yaml:"enabled"`
	// Addrs are host:port addresses: one is a single node; several are
	// Cluster seed nodes, or Sentinels when MasterName is set.
	Addrs []string `yaml:"addrs"`
	// MasterName is the Sentinel master name; set, Addrs are Sentinels.
	MasterName string `yaml:"master_name"`
	// Username and Password authenticate with ACLs (Redis 6+); a password
	// alone uses the default user.
	Username string        `yaml:"username"`
	Password events.Secret `yaml:"password"`
	// PasswordFile holds the password (trailing newline ignored), to keep
	// it out of the config file. Not with Password.
	PasswordFile string `yaml:"password_file"`
	// SentinelUsername and SentinelPassword authenticate with the
	// Sentinels when they require it.
	SentinelUsername string        `yaml:"sentinel_username"`
	SentinelPassword events.Secret `yaml:"sentinel_password"`
	// DB selects the database; Cluster has only 0.
	DB int `yaml:"db"`
	// TLS encrypts the connections.
	TLS TLSConfig `yaml:"tls"`
	// KeyPrefix starts every key and channel, so one Redis can serve
	// several deployments.
	KeyPrefix string `yaml:"key_prefix"`
	// DialTimeout, ReadTimeout and WriteTimeout bound the connection and
	// each command for everything except verdict-cache reads, which use
	// Cache.Timeout.
	DialTimeout  time.Duration `yaml:"dial_timeout"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// PoolSize bounds connections per node and client; 0 is go-redis's
	// default (10 per CPU).
	PoolSize int `yaml:"pool_size"`

	// Cache is the shared verdict cache.
	Cache CacheConfig `yaml:"cache"`
	// Stream is the misuse-event stream.
	Stream StreamConfig `yaml:"stream"`
	// Dedupe is shared alert de-duplication.
	Dedupe DedupeConfig `yaml:"dedupe"`
	// Fanout is reload fan-out.
	Fanout FanoutConfig `yaml:"fanout"`
}

// TLSConfig configures TLS to Redis.
type TLSConfig struct {
	// Enabled connects with TLS (Redis's tls-port).
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of the CAs that sign the server certificate;
	// empty uses the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate, for servers that
	// require one (tls-auth-clients yes).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the server certificate.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify turns certificate checks off; for tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// CacheConfig configures the shared (second-level) verdict cache.
type CacheConfig struct {
	// Enabled shares verdicts between instances as a second-level cache.
	Enabled bool `yaml:"enabled"`
	// Timeout bounds one read; a read that takes longer is a miss.
	Timeout time.Duration `yaml:"timeout"`
	// WriteBuffer bounds the writes waiting for the writer goroutine; a
	// write that finds it full is dropped and counted.
	WriteBuffer int `yaml:"write_buffer"`
	// WriteBatch is the most writes sent in one pipeline.
	WriteBatch int `yaml:"write_batch"`
	// Breaker stops reads and writes while Redis is failing.
	Breaker BreakerConfig `yaml:"breaker"`
}

// BreakerConfig configures the verdict cache's circuit breaker.
type BreakerConfig struct {
	// Failures is how many reads in a row may fail before it opens.
	Failures int `yaml:"failures"`
	// OpenFor is how long it stays open; then one read probes Redis.
	OpenFor time.Duration `yaml:"open_for"`
}

// StreamConfig configures the misuse-event stream sink.
type StreamConfig struct {
	// Enabled adds every misuse event to a Redis stream (an events sink).
	Enabled bool `yaml:"enabled"`
	// Key names the stream, after KeyPrefix.
	Key string `yaml:"key"`
	// MaxLen trims the stream to about this many entries (XADD MAXLEN ~);
	// 0 keeps everything.
	MaxLen int64 `yaml:"maxlen"`
	// DedupeTTL is how long an event ID is remembered so a redelivered
	// event is not added twice. A redelivery comes after a lost reply or a
	// crash before the cursor was saved, so it must outlast a Redis outage
	// (with persistence) plus a restart; each ID costs about 170 bytes.
	DedupeTTL time.Duration `yaml:"dedupe_ttl"`
	// BatchSize is the most events added in one round trip.
	BatchSize int `yaml:"batch_size"`
	// BackoffMin and BackoffMax bound the delay between delivery retries.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
	// Replicas is how many replicas must hold a batch before it counts as
	// delivered (WAIT after the add, on the same connection), or every
	// replica the master has when it has fewer (a master just promoted
	// has none). 0 does not wait: replication is asynchronous, so a master
	// that dies just after acknowledging a batch, before a replica copied
	// it, takes those events out of the stream for good (the spool has
	// moved past them). Set 1 with Sentinel or Cluster replicas.
	Replicas int `yaml:"replicas"`
	// ReplicaTimeout bounds that wait (less than read_timeout); a batch
	// fewer replicas acknowledged in time is retried (the retry adds
	// nothing twice).
	ReplicaTimeout time.Duration `yaml:"replica_timeout"`
}

// DedupeConfig configures shared alert de-duplication.
type DedupeConfig struct {
	// Enabled de-duplicates safeguarding alerts across instances.
	Enabled bool `yaml:"enabled"`
}

// FanoutConfig configures reload fan-out.
type FanoutConfig struct {
	// Enabled reloads the other instances when one activates a new policy
	// or lists revision.
	Enabled bool `yaml:"enabled"`
	// Channel is the Pub/Sub channel, after KeyPrefix.
	Channel string `yaml:"channel"`
}

// DefaultConfig returns every default. Redis is off; once it is enabled
// every feature is on unless turned off.
func DefaultConfig() Config {
	return Config{
		KeyPrefix:    "aupguard:",
		DialTimeout:  2 * time.Second,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
		Cache: CacheConfig{
			Enabled:     true,
			Timeout:     20 * time.Millisecond,
			WriteBuffer: 10000,
			WriteBatch:  256,
			Breaker:     BreakerConfig{Failures: 3, OpenFor: 5 * time.Second},
		},
		Stream: StreamConfig{
			Enabled:    true,
			Key:        "events",
			MaxLen:     1000000,
			DedupeTTL:  24 * time.Hour,
			BatchSize:  100,
			BackoffMin: 500 * time.Millisecond,
			BackoffMax: 30 * time.Second,

			ReplicaTimeout: 500 * time.Millisecond,
		},
		Dedupe: DedupeConfig{Enabled: true},
		Fanout: FanoutConfig{Enabled: true, Channel: "reload"},
	}
}

// Validate checks the section; error paths are relative to it. When
// Redis is off only the shape of the values is checked, not the files.
func (c *Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, field.Errorf(path, format, args...)) }

	if c.Enabled && len(c.Addrs) == 0 {
		add("addrs", "must list at least one host:port when redis is enabled")
	}
	for i, a := range c.Addrs {
		if err := checkAddr(a); err != nil {
			add(fmt.Sprintf("addrs[%d]", i), "%v", err)
		}
	}
	cluster := len(c.Addrs) > 1 && c.MasterName == ""
	if c.DB < 0 {
		add("db", "must be 0 or more, got %d", c.DB)
	} else if c.DB != 0 && cluster {
		add("db", "Redis Cluster has only database 0, got %d (several addrs without master_name mean Cluster)", c.DB)
	}
	switch {
	case c.Password != "" && c.PasswordFile != "":
		add("password_file", "set either password or password_file, not both")
	case c.PasswordFile != "" && c.Enabled:
		if _, err := readSecretFile(c.PasswordFile); err != nil {
			add("password_file", "%v", err)
		}
	}
	if c.Username != "" && c.Password == "" && c.PasswordFile == "" {
		add("password", "must be set (or password_file) when username is set")
	}
	if (c.SentinelUsername != "" || c.SentinelPassword != "") && c.MasterName == "" {
		add("master_name", "must be set when sentinel credentials are: they are only used with Sentinel")
	}
	if c.Enabled {
		if _, err := c.TLS.build(); err != nil {
			errs = append(errs, err)
		}
	} else if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		add("tls.key_file", "cert_file and key_file go together")
	}
	if strings.ContainsAny(c.KeyPrefix, "{} \t\r\n") {
		add("key_prefix", "must not contain braces or white space (braces are Cluster hash tags, which the key layout sets itself), got %q", c.KeyPrefix)
	}
	positive := func(path string, d time.Duration) {
		if d <= 0 {
			add(path, "must be positive, got %s", d)
		}
	}
	positive("dial_timeout", c.DialTimeout)
	positive("read_timeout", c.ReadTimeout)
	positive("write_timeout", c.WriteTimeout)
	if c.PoolSize < 0 {
		add("pool_size", "must be 0 (default) or more, got %d", c.PoolSize)
	}

	if c.Cache.Enabled {
		if c.Cache.Timeout <= 0 || c.Cache.Timeout > time.Second {
			add("cache.timeout", "must be positive and at most 1s (every in-process cache miss may wait this long), got %s", c.Cache.Timeout)
		}
		if c.Cache.WriteBuffer < 1 || c.Cache.WriteBuffer > 10000000 {
			add("cache.write_buffer", "must be between 1 and 10000000, got %d", c.Cache.WriteBuffer)
		}
		if c.Cache.WriteBatch < 1 || c.Cache.WriteBatch > 10000 {
			add("cache.write_batch", "must be between 1 and 10000, got %d", c.Cache.WriteBatch)
		}
		if c.Cache.Breaker.Failures < 1 {
			add("cache.breaker.failures", "must be at least 1, got %d", c.Cache.Breaker.Failures)
		}
		positive("cache.breaker.open_for", c.Cache.Breaker.OpenFor)
	}
	if c.Stream.Enabled {
		checkName(add, "stream.key", c.Stream.Key)
		if c.Stream.MaxLen < 0 {
			add("stream.maxlen", "must be 0 (no trimming) or more, got %d", c.Stream.MaxLen)
		}
		if c.Stream.DedupeTTL < time.Minute {
			add("stream.dedupe_ttl", "must be at least 1m (it must outlast a Redis outage), got %s", c.Stream.DedupeTTL)
		}
		if c.Stream.BatchSize < 1 || c.Stream.BatchSize > 10000 {
			add("stream.batch_size", "must be between 1 and 10000, got %d", c.Stream.BatchSize)
		}
		positive("stream.backoff_min", c.Stream.BackoffMin)
		if c.Stream.Replicas < 0 || c.Stream.Replicas > 16 {
			add("stream.replicas", "must be between 0 and 16, got %d", c.Stream.Replicas)
		}
		if c.Stream.Replicas > 0 {
			positive("stream.replica_timeout", c.Stream.ReplicaTimeout)
			if c.Stream.ReplicaTimeout >= c.ReadTimeout {
				add("stream.replica_timeout", "must be less than read_timeout (%s), which bounds the wait's reply, got %s", c.ReadTimeout, c.Stream.ReplicaTimeout)
			}
		}
		if c.Stream.BackoffMax < c.Stream.BackoffMin {
			add("stream.backoff_max", "must be at least backoff_min (%s), got %s", c.Stream.BackoffMin, c.Stream.BackoffMax)
		}
	}
	if c.Fanout.Enabled {
		checkName(add, "fanout.channel", c.Fanout.Channel)
	}
	return errors.Join(errs...)
}

func checkName(add func(string, string, ...any), path, v string) {
	switch {
	case v == "":
		add(path, "must be set")
	case strings.ContainsAny(v, "{} \t\r\n"):
		add(path, "must not contain braces or white space, got %q", v)
	}
}

func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %v", a, err)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", a)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port must be a number from 1 to 65535", a)
	}
	return nil
}

// build returns the tls.Config, or nil when TLS is off. Errors carry
// paths relative to the redis section.
func (t *TLSConfig) build() (*tls.Config, error) {
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, field.Errorf("tls.key_file", "cert_file and key_file go together")
	}
	if !t.Enabled {
		if t.CAFile != "" || t.CertFile != "" || t.ServerName != "" || t.InsecureSkipVerify {
			return nil, field.Errorf("tls.enabled", "must be true when other tls keys are set")
		}
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: t.ServerName,
		// Opt-in, logged as a warning, documented as for tests only.
		InsecureSkipVerify: t.InsecureSkipVerify,
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, field.Errorf("tls.ca_file", "%v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, field.Errorf("tls.ca_file", "%s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, field.Errorf("tls.cert_file", "%v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading password: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("password file %s is empty", path)
	}
	return s, nil
}

// password returns the password from Password or PasswordFile.
func (c *Config) password() (string, error) {
	if c.PasswordFile != "" {
		return readSecretFile(c.PasswordFile)
	}
	return string(c.Password), nil
}
