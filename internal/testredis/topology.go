package testredis

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aupguard/aupguard/internal/testutil"
)

// Server is one real redis-server (or Sentinel) on a free loopback port,
// which a test can kill with SIGKILL and start again on the same port.
type Server struct {
	t    testing.TB
	bin  string
	port int
	dir  string
	// args are extra arguments; a first one ending in .conf is the
	// config file (a Sentinel needs one it can rewrite).
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *testutil.SyncBuffer
}

// StartServer starts redis-server with args after the test's own (port,
// loopback bind, no RDB snapshots, its own directory) and waits until it
// answers PING. It is killed at cleanup, and its output logged when the
// test failed. A missing redis-server skips the test (fails it under CI).
func StartServer(t testing.TB, args ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	testutil.Require(t, err == nil, "redis-server is not installed (apt-get install -y redis-server; .ci/run installs it)")
	s := &Server{t: t, bin: bin, port: freePort(t), dir: t.TempDir(), args: args, out: &testutil.SyncBuffer{}}
	s.Start()
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			t.Logf("redis-server %s output:\n%s", s.Addr(), s.out.String())
		}
	})
	return s
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Port is the server's port.
func (s *Server) Port() int { return s.port }

// Start starts the server (again, after Kill) and waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatal("redis-server already running")
	}
	args := []string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--dir", s.dir,
		"--protected-mode", "no", "--daemonize", "no", "--loglevel", "notice"}
	if len(s.args) > 0 && filepath.Ext(s.args[0]) == ".conf" {
		args = append(append([]string{s.args[0]}, args...), s.args[1:]...)
	} else {
		args = append(args, s.args...)
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done

	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond, DisableIdentity: true})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-done:
			s.t.Fatalf("redis-server exited at start: %s", s.out.String())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server did not answer within 15s: %v\n%s", err, s.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server with SIGKILL, as a crashed host would, and waits
// for it to exit.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT)
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

// Pause freezes the server (SIGSTOP): connections stay open, nothing
// answers and, on a replica, nothing is replicated.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume undoes Pause.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

// Client is a plain client for the test's own checks, closed at cleanup.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), DisableIdentity: true})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Until polls cond every 10ms until it holds, failing the test after
// timeout.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Sentinel is a master, one replica and three Sentinels watching them
// under one master name, quorum 2.
type Sentinel struct {
	Name      string
	Master    *Server
	Replica   *Server
	Sentinels []*Server
}

// SentinelDownAfter is the Sentinels' down-after-milliseconds: how long
// the master must be unreachable before they fail over (the Redis default
// is 30s; a test waits as little as it can).
const SentinelDownAfter = time.Second

// StartSentinel starts the set (failover-timeout 3s, so an attempt that
// finds no usable replica, say one just resumed, is retried after 6s, not
// Redis's default 6 minutes) and returns when a fail-over could happen
// at once: the replica is in sync, and every Sentinel knows the replica
// and the two other Sentinels (SENTINEL CKQUORUM passes).
func StartSentinel(t testing.TB, name string) *Sentinel {
	t.Helper()
	s := &Sentinel{Name: name}
	s.Master = StartServer(t)
	s.Replica = StartServer(t, "--replicaof", "127.0.0.1", strconv.Itoa(s.Master.Port()))
	rc := s.Replica.Client()
	Until(t, 20*time.Second, "the replica's link to the master", func() bool {
		info, err := rc.Info(context.Background(), "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	for i := range 3 {
		conf := filepath.Join(t.TempDir(), fmt.Sprintf("sentinel-%d.conf", i))
		body := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d 2\n"+
			"sentinel down-after-milliseconds %[1]s %[3]d\n"+
			"sentinel failover-timeout %[1]s 3000\n"+
			"sentinel parallel-syncs %[1]s 1\n", name, s.Master.Port(), SentinelDownAfter.Milliseconds())
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		s.Sentinels = append(s.Sentinels, StartServer(t, conf, "--sentinel"))
	}
	for _, sn := range s.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr(), DisableIdentity: true})
		t.Cleanup(func() { sc.Close() })
		Until(t, 30*time.Second, "Sentinel "+sn.Addr()+" to know the replica and the other Sentinels", func() bool {
			ctx := context.Background()
			if err := sc.CkQuorum(ctx, name).Err(); err != nil {
				return false
			}
			reps, err := sc.Replicas(ctx, name).Result()
			if err != nil || len(reps) != 1 {
				return false
			}
			peers, err := sc.Sentinels(ctx, name).Result()
			return err == nil && len(peers) == 2
		})
	}
	return s
}

