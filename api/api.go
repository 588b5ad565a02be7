// Package api is coid's HTTP interface: an echo v4 server (with api/web, the
// only packages that import echo) with the JSON API, the throttles, labels
// and reports over HTTP and the live telemetry alerts. It translates
// requests into calls on the custody domain, decoding bodies strictly
// (bind), and domain errors into status codes in one table (errorTable). No
// domain rule lives here. The web UI (package api/web) mounts itself on a
// Server and borrows its plumbing (web_share.go).
package api

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/epcis"
	"github.com/coid-project/coid/custody/verifiable"
	"github.com/coid-project/coid/custody/verifiable/witness"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// Config configures the HTTP server.
type Config struct {
	Service *custody.Service
	Logger  *slog.Logger
	Version string
	// TrustedProxies, when set, are the only peers whose X-Forwarded-For
	// is believed; otherwise the peer address is the client's.
	TrustedProxies []string
	// Shared, when set, keeps the web sign-in throttle's counts (and the
	// web UI's sessions) where every instance sharing the store sees them;
	// nil keeps them in this process's memory.
	Shared custody.SharedState
	// BodyLimit caps request bodies (echo size syntax); default "1M".
	BodyLimit string
	// LabelZone is the time zone labels print local times in, unless a
	// request names one; nil is UTC.
	LabelZone *time.Location
	// Telemetry serves the cold-chain routes' alert stream and quarantine.
	Telemetry TelemetryConfig
	// QualificationWarningDays is how many days ahead the expiring
	// qualifications are listed when a request names none; 0 is
	// custody.DefaultQualificationWarningDays, negative is 0 days (only
	// what has expired).
	QualificationWarningDays int
	// AuditReportMax bounds the entries of one audit-trail report (PDF or
	// CSV); a wider filter is refused. 0 is auditreport.DefaultMaxEntries.
	AuditReportMax int
	// EPCISBase is the HTTP URI base of the EPCIS export's identifiers
	// (see epcis.ValidateBase); empty is epcis.DefaultBase.
	EPCISBase string
	// Log, when set, is the verifiable log the proof routes serve.
	Log *verifiable.Log
	// Witnesses, when set, submits the log's checkpoints to witnesses;
	// the proof routes report on them.
	Witnesses *witness.Submitter
	// Health, when set, is checked by /healthz and /readyz after the
	// store (coid serve checks its MQTT intake there); an error makes
	// them answer 503.
	Health func(context.Context) error
	// ObserveRequest, when set, hears of every request answered: its
	// method, its route pattern (e.g. /api/v1/chains/:coi, never the raw
	// path, which holds COIs; empty for a path no route matches), status
	// and latency. Metrics are kept there.
	ObserveRequest func(method, route string, status int, latency time.Duration)
	// Metrics, when set, is served at GET /metrics. It does its own
	// authentication (a scrape token): the API's bearer tokens are users'.
	Metrics http.Handler
}

// Server is the HTTP API.
type Server struct {
	e   *echo.Echo
	svc *custody.Service
	log *slog.Logger
	cfg Config
	// proxies are the parsed TrustedProxies.
	proxies []*net.IPNet
	// stopping is closed by StopStreams: long-lived responses end.
	stopping chan struct{}
	stopOnce sync.Once
	// sigs throttles failed signatures per caller (throttle.go).
	sigs *sigThrottle
	// signIn throttles failed web sign-ins; an online unlock (API or web)
	// clears its hold on the user.
	signIn *SignInThrottle
	// ready is set once start-up is done and cleared when shutdown
	// begins (/readyz).
	ready atomic.Bool
	// chains keeps the encoded bodies of the chains GET /chains/{coi}
	// answered (chainbody.go).
	chains chainBodies
}

// SetReady says whether the server should take traffic: /readyz answers
// 503 until SetReady(true) and again after SetReady(false), which coid
// serve calls when it begins to shut down so that load balancers drain it.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// StopStreams ends the long-lived responses (the alert stream, the live
// leg charts), so that a graceful shutdown (http.Server.Shutdown) need not
// wait for them while the other requests in flight finish normally.
func (s *Server) StopStreams() { s.stopOnce.Do(func() { close(s.stopping) }) }

