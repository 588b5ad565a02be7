package api

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/labels"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// The web UI: the scan station nurses use at the bench and the bedside, and
// the QA console. Pages are rendered on the server with html/template from
// assets embedded in the binary; one small dependency-free script
// (webui/static/app.js) adds focus handling, camera scanning and the live
// chart. The script is progressive: every form works without it. No page
// has inline script or style, so the Content-Security-Policy set in New
// ("default-src 'self'") applies unchanged.
//
// Browsers authenticate with a session cookie (web_session.go); API tokens
// keep working for machines on /api/v1. Every POST form carries the
// session's synchronizer CSRF token (the sign-in form a double-submit
// cookie) and is refused with a page that says so when it does not match.
// The domain enforces roles and journey rules; pages only hide what a role
// cannot do.
//
//	GET  /                         home: the scan station or the QA console
//	GET  /login, POST /login       sign in; POST /logout signs out
//	GET  /scan, POST /scan         scan station; a scan goes to the chain page
//	GET  /chains/:coi              chain page: state, next step forms, issues, legs, timeline
//	POST /chains/:coi/steps/:step  record a step with its signatures
//	GET  /chains/:coi/bedside      guided bedside check; POST advances it
//	GET  /mismatch, POST /mismatch/ack   a bedside mismatch, until acknowledged
//	GET  /qa                       QA console: chains by state, open issues
//	GET  /chains/:coi/legs/:n/live server-sent readings of a leg (live chart)
//	GET  /chains/:coi/labels.pdf, /chains/:coi/bags/:bag/label.pdf   labels
//	GET  /chains/:coi/report.pdf, /chains/:coi/epcis.json   custody report, EPCIS export
//	GET  /alerts/live              excursion alerts (server-sent events) for the console
//	GET  /static/*                 CSS, script, icons

//go:embed webui
var webFS embed.FS

type webUI struct {
	s        *Server
	e        *echo.Echo
	sessions *sessionStore
	throttle *signInThrottle
	pages    map[string]*template.Template
	static   http.Handler
}

const ctxSession = "coid.web.session"
const ctxSessionID = "coid.web.session_id"

// webPrefixes are the paths the web UI answers; everything else (the API
// under /api/v1, /healthz) is left to the API's router.
var webPrefixes = []string{"/login", "/logout", "/enroll", "/scan", "/chains/", "/mismatch", "/qa", "/alerts/", "/static/", "/favicon.ico"}

func isWebPath(p string) bool {
	if p == "/" {
		return true
	}
	for _, x := range webPrefixes {
		if p == strings.TrimSuffix(x, "/") || strings.HasPrefix(p, x) {
			return true
		}
	}
	return false
}

// registerWebRoutes adds the browser UI (scan station and QA console).
//
// The UI has its own echo router, reached through a pre-routing hook for
// the web paths, so that the API's route table (which openapi.json must
// document, route for route) holds only the API. The UI's router applies
// the same request ID, logging, recovery, security headers and body limit
// as the API.
func (s *Server) registerWebRoutes(e *echo.Echo) error {
	w, err := newWebUI(s)
	if err != nil {
		return fmt.Errorf("api: web UI: %w", err)
	}
	we := echo.New()
	we.HideBanner, we.HidePort = true, true
	we.Logger.SetOutput(io.Discard)
	we.IPExtractor = e.IPExtractor
	we.HTTPErrorHandler = w.handleError
	we.Use(middleware.RequestID())
	we.Use(s.logRequests("ui", true))
	we.Use(s.recoverPanics("panic in web handler"))
	we.Use(middleware.SecureWithConfig(middleware.SecureConfig{
		XSSProtection: "0", ContentTypeNosniff: "nosniff", XFrameOptions: "DENY", ReferrerPolicy: "same-origin",
		ContentSecurityPolicy: "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
			"media-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
	}))
	we.Use(middleware.BodyLimit(s.cfg.BodyLimit))
	we.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Response().Header().Set("Cache-Control", "no-store")
			return next(c)
		}
	})
	we.GET("/static/*", w.serveStatic)
	we.GET("/login", w.loginPage)
	we.POST("/login", w.login)
	we.GET("/favicon.ico", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/static/favicon.svg") })

	g := we.Group("", w.requireSession, w.mismatchGate, w.checkCSRF)
	g.GET("/", w.home)
	g.POST("/logout", w.logout)
	g.GET("/enroll", w.enrollPage)
	signs := s.sigs.throttleSignatures(func(c echo.Context) string { return session(c).User.ID })
	g.POST("/enroll", w.enrollSubmit, signs)
	g.GET("/scan", w.scanPage)
	g.POST("/scan", w.scanSubmit)
	g.GET("/chains/:coi", w.chainPage)
	g.POST("/chains/:coi/steps/:step", w.recordStep, signs)
	g.GET("/chains/:coi/bedside", w.bedsidePage)
	g.POST("/chains/:coi/bedside", w.bedsideSubmit, signs)
	g.GET("/mismatch", w.mismatchPage)
	g.POST("/mismatch/ack", w.mismatchAck)
	g.POST("/chains/:coi/mismatches/:seq/ack", w.chainMismatchAck)
	g.GET("/qa", w.consolePage)
	g.GET("/chains/:coi/legs/:n/live", w.legLive)
	g.GET("/chains/:coi/labels.pdf", w.asUser(s.chainLabels))
	g.GET("/chains/:coi/bags/:bag/label.pdf", w.asUser(s.bagLabel(labels.FormatPDF)))
	w.registerReportLinks(g)
	w.e = we

	e.Pre(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !isWebPath(c.Request().URL.Path) {
				return next(c)
			}
			we.ServeHTTP(c.Response().Writer, c.Request())
			return nil
		}
	})
	return nil
}

