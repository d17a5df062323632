package console

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aupguard/aupguard/staff"
)

// The security headers on every response. The pages need nothing but
// their own stylesheet: no script at all, no frames, no inline styles.
var securityHeaders = map[string]string{
	"Content-Security-Policy":    "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
	"X-Frame-Options":            "DENY",
	"X-Content-Type-Options":     "nosniff",
	"Referrer-Policy":            "no-referrer",
	"Cache-Control":              "no-store",
	"Cross-Origin-Opener-Policy": "same-origin",
}

type ctxKey struct{}

// current is the session a handler runs in (set by requireRole).
func current(r *http.Request) session {
	ss, _ := r.Context().Value(ctxKey{}).(session)
	return ss
}

func (c *Console) cookieName() string {
	if c.cfg.TLS.Enabled() {
		// __Host-: the browser keeps it only if Secure, for this host,
		// for path / — no sibling domain can set or shadow it.
		return "__Host-aupguard_session"
	}
	return "aupguard_session"
}

func (c *Console) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFS())))
	mux.HandleFunc("GET /login", c.loginPage)
	mux.HandleFunc("POST /login", c.login)
	mux.HandleFunc("POST /logout", c.requireRole(c.logout))
	mux.HandleFunc("GET /{$}", c.requireRole(c.home))

	sg := []staff.Role{staff.RoleSafeguarding}
	mux.HandleFunc("GET /alerts", c.requireRole(c.alerts, sg...))
	mux.HandleFunc("GET /events/{id}", c.requireRole(c.event, sg...))
	mux.HandleFunc("POST /events/{id}/ack", c.requireRole(c.ack, sg...))
	mux.HandleFunc("POST /events/{id}/close", c.requireRole(c.closeAlert, sg...))
	mux.HandleFunc("GET /find", c.requireRole(c.find, sg...))
	mux.HandleFunc("GET /learners/{key}", c.requireRole(c.learner, sg...))
	mux.HandleFunc("GET /reviews", c.requireRole(c.reviews, sg...))
	mux.HandleFunc("POST /reviews/{id}/approve", c.requireRole(c.approve, sg...))
	mux.HandleFunc("POST /reviews/{id}/decline", c.requireRole(c.decline, sg...))
	mux.HandleFunc("GET /exceptions", c.requireRole(c.exceptionsPage, staff.RoleSafeguarding, staff.RoleAdmin))
	mux.HandleFunc("POST /exceptions/{id}/revoke", c.requireRole(c.revoke, staff.RoleSafeguarding, staff.RoleAdmin))
	mux.HandleFunc("GET /dashboard", c.requireRole(c.dashboard))
	mux.HandleFunc("GET /audit", c.requireRole(c.audit, staff.RoleAdmin))
	mux.HandleFunc("GET /users", c.requireRole(c.users, staff.RoleAdmin))
	mux.HandleFunc("GET /policy", c.requireRole(c.policy, staff.RoleAdmin))
	mux.HandleFunc("GET /api/summary", c.requireRole(c.apiSummary))
	mux.HandleFunc("GET /api/alerts", c.requireRole(c.apiAlerts, sg...))
	return c.headers(mux)
}

