// Package web is coid's web UI: the scan station nurses use at the bench
// and the bedside, and the QA console. It owns the browser sessions, the
// CSRF checks, the pages and their forms; it mounts itself on the API's
// server (package api) and borrows its plumbing: the request log, the
// error table, the throttles and the download handlers.
//
// Pages are rendered on the server with html/template from assets embedded
// in the binary; one small dependency-free script (webui/static/app.js)
// adds focus handling, camera scanning and the live chart. The script is
// progressive: every form works without it. No page has inline script or
// style, so the Content-Security-Policy set in Mount applies unchanged.
//
// Browsers authenticate with a session cookie (session.go); API tokens
// keep working for machines on /api/v1. Every POST form carries the
// session's synchronizer CSRF token (the sign-in form a double-submit
// cookie) and is refused with a page that says so when it does not match
// (csrf.go). The domain enforces roles and journey rules; pages only hide
// what a role cannot do. Each screen or action has its file:
//
//	GET  /                         home: the scan station or the QA console (login.go)
//	GET  /login, POST /login       sign in; POST /logout signs out (login.go)
//	GET  /password, POST /password change the password; forced after a reset or expiry (login.go)
//	GET  /enroll, POST /enroll     enroll a patient (enroll.go)
//	GET  /scan, POST /scan         scan station; a scan goes to the chain page (scan.go)
//	GET  /chains/:coi              chain page: state, next step forms, issues, legs, timeline (chain.go)
//	POST /chains/:coi/steps/:step  record a step with its signatures (record.go, forms.go)
//	GET  /chains/:coi/booking, POST: book from a month calendar; POST .../booking/{reschedule,unschedule,override} (booking.go)
//	GET  /chains/:coi/bedside      guided bedside check; POST advances it (bedside.go)
//	GET  /mismatch, POST /mismatch/ack   a bedside mismatch, until acknowledged (mismatch.go)
//	GET  /qa                       QA console: chains by state, open issues (console.go),
//	                               refused telemetry, ?quarantine=<page> (quarantine.go)
//	GET  /chains/:coi/legs/:n/live server-sent readings of a leg (live chart, live.go)
//	GET  /chains/:coi/labels.pdf, /chains/:coi/bags/:bag/label.pdf   labels (downloads.go)
//	GET  /chains/:coi/report.pdf, /chains/:coi/epcis.json   custody report, EPCIS export (downloads.go)
//	GET  /alerts/live              excursion alerts (server-sent events) for the console (downloads.go)
//	GET  /admin                    administration index, administrators and QA (admin_registry.go)
//	GET  /admin/{organisations,sites,products,shippers}, POST: list, register; GET, POST /admin/<kind>/:code/edit;
//	     POST /admin/<kind>/:code/suspend   the registries, one screen for all four (admin_registry.go)
//	GET  /admin/site-mappings, POST: old chains' free-text site names mapped to registered sites (admin_sitemap.go)
//	GET  /admin/users, POST: list (paged, filtered), create; GET /admin/users/:id: one account (admin_users.go)
//	POST /admin/users/:id/{network,unlock,reset,disable,enable,token,revoke}   account changes (admin_users.go)
//	GET  /admin/capacity[/:site], POST /admin/capacity/:site[/closures|/exceptions]   sites' capacity (capacity.go)
//	GET  /waitlist, POST: the waiting list, a chain put on it; POST /waitlist/:coi/{urgency,remove,accept,decline} (waitlist.go)
//	GET  /calendar-feeds, POST: the user's calendar feed tokens, one issued; POST .../:token/revoke (feeds.go)
//	GET  /access/requests, /access/requests/new, POST /access/requests   expanded-access requests: a site's list,
//	     the physician's form (access_request.go); GET /access/requests/:id the request page with its regulatory
//	     checklist (access_request_page.go); POST .../:id/steps/:step, .../:id/enroll; GET .../:id/documents/:hash
//	     (access_request_record.go)
//	GET  /access/queue, POST /access/queue/:id/{assign,request-info,decide}   the access team's triage queue;
//	     GET /access/figures.csv   time to decision (access_queue.go)
//	GET  /follow-ups               overdue follow-ups; GET /follow-ups/export.csv the registry export (followup.go)
//	GET  /static/*                 CSS, script, icons (render.go)
package web

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

//go:embed webui
var webFS embed.FS

