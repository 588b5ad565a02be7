package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coid-project/coid/custody"
)

// dashboardChain books a chain at PAR-1 (made at MFG-1) from apheresis on
// 30 November 2026, collects it that morning and moves the clock to 20
// December: its manufacturing start (planned 1 December) is 19 days
// overdue, so its infusion, planned for 16 December, is projected to 4
// January, after its window (30 December).
func dashboardChain(t *testing.T, e *webEnv) custody.COI {
	t.Helper()
	webSchedule(t, e, true)
	coi := e.enrollRegistered()
	if _, err := e.svc.Book(context.Background(), e.users[wCoord], coi, custody.BookRequest{ApheresisDate: "2026-11-30",
		Signatures: []custody.SignatureRequest{wsig(wCoord, custody.MeaningAuthored)}}); err != nil {
		t.Fatalf("book: %v", err)
	}
	e.net().Bind(t, wNurse1, "APHP", "PAR-1")
	e.net().Bind(t, wNurse2, "APHP", "PAR-1")
	e.clock.Advance(time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC).Sub(e.clock.Now()))
	e.advance(coi, custody.StateCollected)
	e.clock.Advance(time.Date(2026, 12, 20, 12, 0, 0, 0, time.UTC).Sub(e.clock.Now()))
	return coi
}

// TestBrowserDashboard: a coordinator opens the dashboard from the
// navigation, sees the utilisation plot drawn as SVG and the chain at
// risk, follows its link to the chain page, whose planned-against-actual
// table says it is at risk.
func TestBrowserDashboard(t *testing.T) {
	e := newWebEnv(t, false)
	coi := dashboardChain(t, e)
	ctx := newChrome(t, 1280, 900, 300*time.Second)
	browserLogin(t, ctx, e, wCoord)
	run(t, ctx, "open the dashboard from the navigation",
		chromedp.Click(chromedp.CSS(`nav a[href="/dashboard"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#dashboard-filters`)),
	)
	run(t, ctx, "this year's months", chromedp.Navigate(e.ts.URL+"/dashboard?from=2026-11&to=2026-12"),
		chromedp.WaitVisible(chromedp.CSS(`#plot-util`)))
	// One row per plant and month, three bars each (capacity, booked, used).
	if n := value(t, ctx, "utilisation bars", chromedp.Evaluate[int](`document.querySelectorAll("#plot-util rect.hbar").length`)); n != 6 {
		t.Errorf("the utilisation plot has %d bars, want 6", n)
	}
	if w := value(t, ctx, "plot drawn", chromedp.Evaluate[float64](`document.getElementById("plot-util").getBoundingClientRect().width`)); w < 300 {
		t.Errorf("the utilisation plot is %v px wide", w)
	}
	if s := text(t, ctx, "#at-risk"); !strings.Contains(s, string(coi)) || !strings.Contains(s, "2027-01-04") || !strings.Contains(s, "2026-12-30") {
		t.Errorf("at-risk list: %q", s)
	}
	shot(t, ctx, "dashboard")
	run(t, ctx, "follow the at-risk chain's link",
		chromedp.Click(chromedp.CSS(`#at-risk a[href="/chains/`+string(coi)+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#plan-vs-actual`)),
	)
	if s := text(t, ctx, "#plan-vs-actual"); !strings.Contains(s, "At risk of missing the infusion window") || !strings.Contains(s, "2027-01-04") {
		t.Errorf("the chain's plan against actual: %q", s)
	}
}

// TestDashboardPage: the page draws both plots as inline SVG from the
// service's figures, lists the chain at risk with its link, offers the
// CSV of the same filters, and is refused to a nurse.
func TestDashboardPage(t *testing.T) {
	e := newWebEnv(t, false)
	coi := dashboardChain(t, e)
	b := e.login(wCoord)
	p := b.get("/dashboard?from=2026-11&to=2026-12")
	wantCode(t, p, 200, "dashboard")
	wantBody(t, p, "dashboard", `<svg id="plot-util"`, `class="hbar capacity"`, `href="/chains/`+string(coi)+`"`, "2027-01-04",
		`href="/dashboard.csv?from=2026-11&amp;to=2026-12"`, `href="/dashboard" aria-current="page"`)
	csv := b.get("/dashboard.csv?from=2026-11&to=2026-12")
	wantCode(t, csv, 200, "csv")
	wantBody(t, csv, "csv", "at-risk,PAR-1,", string(coi), "utilisation,MFG-1,2026-12,")
	wantCode(t, e.login(wNurse1).get("/dashboard"), 403, "a nurse")
	wantCode(t, b.get("/dashboard?from=2026-13"), 400, "a month that is not one")
}
