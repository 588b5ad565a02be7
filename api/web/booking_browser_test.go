package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserBooking: on an 820 px portrait tablet an administrator
// defines the apheresis unit's chairs and the plant's slots on the
// capacity screen; a coordinator enrolls a patient, follows the link to
// the booking, moves the calendar to the next month, picks a day, sees
// the whole plan and signs it; the chain page shows the booked plan; a
// day whose only chair is taken is not offered to another chain; the
// booking moves to another day with a reason. No page scrolls sideways.
func TestBrowserBooking(t *testing.T) {
	e := newWebEnv(t, false)
	webSchedule(t, e, false)
	ctx := newChrome(t, 820, 1180, 120*time.Second)
	noSideways := func(what string) {
		t.Helper()
		if wide := value(t, ctx, what+": width", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > innerWidth`)); wide {
			t.Errorf("%s scrolls sideways at 820 px", what)
		}
	}
	browserLogin(t, ctx, e, wAdmin)
	run(t, ctx, "open the capacity of PAR-1 from the administration index",
		chromedp.Navigate(e.ts.URL+"/admin"),
		chromedp.Click(chromedp.CSS(`a[href="/admin/capacity"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#capacity-sites`)),
		chromedp.Click(chromedp.CSS(`a[href="/admin/capacity/PAR-1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#form-capacity`)),
	)
	run(t, ctx, "one chair a day at PAR-1",
		chromedp.SetValue(chromedp.CSS(`#form-capacity input[name=chairs]`), "1"),
		chromedp.SendKeys(chromedp.CSS(`#form-capacity textarea[name=reason]`), "apheresis unit opens"),
		chromedp.Click(chromedp.CSS(`#capacity-submit`)),
		chromedp.WaitVisible(chromedp.CSS(`#flash`)),
		chromedp.WaitVisible(chromedp.CSS(`#capacity-summary`)),
	)
	run(t, ctx, "one CART-19 slot a day at MFG-1, closed on Sundays",
		chromedp.Navigate(e.ts.URL+"/admin/capacity/MFG-1"),
		chromedp.WaitVisible(chromedp.CSS(`#form-capacity`)),
		chromedp.SetValue(chromedp.CSS(`#form-capacity input[name="slots_CART-19"]`), "1"),
		chromedp.Click(chromedp.CSS(`#form-capacity input[name=closed][value="0"]`)),
		chromedp.SendKeys(chromedp.CSS(`#form-capacity textarea[name=reason]`), "plant opens"),
		chromedp.Click(chromedp.CSS(`#capacity-submit`)),
		chromedp.WaitVisible(chromedp.CSS(`#capacity-summary`)),
	)
	if s := text(t, ctx, "#capacity-summary"); !strings.Contains(s, "Slots of CART-19 a day: 1") || !strings.Contains(s, "Sunday") {
		t.Errorf("the plant's capacity reads %q", s)
	}
	shot(t, ctx, "capacity")
	noSideways("capacity screen")

	run(t, ctx, "sign out", chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)), chromedp.WaitVisible(chromedp.CSS("#login-user")))
	browserLogin(t, ctx, e, wCoord)
	run(t, ctx, "enroll form", chromedp.Navigate(e.ts.URL+"/enroll"), chromedp.WaitVisible(chromedp.CSS("#form-enroll select[name=collection]")))
	value(t, ctx, "fill the form", chromedp.Evaluate[bool](`(function(){var f=document.getElementById("form-enroll").elements;
		f["name"].value="Ann Example"; f["birth_date"].value="1960-01-01"; f["mrn"].value="MRN-1";
		f["product"].value="CART-19"; f["collection"].value="PAR-1"; f["manufacturing"].value="MFG-1"; f["treatment"].value="PAR-1";
		return true})()`))
	run(t, ctx, "enroll, then follow the link to the booking",
		chromedp.Click(chromedp.CSS("#enroll-submit")),
		chromedp.WaitVisible(chromedp.CSS("#booking-link")),
		chromedp.Click(chromedp.CSS("#booking-link")),
		chromedp.WaitVisible(chromedp.CSS("#calendar")),
	)
	if m := text(t, ctx, "#cal-title"); m != "November 2026" {
		t.Errorf("the calendar opens on %q, want this month", m)
	}
	noSideways("booking calendar")
	run(t, ctx, "next month, pick 1 December",
		chromedp.Click(chromedp.CSS("#cal-next")),
		chromedp.WaitVisible(chromedp.CSS(`#calendar a[data-date="2026-12-01"]`)),
		chromedp.Click(chromedp.CSS(`#calendar a[data-date="2026-12-01"]`)),
		chromedp.WaitVisible(chromedp.CSS("#proposed")),
	)
	plan := text(t, ctx, "#proposed")
	for _, s := range []string{"Apheresis", "Manufacturing start", "2026-12-02", "QA release", "2026-12-15", "Return shipment",
		"Infusion window closes", "2026-12-31", "CET", "UTC"} {
		if !strings.Contains(plan, s) {
			t.Errorf("the proposed plan lacks %q: %s", s, plan)
		}
	}
	shot(t, ctx, "booking")
	noSideways("proposed plan")
	run(t, ctx, "sign and book",
		chromedp.SendKeys(chromedp.CSS(`#form-book input[name=sig_password_1]`), webPassword(wCoord)),
		chromedp.Click(chromedp.CSS("#book-submit")),
		chromedp.WaitVisible(chromedp.CSS("#booking table.plan")),
	)
	if f := text(t, ctx, "#flash"); !strings.Contains(f, "Booked: apheresis on 2026-12-01") {
		t.Errorf("flash %q", f)
	}
	if b := text(t, ctx, "#booking"); !strings.Contains(b, "2026-12-02") {
		t.Errorf("the chain page's booking: %s", b)
	}
	first := value(t, ctx, "the chain's path", chromedp.Evaluate[string](`location.pathname`))

	// Another chain: the day whose only chair is taken is not offered.
	other := e.enrollRegistered()
	run(t, ctx, "the other chain's calendar",
		chromedp.Navigate(e.ts.URL+coiPath(other)+"/booking?month=2026-12"),
		chromedp.WaitVisible(chromedp.CSS(`#calendar [data-date="2026-12-01"]`)),
	)
	if n := value(t, ctx, "links to the full day", chromedp.Evaluate[int](`document.querySelectorAll('#calendar a[data-date="2026-12-01"]').length`)); n != 0 {
		t.Error("a full day is offered")
	}
	if why := text(t, ctx, `#calendar [data-date="2026-12-01"]`); !strings.Contains(why, "chairs booked") {
		t.Errorf("the full day says %q", why)
	}

	run(t, ctx, "reschedule the first chain to 3 December",
		chromedp.Navigate(e.ts.URL+first+"/booking?month=2026-12"),
		chromedp.WaitVisible(chromedp.CSS("#current-plan")),
		chromedp.Click(chromedp.CSS(`#calendar a[data-date="2026-12-03"]`)),
		chromedp.WaitVisible(chromedp.CSS("#form-reschedule")),
		chromedp.SendKeys(chromedp.CSS(`#form-reschedule textarea[name=reason]`), "patient has a fever"),
		chromedp.SendKeys(chromedp.CSS(`#form-reschedule input[name=sig_password_1]`), webPassword(wCoord)),
		chromedp.Click(chromedp.CSS("#reschedule-submit")),
		chromedp.WaitVisible(chromedp.CSS("#booking table.plan")),
	)
	if f := text(t, ctx, "#flash"); !strings.Contains(f, "Rescheduled") {
		t.Errorf("flash %q", f)
	}
	if b := text(t, ctx, "#booking"); !strings.Contains(b, "2026-12-03") || !strings.Contains(b, "2026-12-04") {
		t.Errorf("the chain page's booking after the move: %s", b)
	}
	if tl := text(t, ctx, "main"); !strings.Contains(tl, "patient has a fever") {
		t.Error("the reason of the move is not on the chain page")
	}
}
