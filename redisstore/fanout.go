package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Kind names what a fan-out message is about.
type Kind string

// The kinds of revision fanned out.
const (
	KindPolicy Kind = "policy"
	KindLists  Kind = "lists"
)

// Message is what an instance publishes when it activates a revision.
type Message struct {
	Instance string `json:"instance"`
	Kind     Kind   `json:"kind"`
	Revision string `json:"revision"`
	// Nonce tells this process's own messages apart, even from an earlier
	// run or another process under the same instance name.
	Nonce string    `json:"nonce"`
	Time  time.Time `json:"time"`
}

// Target is one kind of reloadable state, given as funcs so this package
// needs neither the app nor the engines' types.
type Target struct {
	// Revision returns the revision in force.
	Revision func() string
	// Reload re-reads the local source (policy directory, list sources).
	// It is called when another instance announces a revision different
	// from Revision(); what gets activated is what this instance reads,
	// never what the message says.
	Reload func(ctx context.Context) error
}

// Fanout spreads reloads between instances: Announce publishes this
// instance's new revision on the channel (KeyPrefix+fanout.channel) and
// records it under KeyPrefix+"rev:<kind>"; Run listens, and on a
// revision that differs from the local one calls that kind's Reload.
//
// Pub/Sub is not durable, so a subscriber also reads the recorded
// revisions each time it (re)subscribes: a reload announced while an
// instance was cut off from Redis still reaches it. go-redis reconnects
// and resubscribes by itself after a Redis restart. An announcement that
// cannot be published (Redis down) is retried until it is, the newest
// per kind winning.
type Fanout struct {
	s       *Store
	channel string
	targets map[Kind]*Target

	mu        sync.Mutex
	pending   map[Kind]string // announcements not yet published
	want      map[Kind]string // revisions heard from others, not yet reloaded
	reloading map[Kind]string // revision a fan-out reload is chasing
	running   bool
	publishC  chan struct{}
	reloadC   map[Kind]chan struct{}

	published, publishErrs, received, ignored, reloads, reloadErrs, subscriptions atomic.Uint64
}

// NewFanout returns the fan-out for the targets given (a nil target is not
// fanned out). Register Announce with the engine and the list manager,
// then Run it.
func (s *Store) NewFanout(policy, lists *Target) (*Fanout, error) {
	if !s.cfg.Fanout.Enabled {
		return nil, errors.New("redisstore: fanout is not enabled")
	}
	f := &Fanout{
		s:         s,
		channel:   s.key(s.cfg.Fanout.Channel),
		targets:   map[Kind]*Target{},
		pending:   map[Kind]string{},
		want:      map[Kind]string{},
		reloading: map[Kind]string{},
		publishC:  make(chan struct{}, 1),
		reloadC:   map[Kind]chan struct{}{},
	}
	for kind, t := range map[Kind]*Target{KindPolicy: policy, KindLists: lists} {
		if t == nil {
			continue
		}
		if t.Revision == nil || t.Reload == nil {
			return nil, fmt.Errorf("redisstore: fanout %s target needs both Revision and Reload", kind)
		}
		f.targets[kind] = t
		f.reloadC[kind] = make(chan struct{}, 1)
	}
	s.fanout.Store(f)
	return f, nil
}

// Channel returns the Pub/Sub channel's full name.
func (f *Fanout) Channel() string { return f.channel }

// Announce queues revision of kind for publishing and returns at once, so
// it can be called from rego.Engine.OnActivate and
// categories.Manager.OnChange, which must not block. A revision this
// Fanout is itself reloading towards is not announced again.
func (f *Fanout) Announce(kind Kind, revision string) {
	f.mu.Lock()
	if f.reloading[kind] == revision {
		f.mu.Unlock()
		return
	}
	f.pending[kind] = revision
	f.mu.Unlock()
	select {
	case f.publishC <- struct{}{}:
	default:
	}
}

// Run subscribes and serves until ctx is done or the Store is closed. It
// returns an error only if called while already running or after Close.
func (f *Fanout) Run(ctx context.Context) error {
	if !f.s.startRun() {
		return ErrClosed
	}
	defer f.s.runs.Done()
	f.mu.Lock()
	if f.running {
		f.mu.Unlock()
		return errors.New("redisstore: fanout already running")
	}
	f.running = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running = false
		f.mu.Unlock()
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-f.s.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		f.publisher(ctx)
	}()
	for kind := range f.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.reloader(ctx, kind)
		}()
	}

	ps := f.s.client.Subscribe(ctx, f.channel)
	defer ps.Close()
	msgs := ps.ChannelWithSubscriptions(
		redis.WithChannelSize(64),
		// Ping when quiet, so a connection that died without a reset is
		// noticed and replaced.
		redis.WithChannelHealthCheckInterval(5*time.Second),
	)
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			switch m := m.(type) {
			case *redis.Subscription:
				if m.Kind == "subscribe" {
					f.subscriptions.Add(1)
					f.s.log.Info("fanout subscribed", "channel", f.channel)
					f.catchUp(ctx)
				}
			case *redis.Message:
				f.receive(m.Payload)
			}
		}
	}
}

// catchUp reads the last announced revisions, for what was published
// while this instance was not subscribed.
func (f *Fanout) catchUp(ctx context.Context) {
	for kind := range f.targets {
		cctx, cancel := context.WithTimeout(ctx, f.s.cfg.ReadTimeout)
		v, err := f.s.client.Get(cctx, f.s.key("rev:", string(kind))).Result()
		cancel()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			f.s.log.Warn("fanout: reading the last announced revision failed", "kind", kind, "err", err)
		default:
			f.receive(v)
		}
	}
}

