package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/custody/phitext"
	"github.com/labstack/echo/v4"
)

// ---------------------------------------------------------------------------
// Test environment: a real bbolt store in a temporary directory, the real
// service with fast argon2id parameters and a fixed clock, and the real echo
// server. After every test the whole ledger and every chain must verify.

// fixedNow is the service clock in every test.
var fixedNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// Users created in every environment.
const (
	coord   = "coord.cora"
	nurse1  = "nurse.ada"
	nurse2  = "nurse.bea"
	courier = "courier.cy"
	mfg     = "mfg.dan"
	qa      = "qa.eve"
	admin   = "admin.fay"
)

var userRoles = map[string]custody.Role{
	coord: custody.RoleCoordinator, nurse1: custody.RoleNurse, nurse2: custody.RoleNurse,
	courier: custody.RoleCourier, mfg: custody.RoleManufacturing, qa: custody.RoleQA, admin: custody.RoleAdmin,
}

// password returns a user's password: distinctive, so a test can search
// responses and logs for it.
func password(id string) string { return "Pw-" + strings.ReplaceAll(id, ".", "_") + "-Xq7!vault" }

func allPasswords() []string {
	var out []string
	for id := range userRoles {
		out = append(out, password(id))
	}
	return out
}

// patient is what a coordinator submits at enrollment.
type patient struct {
	Name      string `json:"name"`
	BirthDate string `json:"birth_date"`
	MRN       string `json:"mrn"`
}

var (
	patientA = patient{Name: "Zelda Quixote-Marchetti", BirthDate: "1961-07-19", MRN: "MRN-7730419"}
	patientB = patient{Name: "Oswin Thackeray-Lund", BirthDate: "1974-02-28", MRN: "MRN-5518862"}
)

func (p patient) identifiers() []string { return []string{p.Name, p.BirthDate, p.MRN} }

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a server.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	store  *boltstore.Store
	svc    *custody.Service
	srv    *api.Server
	logs   *syncBuffer
	tokens map[string]string
	// check validates every response against the OpenAPI document.
	check bool
}

type envConfig struct {
	api       api.Config
	wrapStore func(custody.Store) custody.Store
	discard   bool // discard logs (benchmarks)
	noCheck   bool // do not validate responses against the document
	// noVerify skips the verification of the ledger after the test: for
	// a benchmark whose fixture writes records straight through the
	// store, outside the journey's order.
	noVerify  bool
	now       func() time.Time
	passwords custody.PasswordPolicy
	docs      *custody.DocumentStore
	readings  bool // the bbolt store is the service's reading store too
}

type option func(*envConfig)

func withBodyLimit(l string) option { return func(c *envConfig) { c.api.BodyLimit = l } }

func withStore(f func(custody.Store) custody.Store) option {
	return func(c *envConfig) { c.wrapStore = f }
}

// withClock makes now the service clock (default: fixedNow, still).
func withClock(now func() time.Time) option { return func(c *envConfig) { c.now = now } }

func forBenchmark() option { return func(c *envConfig) { c.discard, c.noCheck = true, true } }

// withReadings makes the bbolt store the service's reading store.
func withReadings() option { return func(c *envConfig) { c.readings = true } }

// unverified skips the ledger's verification after the test (noVerify).
func unverified() option { return func(c *envConfig) { c.noVerify = true } }