// handleError renders errors that reach the UI's router (unknown pages,
// wrong methods, oversized bodies, panics) as pages.
func (w *webUI) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			_ = w.refuse(c, he.Code, "This page does not exist.", "Use the scan station or the QA console.")
			return
		case http.StatusRequestEntityTooLarge:
			_ = w.refuse(c, he.Code, "That was too much to send.", "Nothing was recorded.")
			return
		}
		if he.Code < 500 {
			_ = w.refuse(c, he.Code, http.StatusText(he.Code)+".", "")
			return
		}
	}
	_ = w.fail(c, err)
}

func newWebUI(s *Server) (*webUI, error) {
	funcs := template.FuncMap{
		"stateText": stateText, "stepTitle": stepTitle, "issueText": issueText,
		"utc":     func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"iso":     func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"meaning": func(m custody.Meaning) string { return strings.ReplaceAll(string(m), "-", " ") },
		"stepCtx": func(f stepForm, csrf, bag string) stepFormCtx { return stepFormCtx{f, csrf, bag} },
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
	w := &webUI{s: s, sessions: newSessionStore(s.svc.Now), throttle: newSignInThrottle(s.svc.Now), pages: map[string]*template.Template{}}
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

func (w *webUI) serveStatic(c echo.Context) error {
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
	// ScanCode refills the scan field after a code that could not be
	// used (label codes hold no patient identifiers).
	ScanCode string
	V        any
}

// render writes a page with status code.
func (w *webUI) render(c echo.Context, code int, name string, p page) error {
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

// refuse renders the plain refusal page (CSRF, roles, expiry, not found).
func (w *webUI) refuse(c echo.Context, code int, title, detail string) error {
	return w.render(c, code, "refused", page{Title: title, Msg: &uiMessage{Kind: "error", Title: title, Detail: detail}})
}

// fail renders a domain error as a refusal page in plain words.
func (w *webUI) fail(c echo.Context, err error) error {
	m := plainError(err, c.Response().Header().Get(echo.HeaderXRequestID))
	code := w.statusOf(c, err)
	return w.render(c, code, "refused", page{Title: m.Title, Msg: &m})
}

// statusOf maps an error to its status through the API's error table and
// logs server-side failures like the API does.
func (w *webUI) statusOf(c echo.Context, err error) int {
	setRetryAfter(c, err)
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			if row.status >= 500 {
				lvl := slog.LevelError
				if row.retryAfter > 0 { // a lost race: routine, the form is sent again
					lvl = slog.LevelInfo
				}
				w.s.log.Log(c.Request().Context(), lvl, "web request failed", "err", err, "status", row.status, "path", c.Path(),
					"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
			}
			return row.status
		}
	}
	w.s.log.Error("web request failed", "err", err, "status", 500, "path", c.Path(),
		"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
	return http.StatusInternalServerError
}

func session(c echo.Context) *webSession {
	s, _ := c.Get(ctxSession).(*webSession)
	return s
}

// secure reports whether the request came over TLS (directly, or through
// a trusted proxy that says so).
func (w *webUI) secure(c echo.Context) bool {
	if c.Request().TLS != nil {
		return true
	}
	// Behind a TLS proxy: believe its X-Forwarded-Proto, and only its.
	return w.s.fromTrustedProxy(c.Request()) && c.Request().Header.Get(echo.HeaderXForwardedProto) == "https"
}

func (w *webUI) setCookie(c echo.Context, name, value, path string, maxAge int) {
	c.SetCookie(&http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true,
		Secure: w.secure(c), SameSite: http.SameSiteStrictMode})
}

// requireSession loads the session or sends the browser to sign in.
func (w *webUI) requireSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ck, _ := c.Cookie(sessionCookie)
		var id string
		if ck != nil {
			id = ck.Value
		}
		sess, expired := w.sessions.get(id)
		if sess != nil {
			if err := w.stillActive(c, sess); err != nil {
				w.sessions.delete(id)
				sess = nil
			}
		}
		if sess == nil {
			if ck != nil {
				w.setCookie(c, sessionCookie, "", "/", -1)
			}
			q := url.Values{}
			if c.Request().Method == http.MethodGet {
				q.Set("next", c.Request().URL.RequestURI())
			}
			if expired {
				q.Set("expired", "1")
			}
			if c.Request().Method != http.MethodGet {
				// A form posted after the session ended: say so instead of
				// silently dropping what was entered.
				return w.refuse(c, http.StatusUnauthorized, "Your session has ended.",
					"Nothing was recorded. You were signed out after "+webIdleTimeout.String()+" without activity, or coid restarted. Sign in again and repeat the step.")
			}
			if strings.Contains(c.Request().Header.Get("Accept"), "text/event-stream") {
				return w.refuse(c, http.StatusUnauthorized, "Your session has ended.", "Sign in again.")
			}
			return c.Redirect(http.StatusSeeOther, "/login?"+q.Encode())
		}
		c.Set(ctxSession, sess)
		c.Set(ctxSessionID, id)
		c.Set(ctxUser, sess.User)
		return next(c)
	}
}

// stillActive checks that the session's user still exists and is enabled,
// so disabling an account ends its browser sessions at their next request.
func (w *webUI) stillActive(c echo.Context, sess *webSession) error {
	u, err := w.s.svc.User(c.Request().Context(), sess.User.ID)
	if errors.Is(err, custody.ErrNotFound) {
		return fmt.Errorf("user %s is gone: %w", sess.User.ID, custody.ErrUnauthenticated)
	}
	if err != nil {
		return err
	}
	if u.Disabled || u.Role != sess.User.Role {
		return fmt.Errorf("user %s changed: %w", u.ID, custody.ErrUnauthenticated)
	}
	return nil
}

// mismatchGate shows an unacknowledged bedside mismatch instead of any
// other page.
func (w *webUI) mismatchGate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		sess := session(c)
		snap := w.sessions.snapshot(sess)
		if snap.Mismatch != nil && !strings.HasPrefix(c.Path(), "/mismatch") && c.Path() != "/logout" {
			if c.Request().Method != http.MethodGet {
				return w.refuse(c, http.StatusConflict, "A bedside mismatch must be acknowledged first.",
					"Nothing was recorded. Open the mismatch screen and acknowledge it.")
			}
			return c.Redirect(http.StatusSeeOther, "/mismatch")
		}
		return next(c)
	}
}