func (f *Fanout) receive(payload string) {
	f.received.Add(1)
	var m Message
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		f.ignored.Add(1)
		f.s.log.Warn("fanout: ignoring a malformed message", "channel", f.channel, "err", err)
		return
	}
	t := f.targets[m.Kind]
	switch {
	case m.Nonce == f.s.nonce:
		f.ignored.Add(1)
		return
	case t == nil || m.Revision == "":
		f.ignored.Add(1)
		f.s.log.Debug("fanout: ignoring a message of a kind not fanned out here", "kind", m.Kind, "from", m.Instance)
		return
	case m.Revision == t.Revision():
		f.ignored.Add(1)
		return
	}
	f.s.log.Info("fanout: another instance activated a revision; reloading", "kind", m.Kind, "from", m.Instance,
		"revision", m.Revision, "running", t.Revision())
	f.mu.Lock()
	f.want[m.Kind] = m.Revision
	f.mu.Unlock()
	select {
	case f.reloadC[m.Kind] <- struct{}{}:
	default: // a reload is already due; it will look at want
	}
}

// reloader runs one kind's reloads one at a time, so a burst of messages
// costs one reload in flight and at most one after it.
func (f *Fanout) reloader(ctx context.Context, kind Kind) {
	t := f.targets[kind]
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.reloadC[kind]:
		}
		f.mu.Lock()
		rev := f.want[kind]
		delete(f.want, kind)
		if rev == "" || rev == t.Revision() {
			f.mu.Unlock()
			continue
		}
		f.reloading[kind] = rev
		f.mu.Unlock()
		f.reloads.Add(1)
		err := t.Reload(ctx)
		f.mu.Lock()
		delete(f.reloading, kind)
		f.mu.Unlock()
		switch {
		case err != nil && ctx.Err() == nil:
			f.reloadErrs.Add(1)
			f.s.log.Error("fanout: reload failed; keeping the running revision", "kind", kind, "wanted", rev, "err", err)
		case t.Revision() != rev:
			// The local files differ from the announcing instance's.
			f.s.log.Warn("fanout: reload did not reach the announced revision", "kind", kind, "announced", rev, "running", t.Revision())
		}
	}
}

// publisher publishes announcements, retrying with backoff while Redis
// fails.
func (f *Fanout) publisher(ctx context.Context) {
	const minWait, maxWait = 100 * time.Millisecond, 5 * time.Second
	wait := minWait
	for {
		f.mu.Lock()
		todo := make(map[Kind]string, len(f.pending))
		for k, v := range f.pending {
			todo[k] = v
		}
		f.mu.Unlock()
		failed := false
		for kind, rev := range todo {
			if err := f.publish(ctx, kind, rev); err != nil {
				if ctx.Err() != nil {
					return
				}
				f.publishErrs.Add(1)
				f.s.log.Warn("fanout: publishing failed; retrying", "kind", kind, "revision", rev, "retry_in", wait, "err", err)
				failed = true
				continue
			}
			f.published.Add(1)
			f.mu.Lock()
			if f.pending[kind] == rev {
				delete(f.pending, kind)
			}
			f.mu.Unlock()
		}
		if failed {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			wait = min(wait*2, maxWait)
			continue
		}
		wait = minWait
		select {
		case <-ctx.Done():
			return
		case <-f.publishC:
		}
	}
}

func (f *Fanout) publish(ctx context.Context, kind Kind, rev string) error {
	b, err := json.Marshal(Message{Instance: f.s.instance, Kind: kind, Revision: rev, Nonce: f.s.nonce, Time: time.Now().UTC()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.s.cfg.ReadTimeout+f.s.cfg.WriteTimeout)
	defer cancel()
	// Recorded first, so an instance that subscribes between the two
	// commands still finds it.
	if err := f.s.client.Set(ctx, f.s.key("rev:", string(kind)), b, 0).Err(); err != nil {
		return err
	}
	return f.s.client.Publish(ctx, f.channel, b).Err()
}

// FanoutStats are the fan-out's counters.
type FanoutStats struct {
	// Published announcements; PublishErrors failed attempts (retried).
	Published     uint64 `json:"published"`
	PublishErrors uint64 `json:"publish_errors"`
	// Received messages (and recorded revisions read on subscribing);
	// Ignored were own, same revision, or malformed.
	Received uint64 `json:"received"`
	Ignored  uint64 `json:"ignored"`
	// Reloads started because of another instance; ReloadErrors failed.
	Reloads      uint64 `json:"reloads"`
	ReloadErrors uint64 `json:"reload_errors"`
	// Subscriptions counts (re)subscriptions: 1 plus reconnections.
	Subscriptions uint64 `json:"subscriptions"`
}

// Stats returns the counters.
func (f *Fanout) Stats() FanoutStats {
	return FanoutStats{
		Published:     f.published.Load(),
		PublishErrors: f.publishErrs.Load(),
		Received:      f.received.Load(),
		Ignored:       f.ignored.Load(),
		Reloads:       f.reloads.Load(),
		ReloadErrors:  f.reloadErrs.Load(),
		Subscriptions: f.subscriptions.Load(),
	}
}
