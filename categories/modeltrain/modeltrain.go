// Package modeltrain keeps the domain-name model (namemodel) in step with
// the lists: after each swap of the categories index it trains a new model
// in the background from the lists in force — their names as positives of
// their category, the benign lists' names as negatives — and hands it to
// the decider, which asks it about the names no list knows.
//
// Training is one at a time and coalesces swaps: a swap during training
// is trained from once the current run ends, and several swaps meanwhile
// count as one (the latest). Until the first model is trained, decisions
// simply have no model input.
package modeltrain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aupguard/aupguard/categories"
	"github.com/aupguard/aupguard/config/field"
	"github.com/aupguard/aupguard/namemodel"
	"github.com/aupguard/aupguard/verdict"
)

// DefaultSampleNames is the names per list kept for training (a list
// keeps between this and twice this many): above namemodel's default cap
// of 120,000 names per category, and small enough that UT1's 4.6 million
// adult names cost tens of megabytes, not hundreds.
const DefaultSampleNames = 100_000

// DefaultFloor is the lowest score passed to the policy: below it a
// category is left out of the input, which keeps the verdict-cache key
// small (most names score near 0 in every category).
const DefaultFloor = 0.5

// Options configure a Trainer.
type Options struct {
	// Train tunes the model (zero: namemodel's defaults).
	Train namemodel.Options
	// Floor is the lowest score reported to the policy (DefaultFloor
	// when 0).
	Floor float64
	// Logger receives one line per training run.
	Logger *slog.Logger
}

// Trainer trains models from index swaps and serves the latest one. It is
// a verdict.NameModel.
type Trainer struct {
	opts  Options
	log   *slog.Logger
	floor float32

	cur     atomic.Pointer[Trained]
	pending atomic.Pointer[categories.Index]
	kick    chan struct{}
	running sync.Mutex // one Run loop

	runs, failures atomic.Uint64
}

// Trained is a model and what it was trained from.
type Trained struct {
	Model *namemodel.Model
	// ListsRevision is the revision of the index whose lists it learnt.
	ListsRevision string
	At            time.Time
	Took          time.Duration
}

// New returns a Trainer with no model yet.
func New(opts Options) *Trainer {
	if opts.Floor <= 0 {
		opts.Floor = DefaultFloor
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Trainer{opts: opts, log: log, floor: float32(opts.Floor), kick: make(chan struct{}, 1)}
}

// OnIndex asks for a model of ix's lists. It returns at once (it is
// called from categories.Manager.OnChange, under the Manager's lock);
// Run does the work.
func (t *Trainer) OnIndex(ix *categories.Index) {
	t.pending.Store(ix)
	select {
	case t.kick <- struct{}{}:
	default: // a run is already due; it will take the latest index
	}
}

// Run trains a model for each index handed to OnIndex, the latest first
// when several wait, until ctx ends. A training run is cancelled with
// ctx. It returns ctx's error.
func (t *Trainer) Run(ctx context.Context) error {
	if !t.running.TryLock() {
		return errors.New("modeltrain: Run called twice")
	}
	defer t.running.Unlock()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.kick:
		}
		ix := t.pending.Swap(nil)
		if ix == nil {
			continue
		}
		switch _, err := t.Train(ctx, ix); {
		case err == nil || ctx.Err() != nil:
		case errors.Is(err, namemodel.ErrTooFewNames):
			// Typical of a first start offline: only the seed is loaded.
			t.log.Warn("domain-name model not trained yet: the lists loaded so far have no names to learn from; it trains when they arrive",
				"lists_revision", ix.Revision(), "err", err)
		default:
			t.log.Error("domain-name model not trained; the previous one (if any) stays in force",
				"lists_revision", ix.Revision(), "err", err)
		}
	}
}

// Train trains a model from ix's name samples now and puts it in force.
// `aupguard check` and tests call it directly; serve goes through Run.
func (t *Trainer) Train(ctx context.Context, ix *categories.Index) (*Trained, error) {
	t.runs.Add(1)
	ts, names := TrainingSet(ix)
	if len(ts.Lists) == 0 {
		t.failures.Add(1)
		return nil, fmt.Errorf("modeltrain: the index has no name samples (lists.SampleNames is off): %w", namemodel.ErrTooFewNames)
	}
	start := time.Now()
	m, err := namemodel.Train(ctx, ts, t.opts.Train)
	if err != nil {
		t.failures.Add(1)
		return nil, fmt.Errorf("modeltrain: %w", err)
	}
	tr := &Trained{Model: m, ListsRevision: ix.Revision(), At: time.Now(), Took: time.Since(start)}
	t.cur.Store(tr)
	info := m.Info()
	t.log.Info("domain-name model trained", "lists_revision", ix.Revision(), "took", tr.Took.Round(time.Millisecond),
		"names", names, "positives", info.Positives, "negatives", info.Negatives, "benign", info.Benign,
		"word_list", info.WordList, "words", info.Words, "tokens", info.Tokens)
	return tr, nil
}

