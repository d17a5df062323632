package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aupguard/aupguard/config"
	"github.com/aupguard/aupguard/namemodel"
)

// defaultEvalRuns hold out, run by run, every default list of the
// categories the name model scores: one gambling, one adult and one
// piracy source at a time, so that each run measures the model on names
// of each category that it never saw.
var defaultEvalRuns = [][]string{
	{"shadowwhisperer-gambling", "4skinskywalker-porn", "nextdns-piracy"},
	{"acma-gambling", "sinfonietta-pornography", "blocklistproject-piracy"},
	{"estonia-gambling", "hostsvn-adult", "nextdns-torrent"},
	{"hostsvn-gambling", "pornaway-porn", "blocklistproject-torrent"},
	{"sinfonietta-gambling", "shadowwhisperer-adult", "ut1:warez"},
	{"ut1:gambling", "clefspeare13-porn"},
	{"blocklistproject-gambling", "tiuxo-porn"},
}

// holdoutFlag collects --holdout values: each is one run.
type holdoutFlag [][]string

func (h *holdoutFlag) String() string { return fmt.Sprint(*h) }

func (h *holdoutFlag) Set(v string) error {
	*h = append(*h, strings.Split(v, ","))
	return nil
}

// cmdListsEval trains the name model with lists held out and reports its
// recall on them and its false positives on held-out benign names (the
// method is in docs/coverage.md).
func cmdListsEval(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lists eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file: its lists.mirror is read when --mirror is not given")
	mirror := fs.String("mirror", "", "lists mirror directory (the layout of lists.mirror)")
	var runs holdoutFlag
	fs.Var(&runs, "holdout", "sources held out of training, comma-separated; repeat for several runs (default: every gambling, adult and piracy list, over 7 runs)")
	words := fs.String("words", "", "word list (default: "+strings.Join(namemodel.DefaultWordLists, " or ")+")")
	alg := fs.String("algorithm", string(namemodel.LogReg), "logreg or nb")
	benign := fs.Float64("benign-fraction", 0.2, "fraction of each benign list held out")
	asJSON := fs.Bool("json", false, "print the reports as JSON")
	examples := fs.Int("examples", 0, "print this many missed names per held-out source and blocked names per benign list")
	maxNames := fs.Int("max-names", 0, "train on at most this many names per category (default: the model's default cap)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *mirror == "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			fmt.Fprintf(stderr, "lists eval: %v\n", err)
			return exitUsage
		}
		*mirror = cfg.Lists.Mirror
	}
	if *mirror == "" {
		fmt.Fprintln(stderr, "lists eval: needs the lists' files: --mirror DIR, or a config with lists.mirror")
		return exitUsage
	}
	if len(runs) == 0 {
		runs = defaultEvalRuns
	}
	ts, missing, err := namemodel.LoadMirror(ctx, *mirror)
	if err != nil {
		fmt.Fprintf(stderr, "lists eval: %v\n", err)
		return exitUsage
	}
	if len(missing) > 0 {
		fmt.Fprintf(stderr, "lists eval: not in the mirror (left out): %s\n", strings.Join(missing, ", "))
	}
	var reports []*namemodel.EvalReport
	for _, hold := range runs {
		start := time.Now()
		rep, err := namemodel.Evaluate(ctx, ts, namemodel.EvalOptions{
			HoldOut:        hold,
			BenignFraction: *benign,
			Examples:       max(*examples, 1),
			Train: namemodel.Options{Algorithm: namemodel.Algorithm(*alg), WordList: *words,
				MaxPositives: *maxNames, MaxOther: *maxNames / 6},
		})
		if err != nil {
			fmt.Fprintf(stderr, "lists eval: holding out %s: %v\n", strings.Join(hold, ","), err)
			return exitUsage
		}
		reports = append(reports, rep)
		if !*asJSON {
			printEval(stdout, hold, rep, time.Since(start), *examples)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(reports); err != nil {
			fmt.Fprintf(stderr, "lists eval: %v\n", err)
			return exitUsage
		}
		return exitOK
	}
	printEvalSummary(stdout, reports)
	return exitOK
}

