package verdict

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/aupguard/aupguard/categories"
)

// ListSource returns the category index in force; it changes on refresh.
type ListSource interface {
	Current() *categories.Index
}

// Options configure a Decider.
type Options struct {
	// DefaultGroups are given to a client with no identity; the design's
	// default is the most protected group, learners.
	DefaultGroups []string
	// FailOpenGroups are the groups allowed through when the policy cannot
	// be evaluated; everyone else is blocked (fail closed).
	FailOpenGroups []string
	// CacheSize bounds the in-process cache (entries); 0 disables it.
	CacheSize int
	// DefaultTTL applies when the policy gives no cache_ttl_s.
	DefaultTTL time.Duration
	// MaxTTL caps any policy-given TTL.
	MaxTTL time.Duration
	// Location is the time zone of input.time (the policy engine's).
	Location *time.Location
	// Shared is the optional second-level cache.
	Shared SharedCache
	// Model, when set, scores the hosts no list names (the domain-name
	// model); nil, or a model not trained yet, adds nothing.
	Model NameModel
}

// NameModel scores a host name for the categories a name can give away
// (gambling, adult, piracy). It is asked only on a list miss.
type NameModel interface {
	// ScoreName appends to dst, in a fixed category order, the categories
	// whose score for host (normalized: lower case, no trailing dot) is at
	// or above the model's floor, and returns dst. It must be cheap and
	// must not allocate beyond growing dst: it runs on every list miss.
	ScoreName(dst []ModelScore, host string) []ModelScore
}

// modelLabels are the sources a model score shows in input.categories,
// "model:0.00" to "model:1.00", made once.
var modelLabels = func() (out [101]string) {
	for i := range out {
		out[i] = fmt.Sprintf("model:%d.%02d", i/100, i%100)
	}
	return out
}()

// band rounds a score down to ModelStep and returns it with its label.
func band(score float64) (float64, string) {
	k := int(score*100 + 1e-9)
	k = max(0, min(100, k))
	return float64(k) / 100, modelLabels[k]
}

// Stats are the decider's counters.
type Stats struct {
	Decisions   uint64 `json:"decisions"`
	L1Hits      uint64 `json:"l1_hits"`
	L2Hits      uint64 `json:"l2_hits"`
	Evaluations uint64 `json:"evaluations"`
	Collapsed   uint64 `json:"collapsed"`
	Errors      uint64 `json:"errors"`
	CacheLen    int    `json:"cache_entries"`
}

// Decider answers policy questions: it fills in the client's default
// groups and the categories from the lists, then answers from the cache or
// evaluates the policy, collapsing concurrent identical misses into one
// evaluation. It never fails: when the policy cannot be evaluated the
// answer is the fail-closed block, with the error recorded.
type Decider struct {
	policies PolicySource
	lists    ListSource
	opts     Options
	cache    *memCache
	group    singleflight.Group
	plan     atomic.Pointer[planned]
	bufs     sync.Pool
	latency  *latency

	decisions, l1, l2, evals, collapsed, errs atomic.Uint64
}

type planned struct {
	policy Policy
	plan   *keyPlan
}

