package proxy

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	"io"
	"net/http"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aupguard/aupguard/verdict"
)

//go:embed templates/page.html templates/block.txt
var templateFS embed.FS

// pages renders what the proxy shows people: the block page, the review
// confirmation and gateway errors, as HTML for browsers and plain text for
// everything else.
type pages struct {
	cfg       BlockPageConfig
	html      *htmltemplate.Template
	text      *texttemplate.Template
	reviewURL string
	csp       string
}

func newPages(cfg BlockPageConfig) (*pages, error) {
	funcs := htmltemplate.FuncMap{"tel": telURL}
	h, err := htmltemplate.New("page.html").Funcs(funcs).ParseFS(templateFS, "templates/page.html")
	if err != nil {
		return nil, fmt.Errorf("block page template: %w", err)
	}
	t, err := texttemplate.New("block.txt").ParseFS(templateFS, "templates/block.txt")
	if err != nil {
		return nil, fmt.Errorf("block page template: %w", err)
	}
	p := &pages{cfg: cfg, html: h, text: t}
	formAction := "'none'"
	if cfg.ReviewEnabled {
		origin := "http://" + strings.ToLower(cfg.ReviewHost)
		p.reviewURL = origin + "/review"
		formAction = origin
	}
	// The page needs nothing from anywhere: no scripts, no fetches, inline
	// styles only, and the one form posts to the proxy itself.
	p.csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action " + formAction + "; base-uri 'none'; frame-ancestors 'none'"
	return p, nil
}

// telURL makes a tel: link; html/template would otherwise refuse the
// scheme as unsafe. Only digits and a leading + survive.
func telURL(phone string) htmltemplate.URL {
	var b strings.Builder
	for i, r := range phone {
		if (r >= '0' && r <= '9') || (r == '+' && i == 0) {
			b.WriteRune(r)
		}
	}
	return htmltemplate.URL("tel:" + b.String())
}

type pageData struct {
	Title        string
	Organisation string
	Reason       string
	Category     string
	Rule         string
	Host         string
	Reference    string
	TimeISO      string
	TimeText     string
	ReviewURL    string
	Already      bool
	// Declined is staff's reply to this learner's declined review request.
	Declined string
	Contacts []Contact
}

func (p *pages) data(title string, now time.Time) pageData {
	return pageData{
		Title:        title,
		Organisation: p.cfg.Organisation,
		Contacts:     p.cfg.Contacts,
		TimeISO:      now.UTC().Format(time.RFC3339),
		TimeText:     now.Format("Mon 2 Jan 2006, 15:04:05 MST"),
	}
}

// blockResponse is the 403 answer for a blocked request.
func (s *Server) blockResponse(r *http.Request, in *verdict.Input, d *verdict.Decision, evID string) *http.Response {
	p := s.pages
	title := "This page is blocked"
	if in.Phase == verdict.PhaseResponse {
		title = "This download is blocked"
	}
	data := p.data(title, time.Now())
	data.Reason = d.Reason
	if data.Reason == "" {
		data.Reason = "This site is not allowed on this network under the Acceptable Use Policy."
	}
	data.Category = humanCategory(d.Category)
	data.Rule = orDash(d.Rule)
	data.Host = in.Request.Host
	data.Reference = evID
	data.ReviewURL = p.reviewURL
	var resp *http.Response
	if fromScript(r) {
		resp = jsonBlock(r, &data)
	} else {
		resp = p.render(r, http.StatusForbidden, "block", data)
	}
	resp.Header.Set("X-Aupguard-Reference", evID)
	return resp
}

// errorResponse explains a gateway error.
func (p *pages) errorResponse(r *http.Request, status int, host, msg string) *http.Response {
	data := p.data("This site could not be reached", time.Now())
	data.Reason = msg
	data.Host = host
	return p.render(r, status, "error", data)
}

