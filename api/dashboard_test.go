package api_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"maps"
	"net/http"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/coid-project/coid/api/internal/nettest"
	"github.com/coid-project/coid/custody"
)

// dashboardEnv is scheduleEnv on a clock the test moves, with two chains
// booked at PAR-1 (treated there, made at MFG-1 in New York): A from
// apheresis on 1 December 2026, released two days late and infused on 19
// December; B from 2 December, received at the plant and no further. The
// clock ends on 5 January 2027, when B's manufacture is 23 days overdue
// (planned end 13 December): its infusion, projected to 10 January, falls
// after its window (1 January). coord.other coordinates another centre.
func dashboardEnv(t *testing.T) (e *env, a, b custody.COI) {
	t.Helper()
	clk := &testClock{t: fixedNow}
	e = scheduleEnv(t, withClock(clk.Now))
	setClock := func(v string) {
		at, err := time.Parse(time.RFC3339, v)
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(at.Sub(clk.Now()))
	}
	enroll := func(date string) custody.COI {
		coi := e.enrollCART19(t)
		if r := e.do(t, http.MethodPost, chainPath(coi, "/schedule"), coord,
			bookBody(date, "", sig{coord, custody.MeaningAuthored, ""})); r.Code != http.StatusCreated {
			t.Fatalf("book %s: %s", date, r)
		}
		return coi
	}
	a, b = enroll("2026-12-01"), enroll("2026-12-02")
	run := func(coi custody.COI, times []string) {
		for i, s := range journey(coi, patientA.MRN)[:len(times)] {
			setClock(times[i])
			if i == 5 { // the network's one shipper brings the product back
				s.data = map[string]any{"shipper": "SHP-0042", "profile": "cryogenic"}
			}
			e.mustStep(t, coi, s.actor, s.step, s.data, s.sigs...)
		}
	}
	run(a, []string{"2026-12-01T08:00:00Z", "2026-12-01T14:00:00Z", "2026-12-02T15:00:00Z", "2026-12-12T16:00:00Z",
		"2026-12-17T14:00:00Z", "2026-12-17T19:00:00Z", "2026-12-19T09:00:00Z", "2026-12-19T11:00:00Z", "2026-12-19T12:00:00Z"})
	run(b, []string{"2026-12-02T08:00:00Z", "2026-12-02T14:00:00Z", "2026-12-03T15:00:00Z"})
	setClock("2027-01-05T12:00:00Z")
	maps.Copy(e.tokens, netOf(t, e).AddUsers(t, []nettest.User{{ID: "coord.other", Role: custody.RoleCoordinator, Org: "APHP", Sites: []string{"PAR-2"}}}))
	return e, a, b
}

// TestPlanVsActualAPI: chain A's release is two days late, a delay that
// arose in the release segment and carried to its infusion.
func TestPlanVsActualAPI(t *testing.T) {
	e, a, _ := dashboardEnv(t)
	r := e.do(t, http.MethodGet, chainPath(a, "/plan-vs-actual"), nurse1, nil)
	if r.Code != http.StatusOK {
		t.Fatalf("plan-vs-actual: %s", r)
	}
	var got custody.PlanVsActual
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		planned, actual string
		delay, arose    int
	}{
		{"2026-12-01", "2026-12-01", 0, 0}, {"2026-12-02", "2026-12-02", 0, 0}, {"2026-12-12", "2026-12-12", 0, 0},
		{"2026-12-15", "2026-12-17", 2, 2}, {"2026-12-15", "2026-12-17", 2, 0}, {"2026-12-17", "2026-12-19", 2, 0},
		{"2026-12-17", "2026-12-19", 2, 0},
	}
	if !got.Booked || !got.Infused || got.AtRisk || got.DelayDays != 2 || len(got.Milestones) != len(want) {
		t.Fatalf("plan vs actual: %s", r.Body)
	}
	for i, w := range want {
		m := got.Milestones[i]
		if m.PlannedDate != w.planned || m.ActualDate != w.actual || m.DelayDays == nil || *m.DelayDays != w.delay || *m.AroseDays != w.arose {
			t.Errorf("%s: %+v; want %+v", m.Milestone, m, w)
		}
	}
	if r := e.do(t, http.MethodGet, chainPath(a, "/plan-vs-actual"), "coord.other", nil); r.Code != http.StatusNotFound {
		t.Errorf("another centre's coordinator: %s, want 404", r)
	}
}