// Addrs are the Sentinels' addresses, for redis.addrs.
func (s *Sentinel) Addrs() []string {
	var out []string
	for _, sn := range s.Sentinels {
		out = append(out, sn.Addr())
	}
	return out
}

// MasterAddr asks the Sentinels, in turn, where the master is.
func (s *Sentinel) MasterAddr(ctx context.Context) (string, error) {
	var errs []string
	for _, sn := range s.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr(), DisableIdentity: true, MaxRetries: -1})
		hp, err := sc.GetMasterAddrByName(ctx, s.Name).Result()
		sc.Close()
		if err == nil && len(hp) == 2 {
			return net.JoinHostPort(hp[0], hp[1]), nil
		}
		errs = append(errs, fmt.Sprint(err))
	}
	return "", fmt.Errorf("no Sentinel named the master: %s", strings.Join(errs, "; "))
}

// Cluster is a Redis Cluster of masters, each with replicas, built with
// redis-cli --cluster create.
type Cluster struct {
	t     testing.TB
	Nodes []*Server
}

// ClusterNodeTimeout is cluster-node-timeout: how long a master must be
// unreachable before its replica takes over (the Redis default is 15s).
const ClusterNodeTimeout = time.Second

// StartCluster starts masters×(1+replicas) nodes, creates the cluster and
// returns when every node reports cluster_state:ok and every replica is in
// sync with its master. A missing redis-cli skips the test.
func StartCluster(t testing.TB, masters, replicas int) *Cluster {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	testutil.Require(t, err == nil, "redis-cli is not installed (it comes with redis-tools): cannot create a cluster")
	c := &Cluster{t: t}
	var addrs []string
	for range masters * (1 + replicas) {
		// The bus port defaults to port+10000, which is past 65535 for
		// half the ephemeral range, or taken: name a free one.
		n := StartServer(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", strconv.Itoa(freePort(t)),
			"--cluster-node-timeout", strconv.FormatInt(ClusterNodeTimeout.Milliseconds(), 10), "--appendonly", "no")
		c.Nodes = append(c.Nodes, n)
		addrs = append(addrs, n.Addr())
	}
	args := append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitHealthy(nil)
	return c
}

// Addrs are every node's address.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.Addr())
	}
	return out
}

// WaitHealthy waits until every node but those in dead reports
// cluster_state:ok, sees masters×1 masters serving slots and every live
// replica has its link up.
func (c *Cluster) WaitHealthy(dead []*Server) {
	c.t.Helper()
	for _, n := range c.Nodes {
		if containsServer(dead, n) {
			continue
		}
		cl := n.Client()
		Until(c.t, 30*time.Second, "a healthy cluster seen from "+n.Addr(), func() bool {
			ctx := context.Background()
			info, err := cl.ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				return false
			}
			repl, err := cl.Info(ctx, "replication").Result()
			if err != nil {
				return false
			}
			return strings.Contains(repl, "role:master") || strings.Contains(repl, "master_link_status:up")
		})
	}
}

func containsServer(list []*Server, s *Server) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// MasterOf returns the live node that serves slot as a master, asking
// the given node's view of the cluster (CLUSTER SHARDS).
func (c *Cluster) MasterOf(ctx context.Context, from *Server, slot int64) (*Server, error) {
	cl := redis.NewClient(&redis.Options{Addr: from.Addr(), DisableIdentity: true, MaxRetries: -1})
	defer cl.Close()
	shards, err := cl.ClusterShards(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER SHARDS on %s: %w", from.Addr(), err)
	}
	for _, sh := range shards {
		in := false
		for _, r := range sh.Slots {
			if slot >= r.Start && slot <= r.End {
				in = true
			}
		}
		if !in {
			continue
		}
		for _, nd := range sh.Nodes {
			if nd.Role != "master" || nd.Health != "online" {
				continue
			}
			for _, n := range c.Nodes {
				if n.Port() == int(nd.Port) {
					return n, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("no online master serves slot %d in %s's view", slot, from.Addr())
}
