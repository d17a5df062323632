package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aupguard/aupguard/events"
	"github.com/aupguard/aupguard/exceptions"
)

type alertsData struct {
	Filter     AlertFilter
	From, To   string
	Alerts     []Row
	Categories []string
	Totals     Totals
}

func (c *Console) alerts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := AlertFilter{Status: q.Get("status"), Severity: q.Get("severity"), Category: trimTo(q.Get("category"), 64), Group: trimTo(q.Get("group"), 64)}
	data := alertsData{From: q.Get("from"), To: q.Get("to")}
	if t, err := time.ParseInLocation(exceptions.DateLayout, data.From, c.opts.Location); err == nil {
		f.From = t
	}
	if t, err := time.ParseInLocation(exceptions.DateLayout, data.To, c.opts.Location); err == nil {
		f.To = t.AddDate(0, 0, 1) // "to" is inclusive for people
	}
	rows, err := c.store.Alerts(r.Context(), f)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	data.Filter, data.Alerts = f, rows
	if data.Totals, err = c.store.Totals(r.Context()); err != nil {
		c.fail(w, r, err)
		return
	}
	data.Categories = c.knownCategories(r)
	c.render(w, r, http.StatusOK, "alerts", "Alerts", current(r), data)
}

func (c *Console) knownCategories(r *http.Request) []string {
	days, err := c.store.Daily(r.Context(), c.opts.Now().AddDate(0, 0, -90), c.opts.Location)
	if err != nil {
		return nil
	}
	var cats []string
	for _, d := range days {
		if !slices.Contains(cats, d.Category) {
			cats = append(cats, d.Category)
		}
	}
	sort.Strings(cats)
	return cats
}

type eventData struct {
	Event    Row
	Parent   *Row
	Disputed *Row
	Related  []Row
	Actions  []Action
	// For a review request: the approval form's choices.
	Approve approveForm
}

type approveForm struct {
	Enabled  bool
	Host     string
	Category string
	User     string
	Groups   []string
	Expires  string
	Min, Max string
}