// sameOrigin reports whether a request's Origin (when the browser sent
// one) is this server. The UI's Referrer-Policy is same-origin, so browsers
// send the real Origin on the UI's own form posts; "null" (a sandboxed or
// privacy-stripped context) is refused.
func (w *webUI) sameOrigin(c echo.Context) bool {
	o := c.Request().Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == c.Request().Host
}

// checkCSRF refuses a POST whose token does not match the session's.
func (w *webUI) checkCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().Method != http.MethodPost {
			return next(c)
		}
		snap := w.sessions.snapshot(session(c))
		if !w.sameOrigin(c) || !tokensEqual(c.Request().PostFormValue("csrf"), snap.CSRF) {
			return w.csrfRefused(c)
		}
		return next(c)
	}
}

func (w *webUI) csrfRefused(c echo.Context) error {
	w.s.log.Warn("web form refused: CSRF token missing or wrong", "path", c.Path(),
		"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
	return w.refuse(c, http.StatusForbidden, "This form was not accepted.",
		"Nothing was recorded. The form was out of date or did not come from this coid page. Go back, reload the page and try again.")
}

// asUser runs an API handler for the session's user (downloads).
func (w *webUI) asUser(h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := h(c); err != nil {
			return w.fail(c, err)
		}
		return nil
	}
}

// ---------------------------------------------------------------------------
// Sign-in

type loginView struct {
	Next    string
	UserID  string
	Expired bool
	Token   string
}

func (w *webUI) loginPage(c echo.Context) error {
	tok := randomToken()
	w.setCookie(c, loginCookie, tok, "/login", 3600)
	v := loginView{Next: safeNext(c.QueryParam("next")), Expired: c.QueryParam("expired") != "", Token: tok}
	p := page{Title: "Sign in", V: v}
	if v.Expired {
		p.Msg = &uiMessage{Kind: "info", Title: "You were signed out after " + webIdleTimeout.String() + " without activity.", Detail: "Sign in again to continue."}
	}
	return w.render(c, http.StatusOK, "login", p)
}

// safeNext keeps a post-sign-in destination only when it is a path on this
// server, as a browser would read it: browsers drop tabs and line breaks
// anywhere in a URL, trim leading and trailing control characters and
// spaces, and take a backslash for a slash, so "/\t/evil.example" and
// "/\\evil.example" both lead off-site. The value is normalised that way
// first, and then must be an absolute path with no scheme or host; the
// normalised form is returned, or "" to go to the user's home page.
func safeNext(n string) string {
	n = strings.Map(func(r rune) rune {
		switch r {
		case '\t', '\n', '\r':
			return -1
		case '\\':
			return '/'
		}
		return r
	}, n)
	n = strings.TrimFunc(n, func(r rune) bool { return r <= ' ' })
	if !strings.HasPrefix(n, "/") || strings.HasPrefix(n, "//") ||
		strings.IndexFunc(n, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 {
		return ""
	}
	u, err := url.Parse(n)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		!strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "/login") {
		return ""
	}
	return n
}

func (w *webUI) login(c echo.Context) error {
	ck, _ := c.Cookie(loginCookie)
	if ck == nil || !w.sameOrigin(c) || !tokensEqual(c.Request().PostFormValue("csrf"), ck.Value) {
		return w.csrfRefused(c)
	}
	id := strings.TrimSpace(c.FormValue("user"))
	next := safeNext(c.FormValue("next"))
	if ok, wait := w.throttle.attempt(c.RealIP(), id); !ok {
		w.s.log.Warn("web sign-in refused: too many failed sign-ins from this address", "remote_ip", c.RealIP())
		setRetryAfter(c, &custody.ThrottledError{Wait: wait})
		m := uiMessage{Kind: "error", Title: "Too many failed sign-ins from this device.",
			Detail: fmt.Sprintf("Try again in %d minutes. If you have forgotten your password, ask an administrator.", int(wait.Minutes())+1)}
		tok := randomToken()
		w.setCookie(c, loginCookie, tok, "/login", 3600)
		return w.render(c, http.StatusTooManyRequests, "login", page{Title: "Sign in", Msg: &m, V: loginView{Next: next, UserID: id, Token: tok}})
	}
	u, err := w.s.svc.Login(c.Request().Context(), c.RealIP(), id, c.FormValue("password"))
	switch {
	case err == nil:
		w.throttle.succeeded(c.RealIP(), id)
	case !errors.Is(err, custody.ErrUnauthenticated):
		w.throttle.refunded(c.RealIP(), id) // only wrong passwords use up attempts
	}
	var sid string
	if err == nil {
		if sid, _, err = w.sessions.create(u); err != nil {
			w.s.log.Error("web sign-in refused", "err", err, "user", u.ID)
			m := uiMessage{Kind: "error", Title: "coid cannot take more sign-ins right now.",
				Detail: "Every session place is in use. Try again in a few minutes, or ask the system administrator."}
			tok := randomToken()
			w.setCookie(c, loginCookie, tok, "/login", 3600)
			return w.render(c, http.StatusServiceUnavailable, "login", page{Title: "Sign in", Msg: &m, V: loginView{Next: next, UserID: id, Token: tok}})
		}
	}
	if err != nil {
		m := plainError(err, c.Response().Header().Get(echo.HeaderXRequestID))
		if errors.Is(err, custody.ErrUnauthenticated) {
			m.Title = "Sign-in failed."
		}
		tok := randomToken()
		w.setCookie(c, loginCookie, tok, "/login", 3600)
		return w.render(c, w.statusOf(c, err), "login", page{Title: "Sign in", Msg: &m,
			V: loginView{Next: next, UserID: id, Token: tok}})
	}
	w.setCookie(c, sessionCookie, sid, "/", 0)
	w.setCookie(c, loginCookie, "", "/login", -1)
	w.s.log.Info("web sign-in", "user", u.ID, "role", string(u.Role))
	if next == "" {
		next = homeOf(u.Role)
	}
	return c.Redirect(http.StatusSeeOther, next)
}

