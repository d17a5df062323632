package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cmdPorts prints N distinct loopback ports that are free for both TCP
// and UDP right now. Another process could take one before it is used;
// the run then fails at that peer's start, saying which address.
func cmdPorts(args []string) error {
	n := 1
	if len(args) > 0 {
		var err error
		if n, err = strconv.Atoi(args[0]); err != nil || n < 1 {
			return fmt.Errorf("want a count, got %q", args[0])
		}
	}
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	var ports []string
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		held = append(held, l)
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		u.Close()
		ports = append(ports, strconv.Itoa(port))
	}
	fmt.Println(strings.Join(ports, " "))
	return nil
}

// cmdWait waits until a TCP address accepts a connection, or fails after
// the timeout (a peer that did not start).
func cmdWait(args []string) error {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 60*time.Second, "give up after")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: benchtool wait [-timeout D] host:port")
	}
	addr := fs.Arg(0)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not accept connections within %s: %v", addr, *timeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// cmdRSS prints the summed VmRSS, in MiB, of the given processes and all
// their descendants (squid's helpers, e2guardian's children).
func cmdRSS(args []string) error {
	pids, err := tree(args)
	if err != nil {
		return err
	}
	var total float64
	for _, pid := range pids {
		total += vmRSS(pid)
	}
	fmt.Printf("%.1f\n", total)
	return nil
}

// cmdCPU prints the CPU time (user + system, all threads), in seconds,
// the given processes and their descendants have used so far; two
// readings around a test give the CPU the peer spent on it.
func cmdCPU(args []string) error {
	pids, err := tree(args)
	if err != nil {
		return err
	}
	var ticks int64
	for _, pid := range pids {
		ticks += cpuTicks(pid)
	}
	// Linux reports in USER_HZ, 100 on every supported architecture.
	fmt.Printf("%.2f\n", float64(ticks)/100)
	return nil
}

// tree returns the PIDs given and all their descendants.
func tree(args []string) ([]int, error) {
	if len(args) == 0 {
		return nil, errors.New("want one or more PIDs")
	}
	children := map[int][]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		pid, f, ok := readStat(p)
		if !ok || len(f) < 2 {
			continue
		}
		ppid, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		children[ppid] = append(children[ppid], pid)
	}
	var out []int
	seen := map[int]bool{}
	var walk func(int)
	walk = func(pid int) {
		if seen[pid] {
			return
		}
		seen[pid] = true
		out = append(out, pid)
		for _, c := range children[pid] {
			walk(c)
		}
	}
	for _, a := range args {
		pid, err := strconv.Atoi(a)
		if err != nil {
			return nil, fmt.Errorf("%q is not a PID", a)
		}
		walk(pid)
	}
	return out, nil
}

// readStat reads /proc/PID/stat and returns the PID and the fields after
// the command name (which may hold spaces, so the line is cut at the last
// ')'): f[0] is the state, f[1] the parent PID, f[11] utime, f[12] stime.
func readStat(path string) (int, []string, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, nil, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, nil, false
	}
	pid, err := strconv.Atoi(strings.Fields(s)[0])
	if err != nil {
		return 0, nil, false
	}
	return pid, strings.Fields(s[i+1:]), true
}

func cpuTicks(pid int) int64 {
	_, f, ok := readStat(fmt.Sprintf("/proc/%d/stat", pid))
	if !ok || len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

func vmRSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}