// render picks HTML or plain text by the Accept header.
func (p *pages) render(r *http.Request, status int, name string, data pageData) *http.Response {
	var buf bytes.Buffer
	ctype := "text/html; charset=utf-8"
	var err error
	if wantsHTML(r.Header.Get("Accept")) {
		err = p.html.ExecuteTemplate(&buf, name, data)
	} else {
		ctype = "text/plain; charset=utf-8"
		err = p.renderText(&buf, name, data)
	}
	if err != nil {
		// The templates are fixed, so this is a bug; still answer.
		buf.Reset()
		ctype = "text/plain; charset=utf-8"
		fmt.Fprintf(&buf, "%s\n\n%s\nReference: %s\n", data.Title, data.Reason, data.Reference)
	}
	resp := &http.Response{
		StatusCode:    status,
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{},
		ContentLength: int64(buf.Len()),
		Body:          io.NopCloser(&buf),
		Request:       r,
	}
	h := resp.Header
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", p.csp)
	return resp
}

func (p *pages) renderText(w io.Writer, name string, d pageData) error {
	switch name {
	case "block":
		return p.text.ExecuteTemplate(w, "block.txt", d)
	case "review":
		if d.Declined != "" {
			_, err := fmt.Fprintf(w, "Your last review request was declined: %s\nReference: %s\n", d.Declined, d.Reference)
			return err
		}
		state := "Review requested"
		if d.Already {
			state = "A review of this block was already requested"
		}
		_, err := fmt.Fprintf(w, "%s.\nReference: %s\nTime:      %s\n", state, d.Reference, d.TimeText)
		return err
	default:
		_, err := fmt.Fprintf(w, "%s: %s\n%s\n", d.Title, d.Host, d.Reason)
		return err
	}
}

// wantsHTML reports whether the client is a browser asking for a page.
func wantsHTML(accept string) bool {
	a := strings.ToLower(accept)
	return strings.Contains(a, "text/html") || strings.Contains(a, "application/xhtml+xml")
}

// humanCategory turns a policy category id into words for the page.
func humanCategory(c string) string {
	if c == "" {
		return "Not allowed"
	}
	c = strings.NewReplacer("_", " ", "-", " ").Replace(c)
	r, n := utf8.DecodeRuneInString(c)
	return string(unicode.ToUpper(r)) + c[n:]
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// connectRefusal is the plain-text 403 for a blocked tunnel. Over HTTPS
// without interception this is all a browser can be told, and most show
// their own error page instead of it.
func connectRefusal(d *verdict.Decision, host, evID string) string {
	var b strings.Builder
	b.WriteString("Blocked by aupguard: ")
	b.WriteString(host)
	b.WriteString("\nCategory:  ")
	b.WriteString(humanCategory(d.Category))
	b.WriteString("\nReason:    ")
	b.WriteString(d.Reason)
	b.WriteString("\nRule:      ")
	b.WriteString(orDash(d.Rule))
	b.WriteString("\nReference: ")
	b.WriteString(evID)
	b.WriteString("\n")
	return b.String()
}

// fromScript reports whether a request comes from a page's script (XHR,
// fetch) rather than a navigation: it asks for JSON, or says so in
// X-Requested-With, or the browser's Sec-Fetch-Mode is not a navigation.
// A script cannot show a page, so it gets a short JSON body instead.
func fromScript(r *http.Request) bool {
	h := r.Header
	if wantsHTML(h.Get("Accept")) && h.Get("Sec-Fetch-Mode") == "" && h.Get("X-Requested-With") == "" {
		return false
	}
	switch strings.ToLower(h.Get("Sec-Fetch-Mode")) {
	case "cors", "same-origin", "no-cors":
		return true
	case "navigate", "nested-navigate", "websocket":
		return false
	}
	return h.Get("X-Requested-With") != "" || strings.Contains(strings.ToLower(h.Get("Accept")), "json")
}

// jsonBlock is the block answer for a script.
func jsonBlock(r *http.Request, d *pageData) *http.Response {
	b, _ := json.Marshal(struct {
		Blocked   bool   `json:"blocked"`
		Category  string `json:"category"`
		Reason    string `json:"reason"`
		Reference string `json:"reference"`
	}{true, d.Category, d.Reason, d.Reference})
	b = append(b, '\n')
	resp := &http.Response{
		StatusCode:    http.StatusForbidden,
		Status:        "403 Forbidden",
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{},
		ContentLength: int64(len(b)),
		Body:          io.NopCloser(bytes.NewReader(b)),
		Request:       r,
	}
	h := resp.Header
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	return resp
}
