// Command aupguard enforces a training provider's Acceptable Use Policy on
// its learner network: a filtering forward proxy and DNS filter that ask
// Rego policies about every request.
//
//	aupguard serve        [--config F]               run the proxy and DNS filter
//	aupguard check        [flags] URL|host|-         explain the verdict for a request
//	aupguard policy test  [DIR]                      run the policies' Rego unit tests
//	aupguard lists stats  [--config F]               per-category counts per list source
//	aupguard lists defaults                          the default sources, their URLs and licences
//	aupguard lists eval   [--mirror DIR] [--holdout L]  the name model's recall on held-out lists
//	aupguard ca init|export [--config F]             create the interception CA, print it for devices
//	aupguard users add|passwd|remove|list            the web console's staff accounts (password on stdin)
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes shared by the commands: check uses 0 for allow and 1 for
// block; 2 is always a usage or configuration problem.
const (
	exitOK    = 0
	exitBlock = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: aupguard <command> [flags]

commands:
  serve        run the filtering proxy and DNS filter (built-in defaults without --config)
  check        print the policy decision for a URL, host or "-" (one per line on stdin)
  policy test  run the Rego unit tests of the built-in policies, or of DIR
  lists stats  print per-category entry counts and the standing of each list source
  lists defaults  print the default list sources: publisher URLs, mirror file names, licences
  lists eval   measure the domain-name model on held-out lists (docs/coverage.md)
  ca init      create the TLS interception CA (data_dir/ca); ca export prints it for MDM/GPO
  users        add --role safeguarding|admin|viewer NAME, passwd NAME, remove NAME, list (password on stdin)
  version      print the version

Run "aupguard <command> -h" for a command's flags.
`

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		return cmdServe(ctx, args[1:], stderr)
	case "check":
		return cmdCheck(ctx, args[1:], stdin, stdout, stderr)
	case "policy":
		if len(args) < 2 || args[1] != "test" {
			fmt.Fprintln(stderr, "usage: aupguard policy test [DIR]")
			return exitUsage
		}
		return cmdPolicyTest(ctx, args[2:], stdout, stderr)
	case "lists":
		switch {
		case len(args) >= 2 && args[1] == "stats":
			return cmdListsStats(ctx, args[2:], stdout, stderr)
		case len(args) == 2 && args[1] == "defaults":
			return cmdListsDefaults(stdout)
		case len(args) >= 2 && args[1] == "eval":
			return cmdListsEval(ctx, args[2:], stdout, stderr)
		}
		fmt.Fprintln(stderr, "usage: aupguard lists stats [--config F] | aupguard lists defaults | aupguard lists eval [--mirror DIR]")
		return exitUsage
	case "ca":
		return cmdCA(args[1:], stdout, stderr)
	case "users":
		return cmdUsers(args[1:], stdin, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "aupguard", version())
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "aupguard: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}
