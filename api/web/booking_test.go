package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// webSchedule is webNetwork with CART-19's lead times set (manufacturing
// starts the day after apheresis) and capacity defined when define is
// true: one apheresis chair a day at PAR-1, one CART-19 slot a day at
// MFG-1, closed on Sundays.
func webSchedule(t testing.TB, e *webEnv, define bool) {
	t.Helper()
	webNetwork(t, e)
	ctx := context.Background()
	admin := e.users[wAdmin]
	p, err := e.svc.Product(ctx, admin, "CART-19")
	if err != nil {
		t.Fatal(err)
	}
	p.ApheresisToStartDays, p.ManufacturingDays, p.ReleaseDays, p.ShippingDays, p.InfusionWindowDays = 1, 10, 3, 2, 14
	if _, err := e.svc.UpdateProduct(ctx, admin, "CART-19", p, "lead times agreed"); err != nil {
		t.Fatal(err)
	}
	if !define {
		return
	}
	if _, err := e.svc.SetCapacity(ctx, admin, "PAR-1", custody.Capacity{Chairs: 1}, "apheresis unit opens"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetCapacity(ctx, admin, "MFG-1", custody.Capacity{Slots: map[string]int{"CART-19": 1},
		ClosedWeekdays: []time.Weekday{time.Sunday}}, "plant opens"); err != nil {
		t.Fatal(err)
	}
}

// enrollRegistered enrolls webPatient at the registered sites.
func (e *webEnv) enrollRegistered() custody.COI {
	e.t.Helper()
	coord, err := e.svc.User(context.Background(), wCoord)
	if err != nil {
		e.t.Fatal(err)
	}
	ch, err := e.svc.Enroll(context.Background(), coord, custody.EnrollRequest{
		Patient: custody.PHI{Name: webPatient.Name, BirthDate: webPatient.BirthDate, MRN: webPatient.MRN},
		Product: "CART-19", Sites: custody.Sites{Collection: "PAR-1", Manufacturing: "MFG-1", Treatment: "PAR-1"}})
	if err != nil {
		e.t.Fatalf("enroll: %v", err)
	}
	return ch.COI
}

// dayCell returns the calendar cell of date in body, "" if none.
func dayCell(body, date string) string {
	i := strings.Index(body, `data-date="`+date+`"`)
	if i < 0 {
		return ""
	}
	j := strings.Index(body[i:], "</td>")
	if j < 0 {
		return body[i:]
	}
	return body[i : i+j]
}

func bookForm(date string, extra ...string) url.Values {
	v := url.Values{"date": {date}, "sig_user_1": {wCoord}, "sig_password_1": {webPassword(wCoord)}, "sig_meaning_1": {"authored"}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return v
}

func TestBookingCalendar(t *testing.T) {
	e := newWebEnv(t, false)
	webSchedule(t, e, true)
	a := e.enrollRegistered()
	coord := e.login(wCoord)

	p := coord.get(coiPath(a))
	wantBody(t, p, "chain page before booking", `id="booking-link"`, "No apheresis date is booked yet", coiPath(a)+"/booking")

	p = coord.get(coiPath(a) + "/booking?month=2026-12")
	wantCode(t, p, http.StatusOK, "calendar")
	wantBody(t, p, "calendar", "December 2026", `href="?month=2026-11"`, `href="?month=2027-01"`)
	for _, c := range []struct{ date, state, why string }{
		{"2026-12-01", `data-state="free"`, "1 chair<br>1 slot"},
		// Saturday's apheresis starts manufacturing on Sunday: closed.
		{"2026-12-05", `data-state="full"`, "plant closed on Sundays (start 2026-12-06)"},
		{"2026-12-07", `data-state="free"`, ""},
	} {
		cell := dayCell(p.Body, c.date)
		if !strings.Contains(cell, c.state) || !strings.Contains(cell, c.why) {
			t.Errorf("day %s: %q, want %s and %q", c.date, cell, c.state, c.why)
		}
	}
	// The days already past this month are not offered.
	if cell := dayCell(coord.get(coiPath(a)+"/booking?month=2026-11").Body, "2026-11-20"); !strings.Contains(cell, "past") {
		t.Errorf("a past day is offered: %q", cell)
	}
	p = coord.get(coiPath(a) + "/booking?month=2026-12&date=2026-12-01")
	wantBody(t, p, "the plan of a chosen day", `id="form-book"`, "Plan from an apheresis on 2026-12-01", "Manufacturing start",
		"2026-12-02", "Manufacturing end", "2026-12-12", "QA release", "2026-12-15", "Infusion window closes", "2026-12-31", "CET", "UTC")
}

func TestBookingForms(t *testing.T) {
	e := newWebEnv(t, false)
	webSchedule(t, e, true)
	a, b := e.enrollRegistered(), e.enrollRegistered()
	e.net().Bind(t, wNurse2, "APHP", "PAR-1")
	coord, nurse, nurseHere := e.login(wCoord), e.login(wNurse1), e.login(wNurse2)
	coord.get(coiPath(a) + "/booking")
	nurse.get("/scan")
	nurseHere.get(coiPath(a))
	for _, x := range []struct {
		name   string
		who    *browser
		coi    custody.COI
		path   string
		form   url.Values
		code   int
		writes bool
		body   string
	}{
		// The nurse works at none of the chain's sites: it is not hers to see.
		{"a nurse books", nurse, a, "/booking", bookForm("2026-12-01"), 404, false, ""},
		{"a nurse of the site books", nurseHere, a, "/booking", bookForm("2026-12-01", "sig_user_1", wNurse2, "sig_password_1", webPassword(wNurse2)), 403, false, ""},
		{"a bad date", coord, a, "/booking", bookForm("12/01/2026"), 400, false, "not a date"},
		{"a wrong password", coord, a, "/booking", bookForm("2026-12-01", "sig_password_1", "wrong"), 401, false, ""},
		{"a past day", coord, a, "/booking", bookForm("2026-11-20"), 400, false, "past"},
		{"a closed plant day", coord, a, "/booking", bookForm("2026-12-05"), 409, false, "no longer free"},
		{"booked", coord, a, "/booking", bookForm("2026-12-01"), 303, true, ""},
		{"the slot just taken", coord, b, "/booking", bookForm("2026-12-01"), 409, false, `id="not-free"`},
		{"reschedule without a reason", coord, a, "/booking/reschedule", bookForm("2026-12-03"), 400, false, "reason"},
		{"reschedule to a full day", coord, b, "/booking", bookForm("2026-12-03"), 303, true, ""},
		{"reschedule onto a taken day", coord, a, "/booking/reschedule", bookForm("2026-12-03", "reason", "patient unwell"), 409, false, "no longer free"},
		{"rescheduled", coord, a, "/booking/reschedule", bookForm("2026-12-04", "reason", "patient unwell"), 303, true, ""},
		{"unschedule without a reason", coord, a, "/booking/unschedule", bookForm(""), 400, false, "reason"},
		{"unscheduled", coord, a, "/booking/unschedule", bookForm("", "reason", "treatment postponed"), 303, true, ""},
	} {
		t.Run(x.name, func(t *testing.T) {
			before := len(e.chain(x.coi).Records)
			if x.who == coord {
				coord.get(coiPath(x.coi) + "/booking")
			}
			p := x.who.post(coiPath(x.coi)+x.path, x.form)
			wantCode(t, p, x.code, x.name)
			if x.body != "" {
				wantBody(t, p, x.name, x.body)
			}
			if x.code == http.StatusConflict {
				wantBody(t, p, x.name, "That day is no longer free: nothing was booked.")
				wantNotBody(t, p, x.name, `id="book-submit"`, `id="reschedule-submit"`)
			}
			if got := len(e.chain(x.coi).Records) - before; (got == 1) != x.writes || got > 1 {
				t.Errorf("%s wrote %d record(s), want writes %v", x.name, got, x.writes)
			}
		})
	}
	// Unschedule from the chain page's own form.
	p := coord.get(coiPath(b))
	wantBody(t, p, "chain page of a booked chain", `id="form-unschedule"`, `action="`+coiPath(b)+`/booking/unschedule"`)
	wantNotBody(t, nurseHere.get(coiPath(b)), "a nurse's chain page", `id="form-unschedule"`)
	// The chain page shows the plan booked for b.
	p = coord.get(coiPath(b))
	wantBody(t, p, "chain page of a booked chain", `id="booking"`, "Booked (record", "Apheresis", "2026-12-03", "Manufacturing start", "2026-12-04")
}

func TestBookingNotAvailable(t *testing.T) {
	e := newWebEnv(t, false)
	legacy := e.enroll() // free-text sites and product
	webSchedule(t, e, false)
	a := e.enrollRegistered()
	coord := e.login(wCoord)
	wantNotBody(t, coord.get(coiPath(legacy)), "chain page of a chain from before the network", `id="booking"`)
	p := coord.get(coiPath(legacy) + "/booking")
	wantCode(t, p, http.StatusOK, "booking of a chain from before the network")
	wantBody(t, p, "booking of a chain from before the network", `id="unavailable"`)
	wantNotBody(t, p, "booking of a chain from before the network", `id="calendar"`)
	// No capacity defined: every day says why.
	p = coord.get(coiPath(a) + "/booking?month=2026-12")
	if cell := dayCell(p.Body, "2026-12-01"); !strings.Contains(cell, "no chairs defined at PAR-1") {
		t.Errorf("a day without capacity: %q", cell)
	}
}

func TestCapacityScreen(t *testing.T) {
	e := newWebEnv(t, false)
	webSchedule(t, e, true)
	a := e.enrollRegistered()
	ctx := context.Background()
	me, err := e.svc.User(ctx, wCoord)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Book(ctx, me, a, custody.BookRequest{ApheresisDate: "2026-12-01",
		Signatures: []custody.SignatureRequest{wsig(wCoord, custody.MeaningAuthored)}}); err != nil {
		t.Fatal(err)
	}
	admin, qa, coord := e.login(wAdmin), e.login(wQA), e.login(wCoord)
	wantBody(t, admin.get("/admin"), "admin index", `href="/admin/capacity"`)
	p := admin.get("/admin/capacity")
	wantBody(t, p, "capacity index", "CellCo Plant (MFG-1)", "1 slot(s) of CART-19 a day", "1 chair(s) a day")

	p = qa.get("/admin/capacity/MFG-1?month=2026-12")
	wantCode(t, p, http.StatusOK, "QA reads the capacity")
	wantBody(t, p, "QA reads the capacity", "Slots of CART-19 a day", "Sunday", "December 2026", `id="no-impact"`)
	wantNotBody(t, p, "QA reads the capacity", `id="form-capacity"`)
	if cell := dayCell(p.Body, "2026-12-02"); !strings.Contains(cell, "1 / 1") {
		t.Errorf("the plant's 2 December: %q, want 1 / 1 used", cell)
	}
	wantCode(t, coord.get("/admin/capacity/PAR-1"), http.StatusOK, "a coordinator reads the capacity")

	slots := func() int {
		cp, err := e.svc.SiteCapacity(ctx, e.users[wAdmin], "MFG-1")
		if err != nil {
			t.Fatal(err)
		}
		return cp.Slots["CART-19"]
	}
	for _, x := range []struct {
		name string
		who  *browser
		path string
		form url.Values
		code int
	}{
		{"QA changes", qa, "/admin/capacity/MFG-1", url.Values{"slots_CART-19": {"3"}, "reason": {"more"}}, 403},
		{"a coordinator closes", coord, "/admin/capacity/MFG-1/closures", url.Values{"from": {"2026-12-02"}, "to": {"2026-12-02"}, "reason": {"x"}}, 403},
		{"a negative count", admin, "/admin/capacity/MFG-1", url.Values{"slots_CART-19": {"-1"}, "reason": {"fewer"}}, 400},
		{"not a number", admin, "/admin/capacity/MFG-1", url.Values{"slots_CART-19": {"two"}, "reason": {"more"}}, 400},
		{"no reason", admin, "/admin/capacity/MFG-1", url.Values{"slots_CART-19": {"2"}}, 400},
		{"a closure backwards", admin, "/admin/capacity/MFG-1/closures", url.Values{"from": {"2026-12-03"}, "to": {"2026-12-01"}, "reason": {"x"}}, 400},
	} {
		t.Run(x.name, func(t *testing.T) {
			x.who.get("/admin/capacity/MFG-1")
			p := x.who.post(x.path, x.form)
			wantCode(t, p, x.code, x.name)
			cp, _ := e.svc.SiteCapacity(ctx, e.users[wAdmin], "MFG-1")
			if slots() != 1 || len(cp.Closures) != 0 {
				t.Errorf("%s changed the capacity: %+v", x.name, cp)
			}
		})
	}
	admin.get("/admin/capacity/MFG-1")
	wantCode(t, admin.post("/admin/capacity/MFG-1", url.Values{"slots_CART-19": {"2"}, "closed": {"0", "6"}, "reason": {"second shift"}}),
		http.StatusSeeOther, "capacity saved")
	if cp, _ := e.svc.SiteCapacity(ctx, e.users[wAdmin], "MFG-1"); cp.Slots["CART-19"] != 2 || len(cp.ClosedWeekdays) != 2 {
		t.Errorf("saved capacity %+v", cp)
	}
	admin.get("/admin/capacity/MFG-1")
	wantCode(t, admin.post("/admin/capacity/MFG-1/closures", url.Values{"from": {"2026-12-02"}, "to": {"2026-12-02"}, "reason": {"clean room requalification"}}),
		http.StatusSeeOther, "closure added")
	admin.get("/admin/capacity/PAR-1")
	wantCode(t, admin.post("/admin/capacity/PAR-1/exceptions", url.Values{"date": {"2026-12-07"}, "product": {""}, "count": {"0"},
		"reason": {"staff training"}}), http.StatusSeeOther, "exception added")
	if cell := dayCell(coord.get(coiPath(a)+"/booking?month=2026-12").Body, "2026-12-07"); !strings.Contains(cell, `data-state="full"`) {
		t.Errorf("a day without chairs by exception is offered: %q", cell)
	}
	wantBody(t, admin.get("/admin/capacity/PAR-1"), "PAR-1's exceptions", `id="exceptions"`, "2026-12-07", "staff training")
	p = admin.get("/admin/capacity/MFG-1?month=2026-12")
	wantBody(t, p, "the closure's impact", `id="impacted"`, string(a), "2026-12-02", "clean room requalification", "2026-12-01", "2026-12-03")
}

// TestBookingMoveCollected: once the cells are collected, the booking
// page offers no calendar, only the move of the plant's slot, and the
// apheresis stays.
func TestBookingMoveCollected(t *testing.T) {
	e := newWebEnv(t, false)
	webSchedule(t, e, true)
	e.net().Bind(t, wNurse1, "APHP", "PAR-1")
	e.net().Bind(t, wNurse2, "APHP", "PAR-1")
	a := e.enrollRegistered()
	coord := e.login(wCoord)
	coord.get(coiPath(a) + "/booking")
	wantCode(t, coord.post(coiPath(a)+"/booking", bookForm("2026-11-23")), http.StatusSeeOther, "booked")
	e.advance(a, custody.StateCollected)
	p := coord.get(coiPath(a) + "/booking")
	wantBody(t, p, "booking page of collected cells", `id="form-move-start"`, `id="current-plan"`)
	wantNotBody(t, p, "booking page of collected cells", `id="calendar"`)
	p = coord.post(coiPath(a)+"/booking/reschedule", url.Values{"manufacturing_start": {"2026-11-25"}, "reason": {"plant asked"},
		"sig_user_1": {wCoord}, "sig_password_1": {webPassword(wCoord)}})
	wantCode(t, p, http.StatusSeeOther, "slot moved")
	b := custody.BookingOf(e.chain(a))
	if b.Current == nil || b.Current.Plan.Apheresis.Date != "2026-11-23" || b.Current.Plan.ManufacturingStart.Date != "2026-11-25" {
		t.Errorf("booking after the move: %+v", b.Current)
	}
}
