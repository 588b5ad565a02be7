package api_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
)

// TestUserListPages: GET /api/v1/users pages the accounts in ID order
// with a next cursor, filters them, refuses a bad limit or role, and stays
// for administrators only.
func TestUserListPages(t *testing.T) {
	e := newEnv(t)
	all := e.mustUsers(t)
	var want []string
	for _, u := range all {
		want = append(want, u.ID)
	}
	slices.Sort(want)
	var got []string
	next := ""
	for page := 0; ; page++ {
		r := e.do(t, http.MethodGet, "/api/v1/users?limit=2&after="+url.QueryEscape(next), admin, nil)
		if r.Code != http.StatusOK {
			t.Fatalf("page %d: %s", page, r)
		}
		m := r.object(t)
		for _, u := range m["users"].([]any) {
			got = append(got, u.(map[string]any)["id"].(string))
		}
		n, _ := m["next"].(string)
		if n == "" {
			break
		}
		if page > len(want) {
			t.Fatalf("paging does not end: %v", got)
		}
		next = n
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged users %v, want %v", got, want)
	}
	r := e.do(t, http.MethodGet, "/api/v1/users?role=nurse", admin, nil)
	if r.Code != http.StatusOK {
		t.Fatal(r)
	}
	for _, u := range r.object(t)["users"].([]any) {
		if role := u.(map[string]any)["role"]; role != "nurse" {
			t.Errorf("role=nurse lists a %v", role)
		}
	}
	for _, q := range []string{"?limit=0", "?limit=201", "?role=wizard"} {
		if r := e.do(t, http.MethodGet, "/api/v1/users"+q, admin, nil); r.Code != http.StatusBadRequest {
			t.Errorf("GET /users%s = %s, want 400", q, r)
		}
	}
	if r := e.do(t, http.MethodGet, "/api/v1/users?limit=1", qa, nil); r.Code != http.StatusForbidden {
		t.Errorf("QA lists users through the API: %s, want 403 as before", r)
	}
}
