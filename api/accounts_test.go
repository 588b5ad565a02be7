package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

func withPasswords(p custody.PasswordPolicy) option { return func(c *envConfig) { c.passwords = p } }

// auditCount is how many audit entries the store holds.
func (e *env) auditCount(tb testing.TB) int {
	tb.Helper()
	l, err := e.store.AuditEntries(context.Background(), custody.AuditFilter{})
	if err != nil {
		tb.Fatal(err)
	}
	return len(l)
}

// wantCode checks a response's status and error code.
func wantCode(t *testing.T, what string, r response, status int, code string) {
	t.Helper()
	if r.Code != status {
		t.Fatalf("%s: %s, want %d", what, r, status)
	}
	if code != "" {
		if got, _ := r.errorBody(t); got != code {
			t.Fatalf("%s: code %q, want %q (%s)", what, got, code, r)
		}
	}
}

// TestAccountAdminRoutesRefuseOthers: every administrative account route
// answers 403 to every other role and changes and audits nothing.
func TestAccountAdminRoutesRefuseOthers(t *testing.T) {
	e := newEnv(t)
	tokID := custody.TokenID(custody.TokenHash(e.tokens[nurse2]))
	routes := []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, "/api/v1/users/" + nurse2 + "/reset", map[string]any{"password": "temporary-pass", "reason": "forgot"}},
		{http.MethodPost, "/api/v1/users/" + nurse2 + "/disable", map[string]any{"reason": "left"}},
		{http.MethodPost, "/api/v1/users/" + nurse2 + "/enable", map[string]any{"reason": "back"}},
		{http.MethodPost, "/api/v1/users/" + nurse2 + "/unlock", map[string]any{"reason": "locked"}},
		{http.MethodGet, "/api/v1/users/" + nurse2 + "/tokens", nil},
		{http.MethodPost, "/api/v1/users/" + nurse2 + "/tokens/" + tokID + "/revoke", map[string]any{"reason": "lost"}},
	}
	for _, who := range []string{coord, nurse1, courier, mfg, qa} {
		for _, rt := range routes {
			before := e.auditCount(t)
			wantCode(t, who+" "+rt.method+" "+rt.path, e.do(t, rt.method, rt.path, who, rt.body), http.StatusForbidden, "forbidden")
			if e.auditCount(t) != before {
				t.Fatalf("%s %s: a refused change was audited", who, rt.path)
			}
		}
	}
	if r := e.do(t, http.MethodGet, "/api/v1/me", nurse2, nil); r.Code != http.StatusOK || r.object(t)["change_required"] != nil {
		t.Fatalf("nurse2 after the refusals: %s", r)
	}
	// The audit trail is for administrators and QA.
	wantCode(t, "nurse reads audit", e.do(t, http.MethodGet, "/api/v1/users/"+nurse2+"/audit", nurse1, nil), http.StatusForbidden, "forbidden")
	if r := e.do(t, http.MethodGet, "/api/v1/users/"+nurse2+"/audit", qa, nil); r.Code != http.StatusOK {
		t.Fatalf("QA reads audit: %s", r)
	}
}

