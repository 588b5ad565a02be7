package api_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/coid-project/coid/custody"
)

// TestQuotaAPI: quotas, the waiting list and its offers over HTTP, each
// route's refusals (401, 403, 400, 404, 409) and what is written.
func TestQuotaAPI(t *testing.T) {
	e := scheduleEnv(t)
	enroll := func() custody.COI { return e.enrollCART19(t) }
	a, b, c := enroll(), enroll(), enroll()
	authored := sig{coord, custody.MeaningAuthored, ""}
	quota := "/api/v1/quotas/MFG-1/PAR-1"
	for _, x := range []struct {
		name, method, path, user string
		body                     any
		status                   int
		code                     string
	}{
		{"no token", http.MethodPut, quota, "", map[string]any{"slots": 1, "reason": "share"}, 401, "unauthenticated"},
		{"coordinator sets a quota", http.MethodPut, quota, coord, map[string]any{"slots": 1, "reason": "share"}, 403, "forbidden"},
		{"negative slots", http.MethodPut, quota, qa, map[string]any{"slots": -1, "reason": "share"}, 400, "invalid"},
		{"unknown member", http.MethodPut, quota, qa, map[string]any{"slots": 1, "reason": "share", "month": 3}, 400, "invalid"},
		{"no reason", http.MethodPut, quota, qa, map[string]any{"slots": 1}, 400, "invalid"},
		{"plant is no plant", http.MethodPut, "/api/v1/quotas/PAR-1/PAR-1", admin, map[string]any{"slots": 1, "reason": "share"}, 400, "invalid"},
		{"delete of no quota", http.MethodDelete, quota, qa, map[string]any{"reason": "x"}, 404, "not_found"},
		{"quota set", http.MethodPut, quota, qa, map[string]any{"slots": 1, "reason": "scarce slots shared among centres"}, 200, ""},
		{"quotas", http.MethodGet, "/api/v1/quotas", nurse1, nil, 200, ""},
		{"quotas, a page", http.MethodGet, "/api/v1/quotas?limit=1&after=MFG-1%2FPAR-0", nurse1, nil, 200, ""},
		{"quotas, bad limit", http.MethodGet, "/api/v1/quotas?limit=0", nurse1, nil, 400, "invalid"},
		{"uses, bad period", http.MethodGet, "/api/v1/quota-uses?period=2026-13", nurse1, nil, 400, "invalid"},
		{"booked", http.MethodPost, chainPath(a, "/schedule"), coord, bookBody("2026-12-01", "", authored), 201, ""},
		{"quota exhausted", http.MethodPost, chainPath(b, "/schedule"), coord, bookBody("2026-12-08", "", authored), 409, "quota_exhausted"},
		{"uses", http.MethodGet, "/api/v1/quota-uses?period=2026-12", nurse1, nil, 200, ""},
		{"wait, nurse", http.MethodPost, chainPath(b, "/waitlist"), nurse1, map[string]any{"urgency": 1, "reason": "no slot"}, 403, "forbidden"},
		{"wait, urgency 0", http.MethodPost, chainPath(b, "/waitlist"), coord, map[string]any{"urgency": 0, "reason": "no slot"}, 400, "invalid"},
		{"wait, unknown chain", http.MethodPost, "/api/v1/chains/CHA999926999999/waitlist", coord, map[string]any{"urgency": 1, "reason": "no slot"}, 404, "not_found"},
		{"wait, booked chain", http.MethodPost, chainPath(a, "/waitlist"), coord, map[string]any{"urgency": 1, "reason": "no slot"}, 409, "conflict"},
		{"wait", http.MethodPost, chainPath(b, "/waitlist"), coord, map[string]any{"urgency": 2, "reason": "quota used this month"}, 201, ""},
		{"wait twice", http.MethodPost, chainPath(b, "/waitlist"), coord, map[string]any{"urgency": 2, "reason": "again"}, 409, "conflict"},
		{"list, bad offset", http.MethodGet, "/api/v1/waitlist?offset=-1", nurse1, nil, 400, "invalid"},
		{"list", http.MethodGet, "/api/v1/waitlist?plant=MFG-1&limit=10", nurse1, nil, 200, ""},
		{"allocate, coordinator", http.MethodPost, "/api/v1/waitlist/allocate", coord, nil, 403, "forbidden"},
		{"allocate", http.MethodPost, "/api/v1/waitlist/allocate", qa, nil, 200, ""},
		{"accept, not waiting", http.MethodPost, chainPath(c, "/offer/accept"), coord, map[string]any{"signatures": []any{}}, 404, "not_found"},
		{"decline, no reason", http.MethodPost, chainPath(b, "/offer/decline"), coord, map[string]any{"reason": ""}, 400, "invalid"},
		{"decline, nurse", http.MethodPost, chainPath(b, "/offer/decline"), nurse1, map[string]any{"reason": "x"}, 403, "forbidden"},
		{"remove", http.MethodDelete, chainPath(b, "/waitlist"), coord, map[string]any{"reason": "booked elsewhere"}, 204, ""},
		{"remove again", http.MethodDelete, chainPath(b, "/waitlist"), coord, map[string]any{"reason": "booked elsewhere"}, 404, "not_found"},
		{"quota deleted", http.MethodDelete, quota, qa, map[string]any{"reason": "capacity doubled"}, 204, ""},
	} {
		before := e.ledgerRecords(t)
		r := e.do(t, x.method, x.path, x.user, x.body)
		if r.Code != x.status {
			t.Fatalf("%s: %s, want %d", x.name, r, x.status)
		}
		if x.code != "" {
			if code, _ := r.errorBody(t); code != x.code {
				t.Errorf("%s: code %q, want %q", x.name, code, x.code)
			}
			if e.ledgerRecords(t) != before {
				t.Errorf("%s: refused, yet wrote", x.name)
			}
		}
	}
	r := e.do(t, http.MethodGet, "/api/v1/audit?kind=waitlist", qa, nil)
	if r.Code != http.StatusOK {
		t.Fatalf("audit trail: %s", r)
	}
	var trail struct {
		Entries []custody.AuditEntry `json:"entries"`
	}
	if err := json.Unmarshal(r.Body, &trail); err != nil {
		t.Fatal(err)
	}
	actions := map[custody.AuditAction]bool{}
	for _, a := range trail.Entries {
		actions[a.Action] = true
	}
	if !actions[custody.AuditWaitlistAdd] || !actions[custody.AuditWaitlistRemove] {
		t.Errorf("audit trail of the waiting list: %+v", trail.Entries)
	}
}
