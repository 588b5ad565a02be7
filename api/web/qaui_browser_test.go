package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/coid-project/coid/custody"
)

// Browser tests of the console and the scan station on the devices QA
// and nurses use: an iPad-sized portrait tablet, browsers with and
// without BarcodeDetector, the live chart, the early wristband mismatch.

// onNewDocument runs script in every page before the page's own script.
func onNewDocument(script string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: script})
		return err
	})
}

// cameraShown reports whether the "Use camera" button takes up room on
// the page.
func cameraShown(t *testing.T, ctx context.Context) bool {
	t.Helper()
	return value(t, ctx, "camera button", chromedp.Evaluate[bool](`(function(){var b=document.querySelector("[data-camera]");
		return !!b && getComputedStyle(b).display !== "none" && b.getBoundingClientRect().width > 0})()`))
}

func TestBrowserCameraButtonOnlyWithBarcodeDetector(t *testing.T) {
	e := newWebEnv(t, false)
	coi := e.enroll()
	e.advance(coi, custody.StateAtTreatment)

	// An iPad: Safari has no BarcodeDetector.
	ctx := newChrome(t, 820, 1180, 90*time.Second)
	run(t, ctx, "no BarcodeDetector", onNewDocument(`delete window.BarcodeDetector;`))
	browserLogin(t, ctx, e, wNurse1)
	for _, path := range []string{"/scan", coiPath(coi), coiPath(coi) + "/bedside"} {
		run(t, ctx, "open "+path, chromedp.Navigate(e.ts.URL+path), chromedp.WaitVisible(chromedp.CSS("main")))
		if has := value(t, ctx, "detector", chromedp.Evaluate[bool](`"BarcodeDetector" in window`)); has {
			t.Fatal("the page still has BarcodeDetector")
		}
		if cameraShown(t, ctx) {
			t.Errorf("%s: the Use camera button shows on a browser without BarcodeDetector", path)
		}
	}

	// A browser that has it (an Android tablet): the button shows.
	ctx2 := newChrome(t, 820, 1180, 90*time.Second)
	run(t, ctx2, "a BarcodeDetector", onNewDocument(`window.BarcodeDetector = function () {};`))
	browserLogin(t, ctx2, e, wNurse1)
	run(t, ctx2, "scan station", chromedp.Navigate(e.ts.URL+"/scan"), chromedp.WaitVisible(chromedp.CSS("#scan-code")))
	if !cameraShown(t, ctx2) {
		t.Errorf("the Use camera button is hidden on a browser with BarcodeDetector (mediaDevices %v)",
			value(t, ctx2, "media", chromedp.Evaluate[bool](`!!navigator.mediaDevices`)))
	}
}

// noSidewaysScroll fails when the page is wider than the window.
func noSidewaysScroll(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	got := value(t, ctx, "widths of "+what, chromedp.Evaluate[[]int](
		`[document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]`))
	if len(got) != 3 || got[0] > got[2] || got[1] > got[2] {
		wide := value(t, ctx, "widest", chromedp.Evaluate[string](`(function(){var w=innerWidth,out=[];
			document.querySelectorAll("main *").forEach(function(el){var r=el.getBoundingClientRect();
			if(r.right>w+0.5&&out.length<5)out.push(el.tagName+"."+el.className+" "+Math.round(r.right))});return out.join(", ")})()`))
		t.Errorf("%s scrolls sideways at %dpx: scrollWidth %v; too wide: %s", what, got[2], got, wide)
	}
}