func homeOf(r custody.Role) string {
	if custody.StartsAtConsole(r) {
		return "/qa"
	}
	return "/scan"
}

func (w *webUI) logout(c echo.Context) error {
	id, _ := c.Get(ctxSessionID).(string)
	w.sessions.delete(id)
	w.setCookie(c, sessionCookie, "", "/", -1)
	return c.Redirect(http.StatusSeeOther, "/login")
}

func (w *webUI) home(c echo.Context) error {
	return c.Redirect(http.StatusSeeOther, homeOf(session(c).User.Role))
}

// ---------------------------------------------------------------------------
// Scan station

// enrollForm is what the enrollment form holds, to show it again after a
// refusal (to the coordinator who typed it; never logged).
type enrollForm struct {
	Name, BirthDate, MRN, Product, Collection, Manufacturing, Treatment string
}

func (w *webUI) enrollPage(c echo.Context) error {
	if !custody.MayEnroll(session(c).User.Role) {
		return w.refuse(c, http.StatusForbidden, "Only coordinators enroll patients.", "Ask a coordinator to enroll the patient.")
	}
	return w.render(c, http.StatusOK, "enroll", page{Title: "Enroll a patient", Nav: "enroll", V: enrollForm{}})
}

// enrollSubmit enrolls a patient (the domain checks the role and every
// field) and shows the new chain, whose labels come next.
func (w *webUI) enrollSubmit(c echo.Context) error {
	f := enrollForm{Name: c.FormValue("name"), BirthDate: c.FormValue("birth_date"), MRN: c.FormValue("mrn"),
		Product: c.FormValue("product"), Collection: c.FormValue("collection"), Manufacturing: c.FormValue("manufacturing"),
		Treatment: c.FormValue("treatment")}
	ch, err := w.s.svc.Enroll(c.Request().Context(), session(c).User, custody.EnrollRequest{
		Patient: custody.PHI{Name: f.Name, BirthDate: f.BirthDate, MRN: f.MRN}, Product: f.Product,
		Sites: custody.Sites{Collection: f.Collection, Manufacturing: f.Manufacturing, Treatment: f.Treatment}})
	if err != nil {
		m := plainError(err, c.Response().Header().Get(echo.HeaderXRequestID))
		m.Title = "The patient was not enrolled."
		return w.render(c, w.statusOf(c, err), "enroll", page{Title: "Enroll a patient", Nav: "enroll", Msg: &m, V: f})
	}
	w.flash(c, fmt.Sprintf("Enrolled: COI %s. Print the labels before the collection.", ch.Display))
	return c.Redirect(http.StatusSeeOther, "/chains/"+string(ch.COI))
}

func (w *webUI) scanPage(c echo.Context) error {
	return w.render(c, http.StatusOK, "scan", page{Title: "Scan station", Nav: "scan"})
}

func (w *webUI) scanSubmit(c echo.Context) error {
	raw := c.FormValue("code")
	code, err := custody.ParseCode(raw)
	if err == nil {
		var ch *custody.Chain
		if ch, err = w.s.svc.Chain(c.Request().Context(), code.COI); err == nil {
			target := "/chains/" + string(ch.COI)
			if code.Bag != nil {
				if !ch.HasBag(*code.Bag) {
					m := uiMessage{Kind: "stop", Title: "This bag is not registered on its chain.",
						Detail: fmt.Sprintf("Bag %s is not a bag of chain %s. Do not use it; set it aside and call QA.", code.Bag, ch.Display)}
					return w.render(c, http.StatusNotFound, "scan", page{Title: "Scan station", Nav: "scan", Msg: &m})
				}
				target += "?bag=" + url.QueryEscape(code.Bag.String())
			}
			return c.Redirect(http.StatusSeeOther, target)
		}
	}
	m := plainError(err, c.Response().Header().Get(echo.HeaderXRequestID))
	switch {
	case errors.Is(err, custody.ErrInvalid):
		m.Title = "This code could not be read as a coid label."
		m.Detail += " Scan the label again, or type the COI with its check character."
	case errors.Is(err, custody.ErrNotFound):
		m.Title = "No chain has this identifier."
		m.Detail = "Check that the label belongs to a product enrolled in coid. " + m.Detail
	}
	// Label codes hold no patient identifiers, so text that looks like one
	// is shown back to be corrected. Anything else (a wristband scanned
	// here by mistake) is not repeated on screen.
	p := page{Title: "Scan station", Nav: "scan", Msg: &m}
	if t := strings.TrimSpace(raw); looksLikeCOICode(t) {
		p.ScanCode = t
	} else if errors.Is(err, custody.ErrInvalid) {
		m.Detail = "This is not a coid label (a wristband or another barcode?). Scan the bag label."
	}
	return w.render(c, w.statusOf(c, err), "scan", p)
}

// looksLikeCOICode reports whether s has the shape of a coid code (label
// payload, ISBT 128 data structure 040, COI or bag ID).
func looksLikeCOICode(s string) bool {
	return strings.HasPrefix(s, custody.PayloadPrefix) || strings.HasPrefix(s, custody.ISBTCOIPrefix) || strings.HasPrefix(s, "CH")
}

// ---------------------------------------------------------------------------
// Chain page

// stepForm is a step the signed-in user can take, with its inputs.
type stepForm struct {
	Step   custody.Step
	Title  string
	Action string
	Fields []formField
	Sigs   []sigBox
	Danger bool
	Main   bool // a journey step (shown expanded)
	Open   bool // expanded (the form that failed)
}

