package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/api/web"
	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/custody/phitext"
	"github.com/coid-project/coid/sensors"
)

// The web UI's test environment: a real bbolt store (ledger and telemetry
// readings), the real service with a clock the test moves, the real
// server behind httptest, and browser-like clients with cookie jars. After
// every test the ledger and each chain must verify.

const (
	wCoord   = "coord.ines"
	wNurse1  = "nurse.joan"
	wNurse2  = "nurse.kemal"
	wCourier = "courier.lou"
	wMfg     = "mfg.mira"
	wQA      = "qa.noor"
	wAdmin   = "admin.otto"
)

var webRoles = map[string]custody.Role{
	wCoord: custody.RoleCoordinator, wNurse1: custody.RoleNurse, wNurse2: custody.RoleNurse,
	wCourier: custody.RoleCourier, wMfg: custody.RoleManufacturing, wQA: custody.RoleQA, wAdmin: custody.RoleAdmin,
}

// webPassword is distinctive so every page can be searched for it.
func webPassword(id string) string { return "Wp-" + strings.ReplaceAll(id, ".", "_") + "-Zr9#lock" }

// webPatient is distinctive for the same reason.
var webPatient = struct{ Name, BirthDate, MRN string }{"Philippa Vandersteen-Okoro", "1958-03-14", "MRN-4471902"}

func webSecrets() []string {
	out := []string{webPatient.Name, webPatient.BirthDate, webPatient.MRN, "Vandersteen", "4471902"}
	for id := range webRoles {
		out = append(out, webPassword(id))
	}
	return out
}

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

// webClock is the service clock; tests move it.
type webClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *webClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *webClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type webEnv struct {
	t     testing.TB
	store *boltstore.Store
	svc   *custody.Service
	srv   *api.Server
	ts    *httptest.Server
	clock *webClock
	users map[string]custody.User
	logs  *syncBuffer
	// alerts feeds the alert stream (/alerts/live), as the monitor does.
	alerts *sensors.AlertHub
}

func newWebEnv(tb testing.TB, tls bool) *webEnv {
	tb.Helper()
	return newWebEnvProfiles(tb, tls, nil)
}

// newWebEnvProfiles is newWebEnv with the temperature profiles loaded
// from a profiles file (as --profiles gives them) added to the built-in
// ones.
func newWebEnvProfiles(tb testing.TB, tls bool, custom []custody.Profile) *webEnv {
	tb.Helper()
	return newWebEnvWith(tb, tls, custom, nil)
}