// NewDecider builds a Decider over a policy source and a list source.
func NewDecider(p PolicySource, l ListSource, opts Options) *Decider {
	if len(opts.DefaultGroups) == 0 {
		opts.DefaultGroups = []string{"learners"}
	}
	if opts.DefaultTTL <= 0 {
		opts.DefaultTTL = 5 * time.Minute
	}
	if opts.MaxTTL <= 0 {
		opts.MaxTTL = time.Hour
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	d := &Decider{policies: p, lists: l, opts: opts, latency: newLatency()}
	if opts.CacheSize > 0 {
		d.cache = newMemCache(opts.CacheSize)
	}
	d.bufs.New = func() any { b := make([]byte, 0, 256); return &b }
	return d
}

// Decide answers in. It completes in (default groups, time, categories),
// so the caller can log or report exactly what was decided on. Its time
// is observed in aupguard_decision_duration_seconds under in.Source.
func (d *Decider) Decide(ctx context.Context, in *Input) Decision {
	// The clock is read at the start and the end only (it is not free on
	// every VM): the start is also the decision's time unless the caller
	// gave one, and the instant cache entries are checked against.
	began := time.Now()
	if in.Time.IsZero() {
		in.Time = began
	}
	dec := d.decide(ctx, in, began)
	d.latency.observe(in.Source, began)
	return dec
}

func (d *Decider) decide(ctx context.Context, in *Input, now time.Time) Decision {
	d.decisions.Add(1)
	idx, set, pol, pl := d.prepare(in)
	if d.cache == nil || in.Page != nil {
		// A page verdict is about one body, not about the URL: the same
		// URL can serve other content next time, so it is never cached.
		in.Categories = categoriesOf(set, in)
		return d.evaluate(ctx, pol, idx, in, "")
	}

	bp := d.bufs.Get().(*[]byte)
	*bp = d.appendKey((*bp)[:0], idx, set, pol, pl, in)
	if dec, ok := d.cache.get(*bp, now); ok {
		d.bufs.Put(bp)
		d.l1.Add(1)
		dec.Cached = "l1"
		return dec
	}
	key := string(*bp)
	d.bufs.Put(bp)
	if d.opts.Shared != nil {
		if dec, ok := d.opts.Shared.Get(ctx, key); ok {
			d.l2.Add(1)
			d.cache.add(key, dec, now.Add(d.ttl(dec)))
			dec.Cached = "l2"
			return dec
		}
	}
	in.Categories = categoriesOf(set, in)
	v, _, shared := d.group.Do(key, func() (any, error) {
		// The evaluation is shared by every caller waiting on this key, so
		// one caller's cancellation must not fail the others.
		dec := d.evaluate(context.WithoutCancel(ctx), pol, idx, in, key)
		return dec, nil
	})
	if shared {
		d.collapsed.Add(1)
	}
	return v.(Decision)
}

// DecideCached answers in only from the in-process cache: it never
// evaluates, never waits on the shared cache and never blocks, so a
// caller on a packet-reading loop (the DNS filter's fast path) can ask it
// inline and hand a miss to a goroutine that calls Decide. A hit counts as
// a decision, like Decide's; a miss counts nothing, since the caller's
// Decide will. When in.Time is set it is also the instant the entry's
// expiry is checked against, so a caller answering a batch of requests
// reads the clock once per batch.
func (d *Decider) DecideCached(in *Input) (Decision, bool) {
	if d.cache == nil {
		return Decision{}, false
	}
	idx, set, pol, pl := d.prepare(in)
	bp := d.bufs.Get().(*[]byte)
	*bp = d.appendKey((*bp)[:0], idx, set, pol, pl, in)
	dec, ok := d.cache.get(*bp, in.Time)
	d.bufs.Put(bp)
	if !ok {
		return Decision{}, false
	}
	d.decisions.Add(1)
	d.l1.Add(1)
	dec.Cached = "l1"
	return dec, true
}

// prepare completes in (default groups, time) and gathers what a decision
// on it depends on: the lists and policy in force and the categories.
func (d *Decider) prepare(in *Input) (*categories.Index, categories.Set, Policy, *keyPlan) {
	if len(in.Client.Groups) == 0 {
		in.Client.Groups = d.opts.DefaultGroups
	}
	if in.Time.IsZero() {
		in.Time = time.Now()
	}
	idx := d.lists.Current()
	pol := d.policies.Active()
	set := classify(idx, in)
	d.scoreName(set, in)
	return idx, set, pol, d.planFor(pol)
}

// scoreName sets in.Model: the model's banded scores when no list names
// the host (a name any list names, a benign one included, is never
// scored), nothing otherwise.
func (d *Decider) scoreName(set categories.Set, in *Input) {
	in.Model = in.Model[:0]
	if d.opts.Model == nil || !set.Empty() {
		return
	}
	host := in.Request.Host
	if host == "" && in.DNS != nil {
		host = in.DNS.QName
	}
	host = strings.TrimSuffix(host, ".")
	if host == "" {
		return
	}
	in.Model = d.opts.Model.ScoreName(in.Model, host)
	for i := range in.Model {
		in.Model[i].Score, _ = band(in.Model[i].Score)
	}
}

// categoriesOf is input.categories: the lists' answer, plus
// "model:<score>" for each category the model scored on a list miss.
func categoriesOf(set categories.Set, in *Input) map[string][]string {
	cats := set.ByCategory()
	if len(in.Model) == 0 {
		return cats
	}
	if cats == nil {
		cats = make(map[string][]string, len(in.Model))
	}
	for _, m := range in.Model {
		_, label := band(m.Score)
		cats[m.Category] = []string{label}
	}
	return cats
}

// appendKey appends the cache key of in: the revisions and exactly the
// input fields the policy reads.
func (d *Decider) appendKey(b []byte, idx *categories.Index, set categories.Set, pol Policy, pl *keyPlan, in *Input) []byte {
	kc := keyCtx{cats: set.Key()}
	if pl.needTime {
		kc.t = in.Time.In(d.opts.Location)
	}
	return pl.append(b, pol.Revision(), idx.Revision(), in, kc)
}

// Explain evaluates in without any cache, for `aupguard check`.
func (d *Decider) Explain(ctx context.Context, in *Input) Decision {
	if len(in.Client.Groups) == 0 {
		in.Client.Groups = d.opts.DefaultGroups
	}
	if in.Time.IsZero() {
		in.Time = time.Now()
	}
	idx := d.lists.Current()
	set := classify(idx, in)
	d.scoreName(set, in)
	in.Categories = categoriesOf(set, in)
	dec := d.evaluate(ctx, d.policies.Active(), idx, in, "")
	dec.Categories = in.Categories
	return dec
}

func (d *Decider) evaluate(ctx context.Context, pol Policy, idx *categories.Index, in *Input, key string) Decision {
	d.evals.Add(1)
	dec, err := pol.Evaluate(ctx, in)
	dec.ListsRevision = idx.Revision()
	if err != nil {
		d.errs.Add(1)
		return d.failDecision(pol, idx, in, err)
	}
	if key != "" {
		if ttl := d.ttl(dec); ttl > 0 {
			d.cache.add(key, dec, time.Now().Add(ttl))
			if d.opts.Shared != nil {
				d.opts.Shared.Set(ctx, key, dec, ttl)
			}
		}
	}
	return dec
}

// ttl is the policy's cache_ttl_s capped by MaxTTL, or DefaultTTL when the
// policy gave none. A policy may say 0 to forbid caching.
func (d *Decider) ttl(dec Decision) time.Duration {
	if dec.CacheTTL < 0 {
		return d.opts.DefaultTTL
	}
	return min(dec.CacheTTL, d.opts.MaxTTL)
}

// failDecision is the answer when the policy cannot be evaluated: block,
// unless every one of the client's groups is configured to fail open.
func (d *Decider) failDecision(pol Policy, idx *categories.Index, in *Input, err error) Decision {
	dec := Decision{
		Action:         ActionBlock,
		Category:       "policy_error",
		Rule:           "fail_closed",
		Reason:         "The filtering policy could not be checked, so this request was blocked to keep you safe. Please tell the IT team.",
		Severity:       SeverityMedium,
		PolicyRevision: pol.Revision(),
		ListsRevision:  idx.Revision(),
		Error:          err.Error(),
	}
	if len(d.opts.FailOpenGroups) > 0 && len(in.Client.Groups) > 0 {
		open := true
		for _, g := range in.Client.Groups {
			if !slices.Contains(d.opts.FailOpenGroups, g) {
				open = false
				break
			}
		}
		if open {
			dec.Action = ActionAllow
			dec.Rule = "fail_open"
			dec.Reason = ""
		}
	}
	return dec
}

func (d *Decider) planFor(pol Policy) *keyPlan {
	if p := d.plan.Load(); p != nil && p.policy == pol {
		return p.plan
	}
	p := &planned{policy: pol, plan: newKeyPlan(pol.InputPaths())}
	d.plan.Store(p)
	return p.plan
}

// Purge empties the in-process cache. Keys carry revisions, so this only
// frees memory held by verdicts of a replaced revision.
func (d *Decider) Purge() {
	if d.cache != nil {
		d.cache.purge()
	}
}

// Stats returns the counters.
func (d *Decider) Stats() Stats {
	s := Stats{
		Decisions:   d.decisions.Load(),
		L1Hits:      d.l1.Load(),
		L2Hits:      d.l2.Load(),
		Evaluations: d.evals.Load(),
		Collapsed:   d.collapsed.Load(),
		Errors:      d.errs.Load(),
	}
	if d.cache != nil {
		s.CacheLen = d.cache.len()
	}
	return s
}

// classify looks the request's host (and path, for URL lists) up in the
// lists. DNS queries have no path.
func classify(idx *categories.Index, in *Input) categories.Set {
	host := in.Request.Host
	if host == "" && in.DNS != nil {
		host = in.DNS.QName
	}
	if host == "" {
		return categories.Set{}
	}
	if in.Request.Path != "" {
		return idx.LookupURL(host, in.Request.Path)
	}
	return idx.Lookup(host)
}