func pct(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

func printEval(w io.Writer, hold []string, rep *namemodel.EvalReport, took time.Duration, examples int) {
	info := rep.Info
	fmt.Fprintf(w, "== held out: %s\n", strings.Join(hold, ", "))
	fmt.Fprintf(w, "model: %s, trained in %s on %d gambling, %d adult, %d piracy names and %d negatives (%d benign); calibrated on %d benign names; word list %q (%d words) + %d tokens learnt\n",
		info.Algorithm, info.Duration.Round(time.Millisecond), info.Positives[namemodel.Gambling], info.Positives[namemodel.Adult],
		info.Positives[namemodel.Piracy], info.Negatives, info.Benign, info.Calibration, info.WordList, info.Words, info.Tokens)
	fmt.Fprintf(w, "thresholds: block %v, alert %v; at %.1f%% benign FPR: %v\n", rep.Block, rep.Alert, 100*rep.TargetFPR, rep.AtTarget)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "SOURCE\tCATEGORY\tNAMES\tIN OTHER LISTS\tMISSES\tRECALL@BLOCK\tRECALL@ALERT\tRECALL@TARGET\tBLOCKED (LISTS+MODEL)\tPOPULAR\tPOPULAR BLOCKED\t")
	for _, s := range rep.Sources {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t\n", s.Source, s.Category, s.Names, s.Listed, s.Misses,
			pct(s.BlockRecall), pct(s.AlertRecall), pct(s.TargetRecall), pct(s.Blocked), s.Popular, pct(s.PopularBlocked))
	}
	tw.Flush()
	if examples > 0 {
		for _, s := range rep.Sources {
			fmt.Fprintf(w, "missed (%s):", s.Source)
			for _, e := range s.Examples {
				fmt.Fprintf(w, " %s %.2f", e.Name, e.Score)
			}
			fmt.Fprintln(w)
		}
	}
	tw = tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "BENIGN (HELD OUT)\tNAMES\tFPR@BLOCK\tFPR@ALERT\t")
	for _, b := range rep.Benign {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t\n", b.Source, b.Names, fmt.Sprintf("%.2f%%", 100*b.FPRBlock), fmt.Sprintf("%.2f%%", 100*b.FPRAlert))
	}
	tw.Flush()
	if examples > 0 {
		for _, b := range rep.Benign {
			if len(b.Examples) > 0 {
				fmt.Fprintf(w, "blocked (%s): %s\n", b.Source, strings.Join(b.Examples, " "))
			}
		}
	}
	fmt.Fprintf(w, "(run took %s)\n\n", took.Round(time.Millisecond))
}

// printEvalSummary pools the runs: recall per category over all misses,
// false-positive rates per benign list averaged over the runs.
func printEvalSummary(w io.Writer, reports []*namemodel.EvalReport) {
	type acc struct{ misses, block, alert, target, popular, popBlocked float64 }
	cats := map[string]*acc{}
	var order []string
	for _, r := range reports {
		for _, s := range r.Sources {
			a := cats[s.Category]
			if a == nil {
				a = &acc{}
				cats[s.Category] = a
				order = append(order, s.Category)
			}
			m := float64(s.Misses)
			a.misses += m
			a.block += m * s.BlockRecall
			a.alert += m * s.AlertRecall
			a.target += m * s.TargetRecall
			a.popular += float64(s.Popular)
			a.popBlocked += float64(s.Popular) * s.PopularBlocked
		}
	}
	fmt.Fprintln(w, "== summary over all runs")
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "CATEGORY\tLIST MISSES\tRECALL@BLOCK\tRECALL@ALERT\tRECALL@TARGET\tPOPULAR\tPOPULAR BLOCKED\t")
	for _, c := range order {
		a := cats[c]
		if a.misses == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%.0f\t%s\t\n", c, a.misses, pct(a.block/a.misses), pct(a.alert/a.misses), pct(a.target/a.misses),
			a.popular, pct(a.popBlocked/max(a.popular, 1)))
	}
	tw.Flush()
	type bacc struct {
		names        int
		block, alert float64
		runs         int
	}
	ben := map[string]*bacc{}
	var border []string
	for _, r := range reports {
		for _, b := range r.Benign {
			a := ben[b.Source]
			if a == nil {
				a = &bacc{}
				ben[b.Source] = a
				border = append(border, b.Source)
			}
			a.names = b.Names
			a.block += b.FPRBlock
			a.alert += b.FPRAlert
			a.runs++
		}
	}
	tw = tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "BENIGN (HELD OUT)\tNAMES\tFPR@BLOCK\tFPR@ALERT\t")
	for _, s := range border {
		a := ben[s]
		fmt.Fprintf(tw, "%s\t%d\t%.2f%%\t%.2f%%\t\n", s, a.names, 100*a.block/float64(a.runs), 100*a.alert/float64(a.runs))
	}
	tw.Flush()
}