// newWebEnvWith is newWebEnvProfiles with docs, the service's store of
// expanded-access documents (nil: none).
func newWebEnvWith(tb testing.TB, tls bool, custom []custody.Profile, docs *custody.DocumentStore) *webEnv {
	tb.Helper()
	profiles := custody.BuiltinProfiles()
	for _, p := range custom {
		profiles[p.Name] = p
	}
	store, err := boltstore.Open(tb.TempDir(), boltstore.Options{})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	clock := &webClock{t: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if _, ok := tb.(*testing.B); ok {
		log = slog.New(slog.DiscardHandler)
	}
	svc, err := custody.NewService(custody.Config{Store: store, Hasher: passwd.Fast(), Logger: log, Now: clock.Now, FIN: "A9999",
		Profiles:  slices.Sorted(maps.Keys(profiles)),
		Telemetry: custody.TelemetryConfig{Readings: store, Profiles: profiles}, Folder: phitext.Folder{}, Documents: docs})
	if err != nil {
		tb.Fatalf("new service: %v", err)
	}
	alerts := sensors.NewAlertHub()
	srv, err := api.New(api.Config{Service: svc, Logger: log, Version: "test", Telemetry: api.TelemetryConfig{Alerts: alerts}})
	if err != nil {
		tb.Fatalf("api.New: %v", err)
	}
	if err := web.Mount(srv, web.WithQuarantine(store)); err != nil {
		tb.Fatalf("web.Mount: %v", err)
	}
	e := &webEnv{t: tb, store: store, svc: svc, srv: srv, clock: clock, users: map[string]custody.User{}, logs: logs, alerts: alerts}
	if tls {
		e.ts = httptest.NewTLSServer(srv.Handler())
	} else {
		e.ts = httptest.NewServer(srv.Handler())
	}
	ctx := context.Background()
	for _, id := range slices.Sorted(maps.Keys(webRoles)) {
		if _, err := svc.AddUser(ctx, id, "Printed "+id, webRoles[id], webPassword(id)); err != nil {
			tb.Fatalf("add user %s: %v", id, err)
		}
		u, err := svc.Login(ctx, "192.0.2.1", id, webPassword(id))
		if err != nil {
			tb.Fatalf("login %s: %v", id, err)
		}
		e.users[id] = u
	}
	tb.Cleanup(func() {
		e.ts.Close()
		rep, err := svc.VerifyLedger(ctx)
		if err != nil || !rep.OK {
			tb.Errorf("ledger does not verify after the test: %+v, %v", rep, err)
		}
		chains, _ := store.Chains(ctx, "")
		for _, ci := range chains {
			if rep, err := svc.VerifyChain(ctx, ci.COI); err != nil || !rep.OK {
				tb.Errorf("chain %s does not verify: %+v, %v", ci.COI, rep, err)
			}
		}
		if tb.Failed() {
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			tb.Logf("server log (last %d lines):\n%s", min(len(lines), 30), strings.Join(lines[max(0, len(lines)-30):], "\n"))
		}
		if err := store.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return e
}

func wsig(id string, m custody.Meaning) custody.SignatureRequest {
	return custody.SignatureRequest{User: id, Password: webPassword(id), Meaning: m}
}

// enroll starts a chain for webPatient.
func (e *webEnv) enroll() custody.COI {
	e.t.Helper()
	ch, err := e.svc.Enroll(context.Background(), e.users[wCoord], custody.EnrollRequest{
		Patient: custody.PHI{Name: webPatient.Name, BirthDate: webPatient.BirthDate, MRN: webPatient.MRN},
		Product: "Autologous anti-CD19 CAR-T", Sites: custody.Sites{Collection: "St. Mary Apheresis",
			Manufacturing: "CellWorks Plant 2", Treatment: "St. Mary Oncology"}})
	if err != nil {
		e.t.Fatalf("enroll: %v", err)
	}
	return ch.COI
}

// step records a step through the domain.
func (e *webEnv) step(coi custody.COI, st custody.Step, data string, sigs ...custody.SignatureRequest) custody.Record {
	e.t.Helper()
	r, err := e.svc.Record(context.Background(), e.users[wCoord], coi, custody.StepRequest{Step: st, Data: json.RawMessage(data), Signatures: sigs})
	if err != nil {
		e.t.Fatalf("record %s: %v", st, err)
	}
	return r
}

// advance takes a new chain to state.
func (e *webEnv) advance(coi custody.COI, to custody.State) {
	e.t.Helper()
	type st struct {
		state custody.State
		do    func()
	}
	steps := []st{
		{custody.StateCollected, func() {
			e.step(coi, custody.StepCollect, `{"din":"A999926000123","volume_ml":180,"bags":2,"started_at":"2026-11-22T08:00:00Z","ended_at":"2026-11-22T10:00:00Z"}`,
				wsig(wNurse1, custody.MeaningPerformed), wsig(wNurse2, custody.MeaningVerified))
		}},
		{custody.StateToManufacturing, func() {
			e.step(coi, custody.StepShip, `{"shipper":"SHP-0001","profile":"refrigerated"}`,
				wsig(wNurse1, custody.MeaningHandedOver), wsig(wCourier, custody.MeaningReceived))
		}},
		{custody.StateAtManufacturing, func() {
			e.step(coi, custody.StepReceive, `{"seal_intact":true}`, wsig(wMfg, custody.MeaningReceived))
		}},
		{custody.StateManufactured, func() {
			e.step(coi, custody.StepManufacture, `{"final_bags":1}`, wsig(wMfg, custody.MeaningPerformed))
		}},
		{custody.StateReleased, func() { e.step(coi, custody.StepRelease, `{}`, wsig(wQA, custody.MeaningApproved)) }},
		{custody.StateToTreatment, func() {
			e.step(coi, custody.StepShip, `{"shipper":"SHP-0002","profile":"cryogenic"}`,
				wsig(wMfg, custody.MeaningHandedOver), wsig(wCourier, custody.MeaningReceived))
		}},
		{custody.StateAtTreatment, func() {
			e.step(coi, custody.StepReceive, `{"seal_intact":true}`, wsig(wNurse1, custody.MeaningReceived))
		}},
	}
	for _, s := range steps {
		ch, err := e.svc.Chain(context.Background(), coi)
		if err != nil {
			e.t.Fatal(err)
		}
		if ch.State == to {
			return
		}
		s.do()
	}
}

// settleMismatches acknowledges (as a nurse) and accepts (as QA) every
// bedside mismatch of the chain still open, as after an investigation, so
// a new bedside check may go ahead.
func (e *webEnv) settleMismatches(coi custody.COI) {
	e.t.Helper()
	ctx := context.Background()
	ch, err := e.svc.Chain(ctx, coi)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, m := range ch.Mismatches {
		if !m.Acknowledged {
			if _, err := e.svc.AcknowledgeMismatch(ctx, e.users[wNurse2], coi, m.Seq, custody.ViaToken); err != nil {
				e.t.Fatal(err)
			}
		}
	}
	for _, is := range ch.OpenIssues() {
		if is.Kind == "mismatch" {
			e.step(coi, custody.StepDisposition, fmt.Sprintf(`{"excursion":%d,"decision":"accept","reason":"scan error; identity confirmed"}`, is.Seq),
				wsig(wQA, custody.MeaningApproved))
		}
	}
}

// excursion writes a temperature excursion on the chain's newest leg.
func (e *webEnv) excursion(coi custody.COI) uint64 {
	e.t.Helper()
	ch, err := e.svc.Chain(context.Background(), coi)
	if err != nil {
		e.t.Fatal(err)
	}
	worst, limit := -120.0, -150.0
	start := e.clock.Now().Add(-30 * time.Minute)
	r, ok, err := e.svc.RecordExcursion(context.Background(), coi, len(ch.Legs), custody.Excursion{
		ID: custody.ExcursionID(custody.ExcursionTemperature, start), Kind: custody.ExcursionTemperature,
		Start: start, Worst: &worst, Limit: &limit, Duration: 20 * time.Minute, Breach: 20 * time.Minute})
	if err != nil || !ok {
		e.t.Fatalf("record excursion: %v %v", ok, err)
	}
	return r.Seq
}

// readings stores n temperature readings one second apart for a shipper,
// ending at the service clock.
func (e *webEnv) readings(shipper string, n int, temp func(i int) float64) {
	e.t.Helper()
	rs := make([]custody.Reading, n)
	now := e.clock.Now()
	for i := range rs {
		c := temp(i)
		rs[i] = custody.Reading{Shipper: shipper, Seq: uint64(i + 1), HasSeq: true,
			DeviceTime: now.Add(time.Duration(i-n) * time.Second), TempC: &c}
	}
	if _, err := e.store.AddReadings(context.Background(), rs); err != nil {
		e.t.Fatalf("add readings: %v", err)
	}
}

func (e *webEnv) chain(coi custody.COI) *custody.Chain {
	e.t.Helper()
	ch, err := e.svc.Chain(context.Background(), coi)
	if err != nil {
		e.t.Fatal(err)
	}
	return ch
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, and remembers the last CSRF token it saw.
type browser struct {
	e    *webEnv
	c    *http.Client
	csrf string
}

type page struct {
	Code     int
	Header   http.Header
	Body     string
	Location string
}

func (e *webEnv) browser() *browser {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Transport: e.ts.Client().Transport, Jar: jar}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{e: e, c: c}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(req *http.Request) page {
	b.e.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := page{Code: resp.StatusCode, Header: resp.Header, Body: string(body), Location: resp.Header.Get("Location")}
	if m := csrfRE.FindStringSubmatch(p.Body); m != nil {
		b.csrf = m[1]
	}
	checkNoSecrets(b.e.t, req.Method+" "+req.URL.Path, p.Body)
	return p
}

func (b *browser) get(path string) page {
	b.e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.e.ts.URL+path, nil)
	return b.do(req)
}

// post submits a form with the last CSRF token seen (unless the values
// carry their own "csrf").
func (b *browser) post(path string, v url.Values) page {
	b.e.t.Helper()
	w := url.Values{}
	for k, x := range v {
		w[k] = x
	}
	v = w
	if _, ok := v["csrf"]; !ok {
		v.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, b.e.ts.URL+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// login signs in as id and returns the browser.
func (e *webEnv) login(id string) *browser {
	e.t.Helper()
	b := e.browser()
	b.get("/login")
	p := b.post("/login", url.Values{"user": {id}, "password": {webPassword(id)}})
	if p.Code != http.StatusSeeOther {
		e.t.Fatalf("sign in as %s: %d %s", id, p.Code, p.Body)
	}
	b.get(p.Location) // picks up the session's CSRF token
	return b
}

// checkNoSecrets fails when a page shows a password or a patient
// identifier.
func checkNoSecrets(tb testing.TB, what, body string) {
	tb.Helper()
	for _, s := range webSecrets() {
		if strings.Contains(body, s) {
			tb.Errorf("%s shows a secret or patient identifier %q", what, s)
		}
	}
}

func wantCode(tb testing.TB, p page, code int, what string) {
	tb.Helper()
	if p.Code != code {
		tb.Fatalf("%s: status %d, want %d\n%s", what, p.Code, code, excerpt(p.Body))
	}
}

func wantBody(tb testing.TB, p page, what string, subs ...string) {
	tb.Helper()
	for _, s := range subs {
		if !strings.Contains(p.Body, s) {
			tb.Errorf("%s: page lacks %q\n%s", what, s, excerpt(p.Body))
		}
	}
}

func wantNotBody(tb testing.TB, p page, what string, subs ...string) {
	tb.Helper()
	for _, s := range subs {
		if strings.Contains(p.Body, s) {
			tb.Errorf("%s: page shows %q but must not", what, s)
		}
	}
}

// excerpt is the main part of a page, for failure messages.
func excerpt(body string) string {
	if i := strings.Index(body, "<main"); i >= 0 {
		body = body[i:]
	}
	if len(body) > 3000 {
		body = body[:3000]
	}
	return body
}

func coiPath(coi custody.COI) string { return "/chains/" + string(coi) }

func payload(coi custody.COI, kind custody.BagKind, n int) string {
	return custody.LabelPayload(custody.BagID{COI: coi, Kind: kind, N: n})
}

var _ = fmt.Sprint
