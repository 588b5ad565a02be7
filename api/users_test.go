package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

func TestUserAdministration(t *testing.T) {
	e := newEnv(t)
	// Only an administrator manages users.
	for _, who := range []string{coord, qa, nurse1} {
		if r := e.do(t, http.MethodGet, "/api/v1/users", who, nil); r.Code != http.StatusForbidden {
			t.Fatalf("%s lists users: %s", who, r)
		}
		before := len(e.mustUsers(t))
		if r := e.do(t, http.MethodPost, "/api/v1/users", who, map[string]any{"id": "x1", "name": "X", "role": "nurse", "password": "long-enough-1"}); r.Code != http.StatusForbidden {
			t.Fatalf("%s adds a user: %s", who, r)
		}
		if len(e.mustUsers(t)) != before {
			t.Fatal("refused user creation wrote a user")
		}
	}
	r := e.do(t, http.MethodPost, "/api/v1/users", admin, map[string]any{"id": "nurse.new", "name": "New Nurse", "role": "nurse", "password": "Correct-Horse-9"})
	if r.Code != http.StatusCreated {
		t.Fatalf("add user: %s", r)
	}
	m := r.object(t)
	tok, _ := m["token"].(string)
	if !strings.HasPrefix(tok, custody.TokenPrefix) || strings.Contains(r.String(), "Correct-Horse-9") || strings.Contains(r.String(), "argon2") {
		t.Fatalf("add user response: %s", r)
	}
	// The new token works, and the new user can sign.
	e.tokens["nurse.new"] = tok
	if r := e.do(t, http.MethodGet, "/api/v1/me", "nurse.new", nil); r.Code != http.StatusOK || r.object(t)["role"] != "nurse" {
		t.Fatalf("me with new token: %s", r)
	}
	bad := []struct {
		name string
		body any
		want int
	}{
		{"duplicate", map[string]any{"id": "nurse.new", "name": "N", "role": "nurse", "password": "long-enough-1"}, http.StatusConflict},
		{"bad role", map[string]any{"id": "n2", "name": "N", "role": "surgeon", "password": "long-enough-1"}, http.StatusBadRequest},
		{"short password", map[string]any{"id": "n2", "name": "N", "role": "nurse", "password": "short"}, http.StatusBadRequest},
		{"bad id", map[string]any{"id": "-x", "name": "N", "role": "nurse", "password": "long-enough-1"}, http.StatusBadRequest},
		{"reserved id", map[string]any{"id": "system", "name": "N", "role": "nurse", "password": "long-enough-1"}, http.StatusBadRequest},
		{"unknown field", map[string]any{"id": "n2", "name": "N", "role": "nurse", "password": "long-enough-1", "admin": true}, http.StatusBadRequest},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if r := e.do(t, http.MethodPost, "/api/v1/users", admin, tt.body); r.Code != tt.want || strings.Contains(r.String(), "long-enough-1") {
				t.Fatalf("%s, want %d", r, tt.want)
			}
		})
	}
	// Disable: the token stops working; enable restores it.
	if r := e.do(t, http.MethodPost, "/api/v1/users/nurse.new/disable", admin, nil); r.Code != http.StatusOK || r.object(t)["disabled"] != true {
		t.Fatalf("disable: %s", r)
	}
	if r := e.do(t, http.MethodGet, "/api/v1/me", "nurse.new", nil); r.Code != http.StatusUnauthorized {
		t.Fatalf("disabled user's token: %s", r)
	}
	if r := e.do(t, http.MethodPost, "/api/v1/users/"+admin+"/disable", admin, nil); r.Code != http.StatusConflict {
		t.Fatalf("admin disables self: %s", r)
	}
	if r := e.do(t, http.MethodPost, "/api/v1/users/nurse.new/enable", admin, nil); r.Code != http.StatusOK {
		t.Fatalf("enable: %s", r)
	}
	if r := e.do(t, http.MethodGet, "/api/v1/me", "nurse.new", nil); r.Code != http.StatusOK {
		t.Fatalf("re-enabled user's token: %s", r)
	}
	// A second token; unknown users are 404.
	if r := e.do(t, http.MethodPost, "/api/v1/users/nurse.new/tokens", admin, nil); r.Code != http.StatusCreated || r.object(t)["token"] == e.tokens["nurse.new"] {
		t.Fatalf("new token: %s", r)
	}
	for _, p := range []string{"/unlock", "/disable", "/enable", "/tokens"} {
		if r := e.do(t, http.MethodPost, "/api/v1/users/ghost"+p, admin, nil); r.Code != http.StatusNotFound {
			t.Fatalf("%s on unknown user: %s", p, r)
		}
	}
	// Unlock clears a signing lock.
	if _, err := e.store.UpdateUser(t.Context(), nurse1, func(u *custody.User) error { u.Locked, u.FailedSignatures = true, 5; return nil }); err != nil {
		t.Fatal(err)
	}
	if r := e.do(t, http.MethodPost, "/api/v1/users/"+nurse1+"/unlock", admin, nil); r.Code != http.StatusOK || r.object(t)["locked"] != false {
		t.Fatalf("unlock: %s", r)
	}
}

func (e *env) mustUsers(t *testing.T) []custody.User {
	t.Helper()
	users, err := e.store.Users(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return users
}
