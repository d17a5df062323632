package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aupguard/aupguard/app"
	"github.com/aupguard/aupguard/config"
	"github.com/aupguard/aupguard/verdict"
)

// checkFlags are the parts of a request that check takes from flags; the
// target (URL or host) supplies the rest.
type checkFlags struct {
	user, client, method, phase, contentType, filename, source, at string
	page                                                           string
	groups                                                         stringList
	contentLength                                                  int64
	status                                                         int
}

type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*s = append(*s, p)
		}
	}
	return nil
}

// checkOutput is one line of check's output.
type checkOutput struct {
	Input string `json:"input"`
	// Host is the host as the policy saw it: normalised as the proxy and
	// the DNS filter normalise it (verdict.NormalizeHost).
	Host string `json:"host,omitempty"`
	*verdict.Decision
	// Model explains a name-model score (a list miss only), Page the
	// scores of --page FILE.
	Model []modelExplain `json:"model,omitempty"`
	Page  *pageExplain   `json:"page,omitempty"`
	Error string         `json:"error,omitempty"`
}

func cmdCheck(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file (built-in defaults when empty)")
	var f checkFlags
	fs.StringVar(&f.user, "user", "", "the learner's or staff member's user name")
	fs.Var(&f.groups, "group", "group of the client (repeatable or comma-separated; default: the config's default groups, learners)")
	fs.StringVar(&f.client, "client", "", "client IP address")
	fs.StringVar(&f.method, "method", "", "HTTP method (default GET at phase request)")
	fs.StringVar(&f.phase, "phase", "", "connect, request, response or query (default: request for a URL, connect for a host)")
	fs.StringVar(&f.contentType, "content-type", "", "request content type (phase request) or response content type (phase response)")
	fs.Int64Var(&f.contentLength, "content-length", -1, "request body length (-1: unknown)")
	fs.IntVar(&f.status, "status", 200, "response status (phase response)")
	fs.StringVar(&f.filename, "filename", "", "response Content-Disposition filename (phase response)")
	fs.StringVar(&f.source, "source", "", "proxy, dns or check (default: dns for phase query, else check)")
	fs.StringVar(&f.at, "time", "", "decide as at this time (RFC 3339; default now)")
	fs.StringVar(&f.page, "page", "", "an HTML file: decide the URL's response as if it served this page (page scoring), and show the scores and matched phrases")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: aupguard check [flags] URL|host|-\n\nPrints the decision as one JSON object; exit 0 allow, 1 block, 2 usage or config error.\nWith \"-\", reads one URL or host per line from stdin and prints one JSON line each.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	if f.client != "" {
		if _, err := netip.ParseAddr(f.client); err != nil {
			fmt.Fprintf(stderr, "check: --client %q is not an IP address\n", f.client)
			return exitUsage
		}
	}
	var at time.Time
	if f.at != "" {
		t, err := time.Parse(time.RFC3339, f.at)
		if err != nil {
			fmt.Fprintf(stderr, "check: --time: %v\n", err)
			return exitUsage
		}
		at = t
	}
	switch f.phase {
	case "", "connect", "request", "response", "query":
	default:
		fmt.Fprintf(stderr, "check: --phase %q is not connect, request, response or query\n", f.phase)
		return exitUsage
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "check: %v\n", err)
		return exitUsage
	}
	// check prints JSON on stdout; only warnings go to stderr.
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	core, err := app.NewCore(ctx, cfg, log, false, nil)
	if err != nil {
		fmt.Fprintf(stderr, "check: %v\n", err)
		return exitUsage
	}
	target := fs.Arg(0)
	if target == "-" {
		if f.page != "" {
			fmt.Fprintln(stderr, "check: --page takes one URL, not -")
			return exitUsage
		}
		return checkMany(ctx, core, f, at, stdin, stdout, stderr)
	}
	in, err := f.input(target, at)
	if err != nil {
		fmt.Fprintf(stderr, "check: %v\n", err)
		return exitUsage
	}
	var page *pageExplain
	if f.page != "" {
		if page, err = scorePageFile(cfg, f.page, in); err != nil {
			fmt.Fprintf(stderr, "check: %v\n", err)
			return exitUsage
		}
	}
	if err := needsModel(ctx, core, []*verdict.Input{in}); err != nil {
		fmt.Fprintf(stderr, "check: %v\n", err)
	}
	d := core.Decider.Explain(ctx, in)
	out, _ := json.MarshalIndent(checkOutput{Input: target, Host: in.Request.Host, Decision: &d, Model: explainModel(core, in), Page: page}, "", "  ")
	fmt.Fprintln(stdout, string(out))
	if d.Blocked() {
		return exitBlock
	}
	return exitOK
}