// Current returns the model in force, nil before the first one.
func (t *Trainer) Current() *Trained { return t.cur.Load() }

// TrainingSet turns ix's name samples into a training set: each list as
// positives (or negatives) of its category, the benign lists as benign
// names. It also returns how many names that is.
func TrainingSet(ix *categories.Index) (namemodel.TrainingSet, int) {
	var ts namemodel.TrainingSet
	n := 0
	for _, s := range ix.NameSamples() {
		cat := s.Category
		if cat == categories.BenignCategory {
			cat = namemodel.Benign
		}
		ts.Lists = append(ts.Lists, namemodel.List{Source: s.Source, Category: cat, Names: s.Names})
		n += len(s.Names)
	}
	return ts, n
}

// ScoreName implements verdict.NameModel: the categories host scores at
// or above the floor, in the model's category order. Without a model it
// adds nothing. It does not allocate unless dst must grow.
func (t *Trainer) ScoreName(dst []verdict.ModelScore, host string) []verdict.ModelScore {
	tr := t.cur.Load()
	if tr == nil {
		return dst
	}
	s := tr.Model.Score(host)
	for c, v := range s {
		if v >= t.floor {
			dst = append(dst, verdict.ModelScore{Category: namemodel.Category(c).String(), Score: float64(v)})
		}
	}
	return dst
}

var (
	trainedDesc = prometheus.NewDesc("aupguard_namemodel_trained_timestamp",
		"When the domain-name model in force was trained (Unix seconds); absent before the first model.", nil, nil)
	namesDesc = prometheus.NewDesc("aupguard_namemodel_names",
		"Names the domain-name model in force was trained on, by kind (positive per category, negative, benign).", []string{"kind"}, nil)
	durationDesc = prometheus.NewDesc("aupguard_namemodel_training_seconds",
		"How long the training of the model in force took.", nil, nil)
	runsDesc = prometheus.NewDesc("aupguard_namemodel_trainings_total",
		"Training runs, by outcome.", []string{"outcome"}, nil)
)

// Collector exports the model's standing for Prometheus.
func (t *Trainer) Collector() prometheus.Collector { return collector{t} }

type collector struct{ t *Trainer }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- trainedDesc
	ch <- namesDesc
	ch <- durationDesc
	ch <- runsDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	fail := c.t.failures.Load()
	ch <- prometheus.MustNewConstMetric(runsDesc, prometheus.CounterValue, float64(c.t.runs.Load()-fail), "ok")
	ch <- prometheus.MustNewConstMetric(runsDesc, prometheus.CounterValue, float64(fail), "error")
	tr := c.t.cur.Load()
	if tr == nil {
		return
	}
	info := tr.Model.Info()
	ch <- prometheus.MustNewConstMetric(trainedDesc, prometheus.GaugeValue, float64(tr.At.UnixNano())/1e9)
	ch <- prometheus.MustNewConstMetric(durationDesc, prometheus.GaugeValue, tr.Took.Seconds())
	for c2, n := range info.Positives {
		ch <- prometheus.MustNewConstMetric(namesDesc, prometheus.GaugeValue, float64(n), "positive_"+namemodel.Category(c2).String())
	}
	ch <- prometheus.MustNewConstMetric(namesDesc, prometheus.GaugeValue, float64(info.Negatives-info.Benign), "negative")
	ch <- prometheus.MustNewConstMetric(namesDesc, prometheus.GaugeValue, float64(info.Benign), "benign")
}

// Config is the name_model section of the configuration.
type Config struct {
	// Enabled trains the model from the lists and asks it about every
	// host no list names.
	Enabled bool `yaml:"enabled"`
	// Floor is the lowest score passed to the policy (0 < floor < 1);
	// lower scores leave the category out of the input.
	Floor float64 `yaml:"floor"`
	// WordList is the word list that cuts labels into words
	// ("bengalwincasino" → bengal win casino); empty tries Debian's
	// wbritish (/usr/share/dict/british-english), then
	// /usr/share/dict/words. The model works, less well, without one.
	WordList string `yaml:"word_list"`
}

// DefaultConfig is on, with a floor of 0.5.
func DefaultConfig() Config { return Config{Enabled: true, Floor: DefaultFloor} }

// Validate checks the section; error paths are relative to it.
func (c *Config) Validate() error {
	if c.Floor <= 0 || c.Floor >= 1 {
		return field.Errorf("floor", "must be between 0 and 1 (exclusive), got %v", c.Floor)
	}
	return nil
}

// Options returns the Trainer options of the section.
func (c Config) Options(log *slog.Logger) Options {
	return Options{Floor: c.Floor, Logger: log, Train: namemodel.Options{WordList: c.WordList}}
}