// TestDashboardAPI checks the figures against values worked out by hand,
// the CSV against the JSON, and the scope of each role.
func TestDashboardAPI(t *testing.T) {
	e, _, b := dashboardEnv(t)
	const q = "?from=2026-12&to=2026-12"
	get := func(user string) custody.Dashboard {
		t.Helper()
		r := e.do(t, http.MethodGet, "/api/v1/dashboard"+q, user, nil)
		if r.Code != http.StatusOK {
			t.Fatalf("dashboard as %s: %s", user, r)
		}
		var d custody.Dashboard
		if err := json.Unmarshal(r.Body, &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	// A: 1 Dec 08:00 to 19 Dec 12:00 is 18 days 4 hours; both reached the
	// plant 1 day 7 hours after apheresis.
	wantCentres := []custody.CentreFigures{{Centre: "PAR-1", Period: "2026-12", Segments: []custody.SegmentStats{
		{Segment: custody.SegmentVeinToVein, Count: 1, MedianDays: 18.17, P90Days: 18.17},
		{Segment: custody.SegmentToPlant, Count: 2, MedianDays: 1.29, P90Days: 1.29},
		{Segment: custody.SegmentManufacturing, Count: 1, MedianDays: 10.04, P90Days: 10.04},
		{Segment: custody.SegmentRelease, Count: 1, MedianDays: 4.92, P90Days: 4.92},
		{Segment: custody.SegmentReturnShipment, Count: 1, MedianDays: 1.79, P90Days: 1.79},
		{Segment: custody.SegmentInfusion, Count: 1, MedianDays: 0.13, P90Days: 0.13},
	}}}
	// December 2026 has 27 days that are not Sundays: one slot each.
	wantUse := []custody.Utilisation{{Plant: "MFG-1", Period: "2026-12", Capacity: 27, Booked: 2, Used: 2}}
	wantRisk := []custody.AtRiskChain{{COI: b, Product: "CART-19", Centre: "PAR-1", Plant: "MFG-1", State: custody.StateAtManufacturing,
		DelayDays: 23, ProjectedInfusion: "2027-01-10", WindowEnd: "2027-01-01"}}
	for _, user := range []string{coord, qa, admin} {
		d := get(user)
		if !reflect.DeepEqual(d.Centres, wantCentres) || !reflect.DeepEqual(d.Utilisation, wantUse) ||
			!reflect.DeepEqual(d.AtRisk, wantRisk) || d.AtRiskTotal != 1 {
			t.Errorf("as %s: %+v\nwant %+v, %+v, %+v", user, d, wantCentres, wantUse, wantRisk)
		}
	}
	// Another centre's coordinator sees nothing of PAR-1's chains; the
	// plant's counts name none.
	if d := get("coord.other"); len(d.Centres) != 0 || len(d.AtRisk) != 0 || d.AtRiskTotal != 0 || !reflect.DeepEqual(d.Utilisation, wantUse) {
		t.Errorf("another centre's coordinator: %+v", d)
	}
	if d := get(coord); d.Query.From != "2026-12" || d.Query.To != "2026-12" {
		t.Errorf("query echoed: %+v", d.Query)
	}

	t.Run("filters", func(t *testing.T) {
		for _, c := range []struct {
			query          string
			centres, risks int
		}{
			{"?from=2026-12&to=2026-12&centre=PAR-1", 1, 1},
			{"?from=2026-12&to=2026-12&centre=PAR-2", 0, 0},
			{"?from=2026-12&to=2026-12&product=OTHER", 0, 0},
			{"?from=2027-01&to=2027-01", 0, 1},
			{"", 1, 1}, // the last twelve months to January 2027
		} {
			r := e.do(t, http.MethodGet, "/api/v1/dashboard"+c.query, coord, nil)
			var d custody.Dashboard
			if r.Code != http.StatusOK || json.Unmarshal(r.Body, &d) != nil || len(d.Centres) != c.centres || len(d.AtRisk) != c.risks {
				t.Errorf("%s: %s; want %d centres, %d at risk", c.query, r, c.centres, c.risks)
			}
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, c := range []struct {
			user, query string
			status      int
		}{
			{nurse1, q, http.StatusForbidden},
			{courier, q, http.StatusForbidden},
			{"", q, http.StatusUnauthorized},
			{coord, "?from=2026-13", http.StatusBadRequest},
			{coord, "?from=2027-01&to=2026-12", http.StatusBadRequest},
			{coord, "?from=2024-01&to=2026-12", http.StatusBadRequest},
		} {
			for _, path := range []string{"/api/v1/dashboard", "/api/v1/dashboard.csv"} {
				if r := e.do(t, http.MethodGet, path+c.query, c.user, nil); r.Code != c.status {
					t.Errorf("%s%s as %q: %s, want %d", path, c.query, c.user, r, c.status)
				}
			}
		}
	})

	t.Run("csv is the json", func(t *testing.T) {
		r := e.do(t, http.MethodGet, "/api/v1/dashboard.csv"+q, coord, nil)
		if r.Code != http.StatusOK {
			t.Fatalf("csv: %s", r)
		}
		rows, err := csv.NewReader(bytes.NewReader(r.Body)).ReadAll()
		if err != nil {
			t.Fatalf("csv does not parse: %v", err)
		}
		d := get(coord)
		head := rows[0]
		col := func(row []string, name string) string {
			for i, h := range head {
				if h == name {
					return row[i]
				}
			}
			t.Fatalf("no column %q in %v", name, head)
			return ""
		}
		num := func(s string) float64 {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("%q is not a number", s)
			}
			return v
		}
		var centres []custody.SegmentStats
		var use []custody.Utilisation
		var risk []custody.AtRiskChain
		for _, row := range rows[1:] {
			switch col(row, "figure") {
			case "durations":
				if col(row, "site") != "PAR-1" || col(row, "period") != "2026-12" {
					t.Errorf("durations row %v", row)
				}
				centres = append(centres, custody.SegmentStats{Segment: custody.Segment(col(row, "segment")), Count: int(num(col(row, "count"))),
					MedianDays: num(col(row, "median_days")), P90Days: num(col(row, "p90_days"))})
			case "utilisation":
				use = append(use, custody.Utilisation{Plant: col(row, "site"), Period: col(row, "period"), Capacity: int(num(col(row, "capacity"))),
					Booked: int(num(col(row, "booked"))), Used: int(num(col(row, "used")))})
			case "at-risk":
				risk = append(risk, custody.AtRiskChain{COI: custody.COI(col(row, "coi")), Product: col(row, "product"), Centre: col(row, "site"),
					Plant: col(row, "plant"), State: custody.State(col(row, "state")), DelayDays: int(num(col(row, "delay_days"))),
					ProjectedInfusion: col(row, "projected_infusion"), WindowEnd: col(row, "window_end")})
			default:
				t.Errorf("unknown figure in %v", row)
			}
		}
		if len(d.Centres) != 1 || !reflect.DeepEqual(centres, d.Centres[0].Segments) || !reflect.DeepEqual(use, d.Utilisation) ||
			!reflect.DeepEqual(risk, d.AtRisk) {
			t.Errorf("csv %q\ndoes not hold the json's figures %+v", r.Body, d)
		}
	})
}
