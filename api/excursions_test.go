package api_test

import (
	"net/http"
	"testing"
)

// TestExcursionListParameters checks GET /api/v1/excursions's paging and
// filter parameters: bad ones answer 400 naming the parameter, good ones a
// page (checked against the OpenAPI document) without a next cursor when
// there is nothing more.
func TestExcursionListParameters(t *testing.T) {
	e := newEnv(t)
	e.enroll(t, patientA)
	for _, tt := range []struct {
		query string
		code  int
	}{
		{"", http.StatusOK},
		{"?open=true&limit=500&site=NOWHERE&from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z", http.StatusOK},
		{"?before=" + string(e.enroll(t, patientB)), http.StatusOK},
		{"?limit=0", http.StatusBadRequest},
		{"?limit=501", http.StatusBadRequest},
		{"?before=nonsense", http.StatusBadRequest},
		{"?open=maybe", http.StatusBadRequest},
		{"?from=yesterday", http.StatusBadRequest},
		{"?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", http.StatusBadRequest},
	} {
		r := e.do(t, http.MethodGet, "/api/v1/excursions"+tt.query, qa, nil)
		if r.Code != tt.code {
			t.Errorf("GET /excursions%s = %s, want %d", tt.query, r, tt.code)
			continue
		}
		if r.Code == http.StatusOK {
			m := r.object(t)
			if m["count"] != float64(0) || m["next"] != nil {
				t.Errorf("GET /excursions%s = %s, want an empty last page", tt.query, r)
			}
		}
	}
}
