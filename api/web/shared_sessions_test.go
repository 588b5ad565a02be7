package web_test

import (
	"context"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/api/web"
	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/custody/pgstore"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/custody/phitext"
)

// sharedInstance is one coid instance (service, API, web UI) on a
// PostgreSQL store shared with others.
func sharedInstance(t *testing.T, dbURL string, clock *webClock) *webEnv {
	t.Helper()
	store, err := pgstore.Open(context.Background(), dbURL, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	profiles := custody.BuiltinProfiles()
	svc, err := custody.NewService(custody.Config{Store: store, Hasher: passwd.Fast(), Logger: log, Now: clock.Now, FIN: "A9999",
		Profiles: slices.Sorted(maps.Keys(profiles)), Telemetry: custody.TelemetryConfig{Readings: store, Profiles: profiles},
		Folder: phitext.Folder{}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Service: svc, Logger: log, Version: "test", Shared: store})
	if err != nil {
		t.Fatal(err)
	}
	if err := web.Mount(srv); err != nil {
		t.Fatal(err)
	}
	e := &webEnv{t: t, svc: svc, srv: srv, clock: clock, users: map[string]custody.User{}, logs: logs, ts: httptest.NewServer(srv.Handler())}
	t.Cleanup(e.ts.Close)
	return e
}

// TestSessionsAcrossInstances: two instances on one PostgreSQL schema
// behind a load balancer that sends a browser to either: a sign-in on one
// holds on the other, and on a third started afterwards (a restart); a
// sign-out on one ends it on all; a user kept out by wrong passwords on
// one is kept out on the other.
func TestSessionsAcrossInstances(t *testing.T) {
	dbURL := pgtest.Schema(t)
	clock := &webClock{t: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
	a, b := sharedInstance(t, dbURL, clock), sharedInstance(t, dbURL, clock)
	ctx := context.Background()
	for _, id := range []string{wNurse1, wNurse2} {
		if _, err := a.svc.AddUser(ctx, id, "Printed "+id, webRoles[id], webPassword(id)); err != nil {
			t.Fatal(err)
		}
	}
	// One browser; the cookie jar keeps cookies by host, not port, so
	// the same cookies go to every instance, as behind a load balancer.
	br := a.browser()
	on := func(e *webEnv) *browser { br.e = e; return br }
	on(a).get("/login")
	wantCode(t, on(a).post("/login", url.Values{"user": {wNurse1}, "password": {webPassword(wNurse1)}}), http.StatusSeeOther, "sign in on a")
	wantCode(t, on(a).get("/scan"), http.StatusOK, "a page on a")
	wantCode(t, on(b).get("/scan"), http.StatusOK, "the same browser on b")
	c := sharedInstance(t, dbURL, clock)
	wantCode(t, on(c).get("/scan"), http.StatusOK, "the same browser on an instance started since")
	// A form signed on one instance's page is accepted by another (one
	// CSRF token per session).
	wantCode(t, on(b).post("/logout", url.Values{}), http.StatusSeeOther, "sign out on b")
	if p := on(a).get("/scan"); p.Code != http.StatusSeeOther {
		t.Fatalf("a still serves the session b ended: %d", p.Code)
	}

	// Wrong passwords on a keep nurse2 out of b too.
	blocked := false
	for i := 0; i < 20 && !blocked; i++ {
		on(a).get("/login")
		p := on(a).post("/login", url.Values{"user": {wNurse2}, "password": {"wrong-password-" + string(rune('a'+i))}})
		blocked = p.Code == http.StatusTooManyRequests
	}
	if !blocked {
		t.Fatal("twenty wrong passwords never kept the nurse out")
	}
	on(b).get("/login")
	wantCode(t, on(b).post("/login", url.Values{"user": {wNurse2}, "password": {webPassword(wNurse2)}}), http.StatusTooManyRequests,
		"the right password on b while kept out on a")
}
