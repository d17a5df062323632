// Package intercept holds what selective TLS interception needs besides the
// proxy itself: the organisation's interception CA (created once, exported
// for MDM/GPO deployment), leaf certificates minted per host on first use
// and kept in a bounded cache, and the memory of clients that refused our
// certificate (pinned apps, devices without the CA) so that they are
// spliced next time instead of broken.
//
// Only the proxy decides what to intercept (the policy's "intercept" at the
// connect phase); this package never looks at traffic.
package intercept
