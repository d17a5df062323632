package redisstore

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// pendingTTL is how long a key with an unreported suppressed count is
// kept after its last activity, as in events.MemDeduper.
const pendingTTL = 24 * time.Hour

// admitScript is events.MemDeduper's rule on a Redis hash, atomically, so
// instances that share the Redis de-duplicate together.
//
// KEYS[1] is the key's hash {sent, sup, inst, boot}; ARGV: window (ms),
// pending TTL (ms), instance, boot nonce. It returns {admit, suppressed}.
// Time is Redis's own (TIME), so the instances' clocks do not matter.
//
// The boot nonce covers a gap the events pipeline leaves to shared
// stores: the alert stage asks before delivering, so a process that stops
// between asking and delivering reads the batch again at its next start
// and asks again. A key admitted by this instance in an earlier run is
// therefore admitted once more: at worst one duplicate alert per key
// after a restart, never a lost one.
var admitScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local pending = tonumber(ARGV[2])
local v = redis.call('HMGET', KEYS[1], 'sent', 'sup', 'inst', 'boot')
if not v[1] then
  if window > 0 then
    redis.call('HSET', KEYS[1], 'sent', now, 'sup', 0, 'inst', ARGV[3], 'boot', ARGV[4])
    redis.call('PEXPIRE', KEYS[1], window)
  end
  return {1, 0}
end
local sent = tonumber(v[1])
local sup = tonumber(v[2]) or 0
if now - sent < window then
  if v[3] == ARGV[3] and v[4] ~= ARGV[4] then
    redis.call('HSET', KEYS[1], 'sent', now, 'boot', ARGV[4])
    if sup > 0 then
      redis.call('PEXPIRE', KEYS[1], math.max(window, pending))
    else
      redis.call('PEXPIRE', KEYS[1], window)
    end
    return {1, 0}
  end
  redis.call('HINCRBY', KEYS[1], 'sup', 1)
  redis.call('PEXPIRE', KEYS[1], math.max(window - (now - sent), pending))
  return {0, 0}
end
if window > 0 then
  redis.call('HSET', KEYS[1], 'sent', now, 'sup', 0, 'inst', ARGV[3], 'boot', ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
else
  redis.call('DEL', KEYS[1])
end
return {1, sup}
`)

// Deduper is events.Deduper on Redis: one alert per (learner, category)
// and window across every instance sharing the Redis. Install it with
// Pipeline.SetDeduper before Start. Keys are KeyPrefix+"dd:"+the alert key.
//
// On a Redis error Admit returns the error and the pipeline sends the
// alert: a duplicate is better than an alert nobody sees.
type Deduper struct {
	s *Store

	admitted, suppressed, errs atomic.Uint64
}

func newDeduper(s *Store) *Deduper { return &Deduper{s: s} }

// Admit implements events.Deduper.
func (d *Deduper) Admit(ctx context.Context, key string, window time.Duration) (bool, int, error) {
	res, err := admitScript.Run(ctx, d.s.client, []string{d.s.key("dd:", key)},
		window.Milliseconds(), pendingTTL.Milliseconds(), d.s.instance, d.s.nonce).Int64Slice()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("unexpected reply %v", res)
	}
	if err != nil {
		d.errs.Add(1)
		return false, 0, fmt.Errorf("redis alert de-duplication: %w", err)
	}
	if res[0] == 0 {
		d.suppressed.Add(1)
		return false, 0, nil
	}
	d.admitted.Add(1)
	return true, int(res[1]), nil
}

// DedupeStats are the Deduper's counters.
type DedupeStats struct {
	Admitted   uint64 `json:"admitted"`
	Suppressed uint64 `json:"suppressed"`
	Errors     uint64 `json:"errors"`
}

// Stats returns the counters.
func (d *Deduper) Stats() DedupeStats {
	return DedupeStats{Admitted: d.admitted.Load(), Suppressed: d.suppressed.Load(), Errors: d.errs.Load()}
}