// stepFormCtx is what the "stepform" template gets.
type stepFormCtx struct {
	Form stepForm
	CSRF string
	Bag  string
}

type waitItem struct {
	Step  custody.Step
	Roles string
}

type recordView struct {
	Seq        uint64
	Step       custody.Step
	Time       time.Time
	Site       string
	System     bool
	Summary    []string
	Signatures []custody.Signature
}

type issueView struct {
	custody.Issue
	Text string
}

type legChart struct {
	Points   string // SVG polyline points
	Data     string // JSON [[unix ms, °C], ...] for the script's ring buffer
	MinC     string
	MaxC     string
	LoY, HiY string // limit line positions
	Lo, Hi   float64
	Count    int
	LiveURL  string
}

type legView struct {
	custody.LegView
	ProfileLimits string
	Chart         *legChart
}

type download struct {
	Label, Href string
}

type chainView struct {
	Chain       *custody.Chain
	Bag         string
	BagKind     string
	StateText   string
	Forms       []stepForm
	Waiting     []waitItem
	Bedside     bool
	Other       []stepForm
	Disposition *stepForm
	Issues      []issueView
	OpenIssues  int
	Legs        []legView
	Timeline    []recordView
	Downloads   []download
	Terminal    bool
	// Unacked are the bedside mismatches nobody has acknowledged; they
	// block another bedside check and the infusion. MayAck: this user's
	// role may acknowledge them.
	Unacked []custody.Mismatch
	MayAck  bool
}

func (w *webUI) chainPage(c echo.Context) error {
	return w.renderChain(c, http.StatusOK, nil, "", nil)
}

// renderChain renders the chain page; failed names the step whose form
// failed with msg, and form holds what was submitted (passwords are never
// shown again).
func (w *webUI) renderChain(c echo.Context, code int, msg *uiMessage, failed custody.Step, form url.Values) error {
	coi, err := coiParam(c)
	if err != nil {
		return w.fail(c, err)
	}
	ctx := c.Request().Context()
	ch, err := w.s.svc.Chain(ctx, coi)
	if err != nil {
		return w.fail(c, err)
	}
	me := session(c).User
	v := chainView{Chain: ch, StateText: stateText(ch.State), Terminal: ch.State.Terminal()}
	for _, m := range ch.Mismatches {
		if !m.Acknowledged {
			v.Unacked = append(v.Unacked, m)
		}
	}
	v.MayAck = custody.MayAcknowledgeMismatch(me.Role)
	if b := c.QueryParam("bag"); b != "" {
		if bag, err := custody.ParseBagID(b); err == nil && ch.HasBag(bag) {
			v.Bag, v.BagKind = bag.String(), string(bag.Kind)
		}
	}
	j := w.s.svc.Journey()
	for _, st := range ch.Next {
		rule, err := j.Rule(ch.State, st)
		if err != nil {
			continue
		}
		transition := slices.ContainsFunc(j.Transitions, func(t custody.Transition) bool { return t.From == ch.State && t.Step == st })
		if !rule.MaySign(me.Role) {
			if transition {
				v.Waiting = append(v.Waiting, waitItem{Step: st, Roles: rolesOf(rule)})
			}
			continue
		}
		f := stepForm{Step: st, Title: stepTitle(st), Action: "/chains/" + string(ch.COI) + "/steps/" + string(st),
			Fields: stepFields(st, ch, w.s.svc.Profiles()), Sigs: sigBoxes(rule, me), Danger: st == custody.StepCancel, Open: st == failed}
		if st == failed {
			for i := range f.Fields {
				if x := form.Get(f.Fields[i].Name); x != "" {
					f.Fields[i].Value = x
				}
			}
			for i := range f.Sigs {
				f.Sigs[i].User = form.Get("sig_user_" + strconv.Itoa(i+1))
			}
		}
		switch {
		case st == custody.StepBedsideVerify:
			v.Bedside = true
		case st == custody.StepDisposition:
			f.Open = true // offered only while issues are open
			v.Disposition = &f
		case transition:
			f.Main = true
			v.Forms = append(v.Forms, f)
		default:
			v.Other = append(v.Other, f)
		}
	}
	for _, is := range ch.Issues {
		v.Issues = append(v.Issues, issueView{Issue: is, Text: issueText(is.Kind)})
		if is.Open {
			v.OpenIssues++
		}
	}
	legs, err := w.s.svc.Legs(ctx, coi)
	if err != nil {
		return w.fail(c, err)
	}
	for _, l := range legs {
		lv := legView{LegView: l, ProfileLimits: profileLimits(w.s.svc, l.Profile)}
		lv.Chart = w.chart(c, ch, l.Leg)
		v.Legs = append(v.Legs, lv)
	}
	for i := len(ch.Records) - 1; i >= 0; i-- {
		v.Timeline = append(v.Timeline, timelineEntry(ch.Records[i]))
	}
	if custody.MayPrintLabels(me.Role) && len(ch.Bags) > 0 {
		v.Downloads = append(v.Downloads, download{"All bag labels (PDF)", "/chains/" + string(ch.COI) + "/labels.pdf"})
		if v.Bag != "" {
			v.Downloads = append(v.Downloads, download{"Label of " + v.Bag + " (PDF)", "/chains/" + string(ch.COI) + "/bags/" + v.Bag + "/label.pdf"})
		}
	}
	v.Downloads = append(v.Downloads, w.reportLinks(me, ch)...)
	return w.render(c, code, "chain", page{Title: ch.Display, Nav: "scan", Msg: msg, V: v})
}

func rolesOf(rule custody.Transition) string {
	var out []string
	for _, s := range rule.Signatures {
		for _, r := range s.Roles {
			if !slices.Contains(out, string(r)) {
				out = append(out, string(r))
			}
		}
	}
	return strings.Join(out, ", ")
}

