package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"text/tabwriter"

	"github.com/aupguard/aupguard/categories"
	"github.com/aupguard/aupguard/config"
)

// cmdListsStats loads the lists the config names and prints, per policy
// category, each source's entry counts, skipped and bad lines, and
// revision.
func cmdListsStats(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lists stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file (built-in defaults when empty)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "lists stats: %v\n", err)
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	idx, errs := categories.Build(ctx, cfg.Lists, log)
	for _, e := range errs {
		fmt.Fprintf(stderr, "lists stats: %v\n", e)
	}
	if idx == nil {
		return exitUsage
	}
	stats := idx.Stats()
	sort.SliceStable(stats, func(i, j int) bool {
		if stats[i].Category != stats[j].Category {
			return stats[i].Category < stats[j].Category
		}
		return stats[i].Label < stats[j].Label
	})
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "CATEGORY\tSOURCE\tFORMAT\tDOMAINS\tIPS\tURLS\tEXPRESSIONS\tSKIPPED\tERRORS\tREVISION\tORIGIN")
	perCat := map[string]int{}
	for _, s := range stats {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s", s.Category, s.Label, s.Format, s.Domains, s.IPs, s.URLs, s.Expressions, s.Skipped, s.Errors, s.Revision, s.Origin)
		if s.Fallback != "" {
			fmt.Fprintf(tw, " (fallback: %s)", s.Fallback)
		}
		if s.Error != "" {
			fmt.Fprintf(tw, " ERROR: %s", s.Error)
		}
		fmt.Fprintln(tw)
		perCat[s.Category] += s.Entries
	}
	tw.Flush()
	cats := make([]string, 0, len(perCat))
	for c := range perCat {
		cats = append(cats, c)
	}
	sort.Strings(cats)
	fmt.Fprintln(stdout)
	tw = tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "CATEGORY\tENTRIES (all sources)")
	for _, c := range cats {
		fmt.Fprintf(tw, "%s\t%d\n", c, perCat[c])
	}
	tw.Flush()
	fmt.Fprintf(stdout, "\nlists revision %s: %d distinct names indexed\n", idx.Revision(), idx.Len())
	return exitOK
}
