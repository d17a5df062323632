// Package bench holds aupguard's side-by-side benchmarks against the tools
// training providers filter with today (squid, squidGuard, e2guardian,
// unbound, dnsmasq). The measurement itself is bench/run.sh; the programs
// under bench/cmd are its local origins, the bare-goproxy ceiling, load
// clients and the result tooling. This package only carries the smoke test
// CI runs; docs/benchmarks.md has the method and the numbers.
package bench
