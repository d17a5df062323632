package proxy

import (
	"testing"

	"github.com/aupguard/aupguard/identity"
	"github.com/aupguard/aupguard/internal/testcore"
)

// newDecider is the real decision core (built-in policies, the default lists)
// with the tests' extra domains.
func newDecider(t testing.TB, extra map[string][]string) Decider {
	t.Helper()
	return testcore.NewDecider(t, extra)
}

// The identity package's Identity is what the lead passes as Options.Identity.
var _ Identity = (*identity.Identity)(nil)
