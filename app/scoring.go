package app

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aupguard/aupguard/categories"
	"github.com/aupguard/aupguard/categories/modeltrain"
	"github.com/aupguard/aupguard/config"
	"github.com/aupguard/aupguard/proxy"
)

// nameModel sets up the domain-name model for a lists manager not yet
// started: the lists keep a sample of their names, and every index swap
// (the first one included) asks the trainer for a new model. With live
// set it trains in the background until ctx ends; otherwise (check) it
// trains only when asked (Core.TrainModel). nil when name_model is off.
func nameModel(ctx context.Context, cfg *config.Config, lists *categories.Manager, log *slog.Logger, live bool) *modeltrain.Trainer {
	if !cfg.NameModel.Enabled {
		return nil
	}
	tr := modeltrain.New(cfg.NameModel.Options(log.With("component", "namemodel")))
	lists.OnChange(tr.OnIndex)
	if live {
		go func() { _ = tr.Run(ctx) }() // stops with ctx
	}
	return tr
}

// listsConfig is cfg's lists section, keeping name samples when the
// model is on.
func listsConfig(cfg *config.Config) categories.Config {
	lc := cfg.Lists
	if cfg.NameModel.Enabled {
		lc.SampleNames = modeltrain.DefaultSampleNames
	}
	return lc
}

// TrainModel trains the name model from the lists in force now, when it
// is on and has no model of them yet (for `aupguard check`, which does
// not run the background trainer). It takes seconds.
func (c *Core) TrainModel(ctx context.Context) error {
	if c.Model == nil {
		return nil
	}
	ix := c.Lists.Current()
	if cur := c.Model.Current(); cur != nil && cur.ListsRevision == ix.Revision() {
		return nil
	}
	_, err := c.Model.Train(ctx, ix)
	return err
}

// pageScorer builds the proxy's page scorer (nil when page_scoring is off).
func pageScorer(cfg *config.Config) (*proxy.PageScorer, error) {
	return proxy.NewPageScorer(cfg.PageScoring)
}

// scoringCollectors are the metrics of the name model and page scoring.
func (s *Server) scoringCollectors() []prometheus.Collector {
	var out []prometheus.Collector
	if s.Core.Model != nil {
		out = append(out, s.Core.Model.Collector())
	}
	if s.pages != nil {
		out = append(out, s.pages.Collector())
	}
	return out
}