// headers sets the security headers, and refuses any state-changing
// request whose Origin is another site (a second line behind the CSRF
// token, and the login form's only one: there is no session yet to tie a
// token to).
func (c *Console) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for k, v := range securityHeaders {
			h.Set(k, v)
		}
		if c.cfg.TLS.Enabled() {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !c.sameOrigin(r) {
			http.Error(w, "cross-site request refused", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin refuses a request a browser says is from another site.
// Sec-Fetch-Site, which every current browser sends, decides when present.
// Otherwise a real Origin must be this console's; "null" (what a browser
// sends for a form under Referrer-Policy: no-referrer) and no Origin at all
// (not a browser) pass, and the session's CSRF token is what guards those.
func (c *Console) sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	case "":
	default: // cross-site, same-site (a sibling host)
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// requireRole runs h for a live session whose role is one of roles (any
// role when none is given). Without a session a page redirects to /login
// and an API call gets 401; with the wrong role, 403. A POST must carry the
// session's CSRF token.
func (c *Console) requireRole(h http.HandlerFunc, roles ...staff.Role) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ss, ok := c.sessionOf(r)
		if !ok {
			if strings.HasPrefix(r.URL.Path, "/api/") {
				w.Header().Set("WWW-Authenticate", `Cookie realm="aupguard console"`)
				http.Error(w, `{"error":"log in first"}`, http.StatusUnauthorized)
				return
			}
			next := r.URL.Path
			if r.Method == http.MethodGet && r.URL.RawQuery != "" {
				next += "?" + r.URL.RawQuery
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(next), http.StatusSeeOther)
			return
		}
		if len(roles) > 0 && !roleIn(ss.role, roles) {
			c.render(w, r, http.StatusForbidden, "error", "Not available to your role", ss, errorData{
				Message: "Your account's role (" + string(ss.role) + ") does not include this page."})
			return
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil || !validCSRF(ss, r.PostForm.Get("csrf")) {
				c.render(w, r, http.StatusForbidden, "error", "Form expired", ss, errorData{
					Message: "This form is out of date or did not come from the console. Go back, reload the page and try again."})
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, ss)))
	}
}

func roleIn(r staff.Role, roles []staff.Role) bool {
	for _, x := range roles {
		if x == r {
			return true
		}
	}
	return false
}

// sessionOf finds the request's live session. The account is looked up
// again each time: an account removed, given another role or a new
// password with `aupguard users` loses its sessions at once.
func (c *Console) sessionOf(r *http.Request) (session, bool) {
	ck, err := r.Cookie(c.cookieName())
	if err != nil || ck.Value == "" {
		return session{}, false
	}
	ss, ok := c.sess.get(ck.Value)
	if !ok {
		return session{}, false
	}
	if err := c.opts.Accounts.Refresh(); err != nil {
		c.log.Error("console: re-reading staff accounts", "err", err)
	}
	u, ok := c.opts.Accounts.Lookup(ss.user)
	if !ok || u.Role != ss.role || !u.Changed.Equal(ss.changed) {
		c.sess.endUser(ss.user)
		return session{}, false
	}
	return ss, true
}

func (c *Console) setCookie(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: c.cookieName(), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: c.cfg.TLS.Enabled(),
		// Lax, not Strict: a link to an alert in an e-mail must open it
		// for a logged-in member of staff. Every change is a POST, which
		// Lax never sends cross-site, and carries a CSRF token.
		SameSite: http.SameSiteLaxMode,
	})
}

type loginData struct {
	Next     string
	Username string
	Message  string
}

