package console

import (
	"context"

	"github.com/aupguard/aupguard/events"
)

// sink feeds the store from the event pipeline. The pipeline retries a
// batch until Deliver returns nil and may deliver one again after a crash;
// the store skips events it already has, so nothing doubles.
type sink struct{ store *Store }

// Name is the sink's cursor name in the spool.
func (sink) Name() string { return "console" }

// Deliver stores a batch in one transaction.
func (s sink) Deliver(ctx context.Context, batch []events.Event) error {
	return s.store.Insert(ctx, batch)
}
