package redisstore

import (
	"context"
	"fmt"
	"github.com/aupguard/aupguard/internal/testutil"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aupguard/aupguard/verdict"
)

// exerciseStore runs every feature once against whatever topology s is
// connected to, so that a command a topology refuses (a multi-key script
// across Cluster slots, say) fails here.
func exerciseStore(t *testing.T, s *Store) {
	t.Helper()
	ctx := t.Context()
	must(t, s.Ping(ctx))

	for i := range 20 { // keys spread over the slots
		s.VerdictCache().Set(ctx, fmt.Sprint("key-", i), verdict.Decision{Action: verdict.ActionAllow, PolicyRevision: "p"}, time.Minute)
	}
	eventually(t, "the verdicts", func() bool { return s.CacheStats().Writes == 20 })
	for i := range 20 {
		if d, ok := s.VerdictCache().Get(ctx, fmt.Sprint("key-", i)); !ok || d.PolicyRevision != "p" {
			t.Fatalf("verdict %d: %v %+v (%+v)", i, ok, d, s.CacheStats())
		}
	}

	batch := testEvents(30, "jsmith")
	must(t, s.StreamSink().Deliver(ctx, batch))
	must(t, s.StreamSink().Deliver(ctx, batch))
	if st := s.StreamSink().Stats(); st.Added != 30 || st.Duplicates != 30 {
		t.Fatalf("stream stats %+v", st)
	}

	d := s.Deduper()
	if ok, _, err := d.Admit(ctx, "user:jsmith|adult", time.Minute); !ok || err != nil {
		t.Fatalf("first admit: %v %v", ok, err)
	}
	if ok, _, err := d.Admit(ctx, "user:jsmith|adult", time.Minute); ok || err != nil {
		t.Fatalf("second admit: %v %v", ok, err)
	}

	// Fan-out between two stores on this topology.
	other, err := New(s.cfg, Options{Logger: testLoggerQuiet(), Instance: "other"})
	must(t, err)
	t.Cleanup(func() { other.Close() })
	rev := "r1"
	reloaded := make(chan struct{}, 1)
	fo, err := other.NewFanout(&Target{Revision: func() string { return rev }, Reload: func(context.Context) error {
		reloaded <- struct{}{}
		return nil
	}}, nil)
	must(t, err)
	run(t, fo)
	eventually(t, "the subscription", func() bool { return fo.Stats().Subscriptions >= 1 })
	fs, err := s.NewFanout(&Target{Revision: func() string { return "r2" }, Reload: func(context.Context) error { return nil }}, nil)
	must(t, err)
	run(t, fs)
	fs.Announce(KindPolicy, "r2")
	select {
	case <-reloaded:
	case <-time.After(20 * time.Second):
		t.Fatalf("the announcement did not arrive: %+v / %+v", fs.Stats(), fo.Stats())
	}
}

func TestSentinel(t *testing.T) {
	master := startRedis(t, false)
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	must(t, os.WriteFile(conf, []byte(fmt.Sprintf("sentinel monitor aupguard 127.0.0.1 %d 1\n", master.port)), 0o600))
	sentinel := startRedisWith(t, false, nil, conf, "--sentinel")

	cfg := testConfig(sentinel)
	cfg.MasterName = "aupguard"
	if mode(&cfg) != "sentinel" {
		t.Fatal(mode(&cfg))
	}
	s := newStore(t, cfg, "a")
	exerciseStore(t, s)
	// The data went to the master the Sentinel named.
	if n := master.Client().XLen(t.Context(), "aupguard:events").Val(); n != 30 {
		t.Fatalf("the master's stream holds %d events", n)
	}
}

func TestCluster(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	testutil.Require(t, err == nil, "redis-cli is not installed (it comes with redis-tools): cannot create a cluster")
	var nodes []*redisServer
	var addrs []string
	for range 3 {
		// The bus port defaults to port+10000, past 65535 for half the
		// ephemeral range: name a free one.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		must(t, err)
		bus := l.Addr().(*net.TCPAddr).Port
		l.Close()
		n := startRedisWith(t, false, nil, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", fmt.Sprint(bus))
		nodes = append(nodes, n)
		addrs = append(addrs, n.Addr())
	}
	out, err := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range nodes {
		eventually(t, "cluster_state:ok on "+n.Addr(), func() bool {
			info, err := n.Client().ClusterInfo(context.Background()).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
	}

	cfg := testConfig(nodes[0])
	cfg.Addrs = addrs
	if mode(&cfg) != "cluster" {
		t.Fatal(mode(&cfg))
	}
	s := newStore(t, cfg, "a")
	exerciseStore(t, s)
}
