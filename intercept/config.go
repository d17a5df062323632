package intercept

import (
	"errors"
	"time"

	"github.com/aupguard/aupguard/config/field"
)

// Config is the "intercept" section: where the interception CA lives and
// how leaves and refusals are kept. Interception happens only when the CA
// exists (`aupguard ca init`) and only where the policy answers
// "intercept" at the connect phase.
type Config struct {
	// CACert and CAKey are the CA's PEM files; empty means
	// data_dir/ca/ca.crt and data_dir/ca/ca.key.
	CACert string `yaml:"ca_cert"`
	CAKey  string `yaml:"ca_key"`
	// Organisation names the provider in the CA's subject (ca init).
	Organisation string `yaml:"organisation"`
	// LeafCacheSize bounds the cached leaf certificates (one per host).
	LeafCacheSize int `yaml:"leaf_cache_size"`
	// LeafValidity is a leaf certificate's lifetime.
	LeafValidity time.Duration `yaml:"leaf_validity"`
	// RefusalTTL is how long a client that refused our certificate for a
	// host is spliced instead of intercepted.
	RefusalTTL time.Duration `yaml:"refusal_ttl"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Organisation:  "aupguard",
		LeafCacheSize: DefaultCacheSize,
		LeafValidity:  DefaultValidity,
		RefusalTTL:    time.Hour,
	}
}

// Validate checks the section.
func (c *Config) Validate() error {
	var errs []error
	if c.LeafCacheSize <= 0 {
		errs = append(errs, field.Errorf("leaf_cache_size", "must be positive, got %d", c.LeafCacheSize))
	}
	if c.LeafValidity < time.Hour || c.LeafValidity > 397*24*time.Hour {
		errs = append(errs, field.Errorf("leaf_validity", "must be from 1h to 397 days (browsers refuse longer), got %s", c.LeafValidity))
	}
	if c.RefusalTTL < time.Minute {
		errs = append(errs, field.Errorf("refusal_ttl", "must be at least 1m, got %s", c.RefusalTTL))
	}
	if (c.CACert == "") != (c.CAKey == "") {
		errs = append(errs, field.Errorf("ca_cert", "set both ca_cert and ca_key, or neither"))
	}
	return errors.Join(errs...)
}
