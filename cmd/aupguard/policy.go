package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/aupguard/aupguard/policies"
	"github.com/aupguard/aupguard/rego"
)

// cmdPolicyTest runs the Rego unit tests of the built-in policies, or of
// DIR laid over them (--builtin=false: DIR alone), the same set `serve`
// would activate. It ends with the line "N passed, N failed".
func cmdPolicyTest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "list every test, not only failures")
	builtin := fs.Bool("builtin", true, "lay DIR over the built-in policies (false: DIR alone)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: aupguard policy test [-v] [--builtin=false] [DIR]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return exitUsage
	}
	dir := fs.Arg(0)
	var b = policies.FS
	files, err := rego.Gather(b, dir)
	if !*builtin {
		files, err = rego.Gather(nil, dir)
	}
	if err != nil {
		fmt.Fprintf(stderr, "policy test: %v\n", err)
		return exitUsage
	}
	rep, err := rego.Test(ctx, files)
	if err != nil {
		fmt.Fprintf(stderr, "policy test: %v\n", err)
		return exitUsage
	}
	for _, r := range rep.Results {
		switch {
		case r.Skip:
			if *verbose {
				fmt.Fprintf(stdout, "SKIP %s (%s)\n", r.Name, r.Location)
			}
		case r.Pass:
			if *verbose {
				fmt.Fprintf(stdout, "PASS %s (%s) %s\n", r.Name, r.Location, r.Duration)
			}
		default:
			fmt.Fprintf(stdout, "FAIL %s (%s)", r.Name, r.Location)
			if r.Err != "" {
				fmt.Fprintf(stdout, ": %s", r.Err)
			}
			fmt.Fprintln(stdout)
		}
	}
	fmt.Fprintf(stdout, "policy revision %s (%d files)\n", files.Revision(), len(files))
	fmt.Fprintf(stdout, "%d passed, %d failed", rep.Passed, rep.Failed)
	if rep.Skipped > 0 {
		fmt.Fprintf(stdout, ", %d skipped", rep.Skipped)
	}
	fmt.Fprintln(stdout)
	if rep.Passed+rep.Failed == 0 {
		fmt.Fprintln(stderr, "policy test: no tests found (name them test_* in *_test.rego files)")
		return exitBlock
	}
	if !rep.OK() {
		return exitBlock
	}
	return exitOK
}

// version reports the module version or VCS revision the binary was
// built from.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}
