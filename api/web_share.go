package api

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/labels"
	"github.com/labstack/echo/v4"
)

// What the API shares with the web UI (package api/web), which mounts
// itself on a Server: the request plumbing (logging, recovery, the trusted
// proxies, the stream shutdown), the error table, the throttles, and the
// download handlers (labels, reports, alerts) a browser reaches with its
// session instead of a token. The dependency points one way: api/web
// imports api, never the reverse.

// Service returns the custody service the server calls.
func (s *Server) Service() *custody.Service { return s.svc }

// Logger returns the server's logger.
func (s *Server) Logger() *slog.Logger { return s.log }

// BodyLimit returns the request body limit (echo size syntax).
func (s *Server) BodyLimit() string { return s.cfg.BodyLimit }

// Stopping is closed by StopStreams: long-lived responses end when it is.
func (s *Server) Stopping() <-chan struct{} { return s.stopping }

// FromTrustedProxy reports whether the request's direct peer is one of
// the trusted proxies, whose X-Forwarded-* headers are believed.
func (s *Server) FromTrustedProxy(r *http.Request) bool { return s.fromTrustedProxy(r) }

// RequestLogger logs each request once it is answered, with attrs added
// (paths only: never query strings or bodies).
func (s *Server) RequestLogger(attrs ...any) echo.MiddlewareFunc { return s.logRequests(attrs...) }

// Recoverer turns a handler's panic into a 500 and logs it with msg.
func (s *Server) Recoverer(msg string) echo.MiddlewareFunc { return s.recoverPanics(msg) }

// ThrottleSignatures guards a route that takes signatures with the same
// per-caller count of refused signatures as the API's routes; callerOf
// names the authenticated caller.
func (s *Server) ThrottleSignatures(callerOf func(echo.Context) string) echo.MiddlewareFunc {
	return s.sigs.throttleSignatures(callerOf)
}

// ChainLabelsHandler answers the PDF of every bag label of the chain
// named by the :coi parameter, for the caller SetUser named.
func (s *Server) ChainLabelsHandler() echo.HandlerFunc { return s.chainLabels }

// BagLabelPDFHandler answers the PDF label of the bag named by the :coi
// and :bag parameters.
func (s *Server) BagLabelPDFHandler() echo.HandlerFunc { return s.bagLabel(labels.FormatPDF) }

// CustodyReportHandler answers the custody report (PDF) of the chain
// named by the :coi parameter; custody's policy decides who may have it.
func (s *Server) CustodyReportHandler() echo.HandlerFunc { return s.custodyReport }

// EPCISExportHandler answers the EPCIS export of the chain named by the
// :coi parameter.
func (s *Server) EPCISExportHandler() echo.HandlerFunc { return s.epcisExport }

// AlertStreamHandler answers the excursion alerts as server-sent events.
func (s *Server) AlertStreamHandler() echo.HandlerFunc { return s.alertStream }

// SetUser makes u the caller of the request, as a bearer token does: the
// request log and the API's handlers act for u.
func SetUser(c echo.Context, u custody.User) { c.Set(ctxUser, u) }

// COIParam reads the :coi path parameter (a COI in any accepted form).
func COIParam(c echo.Context) (custody.COI, error) { return coiParam(c) }

// SetRetryAfter sets the Retry-After header when err is a throttled
// refusal or an error that may be retried at once, as the API does.
func SetRetryAfter(c echo.Context, err error) { setRetryAfter(c, err) }

// ErrorClass is the error table's answer for a domain error.
type ErrorClass struct {
	// Sentinel is the documented error matched.
	Sentinel error
	// Status is the HTTP status answered.
	Status int
	// Retryable: the same request may be sent again at once (a lost race).
	Retryable bool
}

// ClassifyError returns the error table's row for err, the first whose
// sentinel err wraps; ok is false when none is.
func ClassifyError(err error) (cl ErrorClass, ok bool) {
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			return ErrorClass{Sentinel: row.err, Status: row.status, Retryable: row.retryAfter > 0}, true
		}
	}
	return ErrorClass{}, false
}

// SignInThrottle counts failed sign-ins per client address and user ID
// (the rules are those of the sign-in throttle in throttle.go).
type SignInThrottle struct{ t *signInThrottle }

// Shared returns the state kept with the instances sharing the store
// (Config.Shared), nil when there is none.
func (s *Server) Shared() custody.SharedState { return s.cfg.Shared }

// SignInThrottle returns the server's web sign-in throttle, shared with
// the web UI so that an online unlock through either lifts its hold.
func (s *Server) SignInThrottle() *SignInThrottle { return s.signIn }

// NewSignInThrottle returns an empty throttle reading time from now,
// kept in memory.
func NewSignInThrottle(now func() time.Time) *SignInThrottle {
	return &SignInThrottle{t: newSignInThrottle(now, nil, nil)}
}

// Attempt reserves one of addr's sign-in attempts, and one for user,
// before the password is checked; it reports whether addr may try now
// and, if not, how long until it may.
func (t *SignInThrottle) Attempt(addr, user string) (bool, time.Duration) {
	return t.t.attempt(addr, user)
}

// Succeeded gives back the attempts of a successful sign-in and
// remembers that user signs in from addr.
func (t *SignInThrottle) Succeeded(addr, user string) { t.t.succeeded(addr, user) }

// Refunded gives back the attempts of a sign-in that checked no password.
func (t *SignInThrottle) Refunded(addr, user string) { t.t.refunded(addr, user) }

// AccessFiguresHandler answers the time-to-decision figures of expanded-
// access requests, as CSV when the route's path ends in ".csv".
func (s *Server) AccessFiguresHandler() echo.HandlerFunc { return s.accessFigures }

// FollowUpExportCSVHandler answers the follow-up registry export as CSV
// (query from, to, product).
func (s *Server) FollowUpExportCSVHandler() echo.HandlerFunc { return s.followUpExportCSV }
