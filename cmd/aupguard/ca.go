package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/aupguard/aupguard/config"
	"github.com/aupguard/aupguard/intercept"
)

// cmdCA creates the interception CA (init) or prints its certificate for
// deployment to devices (export).
func cmdCA(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "init" && args[0] != "export") {
		fmt.Fprintln(stderr, "usage: aupguard ca init [--config F] [--force] | aupguard ca export [--config F] [--der]")
		return exitUsage
	}
	fs := flag.NewFlagSet("ca "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file (built-in defaults when empty)")
	force := fs.Bool("force", false, "init: replace an existing CA (every device must then trust the new one)")
	der := fs.Bool("der", false, "export: DER instead of PEM")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "ca: %v\n", err)
		return exitUsage
	}
	ic := cfg.Intercept
	if args[0] == "export" {
		b, err := intercept.ExportCA(ic.CACert, *der)
		if err != nil {
			fmt.Fprintf(stderr, "ca export: %v (run `aupguard ca init` first)\n", err)
			return exitUsage
		}
		stdout.Write(b)
		return exitOK
	}
	c, err := intercept.CreateCA(ic.CACert, ic.CAKey, ic.Organisation, *force, time.Now())
	if errors.Is(err, intercept.ErrCAExists) {
		fmt.Fprintf(stderr, "ca init: %v\n", err)
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "ca init: %v\n", err)
		return exitBlock
	}
	fmt.Fprintf(stdout, "created %s (key %s, mode 0600)\nsubject: %s\nvalid until: %s\n"+
		"Deploy the certificate to learner devices (`aupguard ca export`), then restart serve: it intercepts\n"+
		"where the policy asks (social publishing, downloads) and splices everything else.\n",
		ic.CACert, ic.CAKey, c.Subject.String(), c.NotAfter.Format(time.DateOnly))
	return exitOK
}