// profileLimits says in words the temperature limits of the profile the
// service applies under name.
func profileLimits(svc *custody.Service, name string) string {
	p, ok := svc.Profile(name)
	if !ok {
		return ""
	}
	switch {
	case p.MinC != nil && p.MaxC != nil:
		return fmt.Sprintf("%g to %g °C", *p.MinC, *p.MaxC)
	case p.MaxC != nil:
		return fmt.Sprintf("at or below %g °C", *p.MaxC)
	case p.MinC != nil:
		return fmt.Sprintf("at or above %g °C", *p.MinC)
	}
	return ""
}

// timelineEntry summarises a record's data: scalar members as "name:
// value", without commitments and digests, and the telemetry seal as its
// counts.
func timelineEntry(r custody.Record) recordView {
	rv := recordView{Seq: r.Seq, Step: r.Step, Time: r.Time, Site: r.Site, Signatures: r.Signatures,
		System: r.SubmittedBy == custody.SystemUser || len(r.Signatures) > 0 && r.Signatures[0].Role == custody.RoleSystem}
	var m map[string]json.RawMessage
	if json.Unmarshal(r.Data, &m) != nil {
		return rv
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch k {
		case "patient_commitment", "wristband_digest", "sites", "duration_ns", "breach_ns":
			continue
		case "telemetry":
			var seal custody.ReceiveSeal
			if json.Unmarshal(m[k], &seal) == nil {
				rv.Summary = append(rv.Summary, fmt.Sprintf("telemetry sealed: %d readings", seal.Seal.Count))
			}
			continue
		}
		var x any
		if json.Unmarshal(m[k], &x) != nil {
			continue
		}
		label := k
		if l, ok := fieldLabels[k]; ok {
			label = l
		}
		switch t := x.(type) {
		case string, float64, bool:
			rv.Summary = append(rv.Summary, fmt.Sprintf("%s: %v", label, t))
		case []any:
			var parts []string
			for _, e := range t {
				if s, ok := e.(string); ok {
					parts = append(parts, s)
				}
			}
			if len(parts) > 0 {
				rv.Summary = append(rv.Summary, label+": "+strings.Join(parts, "; "))
			}
		}
	}
	return rv
}

// ---------------------------------------------------------------------------
// Recording a step

func (w *webUI) recordStep(c echo.Context) error {
	coi, err := coiParam(c)
	if err != nil {
		return w.fail(c, err)
	}
	ctx := c.Request().Context()
	step := custody.Step(c.Param("step"))
	ch, err := w.s.svc.Chain(ctx, coi)
	if err != nil {
		return w.fail(c, err)
	}
	if step == custody.StepBedsideVerify {
		return c.Redirect(http.StatusSeeOther, "/chains/"+string(coi)+"/bedside")
	}
	form, err := c.FormParams()
	if err != nil {
		return w.fail(c, fmt.Errorf("read form: %v: %w", err, custody.ErrInvalid))
	}
	fail := func(err error) error {
		m := plainError(err, c.Response().Header().Get(echo.HeaderXRequestID))
		return w.renderChain(c, w.statusOf(c, err), &m, step, form)
	}
	rule, err := w.s.svc.Journey().Rule(ch.State, step)
	if err != nil {
		return fail(err)
	}
	data, err := stepData(step, stepFields(step, ch, w.s.svc.Profiles()), form)
	if err != nil {
		return fail(err)
	}
	rec, err := w.s.svc.Record(ctx, session(c).User, coi, custody.StepRequest{Step: step, Data: data, Signatures: signatures(rule, form)})
	if err != nil {
		return fail(err)
	}
	w.flash(c, fmt.Sprintf("Recorded: %s (record %d), signed by %s.", stepTitle(step), rec.Seq, signers(rec)))
	target := "/chains/" + string(coi)
	if b := form.Get("bag"); b != "" {
		target += "?bag=" + url.QueryEscape(b)
	}
	return c.Redirect(http.StatusSeeOther, target)
}

func signers(r custody.Record) string {
	var out []string
	for _, s := range r.Signatures {
		out = append(out, s.Name)
	}
	return strings.Join(out, " and ")
}

func (w *webUI) flash(c echo.Context, msg string) {
	w.sessions.update(session(c), func(s *webSession) { s.Flash = msg })
}

// ---------------------------------------------------------------------------
// Bedside check: scan the bag, scan the wristband, two nurses sign.

type bedsideView struct {
	Chain     *custody.Chain
	Stage     string // bag, wristband, sign
	BagCode   string
	Sigs      []sigBox
	Allowed   bool
	Waiting   string
	BagChosen bool
}

func (w *webUI) bedsidePage(c echo.Context) error { return w.renderBedside(c, http.StatusOK, nil) }

func (w *webUI) renderBedside(c echo.Context, code int, msg *uiMessage) error {
	coi, err := coiParam(c)
	if err != nil {
		return w.fail(c, err)
	}
	ch, err := w.s.svc.Chain(c.Request().Context(), coi)
	if err != nil {
		return w.fail(c, err)
	}
	sess := session(c)
	snap := w.sessions.snapshot(sess)
	v := bedsideView{Chain: ch, Stage: "bag"}
	rule, rerr := w.s.svc.Journey().Rule(ch.State, custody.StepBedsideVerify)
	v.Allowed = rerr == nil && slices.Contains(ch.Next, custody.StepBedsideVerify) && rule.MaySign(snap.User.Role)
	if !v.Allowed {
		v.Waiting = "The bedside check is not possible now: the chain is " + stateText(ch.State) + "."
		if len(ch.OpenIssues()) > 0 {
			v.Waiting += " Open issues await a QA disposition."
		} else if rerr == nil && !rule.MaySign(snap.User.Role) {
			v.Waiting = "Two nurses perform the bedside check."
		}
	}
	if b := snap.Bedside; b != nil && b.COI == coi {
		v.BagCode = b.BagCode
		switch {
		case b.BagCode != "" && b.Wristband != "":
			v.Stage = "sign"
		case b.BagCode != "":
			v.Stage = "wristband"
		}
	}
	if rerr == nil {
		v.Sigs = sigBoxes(rule, snap.User)
	}
	return w.render(c, code, "bedside", page{Title: "Bedside check " + ch.Display, Nav: "scan", Msg: msg, V: v})
}