func TestBrowserPortraitTabletConsole(t *testing.T) {
	e := newWebEnv(t, false)
	for _, st := range []custody.State{custody.StateCollected, custody.StateManufactured, custody.StateAtTreatment, custody.StateEnrolled} {
		e.advance(e.enroll(), st)
	}
	coi := e.enroll()
	e.advance(coi, custody.StateToTreatment)
	e.clock.Advance(10 * time.Minute)
	e.readings("SHP-0002", 120, func(i int) float64 { return -185 + float64(max(0, i-90)) })
	e.excursion(coi)
	for i := range 3 {
		q := custody.QuarantineEntry{Topic: "shippers/SHP-0002/telemetry", Received: e.clock.Now(), Reason: "conflicting reading",
			Payload: []byte(strings.Repeat(`{"seq":1,"temp_c":-181.25,"device_time":"2026-11-22T12:00:00Z"}`, i+1))}
		q.Size = len(q.Payload)
		if err := e.store.Quarantine(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	// iPad Air in portrait.
	ctx := newChrome(t, 820, 1180, 120*time.Second)
	browserLogin(t, ctx, e, wQA)
	run(t, ctx, "console", chromedp.Navigate(e.ts.URL+"/qa"), chromedp.WaitVisible(chromedp.CSS("#open-issues")))
	noSidewaysScroll(t, ctx, "the QA console")
	shot(t, ctx, "13-qa-console-portrait")
	for _, path := range []string{"/qa?state=collected", coiPath(coi), "/scan", "/enroll"} {
		run(t, ctx, "open "+path, chromedp.Navigate(e.ts.URL+path), chromedp.WaitVisible(chromedp.CSS("main")))
		noSidewaysScroll(t, ctx, path)
	}
	nurse := newChrome(t, 820, 1180, 90*time.Second)
	browserLogin(t, nurse, e, wNurse1)
	a := e.enroll()
	e.advance(a, custody.StateAtTreatment)
	bedsideScan(t, nurse, e, a, payload(a, custody.BagFinalProduct, 1), webPatient.MRN)
	noSidewaysScroll(t, nurse, "the bedside check")
}

func TestBrowserChartAxesAndGaps(t *testing.T) {
	e := newWebEnv(t, false)
	coi := e.enroll()
	e.advance(coi, custody.StateToTreatment)
	e.clock.Advance(10 * time.Minute)
	e.readings("SHP-0002", 120, func(i int) float64 { return -185 + float64(i%10)/5 })
	e.excursion(coi)
	ctx := newChrome(t, 1280, 900, 90*time.Second)
	browserLogin(t, ctx, e, wQA)
	run(t, ctx, "chain page", chromedp.Navigate(e.ts.URL+coiPath(coi)), chromedp.WaitVisible(chromedp.CSS("[data-chart] polyline")))
	value(t, ctx, "stream open", chromedp.Poll[bool](`document.querySelector("[data-live-status]").textContent === "live"`,
		chromedp.WithPollingTimeout(10*time.Second)))

	// The shipper falls silent for ten minutes, then reports again.
	e.clock.Advance(10 * time.Minute)
	rs := make([]custody.Reading, 30)
	for i := range rs {
		c := -183 + float64(i%3)
		rs[i] = custody.Reading{Shipper: "SHP-0002", Seq: uint64(500 + i), HasSeq: true, DeviceTime: e.clock.Now().Add(time.Duration(i-30) * time.Second), TempC: &c}
	}
	if _, err := e.store.AddReadings(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	value(t, ctx, "the readings after the silence arrive", chromedp.Poll[bool](
		`document.querySelector("[data-chart-caption]").textContent.indexOf("150 readings") >= 0`,
		chromedp.WithPollingTimeout(15*time.Second)))
	got := value(t, ctx, "chart", chromedp.Evaluate[map[string]any](`(function(){
		var s = document.querySelector("[data-chart] svg");
		var runs = s.querySelectorAll("g.series polyline.temp");
		var n = 0; runs.forEach(function (p) { n += p.getAttribute("points").trim().split(" ").length; });
		var texts = function (sel) { return Array.prototype.map.call(s.querySelectorAll(sel), function (t) { return t.textContent; }).join("|"); };
		var box = s.getBoundingClientRect(), lim = s.querySelector("line.limit.hi").getBoundingClientRect();
		return {runs: runs.length, points: n, y: texts("g.yaxis text"), x: texts("g.xaxis text"), titles: texts(".axis-title"),
			limit: texts(".limit-label"), shades: s.querySelectorAll("g.shades rect.exc").length,
			limitInside: lim.top >= box.top && lim.bottom <= box.bottom};
	})()`))
	if got["runs"] != 2.0 || got["points"] != 150.0 {
		t.Errorf("line: %v runs of %v points in all, want 2 runs (broken across the silence) of 150", got["runs"], got["points"])
	}
	if y, _ := got["y"].(string); strings.Count(y, "|") < 2 || !strings.Contains(y, "-150") {
		t.Errorf("temperature axis labels %q", got["y"])
	}
	if x, _ := got["x"].(string); !strings.Contains(x, ":") {
		t.Errorf("time axis labels %q", got["x"])
	}
	if got["titles"] != "Temperature (°C)|Device time (UTC)" || got["limit"] != "limit -150 °C" || got["limitInside"] != true {
		t.Errorf("axis titles %q, limit %q inside %v", got["titles"], got["limit"], got["limitInside"])
	}
	if got["shades"] != 1.0 {
		t.Errorf("%v excursions shaded, want 1", got["shades"])
	}
	shot(t, ctx, "14-chart-gap")
}

func TestBrowserEarlyWristbandMismatch(t *testing.T) {
	e := newWebEnv(t, false)
	coi := e.enroll()
	e.advance(coi, custody.StateAtTreatment)
	ctx := newChrome(t, 820, 1180, 90*time.Second)
	browserLogin(t, ctx, e, wNurse1)
	bag := payload(coi, custody.BagFinalProduct, 1)
	bedsideScan(t, ctx, e, coi, bag, "MRN-0000001")
	// Told at the scan, before anyone types a password.
	if got := text(t, ctx, "#early-mismatch"); !strings.Contains(got, "The wristband does not match this chain's patient.") ||
		!strings.Contains(got, "Do not infuse this bag.") {
		t.Errorf("early mismatch %q", got)
	}
	if got := text(t, ctx, "#bedside-bag"); got != string(coi)+"-FP-01" {
		t.Errorf("bag shown as %q, want its ID", got)
	}
	typed := value(t, ctx, "passwords", chromedp.Evaluate[string](`Array.prototype.map.call(document.querySelectorAll("input[type=password]"), function (i) { return i.value; }).join("")`))
	if typed != "" {
		t.Fatalf("passwords typed before the warning: %q", typed)
	}
	if got := text(t, ctx, "#bedside-sign"); got != "Sign: record the mismatch" {
		t.Errorf("sign button %q", got)
	}
	shot(t, ctx, "15-bedside-early-mismatch")
	before := len(e.chain(coi).Records)
	// The signatures record the mismatch as before.
	run(t, ctx, "sign the mismatch",
		chromedp.KeyEvent(webPassword(wNurse1)+"\t"+wNurse2+"\t"+webPassword(wNurse2)+"\r"),
		chromedp.WaitVisible(chromedp.CSS("#mm-title")),
	)
	ch := e.chain(coi)
	if len(ch.Records) != before+1 || ch.Records[before].Step != custody.StepMismatch {
		t.Fatalf("after signing: %d records (was %d)", len(ch.Records), before)
	}
	mm, ok := ch.Records[before].Body().(custody.MismatchData)
	if !ok || len(mm.AttemptedBy) != 2 || mm.AttemptedBy[0] != wNurse1 || mm.AttemptedBy[1] != wNurse2 {
		t.Errorf("mismatch record %s", ch.Records[before].Data)
	}
	run(t, ctx, "acknowledge", chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.CSS("#flash")))
}