// ui is the web UI mounted on one API server.
type ui struct {
	srv      *api.Server
	svc      *custody.Service
	log      *slog.Logger
	sessions *sessionStore
	throttle *api.SignInThrottle
	pages    map[string]*template.Template
	static   http.Handler
	// quarantine lists refused telemetry for the console; nil: none.
	quarantine custody.QuarantineLister
}

const ctxSession = "coid.web.session"
const ctxSessionID = "coid.web.session_id"

// ctxUser holds the signed-in user as stored at this request.
const ctxUser = "coid.web.user"

// webPrefixes are the paths the web UI answers; everything else (the API
// under /api/v1, /healthz) is left to the API's router.
var webPrefixes = []string{"/login", "/logout", "/password", "/enroll", "/scan", "/chains/", "/mismatch", "/qa", "/audit", "/admin", "/alerts/", "/static/", "/favicon.ico", "/waitlist", "/dashboard", "/calendar-feeds",
	"/access/", "/follow-ups"}

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

// Mount adds the browser UI (scan station and QA console) to srv, with
// opts (WithQuarantine). It fails only when the embedded templates do not
// parse.
//
// The UI has its own echo router, reached through a pre-routing hook for
// the web paths, so that the API's route table (which openapi.json must
// document, route for route) holds only the API. The UI's router applies
// the same request ID, logging, recovery, security headers and body limit
// as the API.
func Mount(srv *api.Server, opts ...Option) error {
	w, err := newUI(srv)
	if err != nil {
		return fmt.Errorf("api: web UI: %w", err)
	}
	for _, o := range opts {
		o(w)
	}
	e := srv.Echo()
	we := echo.New()
	we.HideBanner, we.HidePort = true, true
	we.Logger.SetOutput(io.Discard)
	we.IPExtractor = e.IPExtractor
	we.HTTPErrorHandler = w.handleError
	we.Use(middleware.RequestID())
	we.Use(srv.RequestLogger("ui", true))
	we.Use(srv.Recoverer("panic in web handler"))
	we.Use(middleware.SecureWithConfig(middleware.SecureConfig{
		XSSProtection: "0", ContentTypeNosniff: "nosniff", XFrameOptions: "DENY", ReferrerPolicy: "same-origin",
		ContentSecurityPolicy: "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
			"media-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
	}))
	we.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: srv.BodyLimit(),
		// A request's document forms stream their PDF to the document
		// store, which has its own limit (access_request_record.go).
		Skipper: func(c echo.Context) bool { return c.Path() == accessStepPath && isMultipart(c.Request()) }}))
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

	g := we.Group("", w.requireSession, w.passwordGate, w.mismatchGate, w.checkCSRF)
	g.GET("/", w.home)
	g.POST("/logout", w.logout)
	g.GET("/password", w.passwordPage)
	g.POST("/password", w.changePassword)
	g.GET("/enroll", w.enrollPage)
	signs := srv.ThrottleSignatures(func(c echo.Context) string { return sessionUser(c).ID })
	g.POST("/enroll", w.enrollSubmit, signs)
	g.GET("/scan", w.scanPage)
	g.POST("/scan", w.scanSubmit)
	g.GET("/chains/:coi", w.chainPage)
	g.POST("/chains/:coi/steps/:step", w.recordStep, signs)
	g.GET("/chains/:coi/bedside", w.bedsidePage)
	w.registerBooking(g, signs)
	g.POST("/chains/:coi/bedside", w.bedsideSubmit, signs)
	g.GET("/mismatch", w.mismatchPage)
	g.POST("/mismatch/ack", w.mismatchAck)
	g.POST("/chains/:coi/mismatches/:seq/ack", w.chainMismatchAck)
	g.GET("/qa", w.consolePage)
	g.GET("/chains/:coi/legs/:n/live", w.legLive)
	w.registerDownloads(g)
	w.registerAudit(g)
	w.registerWaitlist(g, signs)
	w.registerDashboard(g)
	w.registerFeeds(g)
	g.GET("/admin", w.adminIndex)
	w.registerAdminRegistries(g)
	g.GET("/admin/users", w.adminUsersPage)
	g.POST("/admin/users", w.adminUserCreate)
	g.GET("/admin/users/:id", w.adminUserPage)
	g.POST("/admin/users/:id/:action", w.adminUserAction)
	w.registerCapacity(g)
	w.registerAccessRequests(g, signs)
	w.registerAccessQueue(g, signs)
	w.registerFollowUps(g)

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
