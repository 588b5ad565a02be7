package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

// scheduleEnv is networkEnv with CART-19's lead times set and capacity at
// PAR-1 (one chair) and MFG-1 (one slot of CART-19).
func scheduleEnv(t *testing.T, opts ...option) *env {
	e := networkEnv(t, "2027-03-01", opts...)
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPut, "/api/v1/products/CART-19", with(regProduct, "manufacturing_days", 10, "apheresis_to_start_days", 1, "release_days", 3,
			"shipping_days", 2, "infusion_window_days", 14, "reason", "lead times agreed")},
		{http.MethodPut, "/api/v1/sites/PAR-1/capacity", map[string]any{"chairs": 1, "reason": "apheresis unit opens"}},
		{http.MethodPut, "/api/v1/sites/MFG-1/capacity", map[string]any{"slots": map[string]int{"CART-19": 1}, "closed_weekdays": []int{0},
			"reason": "plant opens"}},
	} {
		if r := e.do(t, c.method, c.path, admin, c.body); r.Code != http.StatusOK {
			t.Fatalf("%s %s: %s", c.method, c.path, r)
		}
	}
	return e
}

// enrollCART19 enrolls a chain of CART-19 at the network's sites as the
// coordinator.
func (e *env) enrollCART19(tb testing.TB) custody.COI {
	tb.Helper()
	r := e.do(tb, http.MethodPost, "/api/v1/chains", coord, networkEnroll(netSites, "CART-19"))
	if r.Code != http.StatusCreated {
		tb.Fatalf("enroll: %s", r)
	}
	var c struct{ COI custody.COI }
	if err := json.Unmarshal(r.Body, &c); err != nil {
		tb.Fatal(err)
	}
	return c.COI
}

func bookBody(date, reason string, sigs ...sig) map[string]any {
	b := stepBody("", nil, sigs...)
	delete(b, "step")
	b["apheresis_date"] = date
	if reason != "" {
		b["reason"] = reason
	}
	return b
}

func reasonBody(reason string, sigs ...sig) map[string]any {
	b := stepBody("", nil, sigs...)
	delete(b, "step")
	b["reason"] = reason
	return b
}

