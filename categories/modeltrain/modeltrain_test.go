package modeltrain

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aupguard/aupguard/categories"
	"github.com/aupguard/aupguard/internal/testutil"
	"github.com/aupguard/aupguard/namemodel"
	"github.com/aupguard/aupguard/verdict"
)

var (
	mirrorOnce sync.Once
	mirrorIx   *categories.Index
)

func mirrorIndex(t *testing.T) *categories.Index {
	t.Helper()
	data := testutil.SharedData(t)
	mirrorOnce.Do(func() {
		cfg := categories.DefaultConfig()
		cfg.Mirror, cfg.SampleNames = data, DefaultSampleNames
		ix, errs := categories.Build(context.Background(), cfg, nil)
		if len(errs) > 0 {
			t.Fatalf("lists: %v", errs)
		}
		mirrorIx = ix
	})
	if mirrorIx == nil {
		t.Fatal("lists did not build")
	}
	return mirrorIx
}

// TestTrainFromIndex: a model trained from the default lists' samples
// (benign lists included) scores spam casino names high and popular
// benign names low, and says nothing before it is trained.
func TestTrainFromIndex(t *testing.T) {
	ix := mirrorIndex(t)
	ts, n := TrainingSet(ix)
	benign := 0
	for _, l := range ts.Lists {
		if l.Category == "benign" {
			benign += len(l.Names)
		}
	}
	if n < 300_000 || benign < 100_000 {
		t.Fatalf("training set: %d names, %d benign", n, benign)
	}
	tr := New(Options{})
	if got := tr.ScoreName(nil, "bengalwincasino.com"); len(got) != 0 {
		t.Fatalf("scores before any model: %v", got)
	}
	trained, err := tr.Train(context.Background(), ix)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("trained in %s: %+v", trained.Took, trained.Model.Info())
	score := func(host, cat string) float64 {
		for _, s := range tr.ScoreName(nil, host) {
			if s.Category == cat {
				return s.Score
			}
		}
		return 0
	}
	for _, h := range []string{"bengalwincasino.com", "22betapp.com", "pin-up-casino-5ion4.cfd"} {
		if s := score(h, "gambling"); s < 0.9 {
			t.Errorf("%s: gambling %.3f, want >= 0.9", h, s)
		}
	}
	// Benign names stay below the default policy's block threshold (some
	// reach the alert band: sussex.ac.uk has "sex" in it).
	for _, h := range []string{"bbc.co.uk", "nhs.uk", "gov.uk", "wikipedia.org", "sussex.ac.uk", "essex.ac.uk"} {
		for _, s := range tr.ScoreName(nil, h) {
			if s.Score >= 0.99 {
				t.Errorf("%s: %s %.3f, at the block threshold", h, s.Category, s.Score)
			} else {
				t.Logf("%s: %s %.3f", h, s.Category, s.Score)
			}
		}
	}
	if tr.Current().ListsRevision != ix.Revision() {
		t.Error("model does not name its lists revision")
	}
}

// TestRunCoalesces: swaps that arrive while no run is free count as one,
// and the model in force is trained from the latest index; Run stops
// with its context.
func TestRunCoalesces(t *testing.T) {
	dir := t.TempDir()
	build := func(extra string) *categories.Index {
		p := filepath.Join(dir, "g.txt")
		names := []string{"megacasino-win.com", "bet-king-777.net", "slotsparadise.org", "lucky-spin-casino.co", extra}
		if err := os.WriteFile(p, []byte(strings.Join(names, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := categories.Config{SampleNames: 1000, Sources: []categories.Source{
			{Name: "g", Category: "gambling", Path: p},
			{Name: "a", Category: "adult", Path: write(t, dir, "a.txt", "hotpornvideos.com\nxxx-cams-live.net\nsexychat.org\n")},
			{Name: "p", Category: "piracy", Path: write(t, dir, "p.txt", "freemoviestorrent.com\nwarez-downloads.net\npiratebay-proxy.org\n")},
			{Name: "b", Category: categories.BenignCategory, Path: write(t, dir, "b.txt", "bbc.co.uk\nnhs.uk\nwikipedia.org\nlloydsbank.com\n")},
		}}
		ix, errs := categories.Build(context.Background(), cfg, nil)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		return ix
	}
	ixs := []*categories.Index{build("one-casino.com"), build("two-casino.com"), build("three-casino.com")}
	tr := New(Options{Logger: slog.New(slog.DiscardHandler)})
	for _, ix := range ixs {
		tr.OnIndex(ix) // no Run yet: each replaces the last
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	deadline := time.Now().Add(time.Minute)
	for tr.Current() == nil {
		if time.Now().After(deadline) {
			t.Fatal("no model within a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got, want := tr.Current().ListsRevision, ixs[2].Revision(); got != want {
		t.Errorf("model of lists %s, want the latest %s", got, want)
	}
	if r := tr.runs.Load(); r != 1 {
		t.Errorf("%d training runs for three swaps before Run, want 1", r)
	}
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Run returned nil after cancel")
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not stop")
	}
	var _ verdict.NameModel = tr
}

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTrainWaitsForLists: an index of the seed alone (a first start
// offline) has no benign names to learn from. That is ErrTooFewNames, which
// Run reports as a warning to wait out, not an error, and no model is put in
// force.
func TestTrainWaitsForLists(t *testing.T) {
	cfg := categories.Config{SampleNames: 1000}
	ix, errs := categories.Build(context.Background(), cfg, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	logs := &testutil.SyncBuffer{}
	tr := New(Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if _, err := tr.Train(context.Background(), ix); !errors.Is(err, namemodel.ErrTooFewNames) {
		t.Fatalf("training on the seed alone: %v, want ErrTooFewNames", err)
	}
	tr.OnIndex(ix)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(logs.String(), "not trained yet") {
		if time.Now().After(deadline) {
			t.Fatalf("no warning within a minute:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if strings.Contains(logs.String(), "level=ERROR") || tr.Current() != nil {
		t.Errorf("an error logged or a model in force:\n%s", logs.String())
	}
}
