package api_test

import (
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
