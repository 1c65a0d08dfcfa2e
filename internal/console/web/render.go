package web

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strata-dev/strata/internal/console/store"
)

// Pages are html/template files: templates/layout.html holds the frame
// (header, nav, search, <main>) and each page's file defines "main". A
// fragment request (header X-Strata-Fragment: main, or ?fragment=main)
// gets only <main>'s content, which the script swaps in place.

// fragmentHeader asks for <main>'s content only.
const fragmentHeader = "X-Strata-Fragment"

// staleAfter is how old a source's last word may be before the console
// calls its view stale.
const staleAfter = 30 * time.Second

// page is what every template gets.
type page struct {
	Template string
	Title    string
	// Nav is the nav entry to mark current.
	Nav string
	// Kinds are the store kinds the page shows: the script re-fetches it
	// when one changes.
	Kinds []string
	// Rev is the store's revision the page was read at.
	Rev    int64
	User   string
	SignIn bool
	Query  string
	Now    time.Time
	Data   any
}

type pageTemplate struct{ t *template.Template }

func parseTemplates() (map[string]*pageTemplate, error) {
	names := []string{"map", "machine", "clusters", "cluster", "rollouts", "rollout", "apps", "app", "pods", "pod", "node", "search", "login", "error"}
	out := map[string]*pageTemplate{}
	for _, n := range names {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/"+n+".html")
		if err != nil {
			return nil, fmt.Errorf("parsing the console's %s page: %w", n, err)
		}
		out[n] = &pageTemplate{t: t}
	}
	return out, nil
}

var funcs = template.FuncMap{
	"seg": url.PathEscape,
	"q":   url.QueryEscape,
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"mts": func(t *metav1.Time) string {
		if t == nil {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"ago":      ago,
	"join":     strings.Join,
	"cpu":      func(milli int64) string { return strconv.FormatFloat(float64(milli)/1000, 'f', -1, 64) },
	"gib":      func(b int64) string { return strconv.FormatFloat(float64(b)/(1<<30), 'f', 1, 64) + " GiB" },
	"condWord": condWord,
	"condMark": condMark,
	"readyMark": func(ready bool) string {
		if ready {
			return "✓ ready"
		}
		return "✗ not ready"
	},
	"hubCluster": func() string { return store.HubCluster },
}

// ago says how long before now t was, in words a person reads at a glance.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%d days ago", int(d.Hours()/24))
	}
}

// condWord puts a condition in words, with a mark that says whether its
// status is good or bad for its type (colour is never the only signal):
// "✗ Ready: no — APIServerUnreachable: dial tcp ...", "✗ Degraded: yes — App: ...".
func condWord(c metav1.Condition) string {
	status := map[metav1.ConditionStatus]string{metav1.ConditionTrue: "yes", metav1.ConditionFalse: "no"}[c.Status]
	if status == "" {
		status = "unknown"
	}
	s := verdictOf(c).mark + " " + c.Type + ": " + status
	if c.Reason != "" {
		s += " — " + c.Reason
	}
	if c.Message != "" {
		s += ": " + c.Message
	}
	return s
}

// condMark is a condition's CSS class: ok, bad, warn, info or unknown.
func condMark(c metav1.Condition) string { return verdictOf(c).class }

// polarity says which status of a condition type is the good one.
type polarity int

const (
	// positive: True is good (Ready, Available, Released, Healthy, Reachable).
	positive polarity = iota
	// negative: True is bad (Degraded, *Failure*, Stalled, Paused, *Pressure).
	negative
	// neutral: neither is bad (Progressing: a rollout moving or done).
	neutral
)

// polarityOf is the polarity of a condition type. Types not known here
// are positive, as Kubernetes' conventions ask of new conditions, unless
// their name says something is wrong.
func polarityOf(t string) polarity {
	switch t {
	case "Progressing":
		return neutral
	case "Degraded", "Stalled", "Paused", "Suspended", "Blocked", "Evicted", "Terminating", "Cordoned":
		return negative
	}
	for _, bad := range []string{"Fail", "Error", "Pressure", "Unavailable", "Unreachable", "Unhealthy", "Lost", "Conflict", "Drift"} {
		if strings.Contains(t, bad) {
			return negative
		}
	}
	return positive
}

// inProgress are the reasons a positive condition is False for while
// things move as they should (not a failure, not done yet).
var inProgress = map[string]bool{"Releasing": true, "Moving": true, "RollingOut": true, "Progressing": true, "Pending": true}

// waiting are the reasons a positive condition is False for while it
// waits on something that goes on by itself.
var waiting = map[string]bool{"ReleaseWaiting": true, "Waiting": true}

type verdict struct{ class, mark string }

