package console

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite", pure Go (no cgo)

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/verdict"
)

// Status values. Alerts go new → acknowledged → closed; review requests go
// new (pending) → approved or declined.
const (
	StatusNew          = "new"
	StatusAcknowledged = "acknowledged"
	StatusClosed       = "closed"
	StatusApproved     = "approved"
	StatusDeclined     = "declined"
)

// groupWindow is how far back an alert joins an earlier one that nobody has
// acknowledged yet (same learner, category and host): the safeguarding team
// sees one alert with a count, not a flood.
const groupWindow = 24 * time.Hour

// schema is applied at every open; every statement is idempotent.
const schema = `
CREATE TABLE IF NOT EXISTS events (
	id TEXT PRIMARY KEY,
	time_ms INTEGER NOT NULL,
	kind TEXT NOT NULL,
	action TEXT NOT NULL DEFAULT '',
	category TEXT NOT NULL DEFAULT '',
	rule TEXT NOT NULL DEFAULT '',
	reason TEXT NOT NULL DEFAULT '',
	severity TEXT NOT NULL DEFAULT '',
	sev_rank INTEGER NOT NULL DEFAULT 0,
	alert INTEGER NOT NULL DEFAULT 0,
	client_ip TEXT NOT NULL DEFAULT '',
	user TEXT NOT NULL DEFAULT '',
	learner TEXT NOT NULL DEFAULT '',
	groups TEXT NOT NULL DEFAULT '',
	host TEXT NOT NULL DEFAULT '',
	url TEXT NOT NULL DEFAULT '',
	method TEXT NOT NULL DEFAULT '',
	qname TEXT NOT NULL DEFAULT '',
	qtype TEXT NOT NULL DEFAULT '',
	ref TEXT NOT NULL DEFAULT '',
	message TEXT NOT NULL DEFAULT '',
	source TEXT NOT NULL DEFAULT '',
	phase TEXT NOT NULL DEFAULT '',
	instance TEXT NOT NULL DEFAULT '',
	policy_revision TEXT NOT NULL DEFAULT '',
	lists_revision TEXT NOT NULL DEFAULT '',
	error TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL DEFAULT 'new',
	parent TEXT,
	count INTEGER NOT NULL DEFAULT 1,
	last_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_time ON events(time_ms);
CREATE INDEX IF NOT EXISTS events_learner ON events(learner, time_ms);
CREATE INDEX IF NOT EXISTS events_alerts ON events(alert, parent, status, time_ms);
CREATE INDEX IF NOT EXISTS events_kind ON events(kind, status, time_ms);
CREATE INDEX IF NOT EXISTS events_ref ON events(ref);
CREATE INDEX IF NOT EXISTS events_parent ON events(parent);

CREATE TABLE IF NOT EXISTS actions (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	event_id TEXT NOT NULL,
	time_ms INTEGER NOT NULL,
	staff TEXT NOT NULL,
	action TEXT NOT NULL,
	note TEXT NOT NULL DEFAULT '',
	exception_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS actions_event ON actions(event_id, seq);

CREATE TABLE IF NOT EXISTS audit (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	time_ms INTEGER NOT NULL,
	staff TEXT NOT NULL,
	role TEXT NOT NULL DEFAULT '',
	client_ip TEXT NOT NULL DEFAULT '',
	action TEXT NOT NULL,
	target TEXT NOT NULL DEFAULT '',
	detail TEXT NOT NULL DEFAULT ''
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
	BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
	BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
`

// Store is the console's database: the events the sink delivers, what
// staff did about them, and the audit log.
type Store struct {
	db *sql.DB
}

