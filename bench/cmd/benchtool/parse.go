package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// record is one measured line of a report: one peer in one test. Load
// tests fill the named fields; Go benchmarks fill Metrics.
type record struct {
	Area  string  `json:"area"`
	Test  string  `json:"test"`
	Peer  string  `json:"peer"`
	Rate  float64 `json:"rate,omitempty"`
	P50Ms float64 `json:"p50_ms,omitempty"`
	P99Ms float64 `json:"p99_ms,omitempty"`
	// BaseP50Ms and BaseP99Ms are, in a first-visit test, the latencies of
	// the second visit to each name: the same path without what a first
	// visit costs (a certificate minted, a decision not yet cached).
	BaseP50Ms float64 `json:"base_p50_ms,omitempty"`
	BaseP99Ms float64 `json:"base_p99_ms,omitempty"`
	AvgMs     float64 `json:"avg_ms,omitempty"`
	MBps      float64 `json:"mbps,omitempty"`
	Errors    int64   `json:"errors"`
	RSSMiB    float64 `json:"rss_mib,omitempty"`
	// CPUPct is the peer's CPU use in the window (100 = one core);
	// CPUUsOp the CPU it spent per operation, in microseconds.
	CPUPct  float64            `json:"cpu_pct,omitempty"`
	CPUUsOp float64            `json:"cpu_us_per_op,omitempty"`
	ReadyS  float64            `json:"ready_s,omitempty"`
	Load1   float64            `json:"load1,omitempty"`
	Round   int                `json:"round,omitempty"`
	Note    string             `json:"note,omitempty"`
	Metrics map[string]float64 `json:"metrics,omitempty"`
}

// cmdParse reads one tool's output on stdin and prints result records
// (JSON lines) for the results file.
func cmdParse(args []string) error {
	fs := flag.NewFlagSet("parse", flag.ContinueOnError)
	format := fs.String("format", "", "wrk, dnsperf, json (bench/internal/loadgen.Result, tlsload's output) or gobench")
	r := record{}
	fs.StringVar(&r.Area, "area", "", "proxy, dns, tls or engine")
	fs.StringVar(&r.Test, "test", "", "test name (http-1k, dns-allowed-100k, ...)")
	fs.StringVar(&r.Peer, "peer", "", "peer name (aupguard, squid, ...)")
	fs.Float64Var(&r.RSSMiB, "rss", 0, "resident memory of the peer after the test, MiB")
	fs.IntVar(&r.Round, "round", 0, "round number, when tests are repeated")
	cpu := fs.Float64("cpu", 0, "CPU seconds the peer used during the measured window")
	window := fs.Float64("window", 0, "length of the measured window, seconds (with -cpu)")
	fs.Float64Var(&r.ReadyS, "ready", 0, "seconds from the peer's start until it answered correctly")
	fs.StringVar(&r.Note, "note", "", "free text shown next to the numbers")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The 1-minute load average when the record is made: on a shared
	// machine it says how much else was running.
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			r.Load1, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	var recs []record
	switch *format {
	case "wrk":
		err = parseWrk(string(in), &r)
		recs = []record{r}
	case "dnsperf":
		err = parseDnsperf(string(in), &r)
		recs = []record{r}
	case "json":
		err = parseJSON(in, &r)
		recs = []record{r}
	case "gobench":
		recs, err = parseGobench(string(in), r)
	default:
		return fmt.Errorf("unknown -format %q", *format)
	}
	if err != nil {
		return fmt.Errorf("%s output for %s/%s/%s: %w", *format, r.Area, r.Test, r.Peer, err)
	}
	if *cpu > 0 && *window > 0 {
		for i := range recs {
			recs[i].CPUPct = *cpu / *window * 100
			// A stream test is one long operation: its CPU is judged per
			// MB/s through CPUPct, not per operation.
			if recs[i].Rate > 1 {
				recs[i].CPUUsOp = *cpu / (recs[i].Rate * *window) * 1e6
			}
		}
	}
	enc := json.NewEncoder(os.Stdout)
	for _, rec := range recs {
		if err := enc.Encode(rec); err != nil {
			return err
		}
	}
	return nil
}

var (
	wrkRPS     = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkXfer    = regexp.MustCompile(`(?m)^Transfer/sec:\s+([0-9.]+)([KMG]?B)`)
	wrkPct     = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s|m)\s*$`)
	wrkNon2xx  = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses:\s+(\d+)`)
	wrkSockErr = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// parseWrk reads wrk --latency output. Errors are non-2xx/3xx answers plus