const ctxUser = "coid.user"

// New builds the server and registers every route. It fails only for a
// malformed trusted-proxy CIDR.
func New(cfg Config) (*Server, error) {
	if cfg.BodyLimit == "" {
		cfg.BodyLimit = "1M"
	}
	if cfg.EPCISBase != "" {
		if err := epcis.ValidateBase(cfg.EPCISBase); err != nil {
			return nil, fmt.Errorf("api: %w", err)
		}
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Logger.SetOutput(io.Discard)
	e.IPExtractor = echo.ExtractIPDirect()
	var proxies []*net.IPNet
	if len(cfg.TrustedProxies) > 0 {
		// Only the named proxies: echo would also trust loopback,
		// link-local and private addresses, and any client on a hospital
		// LAN could then choose its address per request.
		opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
		for _, p := range cfg.TrustedProxies {
			_, n, err := net.ParseCIDR(p)
			if err != nil {
				return nil, fmt.Errorf("api: trusted proxy %q is not a CIDR range: %w", p, custody.ErrInvalid)
			}
			opts = append(opts, echo.TrustIPRange(n))
			proxies = append(proxies, n)
		}
		e.IPExtractor = echo.ExtractIPFromXFFHeader(opts...)
	}
	s := &Server{e: e, svc: cfg.Service, log: cfg.Logger, cfg: cfg, proxies: proxies, stopping: make(chan struct{}),
		sigs: newSigThrottle(cfg.Service.Now), signIn: &SignInThrottle{t: newSignInThrottle(cfg.Service.Now, cfg.Shared, cfg.Logger)}}
	e.HTTPErrorHandler = s.handleError
	e.Use(middleware.RequestID())
	e.Use(s.logRequests())
	e.Use(s.recoverPanics("panic in handler"))
	e.Use(middleware.SecureWithConfig(middleware.SecureConfig{
		XSSProtection: "0", ContentTypeNosniff: "nosniff", XFrameOptions: "DENY",
		ReferrerPolicy: "no-referrer", ContentSecurityPolicy: "default-src 'self'; frame-ancestors 'none'",
	}))
	// Document uploads stream to a store with its own size limit.
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: cfg.BodyLimit,
		Skipper: func(c echo.Context) bool { return c.Path() == accessUploadPath }}))
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Response().Header().Set("Cache-Control", "no-store")
			return next(c)
		}
	})

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	if cfg.Metrics != nil {
		e.GET("/metrics", echo.WrapHandler(cfg.Metrics))
	}
	g := e.Group("/api/v1", s.authenticate)
	g.GET("/openapi.json", s.openAPI)
	g.GET("/me", s.me)
	signs := s.sigs.throttleSignatures(func(c echo.Context) string { return user(c).ID })
	g.POST("/chains", s.enroll, signs)
	g.GET("/chains", s.listChains)
	g.GET("/chains/:coi", s.getChain)
	g.POST("/chains/:coi/records", s.appendRecord, signs)
	g.GET("/chains/:coi/verify", s.verifyChain)
	g.POST("/chains/:coi/mismatches/:seq/acknowledge", s.acknowledgeMismatch)
	g.GET("/verify", s.verifyLedger)
	g.POST("/scan", s.scan)
	g.GET("/backup", s.backup)
	g.GET("/users", s.listUsers)
	g.POST("/users", s.addUser)
	g.POST("/users/:id/unlock", s.unlockUser)
	g.POST("/users/:id/disable", s.setDisabled(true))
	g.POST("/users/:id/enable", s.setDisabled(false))
	g.PUT("/users/:id/network", s.setUserNetwork)
	g.POST("/users/:id/tokens", s.newToken)
	s.registerAccountRoutes(g)
	s.mountRegistries(g)
	s.registerNetworkRoutes(g)
	s.registerLabelRoutes(g)
	s.registerTelemetryRoutes(g)
	s.registerReportRoutes(g)
	s.registerAuditRoutes(g)
	s.registerScheduleRoutes(g)
	s.registerFeedRoutes(e, g)
	s.registerFHIRRoutes(e)
	s.registerProofRoutes(g)
	s.registerQuotaRoutes(g)
	s.registerAccessRoutes(g)

	s.registerDashboardRoutes(g)
	s.registerFollowUpRoutes(g)
	return s, nil
}

