// Command benchtool is bench/run.sh's helper: it generates the block lists
// and query files every peer is given (gen), picks free ports (ports),
// waits for a listener (wait), sums a process tree's memory and CPU time
// (rss, cpu), turns
// wrk, dnsperf and the Go load clients' output into result records
// (parse), and prints the side-by-side tables with ratios (report).
package main

import (
	"fmt"
	"os"
)

const usage = `usage: benchtool <command> [flags]

commands:
  gen     write block lists, dnsperf query files and peer list configs
  ports   print N free loopback ports (TCP and UDP both free)
  wait    wait until a TCP address accepts connections
  rss     print the resident memory (MiB) of processes and their children
  cpu     print the CPU seconds used by processes and their children
  parse   turn wrk, dnsperf or load-client JSON output into a result record
  report  print the results as side-by-side tables with ratios
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmds := map[string]func([]string) error{
		"gen":    cmdGen,
		"ports":  cmdPorts,
		"wait":   cmdWait,
		"rss":    cmdRSS,
		"cpu":    cmdCPU,
		"parse":  cmdParse,
		"report": cmdReport,
	}
	fn, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "benchtool: unknown command %q\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err := fn(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "benchtool %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
