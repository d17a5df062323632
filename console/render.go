package console

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aupguard/aupguard/exceptions"
	"github.com/aupguard/aupguard/staff"
)

// pageNames are the templates under templates/, each rendered inside
// layout.html.
var pageNames = []string{"login", "error", "alerts", "event", "find", "learner", "reviews", "exceptions", "dashboard", "audit", "users", "policy"}

// exRows is one table of the exceptions page.
type exRows struct {
	Rows []exceptions.Exception
	CSRF string
	Live bool
}

// view is what every page template gets.
type view struct {
	Title  string
	Page   string
	User   string
	Role   string
	CSRF   string
	Data   any
	Signed bool
}

func parsePages(loc *time.Location) (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.In(loc).Format("Mon 2 Jan 2006, 15:04")
		},
		"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"day": func(t time.Time) string { return t.In(loc).Format("2 Jan") },
		"human": func(s string) string {
			if s == "" {
				return "—"
			}
			return strings.ReplaceAll(s, "_", " ")
		},
		"dash": func(s string) string {
			if s == "" {
				return "—"
			}
			return s
		},
		// pathq makes one path segment; html/template then escapes the
		// attribute.
		"pathq": url.PathEscape,
		"join":  strings.Join,
		"short": func(s string, n int) string {
			if len([]rune(s)) <= n {
				return s
			}
			return string([]rune(s)[:n-1]) + "…"
		},
		"list": func(xs ...string) []string { return xs },
		"add":  func(a, b int) int { return a + b },
		"exrows": func(rows []exceptions.Exception, csrf string, live bool) exRows {
			return exRows{Rows: rows, CSRF: csrf, Live: live}
		},
		"sg":    func(role string) bool { return role == string(staff.RoleSafeguarding) },
		"admin": func(role string) bool { return role == string(staff.RoleAdmin) },
		"plural": func(n int, one, many string) string {
			if n == 1 {
				return fmt.Sprintf("%d %s", n, one)
			}
			return fmt.Sprintf("%d %s", n, many)
		},
	}
	layout, err := assets.ReadFile("templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("console templates: %w", err)
	}
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New("layout").Funcs(funcs).Parse(string(layout))
		if err != nil {
			return nil, fmt.Errorf("console templates: layout: %w", err)
		}
		if t, err = t.ParseFS(assets, "templates/"+name+".html"); err != nil {
			return nil, fmt.Errorf("console templates: %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// render writes a page; a template error (a bug) becomes a plain 500
// rather than half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name, title string, ss session, data any) {
	v := view{Title: title, Page: name, User: ss.user, Role: string(ss.role), CSRF: ss.csrf, Data: data, Signed: ss.id != ""}
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		c.log.Error("console: rendering a page", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}