// TestResetForcesPasswordChange: after an administrator's reset the
// user's token opens GET /me and POST /me/password only; every other
// route answers 403 password_change_required, and so do the user's
// signatures on others' requests, until the change.
func TestResetForcesPasswordChange(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll(t, patientA)
	wantCode(t, "reset without reason", e.do(t, http.MethodPost, "/api/v1/users/"+nurse1+"/reset", admin,
		map[string]any{"password": "temporary-pass"}), http.StatusBadRequest, "invalid")
	r := e.do(t, http.MethodPost, "/api/v1/users/"+nurse1+"/reset", admin, map[string]any{"password": "temporary-pass", "reason": "forgot (ticket 17)"})
	if r.Code != http.StatusOK || r.object(t)["change_required"] != true || strings.Contains(r.String(), "temporary-pass") {
		t.Fatalf("reset: %s", r)
	}
	if r := e.do(t, http.MethodGet, "/api/v1/me", nurse1, nil); r.Code != http.StatusOK || r.object(t)["change_required"] != true {
		t.Fatalf("me while the change is due: %s", r)
	}
	note := stepBody(custody.StepNote, map[string]any{"text": "checked"}, sig{nurse1, custody.MeaningAuthored, "temporary-pass"})
	blocked := []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/api/v1/chains", nil},
		{http.MethodGet, chainPath(coi), nil},
		{http.MethodPost, chainPath(coi, "/records"), note},
		{http.MethodPost, "/api/v1/scan", map[string]any{"code": string(coi)}},
		{http.MethodGet, "/api/v1/me/tokens", nil},
		{http.MethodGet, "/api/v1/verify", nil},
	}
	for _, b := range blocked {
		r := e.do(t, b.method, b.path, nurse1, b.body)
		wantCode(t, b.method+" "+b.path, r, http.StatusForbidden, "password_change_required")
		if _, msg := r.errorBody(t); !strings.Contains(msg, "change it") {
			t.Fatalf("%s: message %q does not say what to do", b.path, msg)
		}
	}
	// As a witness on another user's request, too.
	witnessed := stepBody(custody.StepNote, map[string]any{"text": "checked"}, sig{nurse1, custody.MeaningAuthored, "temporary-pass"})
	wantCode(t, "signature", e.do(t, http.MethodPost, chainPath(coi, "/records"), nurse2, witnessed), http.StatusForbidden, "password_change_required")
	// The change itself: wrong current password, reuse, then the change.
	wantCode(t, "wrong current", e.do(t, http.MethodPost, "/api/v1/me/password", nurse1,
		map[string]any{"current_password": "not-it-at-all", "new_password": "brand-new-pass"}), http.StatusUnauthorized, "unauthenticated")
	wantCode(t, "keeps the temporary", e.do(t, http.MethodPost, "/api/v1/me/password", nurse1,
		map[string]any{"current_password": "temporary-pass", "new_password": "temporary-pass"}), http.StatusBadRequest, "invalid")
	r = e.do(t, http.MethodPost, "/api/v1/me/password", nurse1, map[string]any{"current_password": "temporary-pass", "new_password": "brand-new-pass"})
	if r.Code != http.StatusOK || r.object(t)["user"].(map[string]any)["change_required"] != nil {
		t.Fatalf("change: %s", r)
	}
	if r := e.do(t, http.MethodGet, "/api/v1/chains", nurse1, nil); r.Code != http.StatusOK {
		t.Fatalf("after the change: %s", r)
	}
	e.mustStep(t, coi, nurse1, custody.StepNote, map[string]any{"text": "checked"}, sig{nurse1, custody.MeaningAuthored, "brand-new-pass"})
	r = e.do(t, http.MethodGet, "/api/v1/users/"+nurse1+"/audit", admin, nil)
	if r.Code != http.StatusOK || !strings.Contains(r.String(), `"user.password_reset"`) || !strings.Contains(r.String(), "ticket 17") ||
		!strings.Contains(r.String(), `"user.password_change"`) || strings.Contains(r.String(), "temporary-pass") || strings.Contains(r.String(), "brand-new-pass") ||
		strings.Contains(r.String(), "argon2") {
		t.Fatalf("audit: %s", r)
	}
}

// TestPasswordExpiryThroughTheAPI: once the configured days have passed
// (the injected clock), the token opens only the change.
func TestPasswordExpiryThroughTheAPI(t *testing.T) {
	clk := &testClock{t: fixedNow}
	e := newEnv(t, withClock(clk.Now), withPasswords(custody.PasswordPolicy{ExpiryDays: 30, History: 2}))
	if r := e.do(t, http.MethodGet, "/api/v1/chains", nurse1, nil); r.Code != http.StatusOK {
		t.Fatalf("fresh password: %s", r)
	}
	clk.Advance(30*24*time.Hour - time.Second)
	if r := e.do(t, http.MethodGet, "/api/v1/chains", nurse1, nil); r.Code != http.StatusOK {
		t.Fatalf("a second before expiry: %s", r)
	}
	clk.Advance(time.Second)
	r := e.do(t, http.MethodGet, "/api/v1/chains", nurse1, nil)
	wantCode(t, "expired", r, http.StatusForbidden, "password_change_required")
	if _, msg := r.errorBody(t); !strings.Contains(msg, "expired on 2026-12-22") {
		t.Fatalf("message %q", msg)
	}
	r = e.do(t, http.MethodPost, "/api/v1/me/password", nurse1, map[string]any{"current_password": password(nurse1), "new_password": "renewed-password"})
	if r.Code != http.StatusOK || r.object(t)["expires"] != "2027-01-21T12:00:00Z" {
		t.Fatalf("renew: %s", r)
	}
	// History 2: the previous password may not come back.
	wantCode(t, "reuse", e.do(t, http.MethodPost, "/api/v1/me/password", nurse1,
		map[string]any{"current_password": "renewed-password", "new_password": password(nurse1)}), http.StatusBadRequest, "invalid")
	if r := e.do(t, http.MethodGet, "/api/v1/chains", nurse1, nil); r.Code != http.StatusOK {
		t.Fatalf("after renewal: %s", r)
	}
}

