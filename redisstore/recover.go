package redisstore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// How often a failing Redis is probed: from probeMin, doubling to
// probeMax. probeMax also spaces wakes, so a Redis that answers a probe but
// keeps refusing the write costs one retry a second, not a busy loop.
const (
	probeMin = 100 * time.Millisecond
	probeMax = time.Second
)

// recovery notices when a Redis the stream sink failed on answers again
// and wakes the events pipeline's retry (events.Waker), so delivery resumes
// within about a second of a Sentinel or Cluster fail-over, or of a restart,
// instead of after a back-off that has grown towards stream.backoff_max
// (30s by default) while Redis was away.
//
// It runs only between a failure and the first good probe: one goroutine
// probes with a command routed like the sink's writes (to the master that
// holds the stream's slot). Under Cluster each probe first has the slot map
// reloaded, since a dead master sends no MOVED to say its replica took
// over; under Sentinel the watch also listens for the Sentinels'
// +switch-master, so a promotion is tried at once.
type recovery struct {
	s     *Store
	probe func(ctx context.Context) error
	ready chan struct{}

	watching atomic.Bool
	lastWake atomic.Int64 // Unix ns
	wakes    atomic.Uint64
}

func newRecovery(s *Store, probe func(ctx context.Context) error) *recovery {
	return &recovery{s: s, probe: probe, ready: make(chan struct{}, 1)}
}

// worthWatching tells a failure that a changed topology or a returning
// server cures (no connection, a replica or a cluster mid-fail-over) from
// one it does not (a script error, a full Redis): only the first starts a
// watch, so the second keeps its back-off.
func worthWatching(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, errTooFewReplicas) {
		return false
	}
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return true // no reply: dial, read or pool failure
	}
	for _, p := range []string{"READONLY", "CLUSTERDOWN", "MASTERDOWN", "LOADING", "TRYAGAIN"} {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}

// failed starts a watch after a delivery failure, unless one is running
// or the store is closed.
func (r *recovery) failed(err error) {
	if !worthWatching(err) || !r.watching.CompareAndSwap(false, true) {
		return
	}
	if !r.s.startRun() {
		r.watching.Store(false)
		return
	}
	go func() {
		defer r.s.runs.Done()
		defer r.watching.Store(false)
		r.watch()
	}()
}

// watch probes until Redis answers (then wakes the pipeline) or the store
// closes.
func (r *recovery) watch() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-r.s.closed:
			cancel()
		case <-ctx.Done():
		}
	}()

	switched := r.switchMaster(ctx, &wg)

	delay := probeMin
	if last := time.Unix(0, r.lastWake.Load()); time.Since(last) < probeMax {
		delay = probeMax - time.Since(last)
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-switched:
			r.s.log.Info("redis: Sentinel announced a new master; probing it now")
			// The Sentinel go-redis asks may learn of the switch up to a
			// couple of seconds after the one that announced it (hello
			// messages), so probe from probeMin again until it has.
			delay = probeMin / 2
		case <-timer.C:
		}
		r.s.reloadTopology(ctx)
		pctx, pcancel := context.WithTimeout(ctx, r.s.cfg.DialTimeout+r.s.cfg.ReadTimeout)
		err := r.probe(pctx)
		pcancel()
		if err == nil {
			r.lastWake.Store(time.Now().UnixNano())
			r.wakes.Add(1)
			select {
			case r.ready <- struct{}{}:
			default: // a wake is already waiting
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		delay = min(2*delay, probeMax)
		timer.Reset(delay)
	}
}

// switchMaster subscribes, until ctx ends (wg counts its goroutines), to +switch-master on every
// configured Sentinel, and returns a channel that receives when one names
// this store's master. It is nil (never ready) outside Sentinel mode.
// Every Sentinel rather than one, because the one asked may be the one
// that died with the master's host.
func (r *recovery) switchMaster(ctx context.Context, wg *sync.WaitGroup) <-chan struct{} {
	cfg := r.s.cfg
	if cfg.MasterName == "" {
		return nil
	}
	out := make(chan struct{}, 1)
	for _, addr := range cfg.Addrs {
		sc := redis.NewSentinelClient(&redis.Options{
			Addr:            addr,
			Username:        cfg.SentinelUsername,
			Password:        string(cfg.SentinelPassword),
			TLSConfig:       r.s.tlsCfg,
			DialTimeout:     cfg.DialTimeout,
			ReadTimeout:     cfg.ReadTimeout,
			WriteTimeout:    cfg.WriteTimeout,
			DialerRetries:   1,
			DisableIdentity: true,
		})
		ps := sc.Subscribe(ctx, "+switch-master")
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sc.Close()
			defer ps.Close()
			ch := ps.Channel()
			for {
				select {
				case <-ctx.Done():
					return
				case m, ok := <-ch:
					if !ok {
						return
					}
					// "<master name> <old ip> <old port> <new ip> <new port>"
					if name, _, _ := strings.Cut(m.Payload, " "); name == cfg.MasterName {
						select {
						case out <- struct{}{}:
						default:
						}
					}
				}
			}
		}()
	}
	return out
}