func (c *Console) event(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ev, err := c.store.Event(ctx, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := eventData{Event: ev}
	if ev.Parent != "" {
		if p, err := c.store.Event(ctx, ev.Parent); err == nil {
			d.Parent = &p
		}
	}
	if ev.Ref != "" {
		if p, err := c.store.Event(ctx, ev.Ref); err == nil {
			d.Disputed = &p
		}
	}
	if d.Related, err = c.store.Related(ctx, ev.ID); err != nil {
		c.fail(w, r, err)
		return
	}
	if d.Actions, err = c.store.Actions(ctx, ev.ID); err != nil {
		c.fail(w, r, err)
		return
	}
	if ev.Kind == events.KindReviewRequest {
		d.Approve = c.approveChoices(ev, d.Disputed)
	}
	c.render(w, r, http.StatusOK, "event", eventTitle(ev), current(r), d)
}

func eventTitle(ev Row) string {
	switch ev.Kind {
	case events.KindReviewRequest:
		return "Review request"
	case events.KindAlert:
		return "Alert"
	}
	if ev.Alert {
		return "Alert"
	}
	return "Blocked request"
}

func (c *Console) approveChoices(ev Row, disputed *Row) approveForm {
	today := c.opts.Now().In(c.opts.Location)
	f := approveForm{
		Enabled: c.opts.Policy != nil, Host: ev.Host, Category: ev.Category, User: ev.User, Groups: ev.Groups,
		Expires: today.AddDate(0, 0, c.cfg.ExceptionDays).Format(exceptions.DateLayout),
		Min:     today.Format(exceptions.DateLayout),
		Max:     today.Add(exceptions.MaxDuration).Format(exceptions.DateLayout),
	}
	if disputed != nil {
		if f.Host == "" {
			f.Host = disputed.Host
		}
		if f.Category == "" {
			f.Category = disputed.Category
		}
		// A review posted by a client with no groups of its own was
		// decided as the default group: the block names it.
		if len(f.Groups) == 0 && (f.User == "" || f.User == disputed.User) {
			f.Groups = disputed.Groups
		}
	}
	return f
}

func (c *Console) ack(w http.ResponseWriter, r *http.Request) {
	c.alertAction(w, r, "acknowledged", StatusAcknowledged, StatusNew)
}

func (c *Console) closeAlert(w http.ResponseWriter, r *http.Request) {
	c.alertAction(w, r, "closed", StatusClosed, StatusNew, StatusAcknowledged)
}

func (c *Console) alertAction(w http.ResponseWriter, r *http.Request, verb, status string, from ...string) {
	id := r.PathValue("id")
	note := trimTo(r.PostForm.Get("note"), 2000)
	ev, err := c.store.Event(r.Context(), id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if !ev.Alert || ev.Kind == events.KindReviewRequest {
		c.render(w, r, http.StatusBadRequest, "error", "Not an alert", current(r), errorData{Message: "Only alerts can be " + verb + "."})
		return
	}
	err = c.store.Act(r.Context(), id, Action{Time: c.opts.Now(), Staff: current(r).user, Action: verb, Note: note}, status, from...)
	if errors.Is(err, errConflict) {
		c.render(w, r, http.StatusConflict, "error", "Already handled", current(r), errorData{Message: "Someone else has already acted on this alert (" + err.Error() + "). Reload it to see what was done."})
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.auditAs(r, "alert "+verb, id, fmt.Sprintf("learner %s, category %s, host %s; note: %s", ev.Learner, ev.Category, ev.Host, note))
	http.Redirect(w, r, "/events/"+url.PathEscape(id), http.StatusSeeOther)
}

type findData struct {
	Ref     string
	Missing bool
}

// find looks an event up by the reference a learner reads from the block
// page (the event ID), tolerating spaces and lower case.
func (c *Console) find(w http.ResponseWriter, r *http.Request) {
	ref := strings.ToUpper(strings.Join(strings.Fields(r.URL.Query().Get("ref")), ""))
	ref = trimTo(ref, 64)
	if ref == "" {
		c.render(w, r, http.StatusOK, "find", "Find by reference", current(r), findData{})
		return
	}
	c.auditAs(r, "find by reference", ref, "")
	if _, err := c.store.Event(r.Context(), ref); err == nil {
		http.Redirect(w, r, "/events/"+url.PathEscape(ref), http.StatusSeeOther)
		return
	}
	c.render(w, r, http.StatusNotFound, "find", "Find by reference", current(r), findData{Ref: ref, Missing: true})
}

type learnerData struct {
	Key    string
	Events []Row
	Counts []CategoryCount
	Groups []string
}

func (c *Console) learner(w http.ResponseWriter, r *http.Request) {
	key := trimTo(r.PathValue("key"), 128)
	rows, err := c.store.Learner(r.Context(), key, 500)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	counts, err := c.store.LearnerCounts(r.Context(), key)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := learnerData{Key: key, Events: rows, Counts: counts}
	for _, ev := range rows {
		for _, g := range ev.Groups {
			if !slices.Contains(d.Groups, g) {
				d.Groups = append(d.Groups, g)
			}
		}
	}
	// Who looked at whose history is itself a safeguarding record.
	c.auditAs(r, "view learner timeline", key, "")
	c.render(w, r, http.StatusOK, "learner", "Learner "+key, current(r), d)
}

type reviewsData struct {
	Status  string
	Reviews []Row
	Totals  Totals
}

func (c *Console) reviews(w http.ResponseWriter, r *http.Request) {
	status := r.URL.Query().Get("status")
	if status == "" {
		status = StatusNew
	}
	rows, err := c.store.Reviews(r.Context(), status, 300)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	t, err := c.store.Totals(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "reviews", "Review requests", current(r), reviewsData{Status: status, Reviews: rows, Totals: t})
}

// reviewFor loads a review request that is still pending.
func (c *Console) reviewFor(w http.ResponseWriter, r *http.Request) (Row, bool) {
	ev, err := c.store.Event(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return ev, false
	}
	if ev.Kind != events.KindReviewRequest {
		c.render(w, r, http.StatusBadRequest, "error", "Not a review request", current(r), errorData{Message: "Only review requests can be approved or declined."})
		return ev, false
	}
	if ev.Status != StatusNew {
		c.render(w, r, http.StatusConflict, "error", "Already decided", current(r), errorData{Message: "This review request was already " + ev.Status + "."})
		return ev, false
	}
	return ev, true
}

// approve turns a review request into a time-limited exception: written to
// the policy overlay, activated by a reload, then recorded. If the policy
// does not take it, the file is put back and nothing is recorded as
// approved.
func (c *Console) approve(w http.ResponseWriter, r *http.Request) {
	if c.opts.Policy == nil {
		c.render(w, r, http.StatusServiceUnavailable, "error", "Approvals are off", current(r), errorData{Message: "This console has no policy engine to add exceptions to."})
		return
	}
	c.approveMu.Lock()
	defer c.approveMu.Unlock()
	ev, ok := c.reviewFor(w, r)
	if !ok {
		return
	}
	var disputed *Row
	if ev.Ref != "" {
		if p, err := c.store.Event(r.Context(), ev.Ref); err == nil {
			disputed = &p
		}
	}
	choices := c.approveChoices(ev, disputed)
	f := r.PostForm
	ss := current(r)
	now := c.opts.Now()
	ex := exceptions.Exception{
		ID: exceptions.NewID(), Expires: strings.TrimSpace(f.Get("expires")), ApprovedBy: ss.user,
		Created: now.UTC().Format(time.RFC3339), Ref: ev.ID, Note: trimTo(strings.ReplaceAll(f.Get("note"), "\n", " "), 500),
	}
	// Scope and subject come from the request, not from free text: staff
	// choose among what the learner's request names.
	switch f.Get("scope") {
	case "host":
		ex.Host = strings.ToLower(choices.Host)
	case "category":
		ex.Category = choices.Category
	}
	switch who := f.Get("who"); {
	case who == "user":
		ex.User = choices.User
	case strings.HasPrefix(who, "group:") && slices.Contains(choices.Groups, strings.TrimPrefix(who, "group:")):
		ex.Group = strings.TrimPrefix(who, "group:")
	}
	if err := ex.Validate(now.In(c.opts.Location)); err != nil {
		c.render(w, r, http.StatusBadRequest, "error", "Exception not valid", ss, errorData{Message: "The exception could not be made: " + err.Error()})
		return
	}
	before, err := c.opts.Exceptions.List()
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.opts.Exceptions.Add(ex, now.In(c.opts.Location)); err != nil {
		c.fail(w, r, err)
		return
	}
	if _, err := c.opts.Policy.Reload(r.Context(), "console: exception "+ex.ID+" by "+ss.user); err != nil {
		if rerr := c.opts.Exceptions.Restore(before); rerr != nil {
			c.log.Error("console: restoring the exceptions file after a rejected reload", "err", rerr)
		}
		c.log.Error("console: the policy did not take an exception", "exception", ex.ID, "err", err)
		c.auditAs(r, "exception rejected by policy", ex.ID, err.Error())
		c.render(w, r, http.StatusInternalServerError, "error", "Policy did not accept the exception", ss, errorData{Message: "The policy engine refused the change, so nothing was approved. An admin can see why on the Policy page."})
		return
	}
	rev := c.opts.Policy.Current().Revision()
	detail := fmt.Sprintf("%s may reach %s until %s; policy revision %s", ex.Who(), ex.What(), ex.Expires, rev)
	if err := c.store.Act(r.Context(), ev.ID, Action{Time: now, Staff: ss.user, Action: "approved", Note: detail + noteSuffix(ex.Note), ExceptionID: ex.ID}, StatusApproved, StatusNew); err != nil {
		c.fail(w, r, err)
		return
	}
	c.auditAs(r, "review approved", ev.ID, "exception "+ex.ID+": "+detail+noteSuffix(ex.Note))
	http.Redirect(w, r, "/events/"+url.PathEscape(ev.ID), http.StatusSeeOther)
}

func noteSuffix(n string) string {
	if n == "" {
		return ""
	}
	return "; note: " + n
}

func (c *Console) decline(w http.ResponseWriter, r *http.Request) {
	c.approveMu.Lock()
	defer c.approveMu.Unlock()
	ev, ok := c.reviewFor(w, r)
	if !ok {
		return
	}
	reply := trimTo(r.PostForm.Get("reply"), 2000)
	if reply == "" {
		c.render(w, r, http.StatusBadRequest, "error", "A reply is needed", current(r), errorData{Message: "Say why the request is declined: the reply is kept with the request."})
		return
	}
	if err := c.store.Act(r.Context(), ev.ID, Action{Time: c.opts.Now(), Staff: current(r).user, Action: "declined", Note: reply}, StatusDeclined, StatusNew); err != nil {
		c.fail(w, r, err)
		return
	}
	c.auditAs(r, "review declined", ev.ID, "reply: "+reply)
	http.Redirect(w, r, "/events/"+url.PathEscape(ev.ID), http.StatusSeeOther)
}

type exceptionsData struct {
	Active, Expired []exceptions.Exception
	Today           string
}

func (c *Console) exceptionsPage(w http.ResponseWriter, r *http.Request) {
	list, err := c.opts.Exceptions.List()
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := exceptionsData{Today: c.opts.Now().In(c.opts.Location).Format(exceptions.DateLayout)}
	for _, e := range list {
		if e.Active(d.Today) {
			d.Active = append(d.Active, e)
		} else {
			d.Expired = append(d.Expired, e)
		}
	}
	c.render(w, r, http.StatusOK, "exceptions", "Exceptions", current(r), d)
}

func (c *Console) revoke(w http.ResponseWriter, r *http.Request) {
	c.approveMu.Lock()
	defer c.approveMu.Unlock()
	id := r.PathValue("id")
	before, err := c.opts.Exceptions.List()
	if err != nil {
		c.fail(w, r, err)
		return
	}
	gone, ok, err := c.opts.Exceptions.Remove(id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if !ok {
		c.fail(w, r, ErrNotFound)
		return
	}
	if c.opts.Policy != nil {
		if _, err := c.opts.Policy.Reload(r.Context(), "console: exception "+id+" revoked by "+current(r).user); err != nil {
			_ = c.opts.Exceptions.Restore(before)
			c.fail(w, r, err)
			return
		}
	}
	c.auditAs(r, "exception revoked", id, fmt.Sprintf("%s, %s, until %s", gone.Who(), gone.What(), gone.Expires))
	http.Redirect(w, r, "/exceptions", http.StatusSeeOther)
}

type dashboardData struct {
	Days    int
	Overall chart
	Charts  []chart
	Totals  Totals
	Table   []CategoryCount
}

const dashboardDays = 14

func (c *Console) dashboard(w http.ResponseWriter, r *http.Request) {
	today := c.opts.Now().In(c.opts.Location)
	start := time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, c.opts.Location).AddDate(0, 0, -(dashboardDays - 1))
	rows, err := c.store.Daily(r.Context(), start, c.opts.Location)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	t, err := c.store.Totals(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := dashboardData{Days: dashboardDays, Totals: t}
	d.Overall, d.Charts, d.Table = charts(rows, start, dashboardDays)
	c.render(w, r, http.StatusOK, "dashboard", "Dashboard", current(r), d)
}

func (c *Console) audit(w http.ResponseWriter, r *http.Request) {
	log, err := c.store.AuditLog(r.Context(), 500)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "audit", "Audit log", current(r), log)
}

func (c *Console) users(w http.ResponseWriter, r *http.Request) {
	_ = c.opts.Accounts.Refresh()
	c.render(w, r, http.StatusOK, "users", "Staff accounts", current(r), c.opts.Accounts.List())
}

type policyData struct {
	Revision  string
	Activated time.Time
	Files     []string
	History   []historyRow
}

type historyRow struct {
	Time                        time.Time
	Revision, Previous, Trigger string
	Accepted                    bool
	Error                       string
}

func (c *Console) policy(w http.ResponseWriter, r *http.Request) {
	var d policyData
	if c.opts.Policy != nil {
		p := c.opts.Policy.Current()
		d.Revision, d.Activated, d.Files = p.Revision(), p.Activated(), p.Files()
		h := c.opts.Policy.History()
		for i := len(h) - 1; i >= 0; i-- {
			x := h[i]
			d.History = append(d.History, historyRow{x.Time, x.Revision, x.Previous, x.Trigger, x.Accepted, x.Error})
		}
	}
	c.render(w, r, http.StatusOK, "policy", "Policy", current(r), d)
}