// logRequests logs each request once it is answered, with attrs added.
// Paths hold COI and bag IDs, never patient identifiers; query strings and
// bodies are never logged.
func (s *Server) logRequests(attrs ...any) echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		HandleError: true, LogStatus: true, LogURIPath: true, LogMethod: true, LogLatency: true, LogRequestID: true, LogRemoteIP: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			user := ""
			if u, ok := c.Get(ctxUser).(custody.User); ok {
				user = u.ID
			}
			if s.cfg.ObserveRequest != nil {
				s.cfg.ObserveRequest(v.Method, c.Path(), v.Status, v.Latency)
			}
			s.log.Info("http request", append([]any{"method", v.Method, "path", v.URIPath, "status", v.Status,
				"latency_ms", float64(v.Latency.Microseconds()) / 1000, "request_id", v.RequestID, "remote_ip", v.RemoteIP, "user", user}, attrs...)...)
			return nil
		},
	})
}

// recoverPanics turns a handler's panic into a 500 and logs it with msg.
func (s *Server) recoverPanics(msg string) echo.MiddlewareFunc {
	return middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.log.Error(msg, "err", err, "path", c.Path(), "stack", string(stack))
			return err
		},
	})
}

// Handler returns the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.e }

// Echo returns the underlying echo instance, so later features can add
// routes to the same server.
func (s *Server) Echo() *echo.Echo { return s.e }

// Routes lists the registered method and path pairs.
func (s *Server) Routes() []*echo.Route { return s.e.Routes() }

// healthz answers 200 while the store can be read and 503 when it cannot
// (the reason is logged, not shown: the route needs no token).
func (s *Server) healthz(c echo.Context) error {
	if err := s.health(c.Request().Context()); err != nil {
		s.log.Error("health check failed", "err", err)
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "version": s.cfg.Version})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok", "version": s.cfg.Version})
}

// health checks the store (a read transaction) and then Config.Health.
func (s *Server) health(ctx context.Context) error {
	if err := s.svc.Health(ctx); err != nil {
		return err
	}
	if s.cfg.Health != nil {
		return s.cfg.Health(ctx)
	}
	return nil
}

// readyz answers 200 when the server takes traffic: start-up is done
// (SetReady), shutdown has not begun and healthz would answer 200.
// Load balancers poll it; unlike healthz, a draining instance fails it.
func (s *Server) readyz(c echo.Context) error {
	status := "ready"
	if !s.ready.Load() {
		status = "not ready"
	} else if err := s.health(c.Request().Context()); err != nil {
		s.log.Error("readiness check failed", "err", err)
		status = "unavailable"
	}
	code := http.StatusOK
	if status != "ready" {
		code = http.StatusServiceUnavailable
	}
	return c.JSON(code, map[string]string{"status": status, "version": s.cfg.Version})
}

//go:embed openapi.json
var openAPIDoc []byte

func (s *Server) openAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPIDoc)
}

// authenticate requires "Authorization: Bearer <token>" on every /api route.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		// The scheme name is case-insensitive (RFC 9110 section 11.1).
		scheme, tok, ok := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="coid"`)
			return fmt.Errorf("an API token is required (Authorization: Bearer <token>): %w", custody.ErrUnauthenticated)
		}
		u, err := s.svc.Authenticate(c.Request().Context(), strings.TrimSpace(tok))
		if err != nil {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="coid", error="invalid_token"`)
			return err
		}
		c.Set(ctxUser, u)
		c.Set(ctxToken, custody.TokenHash(strings.TrimSpace(tok)))
		if err := s.passwordGate(c, u); err != nil {
			return err
		}
		return next(c)
	}
}

func user(c echo.Context) custody.User {
	u, _ := c.Get(ctxUser).(custody.User)
	return u
}

func (s *Server) me(c echo.Context) error { return c.JSON(http.StatusOK, user(c).Public()) }

