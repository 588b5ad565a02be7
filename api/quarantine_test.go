package api_test

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"testing"

	"github.com/coid-project/coid/custody"
)

// TestQuarantineReaders: the telemetry quarantine is read by QA and
// administrators, through the API as on the QA console; every other role
// is refused, and nobody without a token gets in.
func TestQuarantineReaders(t *testing.T) {
	e := newEnv(t)
	for _, id := range slices.Sorted(maps.Keys(userRoles)) {
		want := http.StatusForbidden
		if custody.MayViewQuarantine(userRoles[id]) {
			want = http.StatusOK
		}
		if r := e.do(t, http.MethodGet, "/api/v1/telemetry/quarantine", id, nil); r.Code != want {
			t.Errorf("%s (%s): %s, want %d", id, userRoles[id], r, want)
		}
	}
	for _, role := range []custody.Role{custody.RoleQA, custody.RoleAdmin} {
		if !custody.MayViewQuarantine(role) {
			t.Errorf("%s may not read the quarantine", role)
		}
	}
	if r := e.doAuth(t, http.MethodGet, "/api/v1/telemetry/quarantine", "", nil); r.Code != http.StatusUnauthorized {
		t.Errorf("no token: %s", r)
	}
}

// quarantineList is a quarantine of entries with IDs 1 to n.
type quarantineList int

func (n quarantineList) QuarantineList(_ context.Context, before uint64, limit int) ([]custody.QuarantineEntry, error) {
	var out []custody.QuarantineEntry
	for id := uint64(n); id > 0 && (limit <= 0 || len(out) < limit); id-- {
		if before == 0 || id < before {
			out = append(out, custody.QuarantineEntry{ID: id, Topic: "shippers/SHP-1/telemetry", Reason: "bad", Size: 1, Payload: []byte("x")})
		}
	}
	return out, nil
}

// TestQuarantinePages: GET /api/v1/telemetry/quarantine pages the entries
// newest first with a next cursor, and refuses a bad cursor.
func TestQuarantinePages(t *testing.T) {
	e := newEnv(t, func(c *envConfig) { c.api.Telemetry.Quarantine = quarantineList(5) })
	var ids []float64
	for before, page := "", 0; ; page++ {
		r := e.do(t, http.MethodGet, "/api/v1/telemetry/quarantine?limit=2&before="+before, qa, nil)
		if r.Code != http.StatusOK {
			t.Fatal(r)
		}
		m := r.object(t)
		for _, x := range m["entries"].([]any) {
			ids = append(ids, x.(map[string]any)["id"].(float64))
		}
		next, _ := m["next"].(string)
		if next == "" {
			break
		}
		if page > 5 {
			t.Fatalf("paging does not end: %v", ids)
		}
		before = next
	}
	if want := []float64{5, 4, 3, 2, 1}; !slices.Equal(ids, want) {
		t.Fatalf("paged entries %v, want %v", ids, want)
	}
	for _, q := range []string{"?before=0", "?before=x", "?limit=0"} {
		if r := e.do(t, http.MethodGet, "/api/v1/telemetry/quarantine"+q, qa, nil); r.Code != http.StatusBadRequest {
			t.Errorf("%s: %s, want 400", q, r)
		}
	}
}
