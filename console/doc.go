// Package console is the safeguarding staff's web console: alerts raised
// by blocked or flagged requests, each learner's timeline, finding an event
// by the reference on the block page, review requests that staff approve
// (as a time-limited policy exception) or decline, a dashboard of counts
// and an append-only audit log.
//
// Events reach it through a Sink on the event pipeline (its own durable
// cursor) and are kept in SQLite (modernc.org/sqlite, no cgo) under
// data_dir/console for console.retention. Pages are server-rendered
// html/template with one stylesheet and no script at all, behind a login
// (staff accounts from package staff), a session cookie, CSRF tokens on
// every form, login rate limiting, and a strict Content-Security-Policy.
// Everything events carry is attacker-controlled (URLs, host names, user
// names) and is only ever written through html/template's escaping.
package console
