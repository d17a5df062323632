package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/aupguard/aupguard/app"
	"github.com/aupguard/aupguard/config"
	"github.com/aupguard/aupguard/namemodel"
	"github.com/aupguard/aupguard/pagescore"
	"github.com/aupguard/aupguard/proxy"
	"github.com/aupguard/aupguard/verdict"
)

// modelExplain is why the domain-name model scored a host as it did: the
// (banded) score the policy saw and the features that weighed most, for
// or against the category.
type modelExplain struct {
	Category string              `json:"category"`
	Score    float64             `json:"score"`
	Features []namemodel.Feature `json:"features"`
}

// pageExplain is what page scoring found in --page FILE: the scores the
// policy saw and every phrase matched, with its weight and count.
type pageExplain struct {
	File     string             `json:"file"`
	Scores   map[string]float64 `json:"scores"`
	Positive map[string]float64 `json:"positive"`
	Matches  []pagescore.Match  `json:"matches"`
	Bytes    int64              `json:"bytes"`
	Trunc    bool               `json:"truncated,omitempty"`
}

// explainFeatures is how many features check lists per category.
const explainFeatures = 8

// needsModel trains the name model when some input is a list miss (the
// model is asked about those only) and it has none of these lists yet.
func needsModel(ctx context.Context, core *app.Core, ins []*verdict.Input) error {
	if core.Model == nil {
		return nil
	}
	ix := core.Lists.Current()
	for _, in := range ins {
		host := in.Request.Host
		if host != "" && ix.Lookup(host).Empty() {
			if err := core.TrainModel(ctx); err != nil {
				return fmt.Errorf("name model: %w", err)
			}
			return nil
		}
	}
	return nil
}

// explainModel lists, for each category the model gave the policy, the
// features of the host that weighed most.
func explainModel(core *app.Core, in *verdict.Input) []modelExplain {
	if core.Model == nil || len(in.Model) == 0 {
		return nil
	}
	tr := core.Model.Current()
	if tr == nil {
		return nil
	}
	var out []modelExplain
	for _, s := range in.Model {
		c, ok := namemodel.ParseCategory(s.Category)
		if !ok {
			continue
		}
		out = append(out, modelExplain{Category: s.Category, Score: s.Score, Features: tr.Model.Explain(in.Request.Host, c, explainFeatures)})
	}
	return out
}

// scorePageFile scores --page FILE as the proxy would score that page and
// makes in a response-phase HTML input carrying the scores.
func scorePageFile(cfg *config.Config, path string, in *verdict.Input) (*pageExplain, error) {
	pc := cfg.PageScoring
	pc.Enabled = true
	ps, err := proxy.NewPageScorer(pc)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--page: %w", err)
	}
	defer f.Close()
	page, res, err := ps.Score(f)
	if err != nil {
		return nil, fmt.Errorf("--page %s: %w", path, err)
	}
	in.Phase = verdict.PhaseResponse
	if in.Request.Method == "" || strings.EqualFold(in.Request.Method, "CONNECT") {
		in.Request.Method = "GET"
	}
	if in.Response == nil {
		in.Response = &verdict.Response{Status: 200}
	}
	if in.Response.ContentType == "" {
		in.Response.ContentType = "text/html"
	}
	in.Page = page
	return &pageExplain{File: path, Scores: res.Scores, Positive: res.Positive, Matches: res.Matches, Bytes: res.Bytes, Trunc: res.Truncated}, nil
}
