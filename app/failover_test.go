package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/internal/testredis"
	"github.com/aupguard/aupguard/internal/testutil"
	"github.com/aupguard/aupguard/redisstore"
)

// The fail-over drills of docs/reliability.md: real aupguard instances
// (app.Server, proxy only) on real Redis topologies that the test builds
// and breaks. The stream sink keeps the production back-off (500ms
// doubling to 30s), so prompt resumption is the recovery watch's doing.

// drillInstance starts one instance whose redis: block is redisYAML (keys
// indented by two spaces). The shared-cache read timeout is 500ms, not
// the production 20ms, because other work on a loaded test machine can
// stall a read past 20ms and turn an expected hit into an evaluation; a
// dead Redis refuses at once, so decisions during the drills do not wait
// on it.
func drillInstance(t *testing.T, name, redisYAML, policyDir, alertURL string) *Server {
	t.Helper()
	yaml := fmt.Sprintf(`instance: %s
data_dir: %s
lists: {mirror: %s}
admin: {listen: ""}
console: {listen: ""}
dns: {enabled: false}
policy: {dir: %s, watch: false}
proxy: {listen: "127.0.0.1:0", allow_destinations: [127.0.0.0/8]}
hosts: {www.pokerstars.com: [127.0.0.1]}
events:
  alerts:
    window: 10m
    webhook: {url: "%s", secret: s3cret, backoff_min: 50ms, backoff_max: 200ms}
redis:
  enabled: true
  fanout: {enabled: true}
  cache: {timeout: 500ms}
%s`, name, t.TempDir(), testutil.SharedData(t), policyDir, alertURL, redisYAML)
	return startServer(t, name+".yaml", yaml)
}

// alertHook is the safeguarding webhook: it records every alert.
type alertHook struct {
	srv    *httptest.Server
	mu     sync.Mutex
	alerts []events.Event
}

func newAlertHook(t *testing.T) *alertHook {
	h := &alertHook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var batch []events.Event
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &batch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.alerts = append(h.alerts, batch...)
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// from counts the alerts raised for a client address.
func (h *alertHook) from(ip string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, ev := range h.alerts {
		if ev.ClientIP == ip {
			n++
		}
	}
	return n
}

// learner is a browser behind the proxies, at a loopback address of its
// own (127.0.0.x), so each learner is its own alert de-duplication key.
type learner struct {
	ip      string
	clients map[*Server]*http.Client
}

func newLearner(t *testing.T, ip string) *learner {
	l := &learner{ip: ip, clients: map[*Server]*http.Client{}}
	t.Cleanup(func() {
		for _, c := range l.clients {
			c.CloseIdleConnections()
		}
	})
	return l
}

// block asks s for a gambling page and fails the test unless it is
// answered with 403.
func (l *learner) block(t *testing.T, s *Server, path string) time.Duration {
	t.Helper()
	c := l.clients[s]
	if c == nil {
		pu, _ := url.Parse("http://" + s.Proxy.Addr().String())
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(l.ip)}, Timeout: 5 * time.Second}
		c = &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), DialContext: d.DialContext}, Timeout: 10 * time.Second}
		l.clients[s] = c
	}
	start := time.Now()
	resp, err := c.Get("http://www.pokerstars.com/" + path)
	if err != nil {
		t.Fatalf("learner %s, %s: request not answered: %v", l.ip, path, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("learner %s, %s: status %d, want 403", l.ip, path, resp.StatusCode)
	}
	return time.Since(start)
}

// spooledIDs reads the IDs of every event in s's disk spool.
func spooledIDs(t *testing.T, s *Server) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(s.Events.Dir(), "spool-*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var ev struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.ID == "" {
				t.Fatalf("%s: a spool line without an id: %v %q", f, err, sc.Text())
			}
			ids = append(ids, ev.ID)
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// checkExactlyOnce reads the whole stream with XRANGE from c and checks
// that it holds every spooled event of the fleet once and nothing else.
func checkExactlyOnce(t *testing.T, c redis.Cmdable, fleet ...*Server) (events int) {
	t.Helper()
	msgs, err := c.XRange(context.Background(), "aupguard:events", "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE: %v", err)
	}
	counts := map[string]int{}
	for _, m := range msgs {
		id, _ := m.Values["id"].(string)
		counts[id]++
	}
	want := map[string]bool{}
	for _, s := range fleet {
		for _, id := range spooledIDs(t, s) {
			want[id] = true
		}
	}
	lost, doubled := 0, 0
	for id := range want {
		switch n := counts[id]; {
		case n == 0:
			lost++
			t.Errorf("event %s is missing from the stream", id)
		case n > 1:
			doubled++
			t.Errorf("event %s is in the stream %d times", id, n)
		}
	}
	for id := range counts {
		if !want[id] {
			t.Errorf("the stream holds %s, which no instance spooled", id)
		}
	}
	t.Logf("stream: %d entries for %d spooled events; lost %d, doubled %d", len(msgs), len(want), lost, doubled)
	if lost+doubled > 0 {
		t.FailNow()
	}
	return len(want)
}

