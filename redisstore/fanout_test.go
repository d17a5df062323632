package redisstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aupguard/aupguard/categories"
	"github.com/aupguard/aupguard/rego"
)

const smallPolicy = `package aupguard

default decision := {"action": "allow", "rule": "default_allow", "severity": "info", "alert": false}

decision := {"action": "block", "category": "gambling", "rule": "gambling",
	"reason": "Gambling is not allowed.", "severity": "medium", "alert": true} if {
	input.categories.gambling
}
`

// policyInstance is one aupguard instance's policy engine over a shared
// policy directory, wired to its Fanout as app would wire it.
type policyInstance struct {
	engine *rego.Engine
	fanout *Fanout
}

func newPolicyInstance(t *testing.T, cfg Config, name, dir string) *policyInstance {
	t.Helper()
	eng, err := rego.New(t.Context(), rego.Options{Dir: dir, Logger: testLoggerQuiet()})
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, cfg, name)
	f, err := s.NewFanout(&Target{
		Revision: func() string { return eng.Current().Revision() },
		Reload: func(ctx context.Context) error {
			_, err := eng.Reload(ctx, "fanout")
			return err
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eng.OnActivate(func(p *rego.Policy) { f.Announce(KindPolicy, p.Revision()) })
	return &policyInstance{engine: eng, fanout: f}
}

// run runs f until the test ends.
func run(t *testing.T, f *Fanout) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func writePolicy(t *testing.T, dir, name, body string) {
	t.Helper()
	must(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
}

func TestFanoutPolicyReloadReachesTheOtherInstance(t *testing.T) {
	srv := startRedis(t, false)
	ctx := t.Context()
	dir := t.TempDir()
	writePolicy(t, dir, "main.rego", smallPolicy)
	cfg := testConfig(srv)
	a := newPolicyInstance(t, cfg, "a", dir)
	b := newPolicyInstance(t, cfg, "b", dir)
	run(t, a.fanout)
	run(t, b.fanout)
	eventually(t, "both subscribed", func() bool {
		return a.fanout.Stats().Subscriptions == 1 && b.fanout.Stats().Subscriptions == 1
	})

	// A malformed message on the channel is ignored, not fatal.
	must(t, srv.Client().Publish(ctx, a.fanout.Channel(), "not json").Err())

	step := 0
	reloadA := func() string {
		t.Helper()
		step++
		writePolicy(t, dir, fmt.Sprintf("extra%d.rego", step), fmt.Sprintf("package aupguard\n\nextra_%d := %d\n", step, step))
		changed, err := a.engine.Reload(ctx, "test")
		if err != nil || !changed {
			t.Fatalf("reload on a: changed=%v err=%v", changed, err)
		}
		return a.engine.Current().Revision()
	}
	follows := func(what, rev string) {
		t.Helper()
		eventually(t, what, func() bool { return b.engine.Current().Revision() == rev })
	}

	rev := reloadA()
	follows("b to follow a's reload", rev)
	if st := b.fanout.Stats(); st.Reloads != 1 || st.Published != 0 {
		// b activated a's revision because a asked: it does not announce it back.
		t.Fatalf("b's fanout stats %+v", st)
	}
	// a counts its publish when PUBLISH returns, which can be after b has
	// already reloaded: wait for the count, then check nothing else moved.
	eventually(t, "a to count its publish", func() bool { return a.fanout.Stats().Published == 1 })
	if st := a.fanout.Stats(); st.Reloads != 0 || st.Published != 1 {
		t.Fatalf("a's fanout stats %+v (a must ignore its own message)", st)
	}

	// Redis restarts (losing everything): both resubscribe by themselves.
	srv.Kill()
	srv.Start()
	eventually(t, "both to resubscribe after the restart", func() bool {
		return a.fanout.Stats().Subscriptions >= 2 && b.fanout.Stats().Subscriptions >= 2
	})
	rev = reloadA()
	follows("b to follow a reload after the redis restart", rev)

	// A reload while Redis is down is published once it is back.
	srv.Kill()
	rev = reloadA()
	eventually(t, "a's publish to fail", func() bool { return a.fanout.Stats().PublishErrors > 0 })
	srv.Start()
	follows("b to follow a reload made while redis was down", rev)
	if a.fanout.Stats().ReloadErrors+b.fanout.Stats().ReloadErrors != 0 {
		t.Fatal("reload errors")
	}
}

// Pub/Sub does not keep messages: an instance that was not listening
// when a revision was announced reads it from the key when it subscribes.
func TestFanoutCatchesUpOnSubscribe(t *testing.T) {
	srv := startRedis(t, false)
	ctx := t.Context()
	dir := t.TempDir()
	writePolicy(t, dir, "main.rego", smallPolicy)
	cfg := testConfig(srv)
	a := newPolicyInstance(t, cfg, "a", dir)
	b := newPolicyInstance(t, cfg, "b", dir)
	run(t, a.fanout)
	writePolicy(t, dir, "extra.rego", "package aupguard\n\nextra := 1\n")
	if _, err := a.engine.Reload(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a to publish", func() bool { return a.fanout.Stats().Published == 1 })
	if b.engine.Current().Revision() == a.engine.Current().Revision() {
		t.Fatal("b changed before it listened")
	}
	run(t, b.fanout)
	eventually(t, "b to catch up", func() bool { return b.engine.Current().Revision() == a.engine.Current().Revision() })
}

func TestFanoutListsReload(t *testing.T) {
	srv := startRedis(t, false)
	ctx := t.Context()
	dir := t.TempDir()
	list := filepath.Join(dir, "gambling.txt")
	must(t, os.WriteFile(list, []byte("casino.test\n"), 0o644))
	lcfg := categories.DefaultConfig()
	lcfg.Defaults = false
	lcfg.Refresh = 0
	lcfg.CacheDir = filepath.Join(dir, "cache")
	lcfg.Sources = []categories.Source{{Name: "local-gambling", Category: "gambling", Format: "domains", Path: list}}

	newInstance := func(name string) (*categories.Manager, *Fanout) {
		m, err := categories.NewManager(lcfg, testLoggerQuiet())
		must(t, err)
		must(t, m.Start(ctx))
		f, err := newStore(t, testConfig(srv), name).NewFanout(nil, &Target{
			Revision: func() string { return m.Current().Revision() },
			Reload:   m.Reload,
		})
		must(t, err)
		m.OnChange(func(ix *categories.Index) { f.Announce(KindLists, ix.Revision()) })
		run(t, f)
		return m, f
	}
	ma, fa := newInstance("a")
	mb, fb := newInstance("b")
	eventually(t, "both subscribed", func() bool { return fa.Stats().Subscriptions == 1 && fb.Stats().Subscriptions == 1 })

	must(t, os.WriteFile(list, []byte("casino.test\nbingo.test\n"), 0o644))
	before := mb.Current().Revision()
	must(t, ma.Reload(ctx))
	if ma.Current().Revision() == before {
		t.Fatal("a's lists did not change")
	}
	eventually(t, "b's lists to follow", func() bool { return mb.Current().Revision() == ma.Current().Revision() })
	if mb.Current().Lookup("bingo.test").Len() == 0 {
		t.Fatal("b's new lists do not list the new name")
	}
}

func TestFanoutNeedsBothFuncsAndStopsOnClose(t *testing.T) {
	srv := startRedis(t, false)
	s := newStore(t, testConfig(srv), "a")
	if _, err := s.NewFanout(&Target{Revision: func() string { return "" }}, nil); err == nil {
		t.Fatal("a target without Reload was accepted")
	}
	f, err := s.NewFanout(nil, nil)
	must(t, err)
	done := make(chan error, 1)
	go func() { done <- f.Run(context.Background()) }()
	eventually(t, "subscribed", func() bool { return f.Stats().Subscriptions == 1 })
	must(t, s.Close())
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	if err := f.Run(context.Background()); err != ErrClosed {
		t.Fatalf("Run after Close: %v", err)
	}
}
