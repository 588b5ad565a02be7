package api_test

import (
	"bytes"
	"encoding/csv"
	"net/http"
	"strings"
	"testing"
)

// TestAuditRoutesAuth: the audit trail and its reports answer QA and
// administrators, refuse every other role (403) and anyone without a
// token (401).
func TestAuditRoutesAuth(t *testing.T) {
	e := newEnv(t)
	if r := e.do(t, http.MethodPost, "/api/v1/users/"+nurse2+"/disable", admin, map[string]any{"reason": "left"}); r.Code != http.StatusOK {
		t.Fatalf("disable: %s", r)
	}
	for _, path := range []string{"/api/v1/audit", "/api/v1/audit.pdf", "/api/v1/audit.csv"} {
		for _, tc := range []struct {
			who  string
			want int
		}{{admin, 200}, {qa, 200}, {coord, 403}, {nurse1, 403}, {courier, 403}, {mfg, 403}, {"", 401}} {
			if r := e.do(t, http.MethodGet, path, tc.who, nil); r.Code != tc.want {
				t.Errorf("%q GET %s: %s, want %d", tc.who, path, r, tc.want)
			}
		}
	}
}

func TestAuditTrailFilterAndPages(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{nurse1, nurse2} {
		if r := e.do(t, http.MethodPost, "/api/v1/users/"+id+"/disable", admin, map[string]any{"reason": "=cmd|' /C calc'!A0"}); r.Code != http.StatusOK {
			t.Fatalf("disable: %s", r)
		}
	}
	all := e.auditCount(t)
	r := e.do(t, http.MethodGet, "/api/v1/audit?kind=user&code="+nurse2+"&actor="+admin, qa, nil)
	if r.Code != 200 || r.object(t)["count"] != float64(1) {
		t.Fatalf("filtered: %s", r)
	}
	r = e.do(t, http.MethodGet, "/api/v1/audit?limit=1", qa, nil)
	o := r.object(t)
	if r.Code != 200 || o["count"] != float64(1) || o["next_after"] != float64(1) {
		t.Fatalf("first page: %s", r)
	}
	r = e.do(t, http.MethodGet, "/api/v1/audit?after=1&limit=1000", qa, nil)
	if o := r.object(t); r.Code != 200 || o["count"] != float64(all-1) || o["next_after"] != nil {
		t.Fatalf("rest: %s (trail holds %d)", r, all)
	}
	for _, bad := range []string{"from=yesterday", "from=2026-12-02&to=2026-12-01", "kind=planet", "code=x", "limit=0", "after=-1"} {
		wantCode(t, bad, e.do(t, http.MethodGet, "/api/v1/audit?"+bad, qa, nil), http.StatusBadRequest, "invalid")
	}
	wantCode(t, "paged report", e.do(t, http.MethodGet, "/api/v1/audit.csv?limit=5", qa, nil), http.StatusBadRequest, "invalid")

	r = e.do(t, http.MethodGet, "/api/v1/audit.csv?kind=user&actor="+admin, qa, nil)
	if r.Code != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(r.Header.Get("Content-Disposition"), "audit-trail-") {
		t.Fatalf("csv: %s %v", r, r.Header)
	}
	rows, err := csv.NewReader(bytes.NewReader(r.Body)).ReadAll()
	if err != nil || len(rows) != 3 {
		t.Fatalf("csv rows %q: %v", rows, err)
	}
	if rows[1][6] != "'=cmd|' /C calc'!A0" {
		t.Errorf("reason cell not neutralised: %q", rows[1][6])
	}
	r = e.do(t, http.MethodGet, "/api/v1/audit.pdf", admin, nil)
	if r.Code != 200 || !bytes.HasPrefix(r.Body, []byte("%PDF-")) {
		t.Fatalf("pdf: %d", r.Code)
	}
}

func TestAuditReportBounded(t *testing.T) {
	e := newEnv(t, func(c *envConfig) { c.api.AuditReportMax = 1 })
	for _, id := range []string{nurse1, nurse2} {
		if r := e.do(t, http.MethodPost, "/api/v1/users/"+id+"/disable", admin, map[string]any{"reason": "left"}); r.Code != http.StatusOK {
			t.Fatalf("disable: %s", r)
		}
	}
	r := e.do(t, http.MethodGet, "/api/v1/audit.pdf", qa, nil)
	wantCode(t, "too many", r, http.StatusBadRequest, "invalid")
	if _, msg := r.errorBody(t); !strings.Contains(msg, "narrower period") {
		t.Errorf("message %q does not ask for a narrower period", msg)
	}
	if r := e.do(t, http.MethodGet, "/api/v1/audit.pdf?kind=user&code="+nurse2, qa, nil); r.Code != 200 {
		t.Errorf("narrow report: %s", r)
	}
}