// newEnv builds the environment and registers the cleanup that verifies
// the whole ledger and each chain after the test.
func newEnv(tb testing.TB, opts ...option) *env {
	tb.Helper()
	var cfg envConfig
	for _, o := range opts {
		o(&cfg)
	}
	store, err := boltstore.Open(tb.TempDir(), boltstore.Options{})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() {
		if err := store.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	logs := &syncBuffer{}
	var log *slog.Logger
	if cfg.discard {
		log = slog.New(slog.DiscardHandler)
	} else {
		log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	var st custody.Store = store
	if cfg.wrapStore != nil {
		st = cfg.wrapStore(store)
	}
	if cfg.now == nil {
		cfg.now = func() time.Time { return fixedNow }
	}
	var tele custody.TelemetryConfig
	if cfg.readings {
		tele.Readings = store
	}
	svc, err := custody.NewService(custody.Config{Store: st, Hasher: passwd.Fast(), Logger: log,
		Now: cfg.now, FIN: "A9999",
		Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles())), Folder: phitext.Folder{}, Passwords: cfg.passwords, Documents: cfg.docs, Telemetry: tele})
	if err != nil {
		tb.Fatalf("new service: %v", err)
	}
	cfg.api.Service, cfg.api.Logger, cfg.api.Version = svc, log, "test"
	srv, err := api.New(cfg.api)
	if err != nil {
		tb.Fatalf("api.New: %v", err)
	}
	e := &env{store: store, svc: svc, srv: srv, logs: logs, tokens: map[string]string{}, check: !cfg.noCheck}
	ctx := context.Background()
	for _, id := range slices.Sorted(maps.Keys(userRoles)) {
		tok, err := svc.AddUser(ctx, id, "Printed "+id, userRoles[id], password(id))
		if err != nil {
			tb.Fatalf("add user %s: %v", id, err)
		}
		e.tokens[id] = tok
	}
	tb.Cleanup(func() {
		if cfg.noVerify {
			return
		}
		rep, err := svc.VerifyLedger(ctx)
		if err != nil || !rep.OK {
			tb.Errorf("ledger does not verify after the test: %+v, %v", rep, err)
		}
		chains, err := store.Chains(ctx, "")
		if err != nil {
			tb.Errorf("list chains: %v", err)
		}
		for _, ci := range chains {
			rep, err := svc.VerifyChain(ctx, ci.COI)
			if err != nil || !rep.OK {
				tb.Errorf("chain %s does not verify after the test: %+v, %v", ci.COI, rep, err)
			}
		}
		if tb.Failed() && !cfg.discard {
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			tb.Logf("server log (last %d lines):\n%s", min(len(lines), 40), strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	return e
}

// response is a finished HTTP response.
type response struct {
	Code   int
	Header http.Header
	Body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.Code, bytes.TrimSpace(r.Body)) }

// object decodes the body as a JSON object.
func (r response) object(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		tb.Fatalf("response is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// errorBody decodes an error response and checks its shape.
func (r response) errorBody(tb testing.TB) (code, message string) {
	tb.Helper()
	var b struct {
		Error struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		tb.Fatalf("error response is not {\"error\":{code,message,request_id}}: %v: %s", err, r.Body)
	}
	if !strings.HasPrefix(r.Header.Get(echo.HeaderContentType), echo.MIMEApplicationJSON) {
		tb.Errorf("error Content-Type = %q, want JSON", r.Header.Get(echo.HeaderContentType))
	}
	if b.Error.Message == "" {
		tb.Errorf("error without message: %s", r.Body)
	}
	if rid := r.Header.Get(echo.HeaderXRequestID); rid == "" || b.Error.RequestID != rid {
		tb.Errorf("error request_id = %q, X-Request-Id = %q; want equal and set", b.Error.RequestID, rid)
	}
	return b.Error.Code, b.Error.Message
}

// encodeBody turns a test body into bytes: nil is no body, string and
// []byte are sent as they are, anything else as JSON.
func encodeBody(tb testing.TB, body any) io.Reader {
	switch b := body.(type) {
	case nil:
		return nil
	case string:
		return strings.NewReader(b)
	case []byte:
		return bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			tb.Fatalf("encode body: %v", err)
		}
		return bytes.NewReader(j)
	}
}

// do sends a request through the server's handler as user (no
// Authorization header when user is empty).
func (e *env) do(tb testing.TB, method, target, user string, body any) response {
	tb.Helper()
	h := ""
	if user != "" {
		tok, ok := e.tokens[user]
		if !ok {
			tb.Fatalf("no user %q", user)
		}
		h = "Bearer " + tok
	}
	return e.doAuth(tb, method, target, h, body)
}

// doAuth sends a request with the given Authorization header value.
func (e *env) doAuth(tb testing.TB, method, target, authorization string, body any) response {
	tb.Helper()
	req := httptest.NewRequest(method, target, encodeBody(tb, body))
	if body != nil {
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	}
	if authorization != "" {
		req.Header.Set(echo.HeaderAuthorization, authorization)
	}
	return e.serve(tb, req)
}

func (e *env) serve(tb testing.TB, req *http.Request) response {
	tb.Helper()
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	r := response{Code: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	e.conforms(tb, req.Method, req.URL.EscapedPath(), r)
	return r
}

// doHTTP sends a request over a real connection to ts.
func (e *env) doHTTP(tb testing.TB, client *http.Client, ts *httptest.Server, method, target, user string, body io.Reader) response {
	tb.Helper()
	req, err := http.NewRequest(method, ts.URL+target, body)
	if err != nil {
		tb.Fatalf("new request: %v", err)
	}
	req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	if user != "" {
		req.Header.Set(echo.HeaderAuthorization, "Bearer "+e.tokens[user])
	}
	res, err := client.Do(req)
	if err != nil {
		tb.Errorf("%s %s: %v", method, target, err)
		return response{}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Errorf("%s %s: read body: %v", method, target, err)
	}
	r := response{Code: res.StatusCode, Header: res.Header, Body: b}
	e.conforms(tb, method, req.URL.EscapedPath(), r)
	return r
}

// ledgerRecords is the number of records in the whole ledger; the ledger
// must verify.
func (e *env) ledgerRecords(tb testing.TB) uint64 {
	tb.Helper()
	rep, err := e.svc.VerifyLedger(context.Background())
	if err != nil || !rep.OK {
		tb.Fatalf("verify ledger: %+v, %v", rep, err)
	}
	return rep.Records
}

func chainPath(coi custody.COI, rest ...string) string {
	return "/api/v1/chains/" + string(coi) + strings.Join(rest, "")
}

// enrollBody is a valid enrollment for p.
func enrollBody(p patient) map[string]any {
	return map[string]any{
		"patient": p, "product": "autologous anti-CD19 CAR-T",
		"sites": map[string]string{"collection": "St. Elsewhere Apheresis", "manufacturing": "CellWorks Plant 2",
			"treatment": "St. Elsewhere Cell Therapy Ward"},
	}
}

// enroll starts a chain for p as the coordinator and returns its COI.
func (e *env) enroll(tb testing.TB, p patient) custody.COI {
	tb.Helper()
	r := e.do(tb, http.MethodPost, "/api/v1/chains", coord, enrollBody(p))
	if r.Code != http.StatusCreated {
		tb.Fatalf("enroll: %s", r)
	}
	var out struct {
		COI custody.COI `json:"coi"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		tb.Fatalf("enroll response: %v", err)
	}
	return out.COI
}

// sig is one signature of a step: the signer and the meaning; the password
// is the signer's unless pw is set.
type sig struct {
	user    string
	meaning custody.Meaning
	pw      string
}

func stepBody(step custody.Step, data any, sigs ...sig) map[string]any {
	ss := make([]map[string]any, len(sigs))
	for i, s := range sigs {
		pw := s.pw
		if pw == "" {
			pw = password(s.user)
		}
		ss[i] = map[string]any{"user": s.user, "password": pw, "meaning": s.meaning}
	}
	m := map[string]any{"step": step, "signatures": ss}
	if data != nil {
		m["data"] = data
	}
	return m
}

// step posts a signed step, submitted by actor.
func (e *env) step(tb testing.TB, coi custody.COI, actor string, step custody.Step, data any, sigs ...sig) response {
	tb.Helper()
	return e.do(tb, http.MethodPost, chainPath(coi, "/records"), actor, stepBody(step, data, sigs...))
}

// mustStep posts a step that must be stored and returns the record.
func (e *env) mustStep(tb testing.TB, coi custody.COI, actor string, step custody.Step, data any, sigs ...sig) custody.Record {
	tb.Helper()
	r := e.step(tb, coi, actor, step, data, sigs...)
	if r.Code != http.StatusCreated {
		tb.Fatalf("%s on %s: %s", step, coi, r)
	}
	var rec custody.Record
	if err := json.Unmarshal(r.Body, &rec); err != nil {
		tb.Fatalf("%s: record: %v: %s", step, err, r.Body)
	}
	return rec
}

func collectData() map[string]any {
	return map[string]any{"din": "A999926123456", "volume_ml": 212.5, "bags": 2,
		"started_at": "2026-11-22T08:00:00Z", "ended_at": "2026-11-22T10:30:00Z"}
}

// journey is the whole default journey after enrollment, in order.
func journey(coi custody.COI, mrn string) []struct {
	actor string
	step  custody.Step
	data  any
	sigs  []sig
	state custody.State
} {
	type s = struct {
		actor string
		step  custody.Step
		data  any
		sigs  []sig
		state custody.State
	}
	fp1 := custody.LabelPayload(custody.BagID{COI: coi, Kind: custody.BagFinalProduct, N: 1})
	return []s{
		{nurse1, custody.StepCollect, collectData(), []sig{{nurse1, custody.MeaningPerformed, ""}, {nurse2, custody.MeaningVerified, ""}}, custody.StateCollected},
		{nurse1, custody.StepShip, map[string]any{"shipper": "SHP-0042", "profile": "refrigerated"},
			[]sig{{nurse1, custody.MeaningHandedOver, ""}, {courier, custody.MeaningReceived, ""}}, custody.StateToManufacturing},
		{mfg, custody.StepReceive, map[string]any{"seal_intact": true}, []sig{{mfg, custody.MeaningReceived, ""}}, custody.StateAtManufacturing},
		{mfg, custody.StepManufacture, map[string]any{"final_bags": 2}, []sig{{mfg, custody.MeaningPerformed, ""}}, custody.StateManufactured},
		{qa, custody.StepRelease, nil, []sig{{qa, custody.MeaningApproved, ""}}, custody.StateReleased},
		{mfg, custody.StepShip, map[string]any{"shipper": "SHP-0099", "profile": "cryogenic"},
			[]sig{{mfg, custody.MeaningHandedOver, ""}, {courier, custody.MeaningReceived, ""}}, custody.StateToTreatment},
		{nurse1, custody.StepReceive, map[string]any{"seal_intact": true}, []sig{{nurse1, custody.MeaningReceived, ""}}, custody.StateAtTreatment},
		{nurse1, custody.StepBedsideVerify, map[string]any{"bag_code": fp1, "wristband_code": mrn},
			[]sig{{nurse1, custody.MeaningVerified, ""}, {nurse2, custody.MeaningVerified, ""}}, custody.StateVerified},
		{nurse1, custody.StepInfuse, nil, []sig{{nurse1, custody.MeaningPerformed, ""}}, custody.StateInfused},
	}
}

// advance records the first n steps of the journey on coi.
func (e *env) advance(tb testing.TB, coi custody.COI, mrn string, n int) {
	tb.Helper()
	for _, s := range journey(coi, mrn)[:n] {
		rec := e.mustStep(tb, coi, s.actor, s.step, s.data, s.sigs...)
		if rec.Step != s.step {
			tb.Fatalf("stored step %s, want %s", rec.Step, s.step)
		}
	}
}

// chain fetches a chain.
func (e *env) chain(tb testing.TB, coi custody.COI) *custody.Chain {
	tb.Helper()
	r := e.do(tb, http.MethodGet, chainPath(coi), qa, nil)
	if r.Code != http.StatusOK {
		tb.Fatalf("get chain %s: %s", coi, r)
	}
	var c custody.Chain
	if err := json.Unmarshal(r.Body, &c); err != nil {
		tb.Fatalf("chain: %v", err)
	}
	return &c
}

// ---------------------------------------------------------------------------
// The OpenAPI document, and a checker for the subset of OpenAPI 3.0 schema
// it uses, so every response a test receives is checked against what the
// document promises for its route and status.

var openAPIDoc = sync.OnceValues(func() (map[string]any, error) {
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	return doc, nil
})

func loadDoc(tb testing.TB) map[string]any {
	tb.Helper()
	doc, err := openAPIDoc()
	if err != nil {
		tb.Fatalf("openapi.json: %v", err)
	}
	return doc
}

// lookup follows a local JSON pointer ("#/components/schemas/Chain").
func lookup(doc map[string]any, ref string) (any, bool) {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	var cur any = doc
	for _, part := range strings.Split(p, "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func deref(doc map[string]any, m map[string]any) map[string]any {
	for i := 0; i < 10; i++ {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		v, ok := lookup(doc, ref)
		if !ok {
			return map[string]any{"x-unresolved": ref}
		}
		m, _ = v.(map[string]any)
	}
	return m
}

// templateRE turns an OpenAPI path template into a regexp.
func templateRE(p string) *regexp.Regexp {
	return regexp.MustCompile("^" + regexp.MustCompile(`\\\{[^/]+\\\}`).ReplaceAllString(regexp.QuoteMeta(p), `[^/]+`) + "$")
}

// operationFor finds the documented operation of a request path.
func operationFor(doc map[string]any, method, path string) (template string, op map[string]any) {
	paths, _ := doc["paths"].(map[string]any)
	for _, tpl := range slices.Sorted(maps.Keys(paths)) {
		if templateRE(tpl).MatchString(path) {
			item, _ := paths[tpl].(map[string]any)
			op, _ := item[strings.ToLower(method)].(map[string]any)
			return tpl, op
		}
	}
	return "", nil
}

// conforms checks that the response's status is documented for its route and
// its body matches the documented schema. Requests to paths the document
// does not describe are not checked.
func (e *env) conforms(tb testing.TB, method, path string, r response) {
	tb.Helper()
	if !e.check {
		return
	}
	doc := loadDoc(tb)
	tpl, op := operationFor(doc, method, path)
	if tpl == "" || op == nil {
		return
	}
	resps, _ := op["responses"].(map[string]any)
	rs, ok := resps[fmt.Sprint(r.Code)].(map[string]any)
	if !ok {
		tb.Errorf("%s %s returned %d, which the OpenAPI document does not list for %s %s: %s", method, path, r.Code, method, tpl, r.Body)
		return
	}
	rs = deref(doc, rs)
	for name := range asMap(rs["headers"]) {
		if name == "WWW-Authenticate" || name == "Location" || name == "Coid-Next-After" {
			continue // conditional headers
		}
		if r.Header.Get(name) == "" {
			tb.Errorf("%s %s %d: documented header %s is missing", method, path, r.Code, name)
		}
	}
	for typ := range asMap(rs["content"]) {
		if typ != echo.MIMEApplicationJSON && strings.HasPrefix(r.Header.Get(echo.HeaderContentType), typ) {
			return // another documented media type the client asked for (Accept)
		}
	}
	media, ok := asMap(rs["content"])["application/json"].(map[string]any)
	if !ok {
		return
	}
	if ct := r.Header.Get(echo.HeaderContentType); !strings.HasPrefix(ct, echo.MIMEApplicationJSON) {
		tb.Errorf("%s %s %d: Content-Type %q, documented application/json", method, path, r.Code, ct)
	}
	var v any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		tb.Errorf("%s %s %d: body is not JSON: %v", method, path, r.Code, err)
		return
	}
	if errs := checkSchema(doc, asMap(media["schema"]), v, "body"); len(errs) > 0 {
		tb.Errorf("%s %s %d: response does not match the OpenAPI schema:\n  %s\nbody: %s", method, path, r.Code,
			strings.Join(errs, "\n  "), r.Body)
	}
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// checkSchema validates v against an OpenAPI 3.0 schema object: $ref,
// allOf/anyOf/oneOf, nullable, type, enum, required, properties,
// additionalProperties, items, min/max items and lengths, pattern,
// minimum/maximum and the date and date-time formats.
func checkSchema(doc, s map[string]any, v any, at string) []string {
	s = deref(doc, s)
	if ref, ok := s["x-unresolved"]; ok {
		return []string{fmt.Sprintf("%s: unresolved $ref %v", at, ref)}
	}
	if v == nil {
		if s["nullable"] == true {
			return nil
		}
		if _, typed := s["type"]; typed {
			return []string{at + ": null"}
		}
	}
	var errs []string
	fail := func(f string, a ...any) { errs = append(errs, at+": "+fmt.Sprintf(f, a...)) }
	for _, sub := range asSlice(s["allOf"]) {
		errs = append(errs, checkSchema(doc, asMap(sub), v, at)...)
	}
	if alts := asSlice(s["anyOf"]); len(alts) > 0 {
		ok := false
		for _, sub := range alts {
			ok = ok || len(checkSchema(doc, asMap(sub), v, at)) == 0
		}
		if !ok {
			fail("matches none of anyOf")
		}
	}
	if one := asSlice(s["oneOf"]); len(one) > 0 {
		n := 0
		for _, sub := range one {
			if len(checkSchema(doc, asMap(sub), v, at)) == 0 {
				n++
			}
		}
		if n != 1 {
			fail("matches %d of oneOf, want exactly 1", n)
		}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(x any) bool { return reflect.DeepEqual(x, v) }) {
		fail("%v is not one of %v", v, enum)
	}
	switch t, _ := s["type"].(string); t {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			fail("want object, got %T", v)
			return errs
		}
		for _, r := range asSlice(s["required"]) {
			if _, ok := m[r.(string)]; !ok {
				fail("required property %q missing", r)
			}
		}
		props := asMap(s["properties"])
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if p, ok := props[k]; ok {
				errs = append(errs, checkSchema(doc, asMap(p), m[k], at+"."+k)...)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					fail("property %q is not in the schema", k)
				}
			case map[string]any:
				errs = append(errs, checkSchema(doc, ap, m[k], at+"."+k)...)
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			fail("want array, got %T", v)
			return errs
		}
		if n, ok := s["minItems"].(float64); ok && float64(len(a)) < n {
			fail("%d items, want at least %v", len(a), n)
		}
		if n, ok := s["maxItems"].(float64); ok && float64(len(a)) > n {
			fail("%d items, want at most %v", len(a), n)
		}
		if items := asMap(s["items"]); items != nil {
			for i, x := range a {
				errs = append(errs, checkSchema(doc, items, x, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			fail("want string, got %T", v)
			return errs
		}
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(str) {
			fail("%q does not match %s", str, p)
		}
		if n, ok := s["minLength"].(float64); ok && float64(utf8.RuneCountInString(str)) < n {
			fail("%q shorter than %v", str, n)
		}
		if n, ok := s["maxLength"].(float64); ok && float64(utf8.RuneCountInString(str)) > n {
			fail("%q longer than %v", str, n)
		}
		switch s["format"] {
		case "date-time":
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				fail("%q is not a date-time", str)
			}
		case "date":
			if _, err := time.Parse(time.DateOnly, str); err != nil {
				fail("%q is not a date", str)
			}
		}
	case "integer", "number":
		f, ok := v.(float64)
		if !ok {
			fail("want %s, got %T", t, v)
			return errs
		}
		if t == "integer" && f != math.Trunc(f) {
			fail("%v is not an integer", f)
		}
		if n, ok := s["minimum"].(float64); ok && (f < n || f == n && s["exclusiveMinimum"] == true) {
			fail("%v below minimum %v", f, n)
		}
		if n, ok := s["maximum"].(float64); ok && f > n {
			fail("%v above maximum %v", f, n)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			fail("want boolean, got %T", v)
		}
	}
	return errs
}

func asSlice(v any) []any {
	a, _ := v.([]any)
	return a
}

// collectRefs returns every $ref in v.
func collectRefs(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		if r, ok := x["$ref"].(string); ok {
			*out = append(*out, r)
		}
		for _, y := range x {
			collectRefs(y, out)
		}
	case []any:
		for _, y := range x {
			collectRefs(y, out)
		}
	}
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

var echoParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

func TestOpenAPICoversEveryRoute(t *testing.T) {
	e := newEnv(t)
	doc := loadDoc(t)

	t.Run("served document is the file", func(t *testing.T) {
		file, err := os.ReadFile("openapi.json")
		if err != nil {
			t.Fatal(err)
		}
		r := e.do(t, http.MethodGet, "/api/v1/openapi.json", nurse1, nil)
		if r.Code != http.StatusOK || !bytes.Equal(r.Body, file) {
			t.Fatalf("GET /api/v1/openapi.json = %d, %d bytes; want 200 and the %d bytes of openapi.json", r.Code, len(r.Body), len(file))
		}
		if ct := r.Header.Get(echo.HeaderContentType); !strings.HasPrefix(ct, echo.MIMEApplicationJSON) {
			t.Errorf("Content-Type %q", ct)
		}
	})

	t.Run("version", func(t *testing.T) {
		v, _ := doc["openapi"].(string)
		if !regexp.MustCompile(`^3\.0\.\d+$`).MatchString(v) {
			t.Errorf("openapi = %q, want 3.0.x", v)
		}
		info := asMap(doc["info"])
		if info["title"] == nil || info["version"] == nil {
			t.Errorf("info needs title and version: %v", info)
		}
	})

	type route struct{ method, path string }
	served := map[route]bool{}
	for _, r := range e.srv.Routes() {
		if r.Method == echo.RouteNotFound {
			continue // echo's catch-all for group middleware, not an API route
		}
		served[route{strings.ToLower(r.Method), echoParam.ReplaceAllString(r.Path, "{$1}")}] = true
	}
	if len(served) < 10 {
		t.Fatalf("only %d routes registered: %v", len(served), served)
	}
	paths := asMap(doc["paths"])
	for _, r := range slices.SortedFunc(maps.Keys(served), func(a, b route) int { return strings.Compare(a.path+a.method, b.path+b.method) }) {
		t.Run("documented "+r.method+" "+r.path, func(t *testing.T) {
			if asMap(asMap(paths[r.path])[r.method]) == nil {
				t.Errorf("route %s %s is registered but not in openapi.json", strings.ToUpper(r.method), r.path)
			}
		})
	}
	t.Run("no path the server lacks", func(t *testing.T) {
		for p, item := range paths {
			for m := range asMap(item) {
				if slices.Contains(httpMethods, m) && !served[route{m, p}] {
					t.Errorf("openapi.json documents %s %s, which the server does not register", strings.ToUpper(m), p)
				}
			}
		}
	})

	t.Run("operations", func(t *testing.T) {
		schemes := asMap(asMap(doc["components"])["securitySchemes"])
		if b := asMap(schemes["bearerAuth"]); b["type"] != "http" || b["scheme"] != "bearer" {
			t.Errorf("securitySchemes.bearerAuth = %v, want http bearer", b)
		}
		for p, item := range paths {
			for m, o := range asMap(item) {
				if !slices.Contains(httpMethods, m) {
					continue
				}
				op := asMap(o)
				where := strings.ToUpper(m) + " " + p
				sec, ok := op["security"]
				if !ok {
					sec = doc["security"]
				}
				bearer := slices.ContainsFunc(asSlice(sec), func(x any) bool { _, ok := asMap(x)["bearerAuth"]; return ok })
				resps := asMap(op["responses"])
				has := func(code string) bool { _, ok := resps[code]; return ok }
				if strings.HasPrefix(p, "/api/v1/") || strings.HasPrefix(p, "/fhir/r4/") {
					if !bearer {
						t.Errorf("%s: no bearerAuth security", where)
					}
					if !has("401") {
						t.Errorf("%s: 401 not documented", where)
					}
				} else if bearer || len(asSlice(sec)) != 0 {
					t.Errorf("%s: needs no token, but security is %v", where, sec)
				}
				if !slices.ContainsFunc(slices.Collect(maps.Keys(resps)), func(c string) bool { return c[0] == '2' }) || !has("500") {
					t.Errorf("%s: needs a 2xx and a 500 response, has %v", where, slices.Sorted(maps.Keys(resps)))
				}
				if op["requestBody"] != nil && (!has("400") || !has("413")) {
					t.Errorf("%s: takes a body, so 400 and 413 must be documented", where)
				}
				for _, name := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(p, -1) {
					declared := slices.ContainsFunc(asSlice(op["parameters"]), func(x any) bool {
						pm := deref(doc, asMap(x))
						return pm["name"] == name[1] && pm["in"] == "path" && pm["required"] == true
					})
					if !declared {
						t.Errorf("%s: path parameter %s not declared", where, name[1])
					}
					if !has("400") || !has("404") {
						t.Errorf("%s: a path with {%s} must document 400 and 404", where, name[1])
					}
				}
				if op["operationId"] == nil {
					t.Errorf("%s: no operationId", where)
				}
			}
		}
	})

	t.Run("every $ref resolves", func(t *testing.T) {
		var refs []string
		collectRefs(doc, &refs)
		if len(refs) == 0 {
			t.Fatal("no $ref at all")
		}
		for _, r := range refs {
			if _, ok := lookup(doc, r); !ok {
				t.Errorf("$ref %s does not resolve", r)
			}
		}
	})

	t.Run("enums match the domain", func(t *testing.T) {
		schemas := asMap(asMap(doc["components"])["schemas"])
		enum := func(v any) []string {
			var out []string
			for _, x := range asSlice(asMap(v)["enum"]) {
				out = append(out, x.(string))
			}
			return out
		}
		var states []string
		for _, s := range custody.States {
			states = append(states, string(s))
		}
		if got := enum(schemas["State"]); !slices.Equal(got, states) {
			t.Errorf("State enum %v, custody.States %v", got, states)
		}
		var roles []string
		for _, r := range custody.UserRoles {
			roles = append(roles, string(r))
		}
		if got := enum(asMap(asMap(schemas["User"])["properties"])["role"]); !slices.Equal(got, roles) {
			t.Errorf("User.role enum %v, custody.UserRoles %v", got, roles)
		}
		j := e.svc.Journey()
		var all, client []string
		for _, tr := range j.Transitions {
			all = append(all, string(tr.Step))
			if tr.Step != custody.StepEnroll {
				client = append(client, string(tr.Step))
			}
		}
		for _, ex := range j.Exceptions {
			all = append(all, string(ex.Step))
			if !ex.System {
				client = append(client, string(ex.Step))
			}
		}
		slices.Sort(all)
		all = slices.Compact(all)
		slices.Sort(client)
		client = slices.Compact(client)
		got := enum(schemas["Step"])
		slices.Sort(got)
		if !slices.Equal(got, all) {
			t.Errorf("Step enum %v, journey steps %v", got, all)
		}
		mapping := slices.Sorted(maps.Keys(asMap(asMap(asMap(schemas["StepRequest"])["discriminator"])["mapping"])))
		if !slices.Equal(mapping, client) {
			t.Errorf("StepRequest variants %v, steps a client may record %v", mapping, client)
		}
		if got := asMap(asMap(schemas["Signature"])["properties"]); got["user"] == nil {
			t.Errorf("Signature schema lacks user")
		}
		sr := asMap(asMap(schemas["SignatureRequest"])["properties"])
		for _, f := range []string{"user", "password", "meaning"} {
			if sr[f] == nil {
				t.Errorf("SignatureRequest lacks %s", f)
			}
		}
	})
}

// TestSchemaCheckerFails shows that the response checker used by every test
// rejects bodies that break the document.
func TestSchemaCheckerFails(t *testing.T) {
	doc := loadDoc(t)
	ref := func(n string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + n} }
	good := `{"error":{"code":"invalid","message":"m","request_id":"x"}}`
	cases := []struct {
		name, schema, body string
		ok                 bool
	}{
		{"good error", "Error", good, true},
		{"extra property", "Error", `{"error":{"code":"invalid","message":"m"},"password":"x"}`, false},
		{"missing required", "Error", `{"error":{"code":"invalid"}}`, false},
		{"wrong type", "Error", `{"error":{"code":1,"message":"m"}}`, false},
		{"enum", "Report", `{"ok":true,"records":1,"head":"` + strings.Repeat("0", 64) + `","chain":"chx"}`, false},
		{"pattern", "Report", `{"ok":true,"records":1,"head":"XYZ"}`, false},
		{"integer", "Report", `{"ok":true,"records":1.5,"head":"` + strings.Repeat("a", 64) + `"}`, false},
		{"date-time", "ChainInfo", `{"coi":"CHA999926000001","coi_display":"CHA999926000001 7","product":"p","state":"enrolled","records":1,"head_seq":1,"head_hash":"` + strings.Repeat("a", 64) + `","created":"yesterday","updated":"2026-11-22T12:00:00Z"}`, false},
		{"password hash in user", "User", `{"id":"a","name":"n","role":"qa","created":"2026-11-22T12:00:00Z","failed_signatures":0,"locked":false,"disabled":false,"password_hash":"$argon2id$"}`, false},
		{"good user", "User", `{"id":"a","name":"n","role":"qa","created":"2026-11-22T12:00:00Z","failed_signatures":0,"locked":false,"disabled":false}`, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(c.body), &v); err != nil {
				t.Fatal(err)
			}
			errs := checkSchema(doc, ref(c.schema), v, "body")
			if (len(errs) == 0) != c.ok {
				t.Errorf("checkSchema(%s) = %v, want ok=%v", c.schema, errs, c.ok)
			}
		})
	}
}

// ---------------------------------------------------------------------------

func TestHealthz(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, http.MethodGet, "/healthz", "", nil)
	if r.Code != http.StatusOK {
		t.Fatalf("GET /healthz without a token = %s, want 200", r)
	}
	if m := r.object(t); m["status"] != "ok" || m["version"] != "test" {
		t.Errorf("healthz = %v", m)
	}
	for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "X-Frame-Options": "DENY"} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if r.Header.Get(echo.HeaderXRequestID) == "" {
		t.Error("no X-Request-Id")
	}
	// A store that cannot be read makes the service unhealthy, without
	// saying why to an unauthenticated caller.
	var broken atomic.Bool
	e = newEnv(t, withStore(func(st custody.Store) custody.Store { return &unreadableStore{Store: st, broken: &broken} }))
	if r := e.do(t, http.MethodGet, "/healthz", "", nil); r.Code != http.StatusOK {
		t.Fatalf("healthz = %s", r)
	}
	broken.Store(true)
	r = e.do(t, http.MethodGet, "/healthz", "", nil)
	broken.Store(false)
	if m := r.object(t); r.Code != http.StatusServiceUnavailable || m["status"] != "unavailable" || len(m) != 2 ||
		strings.Contains(string(r.Body), "disk") {
		t.Fatalf("healthz with the store unreadable = %s", r)
	}
}

// unreadableStore fails reads of the head while broken is set.
type unreadableStore struct {
	custody.Store
	broken *atomic.Bool
}

func (u *unreadableStore) Head(ctx context.Context) (uint64, custody.Hash, error) {
	if u.broken.Load() {
		return 0, custody.Hash{}, errors.New("disk on fire")
	}
	return u.Store.Head(ctx)
}

// apiRoutes is one request per /api/v1 route, each of which would succeed
// (and the POSTs write) with a valid token.
func apiRoutes(coi custody.COI) []struct {
	method, path string
	body         any
	want         int
} {
	return []struct {
		method, path string
		body         any
		want         int
	}{
		{http.MethodGet, "/api/v1/openapi.json", nil, http.StatusOK},
		{http.MethodGet, "/api/v1/me", nil, http.StatusOK},
		{http.MethodPost, "/api/v1/chains", enrollBody(patientB), http.StatusCreated},
		{http.MethodGet, "/api/v1/chains", nil, http.StatusOK},
		{http.MethodGet, "/api/v1/chains?state=enrolled", nil, http.StatusOK},
		{http.MethodGet, chainPath(coi), nil, http.StatusOK},
		{http.MethodPost, chainPath(coi, "/records"), stepBody(custody.StepNote, map[string]any{"text": "hello"},
			sig{coord, custody.MeaningAuthored, ""}), http.StatusCreated},
		{http.MethodGet, chainPath(coi, "/verify"), nil, http.StatusOK},
		{http.MethodGet, "/api/v1/verify", nil, http.StatusOK},
		{http.MethodPost, "/api/v1/scan", map[string]string{"code": string(coi)}, http.StatusOK},
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll(t, patientA)
	disabled := "nurse.disabled"
	tok, err := e.svc.AddUser(context.Background(), disabled, "Disabled Nurse", custody.RoleNurse, password(disabled))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.UpdateUser(context.Background(), disabled, func(u *custody.User) error { u.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	unknown, _, err := custody.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	auths := []struct{ name, header string }{
		{"no token", ""},
		{"basic scheme", "Basic bnVyc2UuYWRhOnB3"},
		{"bearer without token", "Bearer"},
		{"bearer empty token", "Bearer "},
		{"malformed token", "Bearer not-a-coid-token"},
		{"token with spaces", "Bearer coid_ abc"},
		{"overlong token", "Bearer coid_" + strings.Repeat("A", 500)},
		{"unknown token", "Bearer " + unknown},
		{"token of a disabled user", "Bearer " + tok},
		{"token of another scheme", "Token " + e.tokens[coord]},
	}
	for _, rt := range apiRoutes(coi) {
		for _, a := range auths {
			t.Run(rt.method+" "+rt.path+"/"+a.name, func(t *testing.T) {
				before := e.ledgerRecords(t)
				r := e.doAuth(t, rt.method, rt.path, a.header, rt.body)
				if r.Code != http.StatusUnauthorized {
					t.Fatalf("got %s, want 401", r)
				}
				if code, _ := r.errorBody(t); code != "unauthenticated" {
					t.Errorf("code %q, want unauthenticated", code)
				}
				if w := r.Header.Get(echo.HeaderWWWAuthenticate); !strings.HasPrefix(w, "Bearer") {
					t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", w)
				}
				if after := e.ledgerRecords(t); after != before {
					t.Errorf("ledger grew from %d to %d records on a refused request", before, after)
				}
			})
		}
	}
	// The same requests with a valid token get through (so the 401s above
	// are the token's doing).
	for _, rt := range apiRoutes(coi) {
		t.Run(rt.method+" "+rt.path+"/valid token", func(t *testing.T) {
			if r := e.do(t, rt.method, rt.path, coord, rt.body); r.Code != rt.want {
				t.Errorf("got %s, want %d", r, rt.want)
			}
		})
	}
	t.Run("healthz needs no token", func(t *testing.T) {
		if r := e.do(t, http.MethodGet, "/healthz", "", nil); r.Code != http.StatusOK {
			t.Errorf("got %s", r)
		}
	})
}

// TestAuthSchemeCaseInsensitive: the authentication scheme name is
// case-insensitive (RFC 9110 section 11.1, RFC 6750 section 2.1), so
// "bearer <token>" is a valid credential.
func TestAuthSchemeCaseInsensitive(t *testing.T) {
	e := newEnv(t)
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		t.Run(scheme, func(t *testing.T) {
			r := e.doAuth(t, http.MethodGet, "/api/v1/me", scheme+" "+e.tokens[nurse1], nil)
			if r.Code != http.StatusOK {
				t.Errorf("%q scheme: got %s, want 200", scheme, r)
			}
		})
	}
}

func TestMe(t *testing.T) {
	e := newEnv(t)
	for _, id := range slices.Sorted(maps.Keys(userRoles)) {
		t.Run(id, func(t *testing.T) {
			r := e.do(t, http.MethodGet, "/api/v1/me", id, nil)
			if r.Code != http.StatusOK {
				t.Fatalf("got %s", r)
			}
			m := r.object(t)
			if m["id"] != id || m["role"] != string(userRoles[id]) || m["name"] != "Printed "+id {
				t.Errorf("me = %v", m)
			}
			for _, bad := range []string{"password", "$argon2id", password(id), e.tokens[id]} {
				if bytes.Contains(r.Body, []byte(bad)) {
					t.Errorf("GET /me contains %q: %s", bad, r.Body)
				}
			}
		})
	}
}

func TestEnroll(t *testing.T) {
	e := newEnv(t)
	t.Run("coordinator", func(t *testing.T) {
		r := e.do(t, http.MethodPost, "/api/v1/chains", coord, enrollBody(patientA))
		if r.Code != http.StatusCreated {
			t.Fatalf("got %s", r)
		}
		var c custody.Chain
		if err := json.Unmarshal(r.Body, &c); err != nil {
			t.Fatal(err)
		}
		if c.COI != "CHA999926000001" || c.Display != "CHA999926000001 "+string(c.COI.K()) {
			t.Errorf("coi %q display %q", c.COI, c.Display)
		}
		if loc := r.Header.Get(echo.HeaderLocation); loc != chainPath(c.COI) {
			t.Errorf("Location %q", loc)
		}
		if c.State != custody.StateEnrolled || len(c.Records) != 1 || c.Records[0].Step != custody.StepEnroll {
			t.Errorf("chain %+v", c)
		}
		if !slices.Contains(c.Next, custody.StepCollect) {
			t.Errorf("next %v lacks collect", c.Next)
		}
		s := c.Records[0].Signatures
		if len(s) != 1 || s[0].User != coord || s[0].Method != "token" || s[0].Meaning != custody.MeaningAuthored {
			t.Errorf("enroll signatures %+v", s)
		}
		if got := e.chain(t, c.COI); got.Head != c.Head || got.Head != c.Records[0].Hash.String() {
			t.Errorf("GET head %s, enroll head %s", got.Head, c.Head)
		}
	})
	t.Run("signed by the coordinator", func(t *testing.T) {
		b := enrollBody(patientB)
		b["signatures"] = []map[string]any{{"user": coord, "password": password(coord), "meaning": "authored"}}
		r := e.do(t, http.MethodPost, "/api/v1/chains", coord, b)
		if r.Code != http.StatusCreated {
			t.Fatalf("got %s", r)
		}
		var c custody.Chain
		_ = json.Unmarshal(r.Body, &c)
		if c.COI != "CHA999926000002" {
			t.Errorf("second chain coi %s, want the next sequence", c.COI)
		}
		if s := c.Records[0].Signatures; len(s) != 1 || s[0].Method != "password" {
			t.Errorf("signatures %+v, want one password signature", s)
		}
	})
}

// TestErrorMapping: each refusal has its status and code, and writes nothing.
func TestErrorMapping(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll(t, patientA)
	cancelled := e.enroll(t, patientB)
	e.mustStep(t, cancelled, qa, custody.StepCancel, map[string]any{"reason": "patient withdrew"}, sig{qa, custody.MeaningApproved, ""})
	unknown := custody.COI("CHA999926999999")
	k := coi.K()
	wrongK := "0"
	if k == '0' {
		wrongK = "1"
	}
	note := func(extra map[string]any) map[string]any {
		b := stepBody(custody.StepNote, map[string]any{"text": "n"}, sig{nurse1, custody.MeaningAuthored, ""})
		maps.Copy(b, extra)
		return b
	}
	collectSigs := []sig{{nurse1, custody.MeaningPerformed, ""}, {nurse2, custody.MeaningVerified, ""}}
	post := http.MethodPost
	get := http.MethodGet
	records := chainPath(coi, "/records")
	cases := []struct {
		name, method, path, user string
		body                     any
		status                   int
		code, msg                string
	}{
		// Malformed bodies.
		{"malformed JSON", post, records, nurse1, `{"step":"note",`, 400, "invalid", "malformed"},
		{"syntax error", post, records, nurse1, `{"step" "note"}`, 400, "invalid", "malformed JSON"},
		{"unknown top-level field", post, records, nurse1, note(map[string]any{"colour": "red"}), 400, "invalid", "colour"},
		{"unknown signature field", post, records, nurse1, `{"step":"note","data":{"text":"n"},"signatures":[{"user":"nurse.ada","password":"x","meaning":"authored","role":"qa"}]}`, 400, "invalid", "role"},
		{"wrong type step", post, records, nurse1, note(map[string]any{"step": 5}), 400, "invalid", "step"},
		{"wrong type signatures", post, records, nurse1, note(map[string]any{"signatures": map[string]any{"user": nurse1}}), 400, "invalid", "signatures"},
		{"wrong type data", post, records, nurse1, note(map[string]any{"data": []int{1, 2}}), 400, "invalid", ""},
		{"wrong type in data", post, records, nurse1, stepBody(custody.StepCollect, map[string]any{"din": "A999926123456", "volume_ml": "lots", "bags": 1, "started_at": "2026-11-22T08:00:00Z", "ended_at": "2026-11-22T09:00:00Z"}, collectSigs...), 400, "invalid", "volume_ml"},
		{"empty body", post, records, nurse1, "", 400, "invalid", "empty"},
		{"blank body", post, records, nurse1, " \n ", 400, "invalid", ""},
		{"null body", post, records, nurse1, "null", 400, "invalid", ""},
		{"array body", post, records, nurse1, "[1,2]", 400, "invalid", "must be a JSON object"},
		{"invalid UTF-8", post, "/api/v1/chains", coord, "{\"patient\":{\"name\":\"\xff\xfe\",\"birth_date\":\"1970-01-02\",\"mrn\":\"M1\"},\"product\":\"P\",\"sites\":{\"collection\":\"A\",\"manufacturing\":\"B\",\"treatment\":\"C\"}}", 400, "invalid", "UTF-8"},
		{"patient named in a note", post, records, nurse1, stepBody(custody.StepNote, map[string]any{"text": "called " + patientA.Name}, sig{nurse1, custody.MeaningAuthored, ""}), 400, "invalid", "patient's name"},
		{"patient field in step data", post, records, nurse1, stepBody(custody.StepNote, map[string]any{"text": "n", "patient_name": "x"}, sig{nurse1, custody.MeaningAuthored, ""}), 400, "invalid", "patient_name"},
		{"admin submits a step", post, records, admin, stepBody(custody.StepNote, map[string]any{"text": "n"}, sig{nurse1, custody.MeaningAuthored, ""}), 403, "forbidden", "administrator"},
		{"trailing data", post, records, nurse1, `{"step":"note"} {"step":"note"}`, 400, "invalid", ""},
		{"enroll malformed JSON", post, "/api/v1/chains", coord, `{"patient":`, 400, "invalid", "malformed"},
		{"enroll unknown field", post, "/api/v1/chains", coord, func() any { b := enrollBody(patientA); b["ssn"] = "078-05-1120"; return b }(), 400, "invalid", "ssn"},
		{"enroll without patient", post, "/api/v1/chains", coord, func() any { b := enrollBody(patientA); delete(b, "patient"); return b }(), 400, "invalid", "patient"},
		{"enroll bad birth date", post, "/api/v1/chains", coord, enrollBody(patient{"A B", "19/07/1961", "M1"}), 400, "invalid", "birth_date"},
		{"enroll future birth date", post, "/api/v1/chains", coord, enrollBody(patient{"A B", "2027-01-01", "M1"}), 400, "invalid", "birth_date"},
		{"enroll empty body", post, "/api/v1/chains", coord, "", 400, "invalid", "empty"},
		{"scan malformed", post, "/api/v1/scan", nurse1, `{"code":`, 400, "invalid", ""},
		{"scan wrong type", post, "/api/v1/scan", nurse1, `{"code":42}`, 400, "invalid", "code"},
		// Identifiers in the path.
		{"unknown chain", get, chainPath(unknown), nurse1, nil, 404, "not_found", ""},
		{"unknown chain verify", get, chainPath(unknown, "/verify"), nurse1, nil, 404, "not_found", ""},
		{"unknown chain step", post, chainPath(unknown, "/records"), nurse1, note(nil), 404, "not_found", ""},
		{"wrong check character", get, chainPath(coi) + wrongK, nurse1, nil, 400, "invalid", "check character"},
		{"wrong check character step", post, chainPath(coi) + wrongK + "/records", nurse1, note(nil), 400, "invalid", "check character"},
		{"wrong check character verify", get, chainPath(coi) + wrongK + "/verify", nurse1, nil, 400, "invalid", "check character"},
		{"lowercase coi", get, chainPath(custody.COI(strings.ToLower(string(coi)))), nurse1, nil, 400, "invalid", ""},
		{"lowercase coi step", post, chainPath(custody.COI(strings.ToLower(string(coi))), "/records"), nurse1, note(nil), 400, "invalid", ""},
		{"short coi", get, chainPath(coi[:10]), nurse1, nil, 400, "invalid", ""},
		{"long coi", get, chainPath(coi) + "ABC", nurse1, nil, 400, "invalid", ""},
		{"not a coi", get, "/api/v1/chains/" + url.PathEscape("<script>"), nurse1, nil, 400, "invalid", ""},
		{"unknown state", get, "/api/v1/chains?state=lost", qa, nil, 400, "invalid", "lost"},
		{"upper-case state", get, "/api/v1/chains?state=ENROLLED", qa, nil, 400, "invalid", ""},
		// Journey rules.
		{"step out of order", post, records, nurse1, stepBody(custody.StepShip, map[string]any{"shipper": "SHP-1", "profile": "cryogenic"},
			sig{nurse1, custody.MeaningHandedOver, ""}, sig{courier, custody.MeaningReceived, ""}), 409, "conflict", "not allowed"},
		{"infuse on enrolled chain", post, records, nurse1, stepBody(custody.StepInfuse, nil, sig{nurse1, custody.MeaningPerformed, ""}), 409, "conflict", ""},
		{"release on enrolled chain", post, records, qa, stepBody(custody.StepRelease, nil, sig{qa, custody.MeaningApproved, ""}), 409, "conflict", ""},
		{"note on cancelled chain", post, chainPath(cancelled, "/records"), nurse1, note(nil), 409, "conflict", "cancelled"},
		{"collect on cancelled chain", post, chainPath(cancelled, "/records"), nurse1, stepBody(custody.StepCollect, collectData(), collectSigs...), 409, "conflict", ""},
		{"cancel twice", post, chainPath(cancelled, "/records"), qa, stepBody(custody.StepCancel, map[string]any{"reason": "again"}, sig{qa, custody.MeaningApproved, ""}), 409, "conflict", ""},
		{"wrong role signer", post, records, nurse1, stepBody(custody.StepCollect, collectData(),
			sig{nurse1, custody.MeaningPerformed, ""}, sig{courier, custody.MeaningVerified, ""}), 403, "forbidden", courier},
		{"qa may not collect", post, records, nurse1, stepBody(custody.StepCollect, collectData(),
			sig{qa, custody.MeaningPerformed, ""}, sig{nurse2, custody.MeaningVerified, ""}), 403, "forbidden", ""},
		{"same nurse twice", post, records, nurse1, stepBody(custody.StepCollect, collectData(),
			sig{nurse1, custody.MeaningPerformed, ""}, sig{nurse1, custody.MeaningVerified, ""}), 403, "forbidden", "different"},
		{"admin signs", post, records, admin, stepBody(custody.StepNote, map[string]any{"text": "n"}, sig{admin, custody.MeaningAuthored, ""}), 403, "forbidden", ""},
		{"system step", post, records, nurse1, stepBody(custody.StepExcursion, map[string]any{"kind": "temperature"}, sig{nurse1, custody.MeaningDetected, ""}), 403, "forbidden", ""},
		{"wrong password", post, records, nurse1, stepBody(custody.StepNote, map[string]any{"text": "n"}, sig{nurse2, custody.MeaningAuthored, "not-her-password"}), 401, "unauthenticated", ""},
		{"unknown signer", post, records, nurse1, stepBody(custody.StepNote, map[string]any{"text": "n"}, sig{"nobody", custody.MeaningAuthored, "whatever1"}), 401, "unauthenticated", ""},
		{"enroll signed with wrong password", post, "/api/v1/chains", coord, func() any {
			b := enrollBody(patientA)
			b["signatures"] = []map[string]any{{"user": coord, "password": "wrong-password", "meaning": "authored"}}
			return b
		}(), 401, "unauthenticated", ""},
		{"enroll by a nurse", post, "/api/v1/chains", nurse1, enrollBody(patientA), 403, "forbidden", ""},
		{"enroll by qa", post, "/api/v1/chains", qa, enrollBody(patientA), 403, "forbidden", ""},
		{"enroll by admin", post, "/api/v1/chains", admin, enrollBody(patientA), 403, "forbidden", ""},
		{"no signatures", post, records, nurse1, stepBody(custody.StepNote, map[string]any{"text": "n"}), 400, "invalid", "signature"},
		{"too many signatures", post, records, nurse1, stepBody(custody.StepNote, map[string]any{"text": "n"},
			sig{nurse1, custody.MeaningAuthored, ""}, sig{nurse2, custody.MeaningAuthored, ""}), 400, "invalid", "signature"},
		{"wrong meaning", post, records, nurse1, stepBody(custody.StepNote, map[string]any{"text": "n"}, sig{nurse1, custody.MeaningApproved, ""}), 400, "invalid", ""},
		{"signature without password", post, records, nurse1, `{"step":"note","data":{"text":"n"},"signatures":[{"user":"nurse.ada","meaning":"authored"}]}`, 400, "invalid", ""},
		{"unknown step", post, records, nurse1, stepBody("teleport", nil, sig{nurse1, custody.MeaningAuthored, ""}), 400, "invalid", "teleport"},
		{"enroll as a step", post, records, coord, stepBody(custody.StepEnroll, nil, sig{coord, custody.MeaningAuthored, ""}), 400, "invalid", ""},
		{"invalid step data", post, records, nurse1, stepBody(custody.StepCollect, map[string]any{"din": "A999926123456", "volume_ml": 10, "bags": 0,
			"started_at": "2026-11-22T08:00:00Z", "ended_at": "2026-11-22T09:00:00Z"}, collectSigs...), 400, "invalid", "bags"},
		{"collect in the future", post, records, nurse1, stepBody(custody.StepCollect, map[string]any{"din": "A999926123456", "volume_ml": 10, "bags": 1,
			"started_at": "2026-11-23T08:00:00Z", "ended_at": "2026-11-23T09:00:00Z"}, collectSigs...), 400, "invalid", "future"},
		{"bad DIN check character", post, records, nurse1, stepBody(custody.StepCollect, map[string]any{"din": "A99992612345699", "volume_ml": 10, "bags": 1,
			"started_at": "2026-11-22T08:00:00Z", "ended_at": "2026-11-22T09:00:00Z"}, collectSigs...), 400, "invalid", "din"},
		{"disposition without an issue", post, records, qa, stepBody(custody.StepDisposition, map[string]any{"excursion": 1, "decision": "accept", "reason": "fine"},
			sig{qa, custody.MeaningApproved, ""}), 400, "invalid", ""},
		{"empty note", post, records, nurse1, stepBody(custody.StepNote, map[string]any{"text": " "}, sig{nurse1, custody.MeaningAuthored, ""}), 400, "invalid", "text"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.ledgerRecords(t)
			r := e.do(t, c.method, c.path, c.user, c.body)
			if r.Code != c.status {
				t.Fatalf("got %s, want %d", r, c.status)
			}
			code, msg := r.errorBody(t)
			t.Logf("%d %s: %s", r.Code, code, msg)
			if code != c.code {
				t.Errorf("code %q, want %q", code, c.code)
			}
			if !strings.Contains(msg, c.msg) {
				t.Errorf("message %q does not mention %q", msg, c.msg)
			}
			for _, sentinel := range []error{custody.ErrInvalid, custody.ErrUnauthenticated, custody.ErrForbidden, custody.ErrNotFound, custody.ErrConflict} {
				if strings.HasSuffix(msg, ": "+sentinel.Error()) {
					t.Errorf("message %q ends with the sentinel's text", msg)
				}
			}
			if after := e.ledgerRecords(t); after != before {
				t.Errorf("ledger grew from %d to %d records on a refused request", before, after)
			}
		})
	}
	t.Run("chains unchanged", func(t *testing.T) {
		if c := e.chain(t, coi); len(c.Records) != 1 || c.State != custody.StateEnrolled {
			t.Errorf("chain %s: %d records, state %s; want 1, enrolled", coi, len(c.Records), c.State)
		}
		if c := e.chain(t, cancelled); len(c.Records) != 2 || c.State != custody.StateCancelled {
			t.Errorf("chain %s: %d records, state %s; want 2, cancelled", cancelled, len(c.Records), c.State)
		}
	})
}

// TestCOIPathForms: {coi} accepts the 15-character content with or without
// its check character K, directly or after a space, however the client
// percent-encodes the path segment (RFC 3986 section 2.1: any octet may be
// percent-encoded, and JavaScript's encodeURIComponent leaves '*' as it is).
func TestCOIPathForms(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll(t, patientA)
	k := coi.K()
	if k != '*' {
		t.Fatalf("the first COI's K is %q; this test expects '*', which clients leave unescaped", k)
	}
	forms := []struct{ name, segment string }{
		{"content", string(coi)},
		{"K directly after the content", string(coi) + string(k)},
		{"display form, Go url.PathEscape", url.PathEscape(coi.Display())},
		{"display form, encodeURIComponent", string(coi) + "%20" + string(k)},
		{"percent-encoded letters", strings.ReplaceAll(string(coi), "C", "%43")},
	}
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			for _, p := range []string{"/api/v1/chains/" + f.segment, "/api/v1/chains/" + f.segment + "/verify"} {
				r := e.do(t, http.MethodGet, p, nurse1, nil)
				if r.Code != http.StatusOK {
					t.Errorf("GET %s = %s, want 200", p, r)
					continue
				}
				m := r.object(t)
				if got, _ := m["coi"].(string); got != string(coi) && m["chain"] != string(coi) {
					t.Errorf("GET %s answered for %v", p, m)
				}
			}
			before := e.ledgerRecords(t)
			r := e.do(t, http.MethodPost, "/api/v1/chains/"+f.segment+"/records", nurse1,
				stepBody(custody.StepNote, map[string]any{"text": "typed as " + f.name}, sig{nurse1, custody.MeaningAuthored, ""}))
			if r.Code != http.StatusCreated {
				t.Fatalf("POST records = %s, want 201", r)
			}
			var rec custody.Record
			if err := json.Unmarshal(r.Body, &rec); err != nil || rec.Chain != coi {
				t.Errorf("note stored on %q (%v)", rec.Chain, err)
			}
			if after := e.ledgerRecords(t); after != before+1 {
				t.Errorf("ledger %d -> %d records, want one more", before, after)
			}
		})
	}
}

// TestBodyLimit: a body over the configured limit is a 413 too_large,
// whether or not the client declared its length, and nothing is written.
func TestBodyLimit(t *testing.T) {
	e := newEnv(t, withBodyLimit("2K"))
	coi := e.enroll(t, patientA)
	big := func(step custody.Step) []byte {
		b, _ := json.Marshal(stepBody(step, map[string]any{"text": strings.Repeat("x", 4096)}, sig{nurse1, custody.MeaningAuthored, ""}))
		return b
	}
	bigEnroll, _ := json.Marshal(map[string]any{"patient": patientA, "product": strings.Repeat("p", 4096)})
	bigScan, _ := json.Marshal(map[string]string{"code": strings.Repeat("C", 4096)})
	ts := httptest.NewServer(e.srv.Handler())
	t.Cleanup(ts.Close)
	client := ts.Client()
	cases := []struct {
		name, path, user string
		body             []byte
	}{
		{"step", chainPath(coi, "/records"), nurse1, big(custody.StepNote)},
		{"enroll", "/api/v1/chains", coord, bigEnroll},
		{"scan", "/api/v1/scan", nurse1, bigScan},
	}
	for _, c := range cases {
		if len(c.body) < 4096 {
			t.Fatalf("%s body only %d bytes", c.name, len(c.body))
		}
		check := func(t *testing.T, r response) {
			t.Helper()
			if r.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("got %s, want 413", r)
			}
			if code, msg := r.errorBody(t); code != "too_large" || !strings.Contains(msg, "2K") {
				t.Errorf("code %q message %q, want too_large naming the limit", code, msg)
			}
		}
		t.Run(c.name+"/with Content-Length", func(t *testing.T) {
			before := e.ledgerRecords(t)
			check(t, e.do(t, http.MethodPost, c.path, c.user, c.body))
			if after := e.ledgerRecords(t); after != before {
				t.Errorf("ledger grew from %d to %d", before, after)
			}
		})
		t.Run(c.name+"/chunked, no Content-Length", func(t *testing.T) {
			before := e.ledgerRecords(t)
			// A reader of unknown length makes the client send the body
			// chunked, so only the limited reader can catch it.
			body := io.MultiReader(bytes.NewReader(c.body))
			r := e.doHTTP(t, client, ts, http.MethodPost, c.path, c.user, body)
			check(t, r)
			if after := e.ledgerRecords(t); after != before {
				t.Errorf("ledger grew from %d to %d", before, after)
			}
		})
	}
	t.Run("under the limit", func(t *testing.T) {
		b, _ := json.Marshal(stepBody(custody.StepNote, map[string]any{"text": strings.Repeat("y", 1500)}, sig{nurse1, custody.MeaningAuthored, ""}))
		if len(b) > 2048 {
			t.Fatalf("body %d bytes", len(b))
		}
		if r := e.do(t, http.MethodPost, chainPath(coi, "/records"), nurse1, b); r.Code != http.StatusCreated {
			t.Errorf("got %s, want 201", r)
		}
		if r := e.doHTTP(t, client, ts, http.MethodPost, chainPath(coi, "/records"), nurse1, io.MultiReader(bytes.NewReader(b))); r.Code != http.StatusCreated {
			t.Errorf("chunked: got %s, want 201", r)
		}
	})
}

// failingStore makes reading a chain's records fail, as a corrupted or
// broken store would.
type failingStore struct {
	custody.Store
	err error
}

var _ custody.Store = failingStore{}

func (f failingStore) Records(ctx context.Context, coi custody.COI) ([]custody.Record, error) {
	if _, err := f.Store.Records(ctx, coi); err != nil {
		return nil, err
	}
	return nil, f.err
}

// TestServerErrors: an integrity failure is a 500 integrity_failure and an
// unexpected error a 500 internal; neither shows internals, both are logged
// at error level.
func TestServerErrors(t *testing.T) {
	cases := []struct {
		name, code string
		err        error
	}{
		{"integrity failure", "integrity_failure", fmt.Errorf("record 7: secret-internal-detail: %w", custody.ErrChainBroken)},
		{"damaged file", "store_damaged", fmt.Errorf("record 7: secret-internal-detail: %w", custody.ErrDamaged)},
		{"internal", "internal", errors.New("disk on fire: secret-internal-detail")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, withStore(func(s custody.Store) custody.Store { return failingStore{Store: s, err: c.err} }))
			coi := custody.COI("CHA999926000001")
			if r := e.do(t, http.MethodGet, chainPath(coi), nurse1, nil); r.Code != http.StatusNotFound {
				t.Fatalf("before enrollment: got %s, want 404", r)
			}
			// Enroll appends through the store, then reads the chain back:
			// the record is written, the read fails.
			if r := e.do(t, http.MethodPost, "/api/v1/chains", coord, enrollBody(patientA)); r.Code != http.StatusInternalServerError {
				t.Fatalf("enroll: got %s, want 500", r)
			}
			for _, p := range []string{chainPath(coi), "/api/v1/scan"} {
				var r response
				if p == "/api/v1/scan" {
					r = e.do(t, http.MethodPost, p, nurse1, map[string]string{"code": string(coi)})
				} else {
					r = e.do(t, http.MethodGet, p, nurse1, nil)
				}
				if r.Code != http.StatusInternalServerError {
					t.Fatalf("%s: got %s, want 500", p, r)
				}
				code, msg := r.errorBody(t)
				if code != c.code {
					t.Errorf("%s: code %q, want %q", p, code, c.code)
				}
				if strings.Contains(msg, "secret-internal-detail") {
					t.Errorf("%s: message shows internals: %q", p, msg)
				}
			}
			logs := e.logs.String()
			if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "secret-internal-detail") {
				t.Errorf("server errors not logged at error level:\n%s", logs)
			}
		})
	}
}

// ---------------------------------------------------------------------------

func TestPasswordsNeverEchoed(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll(t, patientA)
	var bodies [][]byte
	t.Run("signed step", func(t *testing.T) {
		r := e.step(t, coi, nurse1, custody.StepCollect, collectData(), sig{nurse1, custody.MeaningPerformed, ""}, sig{nurse2, custody.MeaningVerified, ""})
		if r.Code != http.StatusCreated {
			t.Fatalf("got %s", r)
		}
		bodies = append(bodies, r.Body)
		if bytes.Contains(r.Body, []byte(`"password":`)) {
			t.Errorf("record has a password member: %s", r.Body)
		}
		var rec custody.Record
		if err := json.Unmarshal(r.Body, &rec); err != nil {
			t.Fatal(err)
		}
		if len(rec.Signatures) != 2 || rec.Signatures[0].Method != "password" || rec.Signatures[0].User != nurse1 || rec.Signatures[1].User != nurse2 {
			t.Errorf("signatures %+v", rec.Signatures)
		}
	})
	wrong := "Wrong-Pw-Zk93!secret"
	pwBody := func(step custody.Step, data any, sigs ...sig) string {
		b, _ := json.Marshal(stepBody(step, data, sigs...))
		return string(b)
	}
	okNote := pwBody(custody.StepNote, map[string]any{"text": "n"}, sig{nurse1, custody.MeaningAuthored, ""})
	failing := []struct {
		name, user string
		body       string
	}{
		{"wrong password", nurse1, pwBody(custody.StepNote, map[string]any{"text": "n"}, sig{nurse2, custody.MeaningAuthored, wrong})},
		{"unknown user", nurse1, pwBody(custody.StepNote, map[string]any{"text": "n"}, sig{"ghost", custody.MeaningAuthored, wrong})},
		{"wrong role", nurse1, pwBody(custody.StepShip, map[string]any{"shipper": "S1", "profile": "cryogenic"},
			sig{qa, custody.MeaningHandedOver, ""}, sig{courier, custody.MeaningReceived, ""})},
		{"admin signer", nurse1, pwBody(custody.StepNote, map[string]any{"text": "n"}, sig{admin, custody.MeaningAuthored, ""})},
		{"same signer twice", nurse1, pwBody(custody.StepShip, map[string]any{"shipper": "S1", "profile": "cryogenic"},
			sig{nurse1, custody.MeaningHandedOver, ""}, sig{nurse1, custody.MeaningReceived, ""})},
		{"out of order", nurse1, pwBody(custody.StepInfuse, nil, sig{nurse1, custody.MeaningPerformed, ""})},
		{"missing signature", nurse1, pwBody(custody.StepShip, map[string]any{"shipper": "S1", "profile": "cryogenic"}, sig{nurse1, custody.MeaningHandedOver, ""})},
		{"malformed after password", nurse1, okNote[:len(okNote)-1] + `,`},
		{"unknown field after password", nurse1, okNote[:len(okNote)-1] + `,"extra":"` + wrong + `"}`},
		{"password of wrong type", nurse1, `{"step":"note","data":{"text":"n"},"signatures":[{"user":"nurse.ada","password":["` + wrong + `"],"meaning":"authored"}]}`},
		{"meaning of wrong type", nurse1, `{"step":"note","data":{"text":"n"},"signatures":[{"user":"nurse.ada","password":"` + password(nurse1) + `","meaning":7}]}`},
		{"bad escape in password", nurse1, `{"step":"note","data":{"text":"n"},"signatures":[{"user":"nurse.ada","password":"` + wrong + `\q","meaning":"authored"}]}`},
		{"no token", "", okNote},
	}
	for _, f := range failing {
		t.Run(f.name, func(t *testing.T) {
			r := e.do(t, http.MethodPost, chainPath(coi, "/records"), f.user, f.body)
			if r.Code < 400 || r.Code >= 500 {
				t.Fatalf("got %s, want a 4xx", r)
			}
			r.errorBody(t)
			bodies = append(bodies, r.Body)
		})
	}
	t.Run("enroll signed with a password", func(t *testing.T) {
		b := enrollBody(patientB)
		b["signatures"] = []map[string]any{{"user": coord, "password": password(coord), "meaning": "authored"}}
		r := e.do(t, http.MethodPost, "/api/v1/chains", coord, b)
		if r.Code != http.StatusCreated {
			t.Fatalf("got %s", r)
		}
		bodies = append(bodies, r.Body)
	})
	for _, id := range slices.Sorted(maps.Keys(userRoles)) {
		r := e.do(t, http.MethodGet, "/api/v1/me", id, nil)
		bodies = append(bodies, r.Body)
		if bytes.Contains(r.Body, []byte("password_hash")) || bytes.Contains(r.Body, []byte("$argon2id")) {
			t.Errorf("GET /me as %s shows the password hash: %s", id, r.Body)
		}
	}
	bodies = append(bodies, e.do(t, http.MethodGet, chainPath(coi), qa, nil).Body)
	secrets := append(allPasswords(), wrong)
	for _, b := range bodies {
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("response contains password %q: %s", s, b)
			}
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "signature failed") {
		t.Errorf("failed signatures were not logged:\n%s", logs)
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("log contains password %q", s)
		}
	}
}

// TestPatientIdentifiersNeverLeak runs two patients through the API, one
// of them through the whole journey including a failed and a passed bedside
// check, and looks for their name, MRN and birth date in every response,
// the log and every ledger record.
func TestPatientIdentifiersNeverLeak(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var bodies [][]byte
	keep := func(r response) response { bodies = append(bodies, r.Body); return r }

	a := keep(e.do(t, http.MethodPost, "/api/v1/chains", coord, enrollBody(patientA)))
	b := keep(e.do(t, http.MethodPost, "/api/v1/chains", coord, enrollBody(patientB)))
	if a.Code != http.StatusCreated || b.Code != http.StatusCreated {
		t.Fatalf("enroll: %s; %s", a, b)
	}
	coiA := custody.COI(a.object(t)["coi"].(string))
	coiB := custody.COI(b.object(t)["coi"].(string))

	steps := journey(coiA, patientA.MRN)
	for _, s := range steps[:7] {
		if r := keep(e.step(t, coiA, s.actor, s.step, s.data, s.sigs...)); r.Code != http.StatusCreated {
			t.Fatalf("%s: %s", s.step, r)
		}
	}
	// The wrong patient's wristband: refused, a mismatch record written.
	fp1 := custody.LabelPayload(custody.BagID{COI: coiA, Kind: custody.BagFinalProduct, N: 1})
	mm := keep(e.step(t, coiA, nurse1, custody.StepBedsideVerify, map[string]any{"bag_code": fp1, "wristband_code": patientB.MRN},
		sig{nurse1, custody.MeaningVerified, ""}, sig{nurse2, custody.MeaningVerified, ""}))
	if mm.Code != http.StatusConflict {
		t.Fatalf("bedside check with patient B's wristband: %s, want 409", mm)
	}
	// No other bedside check until someone acknowledges the mismatch.
	if r := keep(e.step(t, coiA, steps[7].actor, steps[7].step, steps[7].data, steps[7].sigs...)); r.Code != http.StatusConflict ||
		!strings.Contains(string(r.Body), "not acknowledged") {
		t.Fatalf("bedside check over an unacknowledged mismatch: %s", r)
	}
	mmSeq := e.chain(t, coiA).Mismatches[0].Seq
	if r := keep(e.do(t, http.MethodPost, fmt.Sprintf("/api/v1/chains/%s/mismatches/%d/acknowledge", coiA, mmSeq), nurse2, nil)); r.Code != http.StatusCreated {
		t.Fatalf("acknowledge: %s", r)
	}
	if r := keep(e.do(t, http.MethodPost, fmt.Sprintf("/api/v1/chains/%s/mismatches/%d/acknowledge", coiA, mmSeq), nurse1, nil)); r.Code != http.StatusConflict {
		t.Fatalf("acknowledge twice: %s", r)
	}
	// The bag is set aside for QA: QA decides before another bedside check.
	if r := keep(e.step(t, coiA, steps[7].actor, steps[7].step, steps[7].data, steps[7].sigs...)); r.Code != http.StatusConflict ||
		!strings.Contains(string(r.Body), "await a QA disposition") {
		t.Fatalf("bedside check before QA's disposition of the mismatch: %s", r)
	}
	if r := keep(e.step(t, coiA, qa, custody.StepDisposition, map[string]any{"excursion": mmSeq, "decision": "accept",
		"reason": "wrong wristband scanned; identity confirmed"}, sig{qa, custody.MeaningApproved, ""})); r.Code != http.StatusCreated {
		t.Fatalf("QA disposition of the mismatch: %s", r)
	}
	for _, s := range steps[7:] {
		if r := keep(e.step(t, coiA, s.actor, s.step, s.data, s.sigs...)); r.Code != http.StatusCreated {
			t.Fatalf("%s: %s", s.step, r)
		}
	}
	c := e.chain(t, coiA)
	if c.State != custody.StateInfused {
		t.Fatalf("chain A state %s, want infused", c.State)
	}
	if !slices.ContainsFunc(c.Records, func(r custody.Record) bool { return r.Step == custody.StepMismatch }) {
		t.Errorf("no mismatch record on chain A")
	}
	for _, p := range []string{chainPath(coiA), chainPath(coiB), "/api/v1/chains", "/api/v1/chains?state=infused",
		chainPath(coiA, "/verify"), "/api/v1/verify", "/api/v1/me"} {
		if r := keep(e.do(t, http.MethodGet, p, qa, nil)); r.Code != http.StatusOK {
			t.Errorf("GET %s: %s", p, r)
		}
	}
	for _, code := range []string{string(coiA), fp1, string(coiB), "&/" + string(coiB),
		custody.BagID{COI: coiA, Kind: custody.BagApheresis, N: 2}.String()} {
		if r := keep(e.do(t, http.MethodPost, "/api/v1/scan", nurse1, map[string]string{"code": code})); r.Code != http.StatusOK {
			t.Errorf("scan %s: %s", code, r)
		}
	}
	// The identifiers did reach the PHI store: the test is not vacuous.
	for coi, p := range map[custody.COI]patient{coiA: patientA, coiB: patientB} {
		phi, err := e.svc.PHI(ctx, coi)
		if err != nil || phi.Name != p.Name || phi.MRN != p.MRN || phi.BirthDate != p.BirthDate {
			t.Errorf("PHI of %s = %+v, %v", coi, phi, err)
		}
		var enrollData struct {
			Commitment string `json:"patient_commitment"`
		}
		recs, err := e.store.Records(ctx, coi)
		if err != nil || len(recs) == 0 {
			t.Fatalf("records of %s: %v", coi, err)
		}
		if err := json.Unmarshal(recs[0].Data, &enrollData); err != nil || enrollData.Commitment != phi.Commitment() {
			t.Errorf("enroll record of %s: commitment %q, want %q (%v)", coi, enrollData.Commitment, phi.Commitment(), err)
		}
	}

	ids := append(patientA.identifiers(), patientB.identifiers()...)
	for i, body := range bodies {
		for _, id := range ids {
			if bytes.Contains(body, []byte(id)) {
				t.Errorf("response %d contains patient identifier %q: %s", i, id, body)
			}
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "chain enrolled") || !strings.Contains(logs, "bedside mismatch") || !strings.Contains(logs, "http request") {
		t.Errorf("log lacks the expected lines (is it captured?):\n%s", logs)
	}
	for _, id := range ids {
		if strings.Contains(logs, id) {
			t.Errorf("log contains patient identifier %q", id)
		}
	}
	n := 0
	err := e.store.ScanLog(ctx, func(seq uint64, _ custody.Hash, body []byte) error {
		n++
		for _, id := range ids {
			if bytes.Contains(body, []byte(id)) {
				t.Errorf("ledger record %d contains patient identifier %q: %s", seq, id, body)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 + 9 + 1 + 1 + 1; n != want { // enrolls, journey, mismatch, acknowledgement, disposition
		t.Errorf("scanned %d ledger records, want %d", n, want)
	}
}

// ---------------------------------------------------------------------------

func TestScan(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll(t, patientA)
	e.advance(t, coi, patientA.MRN, 1) // collected: bags APH-01, APH-02
	other := e.enroll(t, patientB)
	k := string(coi.K())
	wrongK := "0"
	if k == "0" {
		wrongK = "1"
	}
	aph := func(n int) custody.BagID { return custody.BagID{COI: coi, Kind: custody.BagApheresis, N: n} }
	unknown := custody.COI("CHA999926999999")
	cases := []struct {
		name, code string
		status     int
		form, bag  string
		chain      custody.COI
		msg        string
	}{
		{"label payload of a bag", custody.LabelPayload(aph(1)), 200, "payload", aph(1).String(), coi, ""},
		{"label payload of the chain", custody.LabelPayload(custody.BagID{COI: coi}), 200, "payload", "", coi, ""},
		{"label payload with scanner CR LF", custody.LabelPayload(aph(2)) + "\r\n", 200, "payload", aph(2).String(), coi, ""},
		{"bag ID", aph(2).String(), 200, "bag", aph(2).String(), coi, ""},
		{"bag ID with K", string(coi) + k + "-APH-01", 200, "bag", aph(1).String(), coi, ""},
		{"COI", string(coi), 200, "coi", "", coi, ""},
		{"COI with K", string(coi) + k, 200, "coi", "", coi, ""},
		{"COI display form", coi.Display(), 200, "coi", "", coi, ""},
		{"ISBT 128 data structure 040", "&/" + string(coi), 200, "isbt", "", coi, ""},
		{"ISBT 128 with K", "&/" + string(coi) + k, 200, "isbt", "", coi, ""},
		{"ISBT 128 compound message of a bag", "=+03000&/" + string(coi) + "=A99992612345600=," + custody.BagDivisions(aph(2)), 200, "isbt", aph(2).String(), coi, ""},
		{"ISBT 128 structures scanned one by one", "&/" + string(coi) + "=," + custody.BagDivisions(aph(1)) + "\r\n", 200, "isbt", aph(1).String(), coi, ""},
		{"ISBT 128 compound message, count wrong", "=+03000&/" + string(coi) + "=," + custody.BagDivisions(aph(1)), 400, "", "", "", "compound message"},
		{"ISBT 128 DIN alone", "=A99992612345600", 400, "", "", "", "no COI"},
		{"ISBT 128 DIN, COI and divisions typed one after another", "=A99992612345600&/" + string(coi) + "=," + custody.BagDivisions(aph(2)), 200, "isbt", aph(2).String(), coi, ""},
		{"ISBT 128 label with product code and divisions", "=+04000&/" + string(coi) + "=A99992612345600=<S1234V99=," + custody.BagDivisions(aph(1)), 200, "isbt", aph(1).String(), coi, ""},
		{"ISBT 128 product code 99 without its divisions", "=+03000&/" + string(coi) + "=A99992612345600=<S1234V99", 400, "", "", "", "product divisions"},
		{"ISBT 128 divisions beside a product code not ending 99", "&/" + string(coi) + "=<S1234V00=," + custody.BagDivisions(aph(1)), 400, "", "", "", "must be 99"},
		{"ISBT 128 bag not registered", "=+02000&/" + string(coi) + "=," + custody.BagDivisions(aph(3)), 404, "", "", "", "not registered"},
		{"another chain", string(other), 200, "coi", "", other, ""},
		{"wrong K", string(coi) + wrongK, 400, "", "", "", "check character"},
		{"wrong K in payload", "C1:" + string(coi) + wrongK + ":APH-01", 400, "", "", "", "check character"},
		{"wrong K in bag ID", string(coi) + wrongK + "-APH-01", 400, "", "", "", "check character"},
		{"wrong K after ISBT prefix", "&/" + string(coi) + wrongK, 400, "", "", "", "check character"},
		{"payload without K", "C1:" + string(coi) + ":APH-01", 400, "", "", "", ""},
		{"unknown chain", string(unknown), 404, "", "", "", ""},
		{"unknown chain payload", custody.LabelPayload(custody.BagID{COI: unknown, Kind: custody.BagFinalProduct, N: 1}), 404, "", "", "", ""},
		{"bag not registered", aph(3).String(), 404, "", "", "", "not registered"},
		{"final-product bag before manufacture", custody.LabelPayload(custody.BagID{COI: coi, Kind: custody.BagFinalProduct, N: 1}), 404, "", "", "", "not registered"},
		{"bag of another chain not registered", custody.BagID{COI: other, Kind: custody.BagApheresis, N: 1}.String(), 404, "", "", "", ""},
		{"bag number 00", string(coi) + "-APH-00", 400, "", "", "", ""},
		{"bag kind unknown", string(coi) + "-XYZ-01", 400, "", "", "", ""},
		{"lower-case COI", strings.ToLower(string(coi)), 400, "", "", "", "Caps Lock"},
		{"payload scanned with Caps Lock on", strings.ToLower(custody.LabelPayload(custody.BagID{COI: coi, Kind: custody.BagApheresis, N: 1})), 400, "", "", "", "Caps Lock"},
		{"garbage", "hello, world", 400, "", "", "", ""},
		{"payload prefix only", "C1:", 400, "", "", "", ""},
		{"payload garbage", "C1:garbage:FP-01", 400, "", "", "", ""},
		{"binary", "\x00\x01\xff\xfe", 400, "", "", "", ""},
		{"unicode", "ＣＨＡ９９９９", 400, "", "", "", ""},
		{"very long", strings.Repeat("A", 10000), 400, "", "", "", ""},
		{"just over the limit", strings.Repeat("C", custody.MaxCodeLen+1), 400, "", "", "", ""},
		{"empty", "", 400, "", "", "", "empty"},
		{"white space", " \t\r\n", 400, "", "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.ledgerRecords(t)
			r := e.do(t, http.MethodPost, "/api/v1/scan", nurse1, map[string]string{"code": c.code})
			if r.Code >= 500 {
				t.Fatalf("scan %q: server error %s", c.code, r)
			}
			if r.Code != c.status {
				t.Fatalf("scan %q: got %s, want %d", c.code, r, c.status)
			}
			if after := e.ledgerRecords(t); after != before {
				t.Errorf("scanning wrote to the ledger: %d -> %d", before, after)
			}
			if c.status != http.StatusOK {
				_, msg := r.errorBody(t)
				if !strings.Contains(msg, c.msg) {
					t.Errorf("message %q does not mention %q", msg, c.msg)
				}
				return
			}
			m := r.object(t)
			if m["coi"] != string(c.chain) || m["form"] != c.form || m["coi_display"] != c.chain.Display() {
				t.Errorf("scan %q = coi %v form %v display %v; want %s %s", c.code, m["coi"], m["form"], m["coi_display"], c.chain, c.form)
			}
			if bag, _ := m["bag"].(string); bag != c.bag {
				t.Errorf("bag %q, want %q", bag, c.bag)
			}
			if c.bag != "" && m["bag_kind"] != "APH" {
				t.Errorf("bag_kind %v", m["bag_kind"])
			}
			wantState := custody.StateEnrolled
			if c.chain == coi {
				wantState = custody.StateCollected
			}
			if m["state"] != string(wantState) {
				t.Errorf("state %v, want %s", m["state"], wantState)
			}
		})
	}
	t.Run("body without code", func(t *testing.T) {
		r := e.do(t, http.MethodPost, "/api/v1/scan", nurse1, `{}`)
		if r.Code != http.StatusBadRequest {
			t.Errorf("got %s, want 400", r)
		}
	})
}

// FuzzScan: whatever is scanned, the answer is 200 for this chain, 400 or
// 404, never a server error, and scanning writes nothing.
func FuzzScan(f *testing.F) {
	e := newEnv(f)
	coi := e.enroll(f, patientA)
	e.advance(f, coi, patientA.MRN, 1)
	for _, s := range []string{string(coi), custody.LabelPayload(custody.BagID{COI: coi, Kind: custody.BagApheresis, N: 1}),
		"&/" + string(coi), coi.Display(), string(coi) + "-FP-01", "C1:", "", "\xff", strings.Repeat("9", 300)} {
		f.Add(s)
	}
	before := e.ledgerRecords(f)
	f.Fuzz(func(t *testing.T, code string) {
		r := e.do(t, http.MethodPost, "/api/v1/scan", nurse1, map[string]string{"code": code})
		switch r.Code {
		case http.StatusOK:
			if got := r.object(t)["coi"]; got != string(coi) {
				t.Errorf("scan %q resolved to %v, but only %s exists", code, got, coi)
			}
		case http.StatusBadRequest, http.StatusNotFound:
			r.errorBody(t)
		default:
			t.Errorf("scan %q: %s", code, r)
		}
		if after := e.ledgerRecords(t); after != before {
			t.Errorf("scan %q wrote to the ledger", code)
		}
	})
}

func TestListChains(t *testing.T) {
	e := newEnv(t)
	enrolled := e.enroll(t, patientA)
	collected := e.enroll(t, patientB)
	e.advance(t, collected, patientB.MRN, 1)
	cancelled := e.enroll(t, patient{"Third Patient", "1990-01-01", "MRN-3"})
	e.mustStep(t, cancelled, coord, custody.StepCancel, map[string]any{"reason": "withdrawn"}, sig{coord, custody.MeaningApproved, ""})

	list := func(t *testing.T, query string) []custody.COI {
		t.Helper()
		r := e.do(t, http.MethodGet, "/api/v1/chains"+query, qa, nil)
		if r.Code != http.StatusOK {
			t.Fatalf("GET /api/v1/chains%s: %s", query, r)
		}
		var out struct {
			Chains []struct {
				custody.ChainInfo
				Display string `json:"coi_display"`
			} `json:"chains"`
			Count *int `json:"count"`
		}
		if err := json.Unmarshal(r.Body, &out); err != nil || out.Chains == nil || out.Count == nil {
			t.Fatalf("list: %v: %s", err, r.Body)
		}
		if *out.Count != len(out.Chains) {
			t.Errorf("count %d, %d chains", *out.Count, len(out.Chains))
		}
		var cois []custody.COI
		for _, c := range out.Chains {
			cois = append(cois, c.COI)
			if c.Display != c.COI.Display() {
				t.Errorf("coi_display %q for %s", c.Display, c.COI)
			}
			if st := strings.TrimPrefix(query, "?state="); st != "" && st != query && c.State != custody.State(st) {
				t.Errorf("filter %s returned a chain in state %s", st, c.State)
			}
		}
		slices.Sort(cois)
		return cois
	}
	cases := []struct {
		query string
		want  []custody.COI
	}{
		{"", []custody.COI{enrolled, collected, cancelled}},
		{"?state=", []custody.COI{enrolled, collected, cancelled}},
		{"?state=enrolled", []custody.COI{enrolled}},
		{"?state=collected", []custody.COI{collected}},
		{"?state=cancelled", []custody.COI{cancelled}},
		{"?state=infused", nil},
		{"?state=in-transit-to-manufacturing", nil},
	}
	for _, c := range cases {
		t.Run("state="+strings.TrimPrefix(c.query, "?state="), func(t *testing.T) {
			want := slices.Clone(c.want)
			slices.Sort(want)
			if got := list(t, c.query); !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
	for _, bad := range []string{"?state=bogus", "?state=Enrolled", "?state=enrolled%20", "?state=" + url.QueryEscape("collected,enrolled")} {
		t.Run("unknown "+bad, func(t *testing.T) {
			r := e.do(t, http.MethodGet, "/api/v1/chains"+bad, qa, nil)
			if r.Code != http.StatusBadRequest {
				t.Fatalf("got %s, want 400", r)
			}
			if code, _ := r.errorBody(t); code != "invalid" {
				t.Errorf("code %q", code)
			}
		})
	}
	t.Run("records and head", func(t *testing.T) {
		r := e.do(t, http.MethodGet, "/api/v1/chains?state=collected", qa, nil)
		var out struct {
			Chains []custody.ChainInfo `json:"chains"`
		}
		_ = json.Unmarshal(r.Body, &out)
		c := e.chain(t, collected)
		if len(out.Chains) != 1 || out.Chains[0].Records != uint64(len(c.Records)) || out.Chains[0].HeadHash.String() != c.Head {
			t.Errorf("summary %+v, chain has %d records head %s", out.Chains, len(c.Records), c.Head)
		}
	})
}

func TestVerifyEndpoints(t *testing.T) {
	e := newEnv(t)
	a := e.enroll(t, patientA)
	b := e.enroll(t, patientB)
	e.advance(t, a, patientA.MRN, 3)
	var rep custody.Report
	r := e.do(t, http.MethodGet, "/api/v1/verify", qa, nil)
	if r.Code != http.StatusOK {
		t.Fatalf("verify: %s", r)
	}
	if err := json.Unmarshal(r.Body, &rep); err != nil {
		t.Fatal(err)
	}
	ca, cb := e.chain(t, a), e.chain(t, b)
	if !rep.OK || rep.Records != 5 || rep.Head != ca.Head {
		t.Errorf("ledger report %+v, want ok, 5 records, head %s", rep, ca.Head)
	}
	for _, c := range []*custody.Chain{ca, cb} {
		r := e.do(t, http.MethodGet, chainPath(c.COI, "/verify"), nurse1, nil)
		var rep custody.Report
		if err := json.Unmarshal(r.Body, &rep); err != nil || r.Code != http.StatusOK {
			t.Fatalf("verify %s: %s", c.COI, r)
		}
		if !rep.OK || rep.Records != uint64(len(c.Records)) || rep.Head != c.Head || rep.Chain != c.COI {
			t.Errorf("chain report %+v, want ok, %d records, head %s", rep, len(c.Records), c.Head)
		}
	}
}

// TestJourneyGates: the chain's next steps follow the journey, and a
// complete chain takes only notes and corrections.
func TestJourneyGates(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll(t, patientA)
	for i, s := range journey(coi, patientA.MRN) {
		rec := e.mustStep(t, coi, s.actor, s.step, s.data, s.sigs...)
		if rec.ChainSeq != uint64(i+2) {
			t.Errorf("%s: chain_seq %d, want %d", s.step, rec.ChainSeq, i+2)
		}
		c := e.chain(t, coi)
		if c.State != s.state {
			t.Errorf("after %s: state %s, want %s", s.step, c.State, s.state)
		}
	}
	c := e.chain(t, coi)
	if want := []custody.Step{custody.StepFollowUp, custody.StepNote, custody.StepCorrection, custody.StepReview}; !slices.Equal(c.Next, want) {
		t.Errorf("next after infusion %v, want %v", c.Next, want)
	}
	if len(c.Bags) != 4 || len(c.Legs) != 2 || c.Legs[0].Open || c.Legs[1].Open {
		t.Errorf("bags %v legs %+v", c.Bags, c.Legs)
	}
	for _, rec := range c.Records {
		if rec.Step == custody.StepBedsideVerify && bytes.Contains(rec.Data, []byte("wristband_code")) {
			t.Errorf("bedside record keeps the wristband: %s", rec.Data)
		}
	}
	before := e.ledgerRecords(t)
	r := e.step(t, coi, nurse1, custody.StepInfuse, nil, sig{nurse1, custody.MeaningPerformed, ""})
	if r.Code != http.StatusConflict {
		t.Errorf("second infusion: %s, want 409", r)
	}
	r = e.step(t, coi, qa, custody.StepCancel, map[string]any{"reason": "late"}, sig{qa, custody.MeaningApproved, ""})
	if r.Code != http.StatusConflict {
		t.Errorf("cancel after infusion: %s, want 409", r)
	}
	if after := e.ledgerRecords(t); after != before {
		t.Errorf("refused steps wrote %d records", after-before)
	}
	e.mustStep(t, coi, nurse1, custody.StepNote, map[string]any{"text": "patient stable"}, sig{nurse1, custody.MeaningAuthored, ""})
	e.mustStep(t, coi, nurse1, custody.StepCorrection, map[string]any{"corrects": c.Records[1].Seq, "reason": "volume misread", "volume_ml": 215},
		sig{nurse1, custody.MeaningAuthored, ""})
}

// ---------------------------------------------------------------------------

func TestConcurrentNotes(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll(t, patientA)
	e.advance(t, coi, patientA.MRN, 1)
	ts := httptest.NewServer(e.srv.Handler())
	t.Cleanup(ts.Close)
	client := ts.Client()
	before := len(e.chain(t, coi).Records)
	ledgerBefore := e.ledgerRecords(t)
	signers := []string{nurse1, nurse2, courier, mfg, qa, coord}
	const n = 20
	var wg sync.WaitGroup
	results := make([]response, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			s := signers[i%len(signers)]
			b, _ := json.Marshal(stepBody(custody.StepNote, map[string]any{"text": fmt.Sprintf("concurrent note %02d", i)}, sig{s, custody.MeaningAuthored, ""}))
			results[i] = e.doHTTP(t, client, ts, http.MethodPost, chainPath(coi, "/records"), s, bytes.NewReader(b))
		})
	}
	close(start)
	wg.Wait()
	seqs := map[uint64]bool{}
	for i, r := range results {
		if r.Code != http.StatusCreated {
			t.Errorf("note %d: %s", i, r)
			continue
		}
		var rec custody.Record
		if err := json.Unmarshal(r.Body, &rec); err != nil {
			t.Fatal(err)
		}
		if seqs[rec.Seq] {
			t.Errorf("seq %d given twice", rec.Seq)
		}
		seqs[rec.Seq] = true
	}
	c := e.chain(t, coi)
	if got := len(c.Records); got != before+n {
		t.Fatalf("chain has %d records, want %d", got, before+n)
	}
	if got := e.ledgerRecords(t); got != ledgerBefore+n {
		t.Errorf("ledger has %d records, want %d", got, ledgerBefore+n)
	}
	texts := map[string]bool{}
	for i, rec := range c.Records {
		if rec.ChainSeq != uint64(i+1) {
			t.Errorf("record %d has chain_seq %d", i, rec.ChainSeq)
		}
		if i > 0 && rec.ChainPrev != c.Records[i-1].Hash {
			t.Errorf("record %d does not link to record %d", rec.Seq, c.Records[i-1].Seq)
		}
		var d struct {
			Text string `json:"text"`
		}
		_ = json.Unmarshal(rec.Data, &d)
		texts[d.Text] = true
	}
	for i := range n {
		if !texts[fmt.Sprintf("concurrent note %02d", i)] {
			t.Errorf("note %d missing from the chain", i)
		}
	}
	var rep custody.Report
	r := e.do(t, http.MethodGet, chainPath(coi, "/verify"), qa, nil)
	if err := json.Unmarshal(r.Body, &rep); err != nil || !rep.OK || rep.Records != uint64(before+n) {
		t.Errorf("chain verify: %s", r)
	}
}

func TestConcurrentEnrollments(t *testing.T) {
	e := newEnv(t)
	ts := httptest.NewServer(e.srv.Handler())
	t.Cleanup(ts.Close)
	client := ts.Client()
	const n = 12
	var wg sync.WaitGroup
	cois := make([]string, n)
	for i := range n {
		wg.Go(func() {
			b, _ := json.Marshal(enrollBody(patient{fmt.Sprintf("Patient %d", i), "1980-05-05", fmt.Sprintf("MRN-%d", i)}))
			r := e.doHTTP(t, client, ts, http.MethodPost, "/api/v1/chains", coord, bytes.NewReader(b))
			if r.Code != http.StatusCreated {
				t.Errorf("enroll %d: %s", i, r)
				return
			}
			var out struct {
				COI string `json:"coi"`
			}
			_ = json.Unmarshal(r.Body, &out)
			cois[i] = out.COI
		})
	}
	wg.Wait()
	slices.Sort(cois)
	if len(slices.Compact(slices.Clone(cois))) != n {
		t.Errorf("COIs not unique: %v", cois)
	}
	if got := e.ledgerRecords(t); got != n {
		t.Errorf("ledger has %d records, want %d", got, n)
	}
}
