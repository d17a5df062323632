package verdict

import (
	"context"
	"time"
)

// Policy is one active policy revision, as the rego package provides it.
type Policy interface {
	Revision() string
	// InputPaths lists the input paths the rules read; nil means all.
	InputPaths() [][]string
	Evaluate(ctx context.Context, in *Input) (Decision, error)
}

// PolicySource returns the revision answering now; it changes on reload.
type PolicySource interface {
	Active() Policy
}

// SharedCache is a second-level verdict cache shared by instances (Redis).
// Implementations must be fast to fail: the decider calls Get on every L1
// miss and must never wait long on it.
type SharedCache interface {
	Get(ctx context.Context, key string) (Decision, bool)
	// Set stores asynchronously; it must not block the caller.
	Set(ctx context.Context, key string, d Decision, ttl time.Duration)
}
