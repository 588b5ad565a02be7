package api_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

// TestFollowUpAPI: chain A of the dashboard environment was infused on 19
// December; on 5 January its day-7 follow-up is overdue. Recorded through
// the step route, it leaves the overdue list and appears in the export,
// as JSON and as CSV, with coded values and no patient identifier; the
// coordinator of another centre sees neither.
func TestFollowUpAPI(t *testing.T) {
	e, a, _ := dashboardEnv(t)
	overdue := func(user string) []custody.OverdueFollowUp {
		t.Helper()
		r := e.do(t, http.MethodGet, "/api/v1/follow-up/overdue?limit=10", user, nil)
		if r.Code != http.StatusOK {
			t.Fatalf("overdue: %s", r)
		}
		var got struct {
			Overdue []custody.OverdueFollowUp `json:"overdue"`
		}
		if err := json.Unmarshal(r.Body, &got); err != nil {
			t.Fatal(err)
		}
		return got.Overdue
	}
	if got := overdue(coord); len(got) != 1 || got[0].COI != a || got[0].Day != 7 {
		t.Fatalf("overdue before recording: %+v", got)
	}
	if got := overdue("coord.other"); len(got) != 0 {
		t.Fatalf("another centre sees overdue follow-ups: %+v", got)
	}
	data := map[string]any{"day": 7, "crs_grade": 2, "icans_grade": 1, "response": "PR", "assessed_date": "2026-12-27"}
	if r := e.step(t, a, nurse1, custody.StepFollowUp, data, sig{nurse1, custody.MeaningAuthored, ""}); r.Code != http.StatusCreated {
		t.Fatalf("follow-up: %s", r)
	}
	if r := e.step(t, a, nurse1, custody.StepFollowUp, data, sig{nurse1, custody.MeaningAuthored, ""}); r.Code != http.StatusConflict {
		t.Fatalf("second day-7 follow-up: %s", r)
	}
	if got := overdue(coord); len(got) != 0 {
		t.Fatalf("overdue after recording: %+v", got)
	}

	const q = "/api/v1/follow-up/export?from=2026-12-01&to=2026-12-31&product=CART-19"
	r := e.do(t, http.MethodGet, q, coord, nil)
	if r.Code != http.StatusOK {
		t.Fatalf("export: %s", r)
	}
	var js struct {
		Rows []custody.FollowUpRow `json:"follow_ups"`
	}
	if err := json.Unmarshal(r.Body, &js); err != nil {
		t.Fatal(err)
	}
	if len(js.Rows) != 1 || js.Rows[0].COI != a || js.Rows[0].CRSGrade != 2 || js.Rows[0].ICANSGrade != 1 || js.Rows[0].Response != "PR" {
		t.Fatalf("export rows: %+v", js.Rows)
	}
	rc := e.do(t, http.MethodGet, strings.Replace(q, "/export?", "/export.csv?", 1), coord, nil)
	if rc.Code != http.StatusOK {
		t.Fatalf("export csv: %s", rc)
	}
	recs, err := csv.NewReader(bytes.NewReader(rc.Body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || strings.Join(recs[0], ",") != "coi,product,treatment_site,day,assessed_date,crs_grade,icans_grade,response,recorded_utc,seq" ||
		recs[1][0] != string(a) || recs[1][3] != "7" || recs[1][5] != "2" || recs[1][7] != "PR" {
		t.Fatalf("export csv: %q", recs)
	}
	for _, body := range [][]byte{r.Body, rc.Body} {
		for _, id := range patientA.identifiers() {
			if bytes.Contains(body, []byte(id)) {
				t.Errorf("export holds patient identifier %q", id)
			}
		}
	}
	// Out of the dates, another product, another centre: no rows.
	for _, tc := range []struct{ user, q string }{
		{coord, "/api/v1/follow-up/export?from=2027-01-01&to=2027-01-31"},
		{coord, "/api/v1/follow-up/export?from=2026-12-01&to=2026-12-31&product=OTHER-1"},
		{"coord.other", "/api/v1/follow-up/export?from=2026-12-01&to=2026-12-31"},
	} {
		r := e.do(t, http.MethodGet, tc.q, tc.user, nil)
		if r.Code != http.StatusOK || !strings.Contains(string(r.Body), `"follow_ups":[]`) {
			t.Errorf("%s as %s: %s", tc.q, tc.user, r)
		}
	}
	for _, bad := range []string{"from=2026-12-31&to=2026-12-01", "from=x&to=2026-12-01", "from=2024-01-01&to=2026-12-31", "from=2026-01-01&to=2026-12-31&product=%3Dx"} {
		if r := e.do(t, http.MethodGet, "/api/v1/follow-up/export?"+bad, coord, nil); r.Code != http.StatusBadRequest {
			t.Errorf("%s: %s", bad, r)
		}
	}
	if r := e.do(t, http.MethodGet, q, "", nil); r.Code != http.StatusUnauthorized {
		t.Errorf("unauthenticated export: %s", r)
	}
}