// socket errors (a read error is usually a peer closing the connection).
func parseWrk(s string, r *record) error {
	m := wrkRPS.FindStringSubmatch(s)
	if m == nil {
		return errors.New("no Requests/sec line (did wrk run?)")
	}
	r.Rate, _ = strconv.ParseFloat(m[1], 64)
	if m := wrkXfer.FindStringSubmatch(s); m != nil {
		v, _ := strconv.ParseFloat(m[1], 64)
		// wrk's units are powers of 1024.
		mult := map[string]float64{"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}[m[2]]
		r.MBps = v * mult / 1e6
	}
	for _, m := range wrkPct.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		v *= map[string]float64{"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[m[3]]
		if m[1] == "50" {
			r.P50Ms = v
		} else {
			r.P99Ms = v
		}
	}
	if m := wrkNon2xx.FindStringSubmatch(s); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		r.Errors += n
	}
	if m := wrkSockErr.FindStringSubmatch(s); m != nil {
		for _, f := range m[1:] {
			n, _ := strconv.ParseInt(f, 10, 64)
			r.Errors += n
		}
	}
	return nil
}

var (
	dpQPS  = regexp.MustCompile(`(?m)^\s*Queries per second:\s+([0-9.]+)`)
	dpLost = regexp.MustCompile(`(?m)^\s*Queries lost:\s+(\d+)`)
	dpAvg  = regexp.MustCompile(`(?m)^\s*Average Latency \(s\):\s+([0-9.]+)`)
	dpRC   = regexp.MustCompile(`(?m)^\s*Response codes:\s+(.*)$`)
	dpCode = regexp.MustCompile(`([A-Z]+) (\d+) \(`)
)

// parseDnsperf reads dnsperf's statistics. Errors are lost queries plus
// SERVFAIL and REFUSED answers; the response codes go to the note, since
// peers answer blocked names differently (0.0.0.0, NXDOMAIN).
func parseDnsperf(s string, r *record) error {
	m := dpQPS.FindStringSubmatch(s)
	if m == nil {
		return errors.New("no 'Queries per second' line (did dnsperf run?)")
	}
	r.Rate, _ = strconv.ParseFloat(m[1], 64)
	if m := dpLost.FindStringSubmatch(s); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		r.Errors += n
	}
	if m := dpAvg.FindStringSubmatch(s); m != nil {
		v, _ := strconv.ParseFloat(m[1], 64)
		r.AvgMs = v * 1000
	}
	if m := dpRC.FindStringSubmatch(s); m != nil {
		var codes []string
		for _, c := range dpCode.FindAllStringSubmatch(m[1], -1) {
			codes = append(codes, c[1])
			if c[1] == "SERVFAIL" || c[1] == "REFUSED" {
				n, _ := strconv.ParseInt(c[2], 10, 64)
				r.Errors += n
			}
		}
		if len(codes) > 0 {
			r.Note = strings.TrimSpace(r.Note + " " + strings.Join(codes, "+"))
		}
	}
	return nil
}

func parseJSON(b []byte, r *record) error {
	var v struct {
		Rate       float64 `json:"rate"`
		P50Ms      float64 `json:"p50_ms"`
		P99Ms      float64 `json:"p99_ms"`
		MBps       float64 `json:"mbps"`
		Errors     int64   `json:"errors"`
		FirstError string  `json:"first_error"`
		BaseP50Ms  float64 `json:"base_p50_ms"`
		BaseP99Ms  float64 `json:"base_p99_ms"`
		Conns      int64   `json:"conns"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	r.Rate, r.P50Ms, r.P99Ms, r.MBps, r.Errors = v.Rate, v.P50Ms, v.P99Ms, v.MBps, v.Errors
	r.BaseP50Ms, r.BaseP99Ms = v.BaseP50Ms, v.BaseP99Ms
	if v.Conns > 0 {
		// tlsload's keep-alive clients: more connections than clients
		// means the proxy closed kept-alive connections.
		r.Note = strings.TrimSpace(fmt.Sprintf("%s %d connections opened", r.Note, v.Conns))
	}
	if v.FirstError != "" {
		r.Note = strings.TrimSpace(r.Note + " first error: " + v.FirstError)
	}
	return nil
}

// parseGobench reads `go test -bench` output: one record per benchmark
// line, every "value unit" pair in Metrics (ns/op, B/op, allocs/op and
// custom ones such as peak-RSS-MiB). The package line names the peer.
func parseGobench(s string, base record) ([]record, error) {
	var out []record
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimPrefix(p, "github.com/aupguard/aupguard/")
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		name := f[0]
		// Drop the -GOMAXPROCS suffix.
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		rec := base
		rec.Test = name
		rec.Peer = pkg
		rec.Metrics = map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			rec.Metrics[f[i+1]] = v
		}
		out = append(out, rec)
	}
	if len(out) == 0 {
		return nil, errors.New("no benchmark lines")
	}
	return out, sc.Err()
}
