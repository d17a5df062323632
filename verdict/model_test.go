package verdict_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aupguard/aupguard/categories/modeltrain"
	"github.com/aupguard/aupguard/internal/testcore"
	"github.com/aupguard/aupguard/verdict"
)

// The domain-name model through the real decider, policies and lists: a
// spam casino no list names is blocked for a learner by the model, shown
// as model:<score> in its categories; a listed name is decided by its
// list; a name a benign list (the admin's allowlist) names is never
// scored; staff are alerted, not blocked.
func TestModelThroughDecider(t *testing.T) {
	core := testcore.NewWithModel(t, map[string][]string{"benign": {"casinoroyale-film.example"}})
	ctx := context.Background()
	learner := verdict.Client{IP: "10.1.2.3", Groups: []string{"learners"}}
	staff := verdict.Client{IP: "10.9.0.5", Groups: []string{"staff"}}
	decide := func(c verdict.Client, host string) (verdict.Decision, *verdict.Input) {
		in := &verdict.Input{Source: verdict.SourceDNS, Phase: verdict.PhaseQuery, Client: c,
			Request: verdict.Request{Host: host}, DNS: &verdict.DNSQuestion{QName: host, QType: "A"}}
		return core.Decide(ctx, in), in
	}
	for _, host := range []string{"bengalwincasino.com", "22betapp.com", "pin-up-casino-5ion4.cfd"} {
		if set := core.Lists.Lookup(host); !set.Empty() {
			t.Fatalf("%s is listed (%v): not a list miss", host, set)
		}
		d, in := decide(learner, host)
		if d.Action != verdict.ActionBlock || d.Rule != "gambling_name_model" || !d.Alert {
			t.Errorf("learner, %s: %s %s alert=%v (model %v)", host, d.Action, d.Rule, d.Alert, in.Model)
		}
		if src := in.Categories["gambling"]; len(src) != 1 || !strings.HasPrefix(src[0], "model:0.99") && src[0] != "model:1.00" {
			t.Errorf("%s: categories %v", host, in.Categories)
		}
		if len(in.Model) == 0 || in.Model[0].Category != "gambling" {
			t.Errorf("%s: model %v", host, in.Model)
		}
		d, _ = decide(staff, host)
		if d.Action != verdict.ActionAllow || d.Rule != "gambling_name_model_alert" || !d.Alert {
			t.Errorf("staff, %s: %s %s alert=%v", host, d.Action, d.Rule, d.Alert)
		}
	}
	// A listed name: its list decides, the model is not asked.
	d, in := decide(learner, "www.bet365.com")
	if !d.Blocked() || strings.Contains(d.Rule, "model") || len(in.Model) != 0 || in.Categories["gambling"][0] == "model" {
		t.Errorf("bet365: rule %s, model %v, categories %v", d.Rule, in.Model, in.Categories)
	}
	// The admin's allowlist (a benign list): never scored, never blocked,
	// although the name scores high.
	if s := core.Model.ScoreName(nil, "casinoroyale-film.example"); len(s) == 0 || s[0].Score < 0.9 {
		t.Fatalf("casinoroyale-film.example scores %v: pick a name the model scores high", s)
	}
	d, in = decide(learner, "casinoroyale-film.example")
	if d.Action != verdict.ActionAllow || d.Alert || len(in.Model) != 0 {
		t.Errorf("allowlisted name: %s %s alert=%v model %v", d.Action, d.Rule, d.Alert, in.Model)
	}
	// A popular benign site is on the benign list: no model input.
	_, in = decide(learner, "www.bbc.co.uk")
	if len(in.Model) != 0 || in.Categories["benign"] == nil {
		t.Errorf("bbc.co.uk: model %v, categories %v", in.Model, in.Categories)
	}
}

// Before the first model is trained the decider gives no model input,
// and once it is, cached verdicts of the model-less time do not answer
// (the key holds the model's bands).
func TestModelBeforeTraining(t *testing.T) {
	trained := testcore.SharedModel(t)
	core := testcore.New(t, nil)
	// The trainer as serve has it before its first run: no model.
	sw := &swapModel{}
	sw.cur.Store(modeltrain.New(modeltrain.Options{}))
	dec := verdict.NewDecider(core.Engine, core, verdict.Options{CacheSize: 100, Model: sw})
	in := func() *verdict.Input {
		return &verdict.Input{Source: verdict.SourceProxy, Phase: verdict.PhaseConnect,
			Client: verdict.Client{Groups: []string{"learners"}}, Request: verdict.Request{Host: "bengalwincasino.com", Port: 443}}
	}
	first := in()
	if d := dec.Decide(context.Background(), first); d.Action != verdict.ActionAllow || len(first.Model) != 0 {
		t.Fatalf("no model yet: %s %s, model %v", d.Action, d.Rule, first.Model)
	}
	sw.cur.Store(trained) // the first training run ends
	second := in()
	if d := dec.Decide(context.Background(), second); d.Action != verdict.ActionBlock || d.Cached != "" {
		t.Errorf("with a model: %s %s cached=%q, model %v", d.Action, d.Rule, d.Cached, second.Model)
	}
}

// swapModel hands the decider the real trainer in force, as serve's
// Trainer does when a training run ends.
type swapModel struct {
	cur atomic.Pointer[modeltrain.Trainer]
}

func (s *swapModel) ScoreName(dst []verdict.ModelScore, host string) []verdict.ModelScore {
	return s.cur.Load().ScoreName(dst, host)
}

// Two names in different score bands never share a cached verdict, even
// under a policy that reads nothing but input.categories (so the host is
// not in the key): the categories' key holds the model's bands.
func TestModelBandsInKey(t *testing.T) {
	trained := testcore.SharedModel(t)
	e, _ := dirEngine(t, map[string]string{"main.rego": echoPolicy("input.categories")})
	dec := verdict.NewDecider(e, buildLists(t, testLists), verdict.Options{CacheSize: 100, Model: trained})
	ctx := context.Background()
	ask := func(host string) (verdict.Decision, *verdict.Input) {
		in := &verdict.Input{Source: verdict.SourceDNS, Phase: verdict.PhaseQuery, Client: verdict.Client{Groups: []string{"learners"}},
			Request: verdict.Request{Host: host}, DNS: &verdict.DNSQuestion{QName: host, QType: "A"}}
		return dec.Decide(ctx, in), in
	}
	d1, in1 := ask("bengalwincasino.com")
	d2, in2 := ask("quiet-garden-tools.example")
	if len(in1.Model) == 0 || len(in2.Model) != 0 {
		t.Fatalf("models %v and %v: want a score for the casino only", in1.Model, in2.Model)
	}
	if d2.Cached != "" || d1.Rule == d2.Rule {
		t.Errorf("%v and %v shared a verdict: %q (cached %q)", in1.Model, in2.Model, d2.Rule, d2.Cached)
	}
	_, in3 := ask("bengalwincasino.com")
	if d3, _ := ask("bengalwincasino.com"); d3.Cached == "" {
		t.Errorf("the same name in the same band was not answered from the cache (model %v)", in3.Model)
	}
}