var (
	vGood    = verdict{"ok", "✓"}
	vBad     = verdict{"bad", "✗"}
	vWarn    = verdict{"warn", "⚠"}
	vInfo    = verdict{"info", "•"}
	vUnknown = verdict{"unknown", "?"}
)

// verdictOf judges a condition by its type's polarity.
func verdictOf(c metav1.Condition) verdict {
	if c.Status != metav1.ConditionTrue && c.Status != metav1.ConditionFalse {
		return vUnknown
	}
	isTrue := c.Status == metav1.ConditionTrue
	switch polarityOf(c.Type) {
	case neutral:
		return vInfo
	case negative:
		if isTrue {
			return vBad
		}
		return vGood
	}
	switch {
	case isTrue:
		return vGood
	case c.Type == "Complete" || inProgress[c.Reason]:
		return vInfo
	case waiting[c.Reason]:
		return vWarn
	default:
		return vBad
	}
}

// httpError is a page that is not the one asked for, with its status.
type httpError struct {
	status         int
	title, message string
}

func (e *httpError) Error() string { return e.title + ": " + e.message }

func notFound(format string, args ...any) error {
	return &httpError{status: http.StatusNotFound, title: "Not found", message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return &httpError{status: http.StatusBadRequest, title: "Bad request", message: fmt.Sprintf(format, args...)}
}

// orNotFound turns the store's ErrNotFound into a 404 saying what is
// missing.
func orNotFound(err error, format string, args ...any) error {
	if errors.Is(err, store.ErrNotFound) {
		return notFound(format, args...)
	}
	return err
}

func isFragment(r *http.Request) bool {
	return r.Header.Get(fragmentHeader) == "main" || r.URL.Query().Get("fragment") == "main"
}

func (s *Server) newPage(r *http.Request, tmpl, title string) *page {
	p := &page{Template: tmpl, Title: title, SignIn: s.signIn, Now: s.clock.Now()}
	if u, ok := userFrom(r.Context()); ok {
		p.User = u.Name
	}
	return p
}

// view serves a page: fill reads what it shows into p, or fails.
func (s *Server) view(tmpl, nav string, kinds []string, fill func(r *http.Request, p *page) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := s.newPage(r, tmpl, "")
		p.Nav, p.Kinds = nav, kinds
		// The revision is read before the rows: a change between the two
		// is shown again, never missed.
		revs, err := s.store.Revisions(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p.Rev = revs[""]
		if err := fill(r, p); err != nil {
			s.fail(w, r, err)
			return
		}
		s.render(w, r, p, http.StatusOK)
	}
}

// render writes p whole (or its <main> for a fragment request) once it
// has rendered, so a failure never leaves half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, p *page, status int) {
	t := s.pages[p.Template]
	name := "layout.html"
	if isFragment(r) {
		name = "main"
	}
	var buf bytes.Buffer
	if err := t.t.ExecuteTemplate(&buf, name, p); err != nil {
		s.log.Error(err, "Rendering a console page", "page", p.Template, "path", r.URL.Path)
		http.Error(w, "The page could not be rendered.", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", fragmentHeader)
	h.Set("X-Strata-Rev", strconv.FormatInt(p.Rev, 10))
	h.Set("X-Strata-Title", url.PathEscape(p.Title))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// fail answers with a page saying what went wrong: the status of an
// httpError, 400 for a query the store refuses, 404 for a missing row,
// and 503 (logged) when the store fails.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		he      *httpError
		invalid *store.InvalidQueryError
	)
	switch {
	case errors.As(err, &he):
	case errors.As(err, &invalid):
		he = &httpError{status: http.StatusBadRequest, title: "Bad request", message: "The request was refused: " + invalid.Reason + "."}
	case errors.Is(err, store.ErrNotFound):
		he = &httpError{status: http.StatusNotFound, title: "Not found", message: "Nothing by that name is in the fleet store."}
	default:
		s.log.Error(err, "Serving a console page", "path", r.URL.Path)
		he = &httpError{status: http.StatusServiceUnavailable, title: "Store unavailable",
			message: "The fleet store could not be read. The page will work again once it can; the console's log says why."}
	}
	p := s.newPage(r, "error", he.title)
	p.Data = struct{ Title, Message string }{he.title, he.message}
	s.render(w, r, p, he.status)
}

// securityHeaders: everything from this origin, no inline script or
// style, never in a frame.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "+
			"form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// readOnly lets through GET and HEAD, and POST to sign in and out.
func readOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet || r.Method == http.MethodHead:
		case r.Method == http.MethodPost && (r.URL.Path == "/login" || r.URL.Path == "/logout"):
		default:
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "The console is read-only.", http.StatusMethodNotAllowed)
			return
		}
		next.ServeHTTP(w, r)
	})
}