func TestScheduleAPI(t *testing.T) {
	e := scheduleEnv(t)
	enroll := func() custody.COI { return e.enrollCART19(t) }
	a, b, c := enroll(), enroll(), enroll()
	authored := sig{coord, custody.MeaningAuthored, ""}
	for _, x := range []struct {
		name, method, path, user string
		body                     any
		status                   int
		code                     string
	}{
		{"no token", http.MethodPost, chainPath(a, "/schedule"), "", bookBody("2026-12-01", "", authored), 401, "unauthenticated"},
		{"nurse books", http.MethodPost, chainPath(a, "/schedule"), nurse1, bookBody("2026-12-01", "", sig{nurse1, custody.MeaningAuthored, ""}), 403, "forbidden"},
		{"bad date", http.MethodPost, chainPath(a, "/schedule"), coord, bookBody("12/01/2026", "", authored), 400, "invalid"},
		{"unknown member", http.MethodPost, chainPath(a, "/schedule"), coord, with(bookBody("2026-12-01", "", authored), "slot", 3), 400, "invalid"},
		{"unknown chain", http.MethodPost, "/api/v1/chains/CHA999926999999/schedule", coord, bookBody("2026-12-01", "", authored), 404, "not_found"},
		{"booked", http.MethodPost, chainPath(a, "/schedule"), coord, bookBody("2026-12-01", "", authored), 201, ""},
		{"slot taken", http.MethodPost, chainPath(b, "/schedule"), coord, bookBody("2026-12-01", "", authored), 409, "slot_taken"},
		// Noon in Paris on Saturday 5 December is Saturday in New York:
		// the plant starts on Sunday, when it is closed.
		{"plant closed on Sundays", http.MethodPost, chainPath(b, "/schedule"), coord, bookBody("2026-12-05", "", authored), 409, "slot_taken"},
		{"booked twice", http.MethodPost, chainPath(a, "/schedule"), coord, bookBody("2026-12-02", "", authored), 409, "conflict"},
		{"collect without booking", http.MethodPost, chainPath(b, "/records"), nurse1, stepBody(custody.StepCollect, collectData(),
			sig{nurse1, custody.MeaningPerformed, ""}, sig{nurse2, custody.MeaningVerified, ""}), 409, "not_booked"},
		{"override by coordinator alone", http.MethodPost, chainPath(b, "/collect-override"), coord,
			reasonBody("urgent", sig{coord, custody.MeaningApproved, ""}), 400, "invalid"},
		{"override", http.MethodPost, chainPath(b, "/collect-override"), qa,
			reasonBody("plant confirmed by phone", sig{coord, custody.MeaningApproved, ""}, sig{qa, custody.MeaningApproved, ""}), 201, ""},
		{"collect after override", http.MethodPost, chainPath(b, "/records"), nurse1, stepBody(custody.StepCollect, collectData(),
			sig{nurse1, custody.MeaningPerformed, ""}, sig{nurse2, custody.MeaningVerified, ""}), 201, ""},
		{"reschedule without reason", http.MethodPost, chainPath(a, "/reschedule"), coord, bookBody("2026-12-02", "", authored), 400, "invalid"},
		{"reschedule", http.MethodPost, chainPath(a, "/reschedule"), coord, bookBody("2026-12-02", "platelets low", authored), 201, ""},
		{"the freed day", http.MethodPost, chainPath(c, "/schedule"), coord, bookBody("2026-12-01", "", authored), 201, ""},
		{"unschedule", http.MethodPost, chainPath(a, "/unschedule"), coord, reasonBody("consent withdrawn", authored), 201, ""},
		{"unschedule again", http.MethodPost, chainPath(a, "/unschedule"), coord, reasonBody("consent withdrawn", authored), 409, "conflict"},
		{"booking", http.MethodGet, chainPath(c, "/booking"), nurse1, nil, 200, ""},
		{"booking of an unknown chain", http.MethodGet, "/api/v1/chains/CHA999926999999/booking", nurse1, nil, 404, "not_found"},
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
	// The plant loses the 2nd: chain c's slot must move.
	if r := e.do(t, http.MethodPost, "/api/v1/sites/MFG-1/closures", admin, map[string]any{"from": "2026-12-02", "to": "2026-12-02", "reason": "power cut"}); r.Code != 200 {
		t.Fatalf("closure: %s", r)
	}
	if r := e.do(t, http.MethodGet, "/api/v1/sites/MFG-1/bookings?from=2026-12-01&to=2026-12-31", qa, nil); r.Code != 200 ||
		!strings.Contains(string(r.Body), `"coi":"`+string(c)+`"`) || !strings.Contains(string(r.Body), `"moved":"closed from 2026-12-02 to 2026-12-02: power cut"`) {
		t.Errorf("bookings hit by the closure: %s", r)
	}
	r := e.do(t, http.MethodGet, chainPath(c, "/booking"), nurse1, nil)
	var bk custody.Booking
	if err := json.Unmarshal(r.Body, &bk); err != nil || bk.Current == nil || bk.Current.Plan.ManufacturingStart.Date != "2026-12-02" {
		t.Fatalf("booking of c: %s", r)
	}
}

func TestCapacityAndAvailabilityAPI(t *testing.T) {
	e := scheduleEnv(t)
	for _, x := range []struct {
		name, method, path, user string
		body                     any
		status                   int
		text                     string
	}{
		{"no token", http.MethodGet, "/api/v1/sites/MFG-1/capacity", "", nil, 401, ""},
		{"read", http.MethodGet, "/api/v1/sites/MFG-1/capacity", nurse1, nil, 200, `"CART-19":1`},
		{"none defined", http.MethodGet, "/api/v1/sites/NOPE-1/capacity", nurse1, nil, 404, ""},
		{"bad code", http.MethodGet, "/api/v1/sites/nope/capacity", nurse1, nil, 400, ""},
		{"coordinator sets", http.MethodPut, "/api/v1/sites/MFG-1/capacity", coord, map[string]any{"slots": map[string]int{"CART-19": 9}, "reason": "x"}, 403, ""},
		{"no reason", http.MethodPut, "/api/v1/sites/MFG-1/capacity", admin, map[string]any{"slots": map[string]int{"CART-19": 9}}, 400, "reason"},
		{"unknown member", http.MethodPut, "/api/v1/sites/MFG-1/capacity", admin, map[string]any{"seats": 9, "reason": "x"}, 400, "seats"},
		{"unregistered site", http.MethodPut, "/api/v1/sites/NOPE-1/capacity", admin, map[string]any{"chairs": 1, "reason": "x"}, 404, ""},
		{"closure", http.MethodPost, "/api/v1/sites/MFG-1/closures", admin, map[string]any{"from": "2026-12-24", "to": "2026-12-26", "reason": "holidays"}, 200, "holidays"},
		{"closure backwards", http.MethodPost, "/api/v1/sites/MFG-1/closures", admin, map[string]any{"from": "2026-12-26", "to": "2026-12-24", "reason": "x"}, 400, ""},
		{"closure by QA", http.MethodPost, "/api/v1/sites/MFG-1/closures", qa, map[string]any{"from": "2026-12-24", "to": "2026-12-26", "reason": "x"}, 403, ""},
		{"availability", http.MethodGet, "/api/v1/availability?product=CART-19&from=2026-12-23&to=2026-12-27", coord, nil, 200,
			`"days":[{"date":"2026-12-23","capacity":1,"used":0,"free":1},{"date":"2026-12-24","capacity":0,"used":0,"free":0,"closed":"closed from 2026-12-24 to 2026-12-26: holidays"}`},
		{"chairs", http.MethodGet, "/api/v1/availability?site=PAR-1&from=2026-12-23&to=2026-12-23", coord, nil, 200, `"site":"PAR-1"`},
		{"too long", http.MethodGet, "/api/v1/availability?product=CART-19&from=2026-01-01&to=2027-12-31", coord, nil, 400, "366"},
		{"no dates", http.MethodGet, "/api/v1/availability?product=CART-19", coord, nil, 400, ""},
		{"bad site", http.MethodGet, "/api/v1/availability?site=a,b&from=2026-12-23&to=2026-12-23", coord, nil, 400, ""},
		{"plant's bookings", http.MethodGet, "/api/v1/sites/MFG-1/bookings?from=2026-12-01&to=2026-12-31", mfg, nil, 200, `"count":0`},
		{"bookings, other site", http.MethodGet, "/api/v1/sites/MFG-1/bookings?from=2026-12-01&to=2026-12-31", coord, nil, 403, ""},
		{"bookings, no dates", http.MethodGet, "/api/v1/sites/MFG-1/bookings", admin, nil, 400, ""},
		{"closure change by QA", http.MethodPut, "/api/v1/sites/MFG-1/closures/2026-12-24/2026-12-26", qa, map[string]any{"from": "2026-12-25", "to": "2026-12-27", "reason": "x"}, 403, ""},
		{"closure not held", http.MethodPut, "/api/v1/sites/MFG-1/closures/2026-12-23/2026-12-26", admin, map[string]any{"from": "2026-12-25", "to": "2026-12-27", "reason": "x"}, 404, ""},
		{"closure changed", http.MethodPut, "/api/v1/sites/MFG-1/closures/2026-12-24/2026-12-26", admin, map[string]any{"from": "2026-12-25", "to": "2026-12-27", "reason": "holidays moved"}, 200, `"from":"2026-12-25","to":"2026-12-27","reason":"holidays moved"`},
		{"closure removed without a reason", http.MethodDelete, "/api/v1/sites/MFG-1/closures/2026-12-25/2026-12-27", admin, map[string]any{}, 400, "reason"},
		{"closure removed", http.MethodDelete, "/api/v1/sites/MFG-1/closures/2026-12-25/2026-12-27", admin, map[string]any{"reason": "plant works through"}, 200, `"site":"MFG-1"`},
		{"closure removed twice", http.MethodDelete, "/api/v1/sites/MFG-1/closures/2026-12-25/2026-12-27", admin, map[string]any{"reason": "again"}, 404, ""},
	} {
		r := e.do(t, x.method, x.path, x.user, x.body)
		if r.Code != x.status || !strings.Contains(string(r.Body), x.text) {
			t.Errorf("%s: %s, want %d naming %q", x.name, r, x.status, x.text)
		}
	}
	r := e.do(t, http.MethodGet, "/api/v1/audit?kind=capacity", admin, nil)
	if r.Code != http.StatusOK || !strings.Contains(string(r.Body), `"action":"capacity.close"`) {
		t.Errorf("audit of capacity: %s", r)
	}
}
