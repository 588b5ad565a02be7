package web

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// Rendering: the page templates (parsed once from the embedded assets), the
// page every template gets, and the static assets.

// newUI parses the page templates and prepares the UI's state.
func newUI(srv *api.Server) (*ui, error) {
	funcs := template.FuncMap{
		"stateText": stateText, "stepTitle": stepTitle, "issueText": issueText,
		"utc":       screenTime,
		"sigtime":   signatureTime,
		"stateName": stateName, "decision": decisionWord,
		"mul": func(a, b int64) int64 { return a * b },
		"dur": func(ns int64) string { return humanDuration(time.Duration(ns)) },
		"issueKind": func(k custody.ExcursionKind) string {
			return issueText(custody.IssueExcursionPrefix + string(k))
		},
		"iso":       func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"nextAudit": nextAuditHref,
		"meaning":   func(m custody.Meaning) string { return strings.ReplaceAll(string(m), "-", " ") },
		"stepCtx":   func(f stepForm, csrf, bag string) stepFormCtx { return stepFormCtx{f, csrf, bag} },
		"deref": func(v any) any {
			switch x := v.(type) {
			case *bool:
				return x != nil && *x
			case *float64:
				if x == nil {
					return 0.0
				}
				return *x
			}
			return v
		},
	}
	svc := srv.Service()
	w := &ui{srv: srv, svc: svc, log: srv.Logger(), sessions: newSessionStore(svc.Now, srv.Shared(), srv.Logger()), throttle: srv.SignInThrottle(),
		pages: map[string]*template.Template{}}
	layout, err := webFS.ReadFile("webui/templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("web ui: %w", err)
	}
	names, err := fs.Glob(webFS, "webui/templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("web ui: %w", err)
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "webui/templates/"), ".html")
		if base == "layout" {
			continue
		}
		body, err := webFS.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("web ui: %w", err)
		}
		t, err := template.New("layout").Funcs(funcs).Parse(string(layout))
		if err == nil {
			_, err = t.Parse(string(body))
		}
		if err != nil {
			return nil, fmt.Errorf("web ui: template %s: %w", base, err)
		}
		w.pages[base] = t
	}
	sub, err := fs.Sub(webFS, "webui/static")
	if err != nil {
		return nil, fmt.Errorf("web ui: %w", err)
	}
	w.static = http.StripPrefix("/static/", http.FileServer(http.FS(sub)))
	return w, nil
}

func (w *ui) serveStatic(c echo.Context) error {
	// Assets are embedded in the binary and change only with it.
	c.Response().Header().Set("Cache-Control", "public, max-age=3600")
	w.static.ServeHTTP(c.Response(), c.Request())
	return nil
}

// page is what every template gets.
type page struct {
	Title   string
	Nav     string
	User    *custody.User
	CSRF    string
	Flash   string
	Msg     *uiMessage
	Console bool // the user may open the QA console
	Enroll  bool // the user may enroll patients (a coordinator)
	Audit   bool // the user may read the administrative audit trail
	Admin   bool // the user may open the administration screens
	// Dashboard: the user may open the scheduling dashboard.
	Dashboard bool
	// Access: the user works with expanded-access requests.
	Access bool
	// AccessQueue: the user may open the access team's triage queue;
	// FollowUps: the overdue follow-ups.
	AccessQueue, FollowUps bool
	// ScanCode refills the scan field after a code that could not be
	// used (label codes hold no patient identifiers).
	ScanCode string
	V        any
}

// render writes a page with status code.
func (w *ui) render(c echo.Context, code int, name string, p page) error {
	t, ok := w.pages[name]
	if !ok {
		return fmt.Errorf("web ui: no template %q", name)
	}
	if sess := session(c); sess != nil {
		snap := w.sessions.snapshot(sess)
		u := snap.User
		p.User, p.CSRF = &u, snap.CSRF
		p.Console = custody.MayUseConsole(u.Role)
		p.Enroll = custody.MayEnroll(u.Role)
		p.Audit = custody.MayReadAuditTrail(u.Role)
		p.Admin = custody.MayViewAdministration(u.Role)
		p.Dashboard = custody.MaySeeDashboard(u.Role)
		p.Access = custody.MayReadAccessRequests(u.Role)
		p.AccessQueue, p.FollowUps = custody.MayTriageAccess(u.Role), custody.MayRecordFollowUp(u.Role)
		if snap.Flash != "" && p.Flash == "" {
			p.Flash = snap.Flash
		}
		w.sessions.update(sess, func(s *webSession) { s.Flash = "" })
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		return fmt.Errorf("web ui: render %s: %w", name, err)
	}
	h := c.Response().Header()
	h.Set("Permissions-Policy", "camera=(self), microphone=(), geolocation=(), payment=()")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	return c.HTMLBlob(code, buf.Bytes())
}