// errorTable maps domain errors to HTTP statuses and error codes, and
// to a Retry-After in seconds where a retry may follow at once. It is the
// only place that does.
var errorTable = []struct {
	err        error
	status     int
	code       string
	retryAfter int
}{
	{custody.ErrInvalid, http.StatusBadRequest, "invalid", 0},
	{custody.ErrUnauthenticated, http.StatusUnauthorized, "unauthenticated", 0},
	{custody.ErrPasswordChange, http.StatusForbidden, "password_change_required", 0}, // before ErrForbidden, which it matches too
	{custody.ErrForbidden, http.StatusForbidden, "forbidden", 0},
	{custody.ErrNotFound, http.StatusNotFound, "not_found", 0},
	{custody.ErrSlotTaken, http.StatusConflict, "slot_taken", 0},
	{custody.ErrNotBooked, http.StatusConflict, "not_booked", 0},
	{custody.ErrQuotaExhausted, http.StatusConflict, "quota_exhausted", 0},
	{custody.ErrOfferExpired, http.StatusConflict, "offer_expired", 0},
	{custody.ErrRequirementsUnmet, http.StatusConflict, "requirements_unmet", 0},
	{custody.ErrOutOfSpecification, http.StatusConflict, "out_of_specification", 0},
	{custody.ErrExceptionalReleaseIncomplete, http.StatusConflict, "exceptional_release_incomplete", 0},
	{custody.ErrTooLarge, http.StatusRequestEntityTooLarge, "too_large", 0},
	{custody.ErrConflict, http.StatusConflict, "conflict", 0},
	{custody.ErrRetry, http.StatusServiceUnavailable, "retry", 1},
	{custody.ErrThrottled, http.StatusTooManyRequests, "too_many_requests", 0},
	{custody.ErrDamaged, http.StatusInternalServerError, "store_damaged", 0}, // before ErrChainBroken, which it matches too
	{custody.ErrChainBroken, http.StatusInternalServerError, "integrity_failure", 0},
	{custody.ErrInUse, http.StatusServiceUnavailable, "unavailable", 0},
	{custody.ErrClosed, http.StatusServiceUnavailable, "unavailable", 0},
}

type errorBody struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id,omitempty"`
	} `json:"error"`
}

func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var body errorBody
	status := 0
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			// The sentinel's own text ends every message; it adds nothing.
			status, body.Error.Code = row.status, row.code
			body.Error.Message = strings.TrimSuffix(err.Error(), ": "+row.err.Error())
			break
		}
	}
	rid := c.Response().Header().Get(echo.HeaderXRequestID)
	body.Error.RequestID = rid
	setRetryAfter(c, err)
	var he *echo.HTTPError
	switch {
	case status != 0:
	case errors.As(err, &he):
		status = he.Code
		body.Error.Code = strings.ToLower(strings.ReplaceAll(http.StatusText(he.Code), " ", "_"))
		body.Error.Message = fmt.Sprint(he.Message)
		if he.Code == http.StatusRequestEntityTooLarge {
			body.Error.Code, body.Error.Message = "too_large", "request body larger than "+s.cfg.BodyLimit
		}
	default:
		status, body.Error.Code = http.StatusInternalServerError, "internal"
	}
	if status >= 500 {
		// Never show internals to clients; always log them. A lost race
		// (retry) is routine: the client sends the same request again.
		lvl := slog.LevelError
		if body.Error.Code == "retry" {
			lvl = slog.LevelInfo
		}
		s.log.Log(c.Request().Context(), lvl, "request failed", "err", err, "status", status, "path", c.Path(), "request_id", rid)
		switch body.Error.Code {
		case "integrity_failure":
			body.Error.Message = "ledger integrity failure: the stored records do not verify; operators have been alerted (run coid verify)"
		case "store_damaged":
			body.Error.Message = "the store file is damaged and cannot be read; operators have been alerted (run coid verify, restore from a backup)"
		case "internal":
			body.Error.Message = "internal error; see the server log for request " + rid
		}
	}
	if isFHIR(c) {
		writeOutcome(c, status, body.Error.Message)
		return
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = c.JSON(status, body)
}

