// Package redisstore lets several aupguard instances share one Redis: a
// second-level verdict cache, a Redis stream of misuse events, alert
// de-duplication across instances, and fan-out of policy and list
// reloads. Redis stays optional: without it each instance works alone, and
// when it fails every feature degrades to in-process behaviour instead of
// blocking a decision or losing an event. README.md documents the
// configuration, the key layout and the failure behaviour.
package redisstore
