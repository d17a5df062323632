package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aupguard/aupguard/config"
	"github.com/aupguard/aupguard/staff"
)

// cmdUsers manages the console's accounts: add, passwd, remove, list.
// Passwords are read from standard input (one line), never from the
// command line, where other users of the machine could see them.
func cmdUsers(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	const usageText = "usage: aupguard users add --role safeguarding|admin|viewer NAME | passwd NAME | remove NAME | list   [--config F]"
	if len(args) == 0 {
		fmt.Fprintln(stderr, usageText)
		return exitUsage
	}
	verb := args[0]
	fs := flag.NewFlagSet("users "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file (built-in defaults when empty)")
	role := fs.String("role", "", "add: safeguarding, admin or viewer")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "users: %v\n", err)
		return exitUsage
	}
	store, err := staff.Open(staff.File(cfg.DataDir), staff.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "users: %v\n", err)
		return exitUsage
	}
	needName := verb == "add" || verb == "passwd" || verb == "remove"
	if needName != (fs.NArg() == 1) || (verb == "add") != (*role != "") {
		fmt.Fprintln(stderr, usageText)
		return exitUsage
	}
	name := fs.Arg(0)
	password := func() string {
		line, _ := bufio.NewReader(stdin).ReadString('\n')
		return strings.TrimRight(line, "\r\n")
	}
	switch verb {
	case "add":
		err = store.Add(name, staff.Role(*role), password())
	case "passwd":
		err = store.SetPassword(name, password())
	case "remove":
		err = store.Remove(name)
	case "list":
		tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tCREATED\tPASSWORD CHANGED")
		for _, u := range store.List() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Name, u.Role, u.Created.Format(time.DateOnly), u.Changed.Format(time.DateOnly))
		}
		tw.Flush()
		return exitOK
	default:
		fmt.Fprintln(stderr, usageText)
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "users %s: %v\n", verb, err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "users %s %s: done (%s)\n", verb, name, staff.File(cfg.DataDir))
	return exitOK
}