func (w *webUI) bedsideSubmit(c echo.Context) error {
	coi, err := coiParam(c)
	if err != nil {
		return w.fail(c, err)
	}
	sess := session(c)
	target := "/chains/" + string(coi) + "/bedside"
	switch c.FormValue("action") {
	case "reset":
		w.sessions.update(sess, func(s *webSession) { s.Bedside = nil })
		return c.Redirect(http.StatusSeeOther, target)
	case "bag":
		code := strings.TrimSpace(c.FormValue("code"))
		if code == "" {
			return w.renderBedside(c, http.StatusBadRequest, &uiMessage{Kind: "error", Title: "Scan the bag label.", Detail: "Nothing was scanned."})
		}
		w.sessions.update(sess, func(s *webSession) { s.Bedside = &bedsideState{COI: coi, BagCode: code} })
		return c.Redirect(http.StatusSeeOther, target)
	case "wristband":
		code := strings.TrimSpace(c.FormValue("code"))
		ok := false
		w.sessions.update(sess, func(s *webSession) {
			if s.Bedside != nil && s.Bedside.COI == coi && s.Bedside.BagCode != "" && code != "" {
				s.Bedside.Wristband, ok = code, true
			}
		})
		if !ok {
			return w.renderBedside(c, http.StatusBadRequest, &uiMessage{Kind: "error", Title: "Scan the bag label first, then the wristband."})
		}
		return c.Redirect(http.StatusSeeOther, target)
	case "sign":
		return w.bedsideSign(c, coi)
	}
	return w.renderBedside(c, http.StatusBadRequest, &uiMessage{Kind: "error", Title: "Unknown action.", Detail: "Reload the page and start again."})
}

func (w *webUI) bedsideSign(c echo.Context, coi custody.COI) error {
	ctx := c.Request().Context()
	sess := session(c)
	snap := w.sessions.snapshot(sess)
	b := snap.Bedside
	if b == nil || b.COI != coi || b.BagCode == "" || b.Wristband == "" {
		return w.renderBedside(c, http.StatusBadRequest, &uiMessage{Kind: "error", Title: "Scan the bag and the wristband before signing."})
	}
	ch, err := w.s.svc.Chain(ctx, coi)
	if err != nil {
		return w.fail(c, err)
	}
	rule, err := w.s.svc.Journey().Rule(ch.State, custody.StepBedsideVerify)
	if err != nil {
		m := plainError(err, c.Response().Header().Get(echo.HeaderXRequestID))
		return w.renderBedside(c, w.statusOf(c, err), &m)
	}
	form, _ := c.FormParams()
	data, _ := json.Marshal(map[string]string{"bag_code": b.BagCode, "wristband_code": b.Wristband})
	rec, err := w.s.svc.Record(ctx, snap.User, coi, custody.StepRequest{Step: custody.StepBedsideVerify, Data: data, Signatures: signatures(rule, form)})
	if err != nil {
		if mm := newMismatch(ch, err); mm != nil {
			w.sessions.update(sess, func(s *webSession) { s.Bedside, s.Mismatch = nil, mm })
			return c.Redirect(http.StatusSeeOther, "/mismatch")
		}
		m := plainError(err, c.Response().Header().Get(echo.HeaderXRequestID))
		return w.renderBedside(c, w.statusOf(c, err), &m)
	}
	w.sessions.update(sess, func(s *webSession) {
		s.Bedside = nil
		s.Flash = fmt.Sprintf("Bedside check passed: the bag and the wristband belong to this chain (record %d, signed by %s). You may now infuse.", rec.Seq, signers(rec))
	})
	return c.Redirect(http.StatusSeeOther, "/chains/"+string(coi))
}

// newMismatch returns the mismatch the domain recorded for a refused
// bedside check, or nil when err is not a mismatch.
func newMismatch(ch *custody.Chain, err error) *mismatchState {
	var mm *custody.MismatchError
	if !errors.As(err, &mm) {
		return nil
	}
	reasons := make([]string, 0, len(mm.Reasons))
	for _, r := range mm.Reasons {
		reasons = append(reasons, sentence(r))
	}
	if len(reasons) == 0 {
		reasons = []string{sentence("the bag and the wristband did not match this chain")}
	}
	return &mismatchState{COI: ch.COI, Display: ch.Display, Seq: mm.Record.Seq, Reasons: reasons}
}

func (w *webUI) mismatchPage(c echo.Context) error {
	snap := w.sessions.snapshot(session(c))
	if snap.Mismatch == nil {
		return c.Redirect(http.StatusSeeOther, "/scan")
	}
	return w.render(c, http.StatusOK, "mismatch", page{Title: "MISMATCH: do not infuse", V: snap.Mismatch})
}

func (w *webUI) mismatchAck(c echo.Context) error {
	sess := session(c)
	var mm *mismatchState
	w.sessions.update(sess, func(s *webSession) { mm, s.Mismatch = s.Mismatch, nil })
	if mm == nil {
		return c.Redirect(http.StatusSeeOther, "/scan")
	}
	// The acknowledgement goes into the chain, signed by this session's user.
	rec, err := w.s.svc.AcknowledgeMismatch(c.Request().Context(), sess.User, mm.COI, mm.Seq, custody.ViaSession)
	switch {
	case errors.Is(err, custody.ErrConflict):
		w.flash(c, fmt.Sprintf("Mismatch (record %d) was already acknowledged; the chain's records say by whom. Do not infuse this bag. Set it aside and call QA.", mm.Seq))
	case errors.Is(err, custody.ErrForbidden):
		// Not a clinical role: the mismatch stays unacknowledged in the
		// chain (and in its open issues) for a nurse to acknowledge.
		w.flash(c, fmt.Sprintf("Mismatch (record %d) is recorded. Your role may not acknowledge it: a nurse, coordinator or QA must. Do not infuse this bag. Set it aside and call QA.", mm.Seq))
	case err != nil:
		w.sessions.update(sess, func(s *webSession) { s.Mismatch = mm }) // still unacknowledged
		return err
	default:
		w.flash(c, fmt.Sprintf("Mismatch acknowledged (record %d, your acknowledgement record %d). Do not infuse this bag. Set it aside and call QA.", mm.Seq, rec.Seq))
	}
	return c.Redirect(http.StatusSeeOther, "/chains/"+string(mm.COI))
}