// bind decodes a JSON body strictly: unknown fields, duplicate or
// case-variant member names at any depth, trailing data and wrong types
// are ErrInvalid with a message that says where.
func bind(c echo.Context, v any) error {
	b, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var mbe *http.MaxBytesError
		var he *echo.HTTPError
		if errors.As(err, &mbe) || errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge {
			return echo.ErrStatusRequestEntityTooLarge
		}
		return fmt.Errorf("read body: %v: %w", err, custody.ErrInvalid)
	}
	if !utf8.Valid(b) {
		// encoding/json would quietly turn the bad bytes into U+FFFD,
		// and a garbled name would be printed on a label.
		return fmt.Errorf("request body is not valid UTF-8: %w", custody.ErrInvalid)
	}
	// encoding/json would keep the last of two "mrn" members, or of "mrn"
	// and "MRN", while a reviewer or a proxy reads the first.
	if err := custody.CheckMembers(b); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return fmt.Errorf("malformed JSON at byte %d: %w", se.Offset, custody.ErrInvalid)
		case errors.As(err, &te) && te.Field == "":
			return fmt.Errorf("request body must be a JSON object: %w", custody.ErrInvalid)
		case errors.As(err, &te):
			return fmt.Errorf("field %q must be %s: %w", te.Field, jsonType(te.Type), custody.ErrInvalid)
		case errors.Is(err, io.EOF):
			return fmt.Errorf("request body is empty; a JSON object is required: %w", custody.ErrInvalid)
		}
		return fmt.Errorf("malformed request: %v: %w", sanitize(err), custody.ErrInvalid)
	}
	if dec.More() {
		return fmt.Errorf("malformed JSON: data after the object: %w", custody.ErrInvalid)
	}
	return nil
}

// jsonType names a Go type as the JSON type a client must send.
func jsonType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8,
		reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

// sanitize shortens decoder errors, which never contain field values.
func sanitize(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.TrimPrefix(s, "json: ")
}

// coiParam parses the {coi} path parameter. Echo routes on the raw path
// when the client percent-encoded it (the display form's space, or "*"),
// so the parameter is unescaped first.
func coiParam(c echo.Context) (custody.COI, error) {
	p := c.Param("coi")
	if c.Request().URL.RawPath != "" {
		u, err := url.PathUnescape(p)
		if err != nil {
			return "", fmt.Errorf("chain identifier in the path is not valid percent-encoding: %w", custody.ErrInvalid)
		}
		p = u
	}
	return custody.ParseCOI(p)
}

type enrollResponse struct {
	COI        custody.COI `json:"coi"`
	COIDisplay string      `json:"coi_display"`
	*custody.Chain
}

func (s *Server) enroll(c echo.Context) error {
	var req custody.EnrollRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	ch, err := s.svc.Enroll(c.Request().Context(), user(c), req)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/chains/"+string(ch.COI))
	return c.JSON(http.StatusCreated, enrollResponse{COI: ch.COI, COIDisplay: ch.Display, Chain: ch})
}

func (s *Server) listChains(c echo.Context) error {
	limit, err := pageLimit(c, custody.MaxChainPage)
	if err != nil {
		return err
	}
	var after custody.COI
	if v := c.QueryParam("after"); v != "" {
		coi, err := custody.ParseCOI(v)
		if err != nil {
			return fmt.Errorf("after: %w", err)
		}
		after = coi
	}
	page, err := s.svc.ChainsFor(c.Request().Context(), user(c), custody.State(c.QueryParam("state")), after, limit)
	if err != nil {
		return err
	}
	list := page.Chains
	type item struct {
		custody.ChainInfo
		Display string `json:"coi_display"`
	}
	out := make([]item, len(list))
	for i, ci := range list {
		out[i] = item{ci, ci.COI.Display()}
	}
	body := map[string]any{"chains": out, "count": len(out)}
	if page.Next != "" {
		body["next"] = page.Next
	}
	return c.JSON(http.StatusOK, body)
}

func (s *Server) getChain(c echo.Context) error {
	coi, err := coiParam(c)
	if err != nil {
		return err
	}
	ch, err := s.svc.ReadChain(c.Request().Context(), user(c), coi)
	if err != nil {
		return err
	}
	if _, pretty := c.QueryParams()["pretty"]; pretty {
		return c.JSON(http.StatusOK, ch)
	}
	body, err := s.chains.encode(ch)
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, body)
}

