package web_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/sensors"
)

// TestWebHoldWarning: the ship form takes an optional planned arrival
// (local time of the device), which the leg shows; a hold-time warning
// recorded on the leg is on the QA console's alerts section while the leg
// is in transit, and on the chain page's leg with the projection's method
// and inputs; it blocks nothing.
func TestWebHoldWarning(t *testing.T) {
	e := newWebEnv(t, false)
	coi := e.enroll()
	e.advance(coi, custody.StateCollected)
	b := e.login(wNurse1)
	wantBody(t, b.get(coiPath(coi)), "ship form", `name="planned_arrival"`)
	// 2026-11-23 09:00 local at UTC+1 (tz_offset is the browser's minutes
	// east of UTC) is 08:00 UTC.
	p := b.post(coiPath(coi)+"/steps/ship", url.Values{"shipper": {"SHP-0042"}, "profile": {"cryogenic"},
		"planned_arrival": {"2026-11-23T09:00"}, "tz_offset": {"60"},
		"sig_user_1": {wNurse1}, "sig_password_1": {webPassword(wNurse1)},
		"sig_user_2": {wCourier}, "sig_password_2": {webPassword(wCourier)}})
	if p.Code >= 400 {
		t.Fatalf("ship: %d %s", p.Code, excerpt(p.Body))
	}
	ch := e.chain(coi)
	want := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	if len(ch.Legs) != 1 || ch.Legs[0].PlannedArrival == nil || !ch.Legs[0].PlannedArrival.Equal(want) {
		t.Fatalf("legs %+v, want planned arrival %v", ch.Legs, want)
	}
	qa := e.login(wQA)
	wantNotBody(t, qa.get("/qa"), "console without warnings", `id="hold-warnings"`)

	ns, rem := int64(5*time.Hour), int64(20*time.Hour)
	last, pa := 41.5, want
	proj := custody.HoldProjection{Method: custody.HoldMethodTheilSen, At: e.clock.Now(), OK: true, WindowNS: int64(3 * time.Hour), Window: "3h0m0s",
		FitFrom: e.clock.Now().Add(-3 * time.Hour), FitTo: e.clock.Now(), Points: 37, Bins: 24, RatePctPerHour: 6.3, LastPct: &last,
		LastTime: e.clock.Now(), FloorPct: 10, HoldNS: &ns, Hold: "5h0m0s", PlannedArrival: &pa, RemainingNS: &rem, Remaining: "20h0m0s",
		MarginNS: int64(12 * time.Hour), Margin: "12h0m0s"}
	msg := "LN2 projected to reach 10% in 5h0m0s"
	if _, ok, err := e.svc.RecordHoldWarning(context.Background(), coi, 1, custody.HoldWarning{Cause: custody.HoldCauseHoldTime, Message: msg, Projection: proj}); err != nil || !ok {
		t.Fatalf("record warning: %v %v", ok, err)
	}
	console := qa.get("/qa")
	wantBody(t, console, "console", `id="hold-warnings"`, `data-cause="hold-time"`, msg, "leg 1", "A warning blocks nothing.")
	wantBody(t, console, "console", "No open issues.")
	page := qa.get(coiPath(coi))
	wantBody(t, page, "chain page", "Planned arrival", `class="warn-line hold-warning"`, msg, "theil-sen-binned", "37 LN2 readings",
		"6.3 %/h", "last 41.5 %", "floor 10 %", "margin 12h0m0s", "Hold-time warning")
	// Received, the leg's warning leaves the console; it stays on the
	// chain page.
	e.step(coi, custody.StepReceive, `{"seal_intact":true}`, wsig(wMfg, custody.MeaningReceived))
	wantNotBody(t, qa.get("/qa"), "console after receipt", `id="hold-warnings"`)
	wantBody(t, qa.get(coiPath(coi)), "chain page after receipt", msg)
}

// TestBrowserHoldWarningBanner: in real headless Chromium, a hold-time
// warning streamed while QA has the console open appears in its alerts
// section as a warning banner with its message and a link to the leg,
// built from text (markup in the message stays text); an excursion still
// shows as an excursion banner beside it.
func TestBrowserHoldWarningBanner(t *testing.T) {
	e := newWebEnv(t, false)
	coi := e.enroll()
	e.advance(coi, custody.StateToManufacturing)
	ctx := newChrome(t, 1280, 800, 90*time.Second)
	browserLogin(t, ctx, e, wQA)
	run(t, ctx, "console", chromedp.Navigate(e.ts.URL+"/qa"), chromedp.WaitVisible(chromedp.CSS("#open-issues")))

	msg := "LN2 projected to reach 10% in 5h0m0s <b>soon</b>"
	a := sensors.Alert{COI: coi, Seq: 9, Time: e.clock.Now(), Warning: &custody.HoldWarningData{Cause: custody.HoldCauseHoldTime, Leg: 1,
		Shipper: "SHP-0001", Profile: "refrigerated", Message: msg}}
	// The page's stream connects on its own time: publish until the banner
	// shows (each publish before it connected is lost, as the hub does).
	deadline := time.Now().Add(60 * time.Second) // catches a hang only
	for {
		e.alerts.Publish(a)
		n := value(t, ctx, "count banners", chromedp.Evaluate[int](`document.querySelectorAll(".alerts .msg.warning").length`))
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no warning banner on the console")
		}
		time.Sleep(200 * time.Millisecond)
	}
	got := text(t, ctx, ".alerts .msg.warning")
	if !strings.Contains(got, "Warning on chain "+string(coi)+", leg 1 (record 9)") || !strings.Contains(got, msg) {
		t.Fatalf("banner %q", got)
	}
	if n := value(t, ctx, "markup", chromedp.Evaluate[int](`document.querySelectorAll(".alerts .msg.warning b").length`)); n != 0 {
		t.Fatal("the warning's message was rendered as markup")
	}
	href := value(t, ctx, "link", chromedp.Evaluate[string](`document.querySelector(".alerts .msg.warning a").getAttribute("href")`))
	if href != "/chains/"+string(coi)+"#legs-title" {
		t.Fatalf("link %q", href)
	}
	e.alerts.Publish(sensors.Alert{COI: coi, Seq: 10, Time: e.clock.Now(), Excursion: custody.ExcursionData{Kind: custody.ExcursionTemperature, Leg: 1}})
	value(t, ctx, "excursion banner", chromedp.Poll[bool](`document.querySelectorAll(".alerts .msg.stop").length === 1`,
		chromedp.WithPollingTimeout(10*time.Second)))
}