// chainMismatchAck acknowledges, from the chain page, a mismatch recorded
// elsewhere (another session, the API).
func (w *webUI) chainMismatchAck(c echo.Context) error {
	coi, err := coiParam(c)
	if err != nil {
		return w.fail(c, err)
	}
	seq, err := strconv.ParseUint(c.Param("seq"), 10, 64)
	if err != nil || seq == 0 {
		return w.fail(c, fmt.Errorf("the mismatch must be named by its record position: %w", custody.ErrInvalid))
	}
	rec, err := w.s.svc.AcknowledgeMismatch(c.Request().Context(), session(c).User, coi, seq, custody.ViaSession)
	if err != nil {
		return w.fail(c, err)
	}
	w.flash(c, fmt.Sprintf("Mismatch acknowledged (record %d, your acknowledgement record %d). Do not infuse the bag it names. Set it aside and call QA.", seq, rec.Seq))
	return c.Redirect(http.StatusSeeOther, "/chains/"+string(coi))
}

// ---------------------------------------------------------------------------
// QA console

type stateCount struct {
	State    custody.State
	Text     string
	Count    int
	Selected bool
}

type chainRow struct {
	custody.ChainInfo
	Display    string
	OpenIssues int
}

type issueRow struct {
	COI     custody.COI
	Display string
	Issue   custody.Issue
	Text    string
	Detail  string
}

type consoleView struct {
	Counts  []stateCount
	Chains  []chainRow
	Issues  []issueRow
	Filter  custody.State
	InFight int
}

func (w *webUI) consolePage(c echo.Context) error {
	me := session(c).User
	if !custody.MayUseConsole(me.Role) {
		return w.refuse(c, http.StatusForbidden, "The QA console is for QA, coordinators and manufacturing.",
			"Use the scan station to look up a chain.")
	}
	ctx := c.Request().Context()
	filter := custody.State(c.QueryParam("state"))
	if filter != "" && !slices.Contains(custody.States, filter) {
		filter = ""
	}
	infos, err := w.s.svc.Chains(ctx, "")
	if err != nil {
		return w.fail(c, err)
	}
	counts := map[custody.State]int{}
	var v consoleView
	v.Filter = filter
	for _, ci := range infos {
		counts[ci.State]++
		ch, err := w.s.svc.Chain(ctx, ci.COI)
		if err != nil {
			return w.fail(c, err)
		}
		open := ch.OpenIssues()
		for _, is := range open {
			row := issueRow{COI: ch.COI, Display: ch.Display, Issue: is, Text: issueText(is.Kind)}
			row.Detail = excursionDetail(ch, is.Seq)
			if is.ReopenedBy != 0 {
				row.Detail += fmt.Sprintf("; reopened by record %d: readings stored after QA's acceptance changed its figures", is.ReopenedBy)
			}
			if is.Kind == custody.IssueMismatch {
				row.Detail = mismatchDetail(ch, is.Seq)
			}
			v.Issues = append(v.Issues, row)
		}
		if (filter == "" && !ci.State.Terminal()) || ci.State == filter {
			v.Chains = append(v.Chains, chainRow{ChainInfo: ci, Display: ci.COI.Display(), OpenIssues: len(open)})
		}
		if !ci.State.Terminal() {
			v.InFight++
		}
	}
	for _, st := range custody.States {
		v.Counts = append(v.Counts, stateCount{State: st, Text: stateText(st), Count: counts[st], Selected: st == filter})
	}
	slices.SortStableFunc(v.Chains, func(a, b chainRow) int { return b.Updated.Compare(a.Updated) })
	return w.render(c, http.StatusOK, "console", page{Title: "QA console", Nav: "qa", V: v})
}

// mismatchDetail says whether a bedside mismatch was acknowledged, and by
// whom.
func mismatchDetail(ch *custody.Chain, seq uint64) string {
	for _, m := range ch.Mismatches {
		if m.Seq != seq {
			continue
		}
		if !m.Acknowledged {
			return "not yet acknowledged: a nurse, coordinator or QA acknowledges it on the chain page"
		}
		return fmt.Sprintf("acknowledged by %s (record %d); the bag is set aside until QA decides", m.AcknowledgedBy, m.AcknowledgeSeq)
	}
	return ""
}

// excursionDetail describes an excursion record: leg, worst value, how
// long, with the final figures once the system recorded its end.
func excursionDetail(ch *custody.Chain, seq uint64) string {
	list, err := custody.ChainExcursions(ch)
	if err != nil {
		return ""
	}
	for _, d := range list {
		if d.Seq != seq {
			continue
		}
		s := fmt.Sprintf("leg %d, shipper %s, %s profile, for %s", d.Leg, d.Shipper, d.Profile, d.Duration)
		if d.Worst != nil {
			s += fmt.Sprintf(", worst %g", *d.Worst)
			if d.Limit != nil {
				s += fmt.Sprintf(" (limit %g)", *d.Limit)
			}
		}
		switch {
		case d.End == nil:
			s += ", ongoing: no end recorded yet"
		case d.EndedSeq != 0:
			s += fmt.Sprintf(", ended %s (recorded in record %d)", d.End.UTC().Format("2006-01-02 15:04 UTC"), d.EndedSeq)
		}
		return s
	}
	return ""
}