func (s *Server) appendRecord(c echo.Context) error {
	coi, err := coiParam(c)
	if err != nil {
		return err
	}
	var req custody.StepRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	rec, err := s.svc.Record(c.Request().Context(), user(c), coi, req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, rec)
}

func (s *Server) acknowledgeMismatch(c echo.Context) error {
	coi, err := coiParam(c)
	if err != nil {
		return err
	}
	seq, err := strconv.ParseUint(c.Param("seq"), 10, 64)
	if err != nil || seq == 0 {
		return fmt.Errorf("the mismatch in the path must be its record position, a positive integer: %w", custody.ErrInvalid)
	}
	rec, err := s.svc.AcknowledgeMismatch(c.Request().Context(), user(c), coi, seq, custody.ViaToken)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, rec)
}

func (s *Server) verifyChain(c echo.Context) error {
	coi, err := coiParam(c)
	if err != nil {
		return err
	}
	if err := s.svc.CheckRead(c.Request().Context(), user(c), coi); err != nil {
		return err
	}
	rep, err := s.svc.VerifyChain(c.Request().Context(), coi)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rep)
}

// maxCheckpoints is how many checkpoints one verify request may name.
const maxCheckpoints = 32

// verifyLedger verifies the ledger and the checkpoints named. A malformed
// or impossible checkpoint is bad input (400, logged at info level as any
// request); only a well-formed one the ledger no longer holds is an
// integrity failure, logged as an error.
func (s *Server) verifyLedger(c echo.Context) error {
	vs := c.QueryParams()["checkpoint"]
	if len(vs) > maxCheckpoints {
		return fmt.Errorf("%d checkpoints; at most %d per request: %w", len(vs), maxCheckpoints, custody.ErrInvalid)
	}
	var cps []custody.Checkpoint
	for _, v := range vs {
		cp, err := custody.ParseCheckpoint(v)
		if err != nil {
			return err
		}
		cps = append(cps, cp)
	}
	rep, err := s.svc.VerifyLedgerAt(c.Request().Context(), cps)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rep)
}

type scanResponse struct {
	COI        custody.COI     `json:"coi"`
	COIDisplay string          `json:"coi_display"`
	Form       string          `json:"form"`
	Bag        string          `json:"bag,omitempty"`
	BagKind    custody.BagKind `json:"bag_kind,omitempty"`
	Product    string          `json:"product"`
	State      custody.State   `json:"state"`
	Next       []custody.Step  `json:"next"`
	OpenIssues []custody.Issue `json:"open_issues"`
	Legs       []custody.Leg   `json:"legs"`
	Scanned    time.Time       `json:"scanned"`
}

func (s *Server) scan(c echo.Context) error {
	var req struct {
		Code string `json:"code"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	code, err := custody.ParseCode(req.Code)
	if err != nil {
		return err
	}
	ch, err := s.svc.ReadChain(c.Request().Context(), user(c), code.COI)
	if err != nil {
		return err
	}
	out := scanResponse{COI: ch.COI, COIDisplay: ch.Display, Form: code.Form, Product: ch.Product, State: ch.State,
		Next: ch.Next, OpenIssues: ch.OpenIssues(), Legs: ch.Legs, Scanned: s.svc.Now()}
	if out.OpenIssues == nil {
		out.OpenIssues = []custody.Issue{}
	}
	if code.Bag != nil {
		if !ch.HasBag(*code.Bag) {
			return fmt.Errorf("scan: bag %s is not registered on chain %s: %w", code.Bag, ch.Display, custody.ErrNotFound)
		}
		out.Bag, out.BagKind = code.Bag.String(), code.Bag.Kind
	}
	return c.JSON(http.StatusOK, out)
}

// fromTrustedProxy reports whether the request's direct peer is one of
// the trusted proxies, whose X-Forwarded-* headers are believed.
func (s *Server) fromTrustedProxy(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	for _, n := range s.proxies {
		if ip != nil && n.Contains(ip) {
			return true
		}
	}
	return false
}