// checkMany decides each line of r, in parallel but printing in input
// order, so an admin can run a whole list through the policy. Exit: 2 if
// any line was not a URL or host, else 1 if any was blocked, else 0.
func checkMany(ctx context.Context, core *app.Core, f checkFlags, at time.Time, r io.Reader, stdout, stderr io.Writer) int {
	w := bufio.NewWriterSize(stdout, 1<<16)
	defer w.Flush()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	workers := runtime.GOMAXPROCS(0)
	const chunk = 4096
	lines := make([]string, 0, chunk)
	outs := make([][]byte, chunk)
	var blocked, invalid, total int
	trained := false
	flush := func() {
		if !trained {
			var ins []*verdict.Input
			for _, l := range lines {
				if in, err := f.input(l, at); err == nil {
					ins = append(ins, in)
				}
			}
			if err := needsModel(ctx, core, ins); err != nil {
				fmt.Fprintf(stderr, "check: %v\n", err)
			}
			trained = true
		}
		var wg sync.WaitGroup
		per := (len(lines) + workers - 1) / workers
		var mu sync.Mutex
		for s := 0; s < len(lines); s += per {
			e := min(s+per, len(lines))
			wg.Add(1)
			go func(s, e int) {
				defer wg.Done()
				var nb, ni int
				for i := s; i < e; i++ {
					o := checkOutput{Input: lines[i]}
					in, err := f.input(lines[i], at)
					if err != nil {
						o.Error = err.Error()
						ni++
					} else {
						d := core.Decider.Explain(ctx, in)
						o.Host = in.Request.Host
						o.Decision = &d
						o.Model = explainModel(core, in)
						if d.Blocked() {
							nb++
						}
					}
					outs[i], _ = json.Marshal(o)
				}
				mu.Lock()
				blocked += nb
				invalid += ni
				mu.Unlock()
			}(s, e)
		}
		wg.Wait()
		for i := range lines {
			w.Write(outs[i])
			w.WriteByte('\n')
		}
		total += len(lines)
		lines = lines[:0]
	}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		lines = append(lines, line)
		if len(lines) == chunk {
			flush()
		}
		if ctx.Err() != nil {
			break
		}
	}
	if len(lines) > 0 {
		flush()
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(stderr, "check: reading input: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(stderr, "check: %d checked, %d blocked, %d invalid\n", total, blocked, invalid)
	switch {
	case invalid > 0:
		return exitUsage
	case blocked > 0:
		return exitBlock
	}
	return exitOK
}

// input turns a URL or a host into a policy input. A URL is a request at
// phase request; a bare host (optionally host:port) is a CONNECT at phase
// connect; --phase query makes it a DNS question.
func (f *checkFlags) input(target string, at time.Time) (*verdict.Input, error) {
	in := &verdict.Input{Source: verdict.SourceCheck, Time: at}
	in.Client = verdict.Client{IP: f.client, User: f.user, Groups: append([]string(nil), f.groups...)}
	phase := verdict.Phase(f.phase)
	isURL := strings.Contains(target, "://") || strings.HasPrefix(strings.ToLower(target), "magnet:")
	if isURL {
		u, err := url.Parse(target)
		if err != nil {
			return nil, fmt.Errorf("%q is not a URL: %w", target, err)
		}
		// The proxy reads a URL the same way: check explains the decision
		// the proxy enforces.
		req, err := verdict.URLRequest(u)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", target, err)
		}
		if req.Scheme != "magnet" && req.Host == "" {
			return nil, fmt.Errorf("%q has no host", target)
		}
		in.Request = req
		if phase == "" {
			phase = verdict.PhaseRequest
		}
	} else {
		host, port := target, 443
		if h, p, err := net.SplitHostPort(target); err == nil {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("%q: bad port %q", target, p)
			}
			host, port = h, n
		}
		if strings.ContainsAny(host, " /\t") {
			return nil, fmt.Errorf("%q is neither a URL nor a host name", target)
		}
		req, err := verdict.ConnectRequest(host, port)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a URL nor a host name: %w", target, err)
		}
		in.Request = req
		if phase == "" {
			phase = verdict.PhaseConnect
		}
	}
	in.Phase = phase
	in.Request.ContentLength = -1
	switch phase {
	case verdict.PhaseRequest:
		in.Request.Method = strings.ToUpper(f.method)
		if in.Request.Method == "" {
			in.Request.Method = "GET"
		}
		in.Request.ContentType = f.contentType
		in.Request.ContentLength = f.contentLength
		if in.Request.ContentLength < 0 && in.Request.Method == "GET" {
			in.Request.ContentLength = 0
		}
	case verdict.PhaseConnect:
		in.Request.Method = "CONNECT"
		in.Request.Path, in.Request.Query = "", ""
	case verdict.PhaseResponse:
		in.Request.Method = strings.ToUpper(f.method)
		if in.Request.Method == "" {
			in.Request.Method = "GET"
		}
		in.Response = &verdict.Response{Status: f.status, ContentType: f.contentType, Filename: f.filename}
	case verdict.PhaseQuery:
		if in.Request.Host == "" {
			return nil, errors.New("a DNS query needs a host name")
		}
		in.DNS = &verdict.DNSQuestion{QName: in.Request.Host, QType: "A"}
		in.Request = verdict.Request{Host: in.Request.Host, ContentLength: -1}
		in.Source = verdict.SourceDNS
	}
	if f.source != "" {
		in.Source = verdict.Source(f.source)
	}
	return in, nil
}
