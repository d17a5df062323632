package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aupguard/aupguard/internal/testutil"
	"github.com/aupguard/aupguard/namemodel"
)

// TestListsEval runs the evaluation on the mirror with two lists held out
// (smaller training caps keep it quick) and checks the report's figures
// hang together, then the text form of a smaller run.
func TestListsEval(t *testing.T) {
	dir := testutil.SharedData(t)
	r := runCmd(t, "", "lists", "eval", "--mirror", dir, "--holdout", "acma-gambling,nextdns-piracy", "--max-names", "20000", "--json")
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var reps []namemodel.EvalReport
	if err := json.Unmarshal([]byte(r.stdout), &reps); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if len(reps) != 1 || len(reps[0].Sources) != 2 {
		t.Fatalf("reports %+v", reps)
	}
	for _, s := range reps[0].Sources {
		if s.Names == 0 || s.Misses == 0 || s.AlertRecall <= 0 || len(s.Examples) != 1 {
			t.Errorf("source %+v", s)
		}
	}
	if reps[0].Info.Calibration == 0 {
		t.Errorf("the evaluated model is not calibrated: %+v", reps[0].Info)
	}
	if reps[0].Info.Positives[namemodel.Gambling] > 20000 || reps[0].Info.Positives[namemodel.Gambling] < 15000 {
		t.Errorf("--max-names not applied: %+v", reps[0].Info)
	}
	var sawPopular bool
	for _, b := range reps[0].Benign {
		sawPopular = sawPopular || (b.Source == namemodel.PopularSource && b.Names > 1000)
	}
	if !sawPopular {
		t.Errorf("no held-out popular names: %+v", reps[0].Benign)
	}

	r = runCmd(t, "", "lists", "eval", "--mirror", dir, "--holdout", "estonia-gambling", "--max-names", "5000", "--examples", "3")
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, w := range []string{"== held out: estonia-gambling", "RECALL@BLOCK", "estonia-gambling", "popular-majestic-top10k", "ut1:jobsearch", "== summary over all runs", "gambling",
		"POPULAR BLOCKED", "missed (estonia-gambling): ", "calibrated on"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("output lacks %q:\n%s", w, r.stdout)
		}
	}
}

func TestListsEvalUsage(t *testing.T) {
	// A config without lists.mirror: the evaluation needs the files.
	r := runCmd(t, "", "lists", "eval", "--config", mirrorConfig(t, "")+".none")
	if r.code != exitUsage {
		t.Errorf("missing config: exit %d", r.code)
	}
	r = runCmd(t, "", "lists", "eval")
	if r.code != exitUsage || !strings.Contains(r.stderr, "mirror") {
		t.Errorf("no mirror: exit %d: %s", r.code, r.stderr)
	}
	r = runCmd(t, "", "lists", "eval", "--mirror", testutil.SharedData(t), "--holdout", "no-such-list", "--max-names", "5000")
	if r.code != exitUsage || !strings.Contains(r.stderr, "no-such-list") {
		t.Errorf("unknown list: exit %d: %s", r.code, r.stderr)
	}
}
