// Package app assembles aupguard's components from a configuration: the
// decision core (lists, policy engine, verdict cache) used by every
// command, and the enforcement points that `aupguard serve` runs.
package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aupguard/aupguard/categories"
	"github.com/aupguard/aupguard/categories/modeltrain"
	"github.com/aupguard/aupguard/config"
	"github.com/aupguard/aupguard/policies"
	"github.com/aupguard/aupguard/rego"
	"github.com/aupguard/aupguard/verdict"
)

// Core is the decision core: the category lists, the policy engine and
// the decider in front of them.
type Core struct {
	Lists   *categories.Manager
	Engine  *rego.Engine
	Decider *verdict.Decider
	// Model trains and serves the domain-name model; nil when off.
	Model *modeltrain.Trainer
}

// NewCore loads the lists and the policies named by cfg and builds the
// decider, with shared (may be nil) as its second-level cache. With live
// set (serve), the lists start from what is on this machine and are
// fetched and refreshed in the background until ctx is done; otherwise
// they are loaded once (fetching only the sources with no copy yet).
func NewCore(ctx context.Context, cfg *config.Config, log *slog.Logger, live bool, shared verdict.SharedCache) (*Core, error) {
	loc, err := cfg.Location()
	if err != nil {
		return nil, err
	}
	lists, err := categories.NewManager(listsConfig(cfg), log)
	if err != nil {
		return nil, fmt.Errorf("lists: %w", err)
	}
	model := nameModel(ctx, cfg, lists, log, live)
	if live {
		err = lists.Start(ctx)
	} else {
		err = lists.Load(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("lists: %w", err)
	}
	var builtin = policies.FS
	opts := rego.Options{Dir: cfg.Policy.Dir, Location: loc, Logger: log, Overlays: policyOverlays(cfg)}
	if cfg.Policy.Builtin {
		opts.Builtin = builtin
	}
	eng, err := rego.New(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	vopts := verdict.Options{
		DefaultGroups:  cfg.Policy.DefaultGroups,
		FailOpenGroups: cfg.Policy.FailOpenGroups,
		CacheSize:      cfg.Cache.Size,
		DefaultTTL:     cfg.Cache.DefaultTTL,
		MaxTTL:         cfg.Cache.MaxTTL,
		Location:       loc,
		Shared:         shared,
	}
	if model != nil {
		vopts.Model = model
	}
	dec := verdict.NewDecider(eng, lists, vopts)
	// Keys carry the revisions, so old verdicts can never answer; purging
	// just returns their memory promptly.
	eng.OnActivate(func(*rego.Policy) { dec.Purge() })
	return &Core{Lists: lists, Engine: eng, Decider: dec, Model: model}, nil
}
