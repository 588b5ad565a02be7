package web_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestWebForcedPasswordChange: an administrator's reset ends the user's
// sessions; signing in with the temporary password leads to the change
// form and nowhere else; the change opens the UI again and ends the
// user's other sessions.
func TestWebForcedPasswordChange(t *testing.T) {
	e := newWebEnv(t, false)
	ctx := context.Background()
	before := e.login(wNurse1)
	e.clock.Advance(time.Minute)
	if _, err := e.svc.AdminResetPassword(ctx, e.users[wAdmin], wNurse1, "temporary-pass", "forgot"); err != nil {
		t.Fatal(err)
	}
	p := before.get("/scan")
	wantCode(t, p, http.StatusSeeOther, "session from before the reset")
	if u, _ := url.Parse(p.Location); u == nil || u.Path != "/login" {
		t.Fatalf("session from before the reset goes to %q", p.Location)
	}

	signIn := func() *browser {
		b := e.browser()
		b.get("/login")
		p := b.post("/login", url.Values{"user": {wNurse1}, "password": {"temporary-pass"}})
		if p.Code != http.StatusSeeOther || p.Location != "/password" {
			t.Fatalf("sign-in with the temporary password: %d %q", p.Code, p.Location)
		}
		return b
	}
	b, other := signIn(), signIn()
	p = b.get("/password")
	wantCode(t, p, http.StatusOK, "change form")
	wantBody(t, p, "change form", "An administrator reset your password", `name="confirm"`)
	for _, path := range []string{"/scan", "/", "/qa"} {
		p := b.get(path)
		if p.Code != http.StatusSeeOther || p.Location != "/password" {
			t.Fatalf("GET %s while the change is due: %d %q", path, p.Code, p.Location)
		}
	}
	p = b.post("/scan", url.Values{"code": {"anything"}})
	wantCode(t, p, http.StatusForbidden, "form post while the change is due")
	wantBody(t, p, "form post while the change is due", "Change your password first.")

	refused := []struct {
		name, cur, nw, confirm string
		code                   int
		want                   string
	}{
		{"confirmation differs", "temporary-pass", "new-password-1", "new-password-2", http.StatusBadRequest, "The new passwords differ."},
		{"wrong current", "not-the-password", "new-password-1", "new-password-1", http.StatusUnauthorized, "The current password was not accepted."},
		{"keeps the temporary", "temporary-pass", "temporary-pass", "temporary-pass", http.StatusBadRequest, "differ from the current"},
		{"too short", "temporary-pass", "short", "short", http.StatusBadRequest, "8-1024"},
	}
	for _, tc := range refused {
		p := b.post("/password", url.Values{"current": {tc.cur}, "new": {tc.nw}, "confirm": {tc.confirm}})
		wantCode(t, p, tc.code, tc.name)
		wantBody(t, p, tc.name, tc.want)
	}
	e.clock.Advance(time.Minute)
	p = b.post("/password", url.Values{"current": {"temporary-pass"}, "new": {"new-password-1"}, "confirm": {"new-password-1"}})
	if p.Code != http.StatusSeeOther || p.Location != "/scan" {
		t.Fatalf("change: %d %q %s", p.Code, p.Location, excerpt(p.Body))
	}
	p = b.get("/scan")
	wantCode(t, p, http.StatusOK, "after the change")
	wantBody(t, p, "after the change", "Your password was changed.")
	if p := other.get("/password"); p.Code != http.StatusSeeOther || p.Location == "/password" {
		t.Fatalf("the other session after the change: %d %q", p.Code, p.Location)
	}
	if _, err := e.svc.Login(ctx, "192.0.2.7", wNurse1, "new-password-1"); err != nil {
		t.Fatalf("sign in with the new password: %v", err)
	}
}

// TestWebVoluntaryPasswordChange: a user need not be forced to change the
// password; the form says nothing about a reset then.
func TestWebVoluntaryPasswordChange(t *testing.T) {
	e := newWebEnv(t, false)
	b := e.login(wQA)
	p := b.get("/password")
	wantCode(t, p, http.StatusOK, "change form")
	wantNotBody(t, p, "change form", "An administrator reset", "expired")
	p = b.post("/password", url.Values{"current": {webPassword(wQA)}, "new": {"qa-new-password"}, "confirm": {"qa-new-password"}})
	if p.Code != http.StatusSeeOther || p.Location != "/qa" {
		t.Fatalf("change: %d %q", p.Code, p.Location)
	}
	if p := b.get("/qa"); p.Code != http.StatusOK {
		t.Fatalf("the session of the change: %d", p.Code)
	}
}