// streamStats is one instance's stream sink as the pipeline and the
// store count it.
func streamStats(s *Server) (spooled, processed uint64, st redisstore.StreamStats) {
	es := s.Events.Stats()
	return es.Spooled, es.Sinks[redisstore.StreamSinkName].Processed, s.Redis.Stats().Stream
}

// failoverClock watches a fail-over from the kill: when the new master
// is in place and when every event spooled by then is in the stream.
type failoverClock struct {
	kill, promoted time.Time
	// backlog is how many events were spooled but not yet in the stream
	// at promotion: the events the fail-over delayed.
	backlog     uint64
	maxDecision time.Duration

	drainDone chan struct{}
	drained   time.Time
}

// promote records the promotion and starts watching, until ctx ends, for
// each instance's stream sink to process what its spool held at that
// moment.
func (c *failoverClock) promote(ctx context.Context, fleet []*Server) {
	c.promoted = time.Now()
	target := make([]uint64, len(fleet))
	for i, s := range fleet {
		sp, pr, _ := streamStats(s)
		target[i] = sp
		c.backlog += sp - pr
	}
	c.drainDone = make(chan struct{})
	go func() {
		defer close(c.drainDone)
		for {
			done := true
			for i, s := range fleet {
				if _, pr, _ := streamStats(s); pr < target[i] {
					done = false
				}
			}
			if done {
				c.drained = time.Now()
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
}

// waitDrained waits for the watch promote started.
func (c *failoverClock) waitDrained(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-c.drainDone:
	case <-time.After(timeout):
		t.Fatalf("the events spooled before the promotion were not all in the stream %s after it", timeout)
	}
	if c.drained.IsZero() {
		t.Fatal("the drain watch stopped early")
	}
}

// resumeWithin bounds promotion -> backlog in the stream. The recovery
// watch probes at least once a second and Sentinel's +switch-master
// triggers a probe at once; without it the sink waits out a back-off that
// doubles from 500ms towards 30s while the master is away.
const resumeWithin = 5 * time.Second

// backoffTotal is how long a sink that failed n times in a row has waited
// in its production back-off (500ms doubling, at most 30s a step).
func backoffTotal(n int) time.Duration {
	var total time.Duration
	step := 500 * time.Millisecond
	for range n {
		total += step
		step = min(2*step, 30*time.Second)
	}
	return total
}

// report logs the figures docs/reliability.md quotes and checks that
// delivery resumed promptly, through the recovery watch.
func (c *failoverClock) report(t *testing.T, topology string, fleet []*Server) {
	t.Helper()
	t.Logf("%s: kill -> promotion %s; promotion -> backlog of %d events in the stream %s; slowest decision %s",
		topology, c.promoted.Sub(c.kill).Round(time.Millisecond), c.backlog, c.drained.Sub(c.promoted).Round(time.Millisecond),
		c.maxDecision.Round(time.Millisecond))
	for _, s := range fleet {
		sp, _, st := streamStats(s)
		t.Logf("%s: %d events, stream sink %+v", s.cfg.InstanceName(), sp, st)
		// A sink whose own retries (500ms doubling) already came back
		// within resumeWithin needed no wake; under load the watch can
		// lose that race, so only a longer outage must show a wake.
		if backoffTotal(int(st.Failures)) > resumeWithin && st.Wakes == 0 {
			t.Errorf("%s: the stream sink failed %d times and was never woken by the recovery watch", s.cfg.InstanceName(), st.Failures)
		}
	}
	if d := c.drained.Sub(c.promoted); d > resumeWithin {
		t.Errorf("%s: the backlog reached the stream %s after the promotion, want within %s", topology, d.Round(time.Millisecond), resumeWithin)
	}
}

// settle waits until every instance has spooled n events in total and
// delivered all of them to the stream and through the alert stage.
func settle(t *testing.T, fleet []*Server, n uint64) {
	t.Helper()
	testredis.Until(t, 30*time.Second, fmt.Sprintf("%d events spooled and delivered", n), func() bool {
		var total uint64
		for _, s := range fleet {
			sp, pr, _ := streamStats(s)
			if pr < sp || s.Events.Stats().Sinks["alerts"].Processed < sp {
				return false
			}
			total += sp
		}
		return total == n
	})
}

// checkDedupe has one new learner blocked on every instance: exactly one
// alert may reach the webhook.
func checkDedupe(t *testing.T, hook *alertHook, fleet []*Server, ip string, sent *uint64) {
	t.Helper()
	l := newLearner(t, ip)
	for i, s := range fleet {
		l.block(t, s, fmt.Sprintf("dedupe/%d", i))
		*sent++
	}
	settle(t, fleet, *sent)
	testredis.Until(t, 20*time.Second, "the alert for "+ip, func() bool { return hook.from(ip) >= 1 })
	for quiet := time.Now().Add(time.Second); time.Now().Before(quiet); time.Sleep(20 * time.Millisecond) {
		if n := hook.from(ip); n != 1 {
			t.Fatalf("%d alerts for learner %s blocked once on each of %d instances", n, ip, len(fleet))
		}
	}
}

// checkFanout reloads a changed policy on the first instance and waits for
// the others to run it.
func checkFanout(t *testing.T, policyDir string, fleet []*Server, marker string) {
	t.Helper()
	body := fmt.Sprintf("package aupguard\n\n# %s\nlocal_marker := %q\n", marker, marker)
	if err := os.WriteFile(filepath.Join(policyDir, "local.rego"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if changed, err := fleet[0].Core.Engine.Reload(context.Background(), "test"); err != nil || !changed {
		t.Fatalf("reload: %v %v", changed, err)
	}
	want := fleet[0].Core.Engine.Current().Revision()
	for _, s := range fleet[1:] {
		testredis.Until(t, 20*time.Second, "the reload to fan out", func() bool { return s.Core.Engine.Current().Revision() == want })
	}
}

// Sentinel: master, replica, three Sentinels, two instances. Blocked
// requests alternate between the instances while the master is killed.
func TestFailoverSentinel(t *testing.T) {
	if testing.Short() {
		t.Skip("fail-over drill (about 20s); runs without -short")
	}
	set := testredis.StartSentinel(t, "aupguard")
	hook := newAlertHook(t)
	policyDir := t.TempDir()
	// stream.replicas: 1, as docs/reliability.md recommends with replicas.
	redisYAML := fmt.Sprintf("  master_name: aupguard\n  addrs: [%s]\n  stream: {replicas: 1}\n", strings.Join(set.Addrs(), ", "))
	fleet := []*Server{
		drillInstance(t, "site-a", redisYAML, policyDir, hook.srv.URL),
		drillInstance(t, "site-b", redisYAML, policyDir, hook.srv.URL),
	}
	learner := newLearner(t, "127.0.0.1")
	var sent uint64
	var clock failoverClock
	request := func() {
		d := learner.block(t, fleet[sent%2], fmt.Sprintf("drill/%d", sent))
		clock.maxDecision = max(clock.maxDecision, d)
		sent++
	}
	for range 20 {
		request()
	}
	settle(t, fleet, sent)
	checkExactlyOnce(t, set.Master.Client(), fleet...)
	// Fan-out is subscribed on both before the switch.
	checkFanout(t, policyDir, fleet, "before")

	oldMaster := set.Master.Addr()
	ctx := t.Context()
	clock.kill = time.Now()
	set.Master.Kill()
	// Requests go on, 20 a second, until the Sentinels have promoted the
	// replica, and for one second after.
	for clock.promoted.IsZero() || time.Since(clock.promoted) < time.Second {
		request()
		if clock.promoted.IsZero() {
			if addr, err := set.MasterAddr(ctx); err == nil && addr != oldMaster {
				clock.promote(ctx, fleet)
				if addr != set.Replica.Addr() {
					t.Fatalf("the Sentinels promoted %s, not the replica %s", addr, set.Replica.Addr())
				}
			}
		}
		if time.Since(clock.kill) > 45*time.Second {
			t.Fatal("the Sentinels did not promote the replica within 45s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	clock.waitDrained(t, 20*time.Second)
	settle(t, fleet, sent)
	clock.report(t, "sentinel", fleet)
	if n := checkExactlyOnce(t, set.Replica.Client(), fleet...); n != int(sent) {
		t.Fatalf("%d requests blocked, %d events spooled", sent, n)
	}

	// De-duplication and fan-out on the new master.
	checkDedupe(t, hook, fleet, "127.0.0.2", &sent)
	checkFanout(t, policyDir, fleet, "after")
	checkExactlyOnce(t, set.Replica.Client(), fleet...)
}

// Cluster: three masters with a replica each, three instances. Verdicts
// and alert de-duplication are shared fleet-wide, the stream and its seen
// keys share one slot, and the master of that slot is killed under load.
func TestFailoverCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("fail-over drill (about 30s); runs without -short")
	}
	cl := testredis.StartCluster(t, 3, 1)
	hook := newAlertHook(t)
	policyDir := t.TempDir()
	// Seeds (the client finds the rest), and stream.replicas: 1.
	redisYAML := fmt.Sprintf("  addrs: [%s]\n  stream: {replicas: 1}\n", strings.Join(cl.Addrs()[:3], ", "))
	fleet := []*Server{
		drillInstance(t, "site-a", redisYAML, policyDir, hook.srv.URL),
		drillInstance(t, "site-b", redisYAML, policyDir, hook.srv.URL),
		drillInstance(t, "site-c", redisYAML, policyDir, hook.srv.URL),
	}
	ctx := t.Context()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), DisableIdentity: true})
	t.Cleanup(func() { cc.Close() })

	// One verdict, three instances: the first evaluates, the others
	// answer from Redis. One learner, three instances: one alert.
	learner := newLearner(t, "127.0.0.1")
	learner.block(t, fleet[0], "shared")
	testredis.Until(t, 20*time.Second, "the verdict in Redis", func() bool { return fleet[0].Redis.CacheStats().Writes > 0 })
	for _, s := range fleet[1:] {
		learner.block(t, s, "shared")
		if st := s.Core.Decider.Stats(); st.L2Hits != 1 || st.Evaluations != 0 {
			t.Fatalf("%s should answer from Redis without evaluating: %+v", s.cfg.InstanceName(), st)
		}
	}
	sent := uint64(3)
	settle(t, fleet, sent)
	var alerted, suppressed uint64
	for _, s := range fleet {
		st := s.Events.Stats().Alerts
		alerted, suppressed = alerted+st.Sent, suppressed+st.Suppressed
	}
	if alerted != 1 || suppressed != 2 {
		t.Fatalf("one learner on three instances: %d alerts sent, %d suppressed", alerted, suppressed)
	}
	if n, err := cc.Exists(ctx, "aupguard:dd:ip:127.0.0.1|gambling").Result(); err != nil || n != 1 {
		t.Fatalf("the de-duplication key: %d %v", n, err)
	}

	// Key placement: every seen key is in the stream's slot (the
	// {aupguard:events} hash tag), and that slot's master holds them all.
	slot, err := cc.ClusterKeySlot(ctx, "aupguard:events").Result()
	if err != nil {
		t.Fatal(err)
	}
	owner, err := cl.MasterOf(ctx, cl.Nodes[0], slot)
	if err != nil {
		t.Fatal(err)
	}
	checkSlot := func(node *testredis.Server) {
		t.Helper()
		c := node.Client()
		keys, err := c.ClusterGetKeysInSlot(ctx, int(slot), 100000).Result()
		if err != nil {
			t.Fatal(err)
		}
		inSlot := map[string]bool{}
		for _, k := range keys {
			inSlot[k] = true
		}
		if !inSlot["aupguard:events"] {
			t.Fatalf("slot %d on %s does not hold the stream", slot, node.Addr())
		}
		for _, s := range fleet {
			for _, id := range spooledIDs(t, s) {
				seen := "aupguard:seen:{aupguard:events}:" + id
				if ks, err := c.ClusterKeySlot(ctx, seen).Result(); err != nil || ks != slot {
					t.Fatalf("CLUSTER KEYSLOT %s = %d (%v), the stream's is %d", seen, ks, err, slot)
				}
				if !inSlot[seen] {
					t.Fatalf("%s is not in slot %d on %s", seen, slot, node.Addr())
				}
			}
		}
	}
	checkSlot(owner)
	checkFanout(t, policyDir, fleet, "before")

	var clock failoverClock
	request := func() {
		d := learner.block(t, fleet[sent%3], fmt.Sprintf("drill/%d", sent))
		clock.maxDecision = max(clock.maxDecision, d)
		sent++
	}
	for range 30 {
		request()
	}
	var survivor *testredis.Server
	for _, n := range cl.Nodes {
		if n != owner {
			survivor = n
			break
		}
	}
	clock.kill = time.Now()
	owner.Kill()
	var newOwner *testredis.Server
	for clock.promoted.IsZero() || time.Since(clock.promoted) < time.Second {
		request()
		if clock.promoted.IsZero() {
			if m, err := cl.MasterOf(ctx, survivor, slot); err == nil && m != owner {
				newOwner = m
				clock.promote(ctx, fleet)
			}
		}
		if time.Since(clock.kill) > 45*time.Second {
			t.Fatal("the cluster did not promote the replica within 45s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	clock.waitDrained(t, 20*time.Second)
	settle(t, fleet, sent)
	clock.report(t, "cluster", fleet)
	if n := checkExactlyOnce(t, newOwner.Client(), fleet...); n != int(sent) {
		t.Fatalf("%d requests blocked, %d events spooled", sent, n)
	}
	checkSlot(newOwner)

	cl.WaitHealthy([]*testredis.Server{owner})
	checkDedupe(t, hook, fleet, "127.0.0.2", &sent)
	checkFanout(t, policyDir, fleet, "after")
	checkExactlyOnce(t, newOwner.Client(), fleet...)
}

// drillOutage is how long TestRedisOutageSpoolsAndDrains keeps Redis
// down: 12s by default (long enough for the back-off to reach 4-8s, so a
// drain that waited it out would show), AUPGUARD_DRILL_OUTAGE (a Go
// duration) for the full-minute run docs/reliability.md reports.
func drillOutage(t *testing.T) time.Duration {
	v := os.Getenv("AUPGUARD_DRILL_OUTAGE")
	if v == "" {
		return 12 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("AUPGUARD_DRILL_OUTAGE=%q: want a positive Go duration", v)
	}
	return d
}

// Redis (one node, append-only file) is down for a while under load:
// decisions go on, events wait in each instance's disk spool, and when
// Redis is back they drain into the stream promptly, each exactly once.
func TestRedisOutageSpoolsAndDrains(t *testing.T) {
	if testing.Short() {
		t.Skip("outage drill (about 25s); runs without -short")
	}
	outage := drillOutage(t)
	srv := testredis.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	hook := newAlertHook(t)
	policyDir := t.TempDir()
	redisYAML := fmt.Sprintf("  addrs: [%s]\n", srv.Addr())
	fleet := []*Server{
		drillInstance(t, "site-a", redisYAML, policyDir, hook.srv.URL),
		drillInstance(t, "site-b", redisYAML, policyDir, hook.srv.URL),
	}
	learner := newLearner(t, "127.0.0.1")
	var sent uint64
	var slowest time.Duration
	request := func() {
		slowest = max(slowest, learner.block(t, fleet[sent%2], fmt.Sprintf("outage/%d", sent)))
		sent++
	}
	for range 20 {
		request()
	}
	settle(t, fleet, sent)

	down := time.Now()
	srv.Kill()
	before := sent
	for time.Since(down) < outage {
		request()
		time.Sleep(50 * time.Millisecond)
	}
	// Everything the outage produced is on disk, none of it in Redis.
	var backlog uint64
	for _, s := range fleet {
		sp, pr, _ := streamStats(s)
		backlog += sp - pr
	}
	if backlog != sent-before {
		t.Fatalf("%d events blocked during the outage, %d waiting in the spools", sent-before, backlog)
	}
	srv.Start()
	up := time.Now()
	settle(t, fleet, sent)
	drained := time.Since(up)
	t.Logf("redis down %s: %d decisions during the outage (slowest %s), %d events spooled; drained %s after Redis answered",
		outage.Round(time.Millisecond), sent-before, slowest.Round(time.Millisecond), backlog, drained.Round(time.Millisecond))
	for _, s := range fleet {
		sp, _, st := streamStats(s)
		t.Logf("%s: %d events, stream sink %+v", s.cfg.InstanceName(), sp, st)
	}
	if drained > resumeWithin {
		t.Errorf("the backlog drained %s after Redis answered, want within %s", drained.Round(time.Millisecond), resumeWithin)
	}
	if n := checkExactlyOnce(t, srv.Client(), fleet...); n != int(sent) {
		t.Fatalf("%d requests blocked, %d events spooled", sent, n)
	}
}
