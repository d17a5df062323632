package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/aupguard/aupguard/categories"
	"github.com/aupguard/aupguard/config"
)

// cmdListsStats loads the lists the config names (from the cache or the
// mirror, fetching only what has no copy yet) and prints, per policy
// category, each list's entry counts, skipped and bad lines, and revision;
// then each source's standing, origin and licence.
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
	m, err := categories.NewManager(cfg.Lists, log)
	if err != nil {
		fmt.Fprintf(stderr, "lists stats: %v\n", err)
		return exitUsage
	}
	if err := m.Load(ctx); err != nil {
		fmt.Fprintf(stderr, "lists stats: %v\n", err)
	}
	idx := m.Current()
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
	fmt.Fprintln(stdout)
	printSources(stdout, m.Sources())
	fmt.Fprintf(stdout, "\nlists revision %s: %d distinct names indexed\n", idx.Revision(), idx.Len())
	return exitOK
}

// printSources lists each source's standing and where it came from, with
// the licence and credit of the default ones.
func printSources(w io.Writer, sources []categories.SourceStatus) {
	defaults := map[string]categories.DefaultSource{}
	for _, d := range categories.DefaultSources() {
		defaults[d.Name] = d
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE	STATE	LICENCE	ATTRIBUTION	ORIGIN")
	for _, s := range sources {
		d, ok := defaults[s.Name]
		lic, attr := d.License, d.Attribution
		switch {
		case s.Name == categories.SeedName:
			lic, attr = "same as aupguard", "aupguard (its own seed list)"
		case !ok:
			lic, attr = "-", "configured by the admin"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s", s.Name, s.State, lic, attr, s.Origin)
		if s.Error != "" {
			fmt.Fprintf(tw, " (%s)", strings.ReplaceAll(s.Error, "\n", "; "))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// cmdListsDefaults prints the default sources: where each is published,
// its file name in a mirror directory, its licence and the credit it asks
// for.
func cmdListsDefaults(stdout io.Writer) int {
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE	CATEGORY	MIRROR FILE	LICENCE	ATTRIBUTION	URL")
	for _, d := range categories.DefaultSources() {
		cat := d.Category
		if cat == "" {
			cat = "(UT1 map)"
		}
		urls := d.URLs
		if d.URL != "" {
			urls = []string{d.URL}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, cat, d.Mirror, d.License, d.Attribution, strings.Join(urls, " "))
	}
	tw.Flush()
	return exitOK
}