// safeNext keeps a post-login redirect on this console.
func safeNext(n string) string {
	if n == "" || !strings.HasPrefix(n, "/") || strings.HasPrefix(n, "//") || strings.HasPrefix(n, "/\\") || strings.ContainsAny(n, "\r\n") {
		return "/"
	}
	return n
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := c.sessionOf(r); ok {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	c.render(w, r, http.StatusOK, "login", "Sign in", session{}, loginData{Next: safeNext(r.URL.Query().Get("next"))})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8192)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	name := strings.ToLower(strings.TrimSpace(r.PostForm.Get("username")))
	password := r.PostForm.Get("password")
	next := safeNext(r.PostForm.Get("next"))
	ip := clientIP(r)
	now := c.opts.Now()
	data := loginData{Next: next, Username: trimTo(name, 64)}
	// Both buckets are charged: the address for spraying many names, the
	// name for a slow guess at one account from many addresses.
	okIP := c.ipLim.allow("ip:"+ip, now)
	okUser := c.usLim.allow("user:"+name, now)
	if !okIP || !okUser {
		c.auditRaw(r.Context(), AuditEntry{Staff: trimTo(name, 64), ClientIP: ip, Action: "login refused", Detail: "too many attempts"})
		w.Header().Set("Retry-After", "60")
		data.Message = "Too many sign-in attempts. Wait a minute and try again."
		c.render(w, r, http.StatusTooManyRequests, "login", "Sign in", session{}, data)
		return
	}
	if err := c.opts.Accounts.Refresh(); err != nil {
		c.log.Error("console: re-reading staff accounts", "err", err)
	}
	u, err := c.opts.Accounts.Authenticate(name, password)
	if err != nil {
		c.auditRaw(r.Context(), AuditEntry{Staff: trimTo(name, 64), ClientIP: ip, Action: "login failed"})
		data.Message = "Unknown user name or wrong password."
		c.render(w, r, http.StatusUnauthorized, "login", "Sign in", session{}, data)
		return
	}
	// A fresh session ID at every login (no fixation); an old cookie's
	// session ends.
	if ck, err := r.Cookie(c.cookieName()); err == nil {
		c.sess.end(ck.Value)
	}
	ss := c.sess.create(u)
	c.setCookie(w, ss.id, 0)
	c.auditRaw(r.Context(), AuditEntry{Staff: u.Name, Role: string(u.Role), ClientIP: ip, Action: "login"})
	if next == "/" {
		next = homeOf(u.Role)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func homeOf(role staff.Role) string {
	switch role {
	case staff.RoleSafeguarding:
		return "/alerts"
	case staff.RoleAdmin:
		return "/policy"
	default:
		return "/dashboard"
	}
}

func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, homeOf(current(r).role), http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	ss := current(r)
	c.sess.end(ss.id)
	c.setCookie(w, "", -1)
	c.auditAs(r, "logout", "", "")
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// auditAs records a staff action by the request's session.
func (c *Console) auditAs(r *http.Request, action, target, detail string) {
	ss := current(r)
	c.auditRaw(r.Context(), AuditEntry{Staff: ss.user, Role: string(ss.role), ClientIP: clientIP(r), Action: action, Target: target, Detail: detail})
}

func (c *Console) auditRaw(ctx context.Context, e AuditEntry) {
	e.Time = c.opts.Now()
	if err := c.store.Audit(context.WithoutCancel(ctx), e); err != nil {
		c.log.Error("console: writing the audit log", "action", e.Action, "err", err)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (c *Console) apiSummary(w http.ResponseWriter, r *http.Request) {
	t, err := c.store.Totals(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, map[string]int{"open_alerts": t.OpenAlerts, "new_alerts": t.NewAlerts, "pending_reviews": t.PendingReviews})
}

func (c *Console) apiAlerts(w http.ResponseWriter, r *http.Request) {
	rows, err := c.store.Alerts(r.Context(), AlertFilter{Status: "open"})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	type alert struct {
		ID       string    `json:"id"`
		Time     time.Time `json:"time"`
		Last     time.Time `json:"last"`
		Severity string    `json:"severity"`
		Category string    `json:"category"`
		Learner  string    `json:"learner"`
		Host     string    `json:"host"`
		Count    int       `json:"count"`
		Status   string    `json:"status"`
	}
	out := make([]alert, 0, len(rows))
	for _, a := range rows {
		out = append(out, alert{a.ID, a.Time, a.Last, string(a.Severity), a.Category, a.Learner, a.Host, a.Count, a.Status})
	}
	writeJSON(w, out)
}

type errorData struct{ Message string }

// fail answers an unexpected error without its details (they are logged).
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrNotFound) {
		c.render(w, r, http.StatusNotFound, "error", "Not found", current(r), errorData{Message: "There is no such record. It may be past the retention period."})
		return
	}
	c.log.Error("console: request failed", "path", r.URL.Path, "err", err)
	c.render(w, r, http.StatusInternalServerError, "error", "Something went wrong", current(r), errorData{Message: "The console could not complete this request. It has been logged."})
}