// TestTokenListAndRevocation: tokens are listed without the token, a
// revoked one is refused on the very next request, a password change
// revokes all but the current one, and only an administrator (with a
// reason) revokes another user's.
func TestTokenListAndRevocation(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, http.MethodPost, "/api/v1/users/"+nurse1+"/tokens", admin, map[string]any{"reason": "second workstation"})
	if r.Code != http.StatusCreated {
		t.Fatalf("new token: %s", r)
	}
	second := r.object(t)["token"].(string)
	secondID := custody.TokenID(custody.TokenHash(second))
	r = e.do(t, http.MethodGet, "/api/v1/me/tokens", nurse1, nil)
	if r.Code != http.StatusOK || r.object(t)["count"] != float64(2) || strings.Contains(r.String(), e.tokens[nurse1]) || strings.Contains(r.String(), second) ||
		!strings.Contains(r.String(), `"current":true`) {
		t.Fatalf("own tokens: %s", r)
	}
	wantCode(t, "nurse2 revokes nurse1's", e.do(t, http.MethodPost, "/api/v1/users/"+nurse1+"/tokens/"+secondID+"/revoke", nurse2, nil), http.StatusForbidden, "forbidden")
	wantCode(t, "admin without reason", e.do(t, http.MethodPost, "/api/v1/users/"+nurse1+"/tokens/"+secondID+"/revoke", admin, nil), http.StatusBadRequest, "invalid")
	wantCode(t, "unknown token", e.do(t, http.MethodPost, "/api/v1/me/tokens/0123456789abcdef/revoke", nurse1, nil), http.StatusNotFound, "not_found")
	if r := e.doAuth(t, http.MethodGet, "/api/v1/me", "Bearer "+second, nil); r.Code != http.StatusOK {
		t.Fatalf("second token before: %s", r)
	}
	if r := e.do(t, http.MethodPost, "/api/v1/me/tokens/"+secondID+"/revoke", nurse1, nil); r.Code != http.StatusOK {
		t.Fatalf("revoke own: %s", r)
	}
	wantCode(t, "revoked token", e.doAuth(t, http.MethodGet, "/api/v1/me", "Bearer "+second, nil), http.StatusUnauthorized, "unauthenticated")

	// A password change ends the other tokens at once.
	r = e.do(t, http.MethodPost, "/api/v1/users/"+nurse2+"/tokens", admin, nil)
	other := r.object(t)["token"].(string)
	r = e.do(t, http.MethodPost, "/api/v1/me/password", nurse2, map[string]any{"current_password": password(nurse2), "new_password": "nurse2-new-pass"})
	if r.Code != http.StatusOK || len(r.object(t)["revoked_tokens"].([]any)) != 1 {
		t.Fatalf("change: %s", r)
	}
	wantCode(t, "other token after the change", e.doAuth(t, http.MethodGet, "/api/v1/me", "Bearer "+other, nil), http.StatusUnauthorized, "unauthenticated")
	if r := e.do(t, http.MethodGet, "/api/v1/me", nurse2, nil); r.Code != http.StatusOK {
		t.Fatalf("the token of the change: %s", r)
	}
	// An administrator revokes with a reason.
	id := custody.TokenID(custody.TokenHash(e.tokens[nurse2]))
	if r := e.do(t, http.MethodPost, "/api/v1/users/"+nurse2+"/tokens/"+id+"/revoke", admin, map[string]any{"reason": "device lost"}); r.Code != http.StatusOK {
		t.Fatalf("admin revoke: %s", r)
	}
	wantCode(t, "after the admin's revoke", e.do(t, http.MethodGet, "/api/v1/me", nurse2, nil), http.StatusUnauthorized, "unauthenticated")
	if r := e.do(t, http.MethodGet, "/api/v1/users/"+nurse2+"/audit?limit=1", admin, nil); r.Code != http.StatusOK ||
		!strings.Contains(r.String(), "device lost") || !strings.Contains(r.String(), `"token `+id+`":"revoked"`) {
		t.Fatalf("audit: %s", r)
	}
}

// TestDisabledUserRefusedByTheAPI: a disabled user's token is refused,
// and so is the user's signature on another's request; the records the
// user signed stay; the reason is audited.
func TestDisabledUserRefusedByTheAPI(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll(t, patientA)
	e.mustStep(t, coi, nurse1, custody.StepNote, map[string]any{"text": "before"}, sig{nurse1, custody.MeaningAuthored, ""})
	if r := e.do(t, http.MethodPost, "/api/v1/users/"+nurse1+"/disable", admin, map[string]any{"reason": "left the hospital"}); r.Code != http.StatusOK {
		t.Fatalf("disable: %s", r)
	}
	wantCode(t, "token", e.do(t, http.MethodGet, "/api/v1/me", nurse1, nil), http.StatusUnauthorized, "unauthenticated")
	wantCode(t, "signature", e.step(t, coi, nurse2, custody.StepNote, map[string]any{"text": "x"}, sig{nurse1, custody.MeaningAuthored, ""}),
		http.StatusUnauthorized, "unauthenticated")
	wantCode(t, "password change", e.do(t, http.MethodPost, "/api/v1/me/password", nurse1,
		map[string]any{"current_password": password(nurse1), "new_password": "another-pass-1"}), http.StatusUnauthorized, "unauthenticated")
	if ch := e.chain(t, coi); ch.Records[len(ch.Records)-1].Signatures[0].User != nurse1 {
		t.Fatal("the disabled user's record is gone")
	}
	r := e.do(t, http.MethodGet, "/api/v1/users/"+nurse1+"/audit", admin, nil)
	if r.Code != http.StatusOK || !strings.Contains(r.String(), `"action":"user.disable"`) || !strings.Contains(r.String(), "left the hospital") ||
		!strings.Contains(r.String(), `"old":{"disabled":"false"}`) {
		t.Fatalf("audit: %s", r)
	}
}