// OpenStore opens (creating) the SQLite database at path. WAL keeps pages
// readable while the sink writes; synchronous=FULL makes a committed batch
// survive a power cut, since the sink's cursor moves on after it.
func OpenStore(path string) (*Store, error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("console store: %w", err)
	}
	// One connection: SQLite has one writer anyway, and a console's reads
	// are small; it rules out SQLITE_BUSY between our own connections.
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("console store %s: %w", path, err)
	}
	if err := migrate(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("console store %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// addedColumns are the events columns added after the first release: a
// console.db made before them gets them here (CREATE TABLE IF NOT EXISTS
// leaves an existing table as it is).
var addedColumns = []struct{ name, def string }{
	{"message", "TEXT NOT NULL DEFAULT ''"},
}

// migrate adds the columns an older console.db lacks.
func migrate(db *sql.DB) error {
	rows, err := db.Query(`SELECT name FROM pragma_table_info('events')`)
	if err != nil {
		return fmt.Errorf("reading the events columns: %w", err)
	}
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			_ = rows.Close()
			return fmt.Errorf("reading the events columns: %w", err)
		}
		have[name] = true
	}
	_ = rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading the events columns: %w", err)
	}
	for _, c := range addedColumns {
		if have[c.name] {
			continue
		}
		if _, err := db.Exec(`ALTER TABLE events ADD COLUMN ` + c.name + ` ` + c.def); err != nil {
			return fmt.Errorf("adding the events column %s: %w", c.name, err)
		}
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

var sevRank = map[verdict.Severity]int{"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

// maxMessage bounds a stored review message. The proxy already keeps 500
// characters; the stream is shared, so the console does not trust that.
const maxMessage = 2000

// reviewMessage is the message the console keeps: only review requests
// have one (least data), at most maxMessage bytes of valid UTF-8.
func reviewMessage(ev *events.Event) string {
	if ev.Kind != events.KindReviewRequest {
		return ""
	}
	m := ev.Message
	if len(m) > maxMessage {
		m = m[:maxMessage]
	}
	return strings.ToValidUTF8(m, "")
}

func learnerOf(ev *events.Event) string {
	if ev.User != "" {
		return ev.User
	}
	return ev.ClientIP
}

// Insert stores a batch in one transaction. An event already stored (a
// batch delivered again after a crash) is skipped by its ID, so a replay
// never doubles a count.
func (s *Store) Insert(ctx context.Context, batch []events.Event) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("console store: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	ins, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO events
		(id, time_ms, kind, action, category, rule, reason, severity, sev_rank, alert, client_ip, user, learner, groups,
		 host, url, method, qname, qtype, ref, source, phase, instance, policy_revision, lists_revision, error, last_ms, message)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		return fmt.Errorf("console store: %w", err)
	}
	defer ins.Close()
	for i := range batch {
		ev := &batch[i]
		if ev.ID == "" {
			continue
		}
		ms := ev.Time.UnixMilli()
		groups := ""
		if len(ev.Groups) > 0 {
			// Wrapped in commas so that a filter can match ",group,".
			groups = "," + strings.Join(ev.Groups, ",") + ","
		}
		isAlert := ev.Alert && ev.Kind != events.KindReviewRequest
		res, err := ins.ExecContext(ctx, ev.ID, ms, string(ev.Kind), string(ev.Action), ev.Category, ev.Rule, ev.Reason,
			string(ev.Severity), sevRank[ev.Severity], isAlert, ev.ClientIP, ev.User, learnerOf(ev), groups,
			ev.Host, ev.URL, ev.Method, ev.QName, ev.QType, ev.Ref, string(ev.Source), string(ev.Phase), ev.Instance,
			ev.PolicyRevision, ev.ListsRevision, ev.Error, ms, reviewMessage(ev))
		if err != nil {
			return fmt.Errorf("console store: event %s: %w", ev.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 || !isAlert {
			continue
		}
		// Join the latest alert nobody has acted on for the same learner,
		// category and host.
		var parent string
		err = tx.QueryRowContext(ctx, `SELECT id FROM events
			WHERE alert = 1 AND parent IS NULL AND status = 'new' AND id <> ?
			  AND learner = ? AND category = ? AND host = ? AND time_ms BETWEEN ? AND ?
			ORDER BY time_ms DESC LIMIT 1`,
			ev.ID, learnerOf(ev), ev.Category, ev.Host, ms-groupWindow.Milliseconds(), ms+groupWindow.Milliseconds()).Scan(&parent)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return fmt.Errorf("console store: grouping %s: %w", ev.ID, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE events SET parent = ? WHERE id = ?`, parent, ev.ID); err != nil {
			return fmt.Errorf("console store: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE events SET count = count + 1, last_ms = MAX(last_ms, ?) WHERE id = ?`, ms, parent); err != nil {
			return fmt.Errorf("console store: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("console store: %w", err)
	}
	return nil
}

// Row is one stored event with what staff did about it.
type Row struct {
	events.Event
	Learner string
	Status  string
	Parent  string
	Count   int
	Last    time.Time
}

const rowCols = `id, time_ms, kind, action, category, rule, reason, severity, alert, client_ip, user, learner, groups,
	host, url, method, qname, qtype, ref, source, phase, instance, policy_revision, lists_revision, error,
	status, COALESCE(parent, ''), count, last_ms, message`

type scanner interface{ Scan(dest ...any) error }

func scanRow(sc scanner) (Row, error) {
	var r Row
	var ms, last int64
	var kind, action, sev, source, phase, groups string
	err := sc.Scan(&r.ID, &ms, &kind, &action, &r.Category, &r.Rule, &r.Reason, &sev, &r.Alert, &r.ClientIP, &r.User,
		&r.Learner, &groups, &r.Host, &r.URL, &r.Method, &r.QName, &r.QType, &r.Ref, &source, &phase, &r.Instance,
		&r.PolicyRevision, &r.ListsRevision, &r.Error, &r.Status, &r.Parent, &r.Count, &last, &r.Message)
	if err != nil {
		return r, err
	}
	r.Time, r.Last = time.UnixMilli(ms).UTC(), time.UnixMilli(last).UTC()
	r.Kind, r.Action, r.Severity = events.Kind(kind), verdict.Action(action), verdict.Severity(sev)
	r.Source, r.Phase = verdict.Source(source), verdict.Phase(phase)
	if g := strings.Trim(groups, ","); g != "" {
		r.Groups = strings.Split(g, ",")
	}
	return r, nil
}

func (s *Store) query(ctx context.Context, q string, args ...any) ([]Row, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("console store: %w", err)
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, fmt.Errorf("console store: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("console store: %w", err)
	}
	return out, nil
}

// ErrNotFound is returned for an unknown event ID.
var ErrNotFound = errors.New("not found")

// Event returns one event.
func (s *Store) Event(ctx context.Context, id string) (Row, error) {
	r, err := scanRow(s.db.QueryRowContext(ctx, `SELECT `+rowCols+` FROM events WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("console store: %w", err)
	}
	return r, nil
}

// AlertFilter selects alerts. Zero fields select everything.
type AlertFilter struct {
	Status   string // "open" (new and acknowledged), "closed", "all"
	Severity string // the least severity shown
	Category string
	Group    string
	From, To time.Time // To is exclusive
	Limit    int
}

// Alerts returns alert groups (an alert and the later ones joined to it),
// new ones first, then by severity and time.
func (s *Store) Alerts(ctx context.Context, f AlertFilter) ([]Row, error) {
	q := `SELECT ` + rowCols + ` FROM events WHERE alert = 1 AND parent IS NULL`
	var args []any
	switch f.Status {
	case "", "open":
		q += ` AND status IN ('new', 'acknowledged')`
	case "closed":
		q += ` AND status = 'closed'`
	}
	if r, ok := sevRank[verdict.Severity(f.Severity)]; ok && f.Severity != "" {
		q += ` AND sev_rank >= ?`
		args = append(args, r)
	}
	if f.Category != "" {
		q += ` AND category = ?`
		args = append(args, f.Category)
	}
	if f.Group != "" {
		q += ` AND groups LIKE ? ESCAPE '\'`
		args = append(args, "%,"+likeEscape(f.Group)+",%")
	}
	if !f.From.IsZero() {
		q += ` AND last_ms >= ?`
		args = append(args, f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		q += ` AND time_ms < ?`
		args = append(args, f.To.UnixMilli())
	}
	if f.Limit <= 0 {
		f.Limit = 200
	}
	q += ` ORDER BY (status = 'new') DESC, last_ms DESC, sev_rank DESC LIMIT ?`
	args = append(args, f.Limit)
	return s.query(ctx, q, args...)
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// Related returns the events joined to an alert, and the review requests
// and DNS follow-ups that refer to an event.
func (s *Store) Related(ctx context.Context, id string) ([]Row, error) {
	return s.query(ctx, `SELECT `+rowCols+` FROM events WHERE (parent = ? OR ref = ?) AND id <> ? ORDER BY time_ms DESC LIMIT 500`, id, id, id)
}

// Learner returns the events of one user or device address, newest first.
func (s *Store) Learner(ctx context.Context, key string, limit int) ([]Row, error) {
	return s.query(ctx, `SELECT `+rowCols+` FROM events WHERE learner = ? OR client_ip = ? ORDER BY time_ms DESC LIMIT ?`, key, key, limit)
}

// CategoryCount is a number of events in one category.
type CategoryCount struct {
	Category string
	Blocks   int
	Alerts   int
}

// LearnerCounts counts one learner's events per category.
func (s *Store) LearnerCounts(ctx context.Context, key string) ([]CategoryCount, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT category, SUM(kind = 'block'), SUM(alert) FROM events
		WHERE (learner = ? OR client_ip = ?) AND kind <> 'review_request' AND category <> ''
		GROUP BY category ORDER BY COUNT(*) DESC`, key, key)
	if err != nil {
		return nil, fmt.Errorf("console store: %w", err)
	}
	defer rows.Close()
	var out []CategoryCount
	for rows.Next() {
		var c CategoryCount
		if err := rows.Scan(&c.Category, &c.Blocks, &c.Alerts); err != nil {
			return nil, fmt.Errorf("console store: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Reviews returns review requests: pending ("new") first.
func (s *Store) Reviews(ctx context.Context, status string, limit int) ([]Row, error) {
	q := `SELECT ` + rowCols + ` FROM events WHERE kind = 'review_request'`
	var args []any
	if status != "" && status != "all" {
		q += ` AND status = ?`
		args = append(args, status)
	}
	q += ` ORDER BY (status = 'new') DESC, time_ms DESC LIMIT ?`
	return s.query(ctx, q, append(args, limit)...)
}

// DeclinedReply is staff's reply to the latest declined review request
// that learner (a user, or a device address) made about the block ref, or
// "" when there is none.
func (s *Store) DeclinedReply(ctx context.Context, ref, learner string) (string, error) {
	var note string
	err := s.db.QueryRowContext(ctx, `SELECT a.note FROM events e JOIN actions a ON a.event_id = e.id
		WHERE e.kind = 'review_request' AND e.ref = ? AND e.learner = ? AND e.status = 'declined' AND a.action = 'declined'
		ORDER BY a.seq DESC LIMIT 1`, ref, learner).Scan(&note)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("console store: %w", err)
	}
	return note, nil
}

// Action is one thing a member of staff did about an event.
type Action struct {
	Time        time.Time
	Staff       string
	Action      string
	Note        string
	ExceptionID string
}

// Act records an action on an event and, when status is not "", moves the
// event to it; from says which statuses it may move from (none: any).
// It reports ErrNotFound, or errConflict when the event was not in one of
// the from statuses (someone else acted first).
func (s *Store) Act(ctx context.Context, id string, a Action, status string, from ...string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("console store: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var cur string
	if err := tx.QueryRowContext(ctx, `SELECT status FROM events WHERE id = ?`, id).Scan(&cur); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		return fmt.Errorf("console store: %w", err)
	}
	if len(from) > 0 && !contains(from, cur) {
		return fmt.Errorf("%w: it is %s", errConflict, cur)
	}
	if status != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE events SET status = ? WHERE id = ?`, status, id); err != nil {
			return fmt.Errorf("console store: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO actions (event_id, time_ms, staff, action, note, exception_id) VALUES (?,?,?,?,?,?)`,
		id, a.Time.UnixMilli(), a.Staff, a.Action, a.Note, a.ExceptionID); err != nil {
		return fmt.Errorf("console store: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("console store: %w", err)
	}
	return nil
}

var errConflict = errors.New("the event is no longer in that state")

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Actions returns what staff did about an event, oldest first.
func (s *Store) Actions(ctx context.Context, id string) ([]Action, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT time_ms, staff, action, note, exception_id FROM actions WHERE event_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("console store: %w", err)
	}
	defer rows.Close()
	var out []Action
	for rows.Next() {
		var a Action
		var ms int64
		if err := rows.Scan(&ms, &a.Staff, &a.Action, &a.Note, &a.ExceptionID); err != nil {
			return nil, fmt.Errorf("console store: %w", err)
		}
		a.Time = time.UnixMilli(ms).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	Seq      int64
	Time     time.Time
	Staff    string
	Role     string
	ClientIP string
	Action   string
	Target   string
	Detail   string
}

// Audit appends to the audit log, which the database itself refuses to
// change or delete (triggers).
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit (time_ms, staff, role, client_ip, action, target, detail) VALUES (?,?,?,?,?,?,?)`,
		e.Time.UnixMilli(), e.Staff, e.Role, e.ClientIP, e.Action, e.Target, e.Detail)
	if err != nil {
		return fmt.Errorf("console audit: %w", err)
	}
	return nil
}

// AuditLog returns the newest entries first.
func (s *Store) AuditLog(ctx context.Context, limit int) ([]AuditEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, time_ms, staff, role, client_ip, action, target, detail FROM audit ORDER BY seq DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("console audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var ms int64
		if err := rows.Scan(&e.Seq, &ms, &e.Staff, &e.Role, &e.ClientIP, &e.Action, &e.Target, &e.Detail); err != nil {
			return nil, fmt.Errorf("console audit: %w", err)
		}
		e.Time = time.UnixMilli(ms).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// DayCount is the blocks and alerts of one category on one day.
type DayCount struct {
	Day      string // YYYY-MM-DD in the console's time zone
	Category string
	Blocks   int
	Alerts   int
}

// Daily counts blocks and alerts per category per day from since on. The
// day is cut in loc, the policy's time zone, as staff read dates.
func (s *Store) Daily(ctx context.Context, since time.Time, loc *time.Location) ([]DayCount, error) {
	_, off := since.In(loc).Zone()
	rows, err := s.db.QueryContext(ctx, `SELECT date((time_ms/1000) + ?, 'unixepoch') AS day, category, SUM(kind = 'block'), SUM(alert)
		FROM events WHERE time_ms >= ? AND kind <> 'review_request' AND category <> ''
		GROUP BY day, category ORDER BY day, category`, off, since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("console store: %w", err)
	}
	defer rows.Close()
	var out []DayCount
	for rows.Next() {
		var d DayCount
		if err := rows.Scan(&d.Day, &d.Category, &d.Blocks, &d.Alerts); err != nil {
			return nil, fmt.Errorf("console store: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Totals counts what the dashboard's headline shows.
type Totals struct {
	OpenAlerts, NewAlerts, PendingReviews int
}

// Totals returns the headline counts.
func (s *Store) Totals(ctx context.Context) (Totals, error) {
	var t Totals
	err := s.db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM events WHERE alert = 1 AND parent IS NULL AND status IN ('new','acknowledged')),
		(SELECT COUNT(*) FROM events WHERE alert = 1 AND parent IS NULL AND status = 'new'),
		(SELECT COUNT(*) FROM events WHERE kind = 'review_request' AND status = 'new')`).Scan(&t.OpenAlerts, &t.NewAlerts, &t.PendingReviews)
	if err != nil {
		return t, fmt.Errorf("console store: %w", err)
	}
	return t, nil
}

// Purge deletes events older than before, with the actions on them. The
// audit log is kept: it is the record of who did what.
func (s *Store) Purge(ctx context.Context, before time.Time) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("console purge: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	ms := before.UnixMilli()
	if _, err := tx.ExecContext(ctx, `DELETE FROM actions WHERE event_id IN (SELECT id FROM events WHERE time_ms < ?)`, ms); err != nil {
		return 0, fmt.Errorf("console purge: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM events WHERE time_ms < ?`, ms)
	if err != nil {
		return 0, fmt.Errorf("console purge: %w", err)
	}
	n, _ := res.RowsAffected()
	// An alert whose first event is gone keeps its later ones as an alert
	// of their own.
	if _, err := tx.ExecContext(ctx, `UPDATE events SET parent = NULL WHERE parent IS NOT NULL AND parent NOT IN (SELECT id FROM events)`); err != nil {
		return 0, fmt.Errorf("console purge: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("console purge: %w", err)
	}
	return n, nil
}
