package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coid-project/coid/custody"
)

// TestBrowserWaitlistAndOverride: on an 820 px portrait tablet a
// coordinator puts a chain on the waiting list with its urgency, raises
// the urgency with a reason, declines the slot offered and accepts the
// next, signing the booking; on another chain's page a coordinator and
// QA sign the override that lets its cells be collected without a
// booked slot. No page scrolls sideways.
func TestBrowserWaitlistAndOverride(t *testing.T) {
	e := newWebEnv(t, false)
	webSchedule(t, e, true)
	e.net().Bind(t, wQA, "CELLCO", "MFG-1")
	a, b := e.enrollRegistered(), e.enrollRegistered()
	ctx := newChrome(t, 820, 1180, 120*time.Second)
	noSideways := func(what string) {
		t.Helper()
		if wide := value(t, ctx, what+": width", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > innerWidth`)); wide {
			t.Errorf("%s scrolls sideways at 820 px", what)
		}
	}
	browserLogin(t, ctx, e, wCoord)
	run(t, ctx, "put a on the waiting list with urgency 2",
		chromedp.Navigate(e.ts.URL+"/waitlist"),
		chromedp.WaitVisible(chromedp.CSS("#form-wl-add")),
		chromedp.SendKeys(chromedp.CSS("#wl-add-coi"), string(a)),
		chromedp.SetValue(chromedp.CSS("#wl-add-urgency"), "2"),
		chromedp.SendKeys(chromedp.CSS("#wl-add-reason"), "plant full in December"),
		markPage(),
		chromedp.Click(chromedp.CSS(`#form-wl-add button[type=submit]`)),
		newPageVisible("#flash"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-coi="`+string(a)+`"]`)),
	)
	if s := text(t, ctx, "#flash"); !strings.Contains(s, "urgency 2") {
		t.Errorf("flash after adding: %q", s)
	}
	noSideways("waiting list")
	row := `tr[data-coi="` + string(a) + `"] `
	run(t, ctx, "raise its urgency to 1",
		chromedp.Click(chromedp.CSS("#wl-urgency-"+string(a)+" summary")),
		chromedp.WaitVisible(chromedp.CSS("#wl-urgency-reason-"+string(a))),
		chromedp.SetValue(chromedp.CSS("#wl-urgency-"+string(a)), "1"),
		chromedp.SendKeys(chromedp.CSS("#wl-urgency-reason-"+string(a)), "disease progressing"),
		markPage(),
		chromedp.Click(chromedp.CSS("#wl-urgency-"+string(a)+" button[type=submit]")),
		newPageVisible("#flash"),
	)
	if u := text(t, ctx, row+".urgency"); u != "1" {
		t.Errorf("urgency shown after the change: %q", u)
	}
	shot(t, ctx, "waitlist")
	if _, err := e.svc.AllocateWaitlist(context.Background(), e.users[wQA]); err != nil {
		t.Fatal(err)
	}
	first := e.waitEntry(a).Offer.Slot.Date
	run(t, ctx, "decline the slot offered",
		chromedp.Navigate(e.ts.URL+"/waitlist"),
		chromedp.WaitVisible(chromedp.CSS("#wl-decline-"+string(a))),
		chromedp.Click(chromedp.CSS("#wl-decline-"+string(a)+" summary")),
		chromedp.SendKeys(chromedp.CSS("#wl-decline-reason-"+string(a)), "patient needs a few more days"),
		markPage(),
		chromedp.Click(chromedp.CSS("#wl-decline-"+string(a)+" button[type=submit]")),
		newPageVisible("#flash"),
	)
	next := e.waitEntry(a).Offer
	if next == nil || next.Slot.Date == first {
		t.Fatalf("after declining %s: offer %+v", first, next)
	}
	run(t, ctx, "accept the next, signing the booking",
		chromedp.Click(chromedp.CSS("#wl-accept-"+string(a)+" summary")),
		chromedp.SendKeys(chromedp.CSS("#wl-accept-"+string(a)+" input[name=sig_password_1]"), webPassword(wCoord)),
		markPage(),
		chromedp.Click(chromedp.CSS("#wl-accept-"+string(a)+" button[type=submit]")),
		newPageVisible("#flash"),
	)
	if s := text(t, ctx, "#flash"); !strings.Contains(s, "Offer accepted") {
		t.Errorf("flash after accepting: %q", s)
	}
	if bk := custody.BookingOf(e.chain(a)); bk.Current == nil || bk.Current.Plan.ManufacturingStart.Date != next.Slot.Date {
		t.Errorf("a is not booked on the slot accepted (%s): %+v", next.Slot.Date, bk.Current)
	}

	run(t, ctx, "the override on b's chain page",
		chromedp.Navigate(e.ts.URL+coiPath(b)),
		chromedp.WaitVisible(chromedp.CSS("#form-collect-override")),
		chromedp.Click(chromedp.CSS("#form-collect-override summary")),
		chromedp.SendKeys(chromedp.CSS("#override-reason"), "plant confirmed a slot by phone"),
		chromedp.SendKeys(chromedp.CSS("#form-collect-override input[name=sig_password_1]"), webPassword(wCoord)),
		chromedp.SendKeys(chromedp.CSS("#form-collect-override input[name=sig_user_2]"), wQA),
		chromedp.SendKeys(chromedp.CSS("#form-collect-override input[name=sig_password_2]"), webPassword(wQA)),
		markPage(),
		chromedp.Click(chromedp.CSS("#form-collect-override button[type=submit]")),
		newPageVisible("#flash"),
	)
	if s := text(t, ctx, "#booking"); !strings.Contains(s, "collection allowed without one") {
		t.Errorf("booking section after the override: %q", s)
	}
	noSideways("chain page")
	if custody.BookingOf(e.chain(b)).Override == 0 {
		t.Error("no override recorded for b")
	}
}
