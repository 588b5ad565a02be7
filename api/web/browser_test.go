package web_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coid-project/coid/custody"
)

// End-to-end tests of the web UI in real headless Chromium, driven with
// chromedp. They skip with a message when no Chromium is installed, except
// in CI (CI set), where they must run. With -screenshots they save the main
// screens under testdata/screenshots/.

var screenshots = flag.Bool("screenshots", false, "save screenshots of the web UI under testdata/screenshots/")

// chromiumPath finds a Chromium or Chrome binary.
func chromiumPath() string {
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// newChrome starts a fresh headless Chromium with its own profile and
// returns a tab context bounded by timeout; extra adds allocator options
// (a time zone for the browser's process, say).
func newChrome(t *testing.T, width, height int, timeout time.Duration, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no Chromium found (/usr/bin/chromium, chromium-browser, google-chrome): CI must install Debian's chromium package")
		}
		t.Skip("browser tests skipped: no Chromium found (/usr/bin/chromium, chromium-browser, google-chrome); install Debian's chromium package to run them")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), append(opts, extra...)...)
	ctx, cancelC := chromedp.NewContext(actx)
	tctx, cancelT := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelT()
		cancelC()
		cancelA()
	})
	if err := chromedp.Do(tctx, chromedp.EmulateViewport(int64(width), int64(height))); err != nil {
		t.Fatalf("start Chromium (%s): %v", path, err)
	}
	return tctx
}

// shot saves a full-page screenshot when -screenshots is given.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if !*screenshots {
		return
	}
	if err := chromedp.Do(ctx, chromedp.Sleep(150*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "..", "testdata", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		fatalPage(t, ctx, what, err)
	}
}

// value runs one action that returns a value.
func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		fatalPage(t, ctx, what, err)
	}
	return v
}

func fatalPage(t *testing.T, ctx context.Context, what string, err error) {
	t.Helper()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	body, _ := chromedp.Run(sctx, chromedp.Text(chromedp.CSS("main")))
	t.Fatalf("%s: %v\npage: %.1500s", what, err, body)
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return value(t, ctx, "read "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// browserLogin signs in with the keyboard only: the user ID field has
// focus, Tab moves to the password, Enter submits.
func browserLogin(t *testing.T, ctx context.Context, e *webEnv, id string) {
	t.Helper()
	run(t, ctx, "sign in as "+id,
		chromedp.Navigate(e.ts.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#login-user")),
		chromedp.KeyEvent(id+"\t"+webPassword(id)+"\r"),
		chromedp.WaitVisible(chromedp.CSS(".who-name")),
	)
}

func TestBrowserScanAndRecordStep(t *testing.T) {
	e := newWebEnv(t, false)
	coi := e.enroll()
	e.advance(coi, custody.StateCollected)
	ctx := newChrome(t, 1280, 800, 60*time.Second)

	run(t, ctx, "sign-in page", chromedp.Navigate(e.ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#login-user")))
	shot(t, ctx, "01-sign-in")
	browserLogin(t, ctx, e, wNurse1)
	run(t, ctx, "scan station", chromedp.WaitVisible(chromedp.CSS("#scan-code")))
	focused := value(t, ctx, "focus", chromedp.Evaluate[string](`document.activeElement ? document.activeElement.id : ""`))
	if focused != "scan-code" {
		t.Errorf("scan station: focus on %q, want the scan field", focused)
	}
	shot(t, ctx, "02-scan-station")

	// A keyboard-wedge scanner types the payload and Enter into whatever
	// has focus; start with focus on the page body.
	bag := payload(coi, custody.BagApheresis, 1)
	run(t, ctx, "scan by keyboard wedge",
		chromedp.Evaluate[chromedp.Void](`document.activeElement.blur(), undefined`),
		chromedp.KeyEvent(bag+"\r"),
		chromedp.WaitVisible(chromedp.CSS("#chain-title")),
	)
	if got := text(t, ctx, "#chain-title"); got != coi.Display() {
		t.Errorf("chain title %q, want %q", got, coi.Display())
	}
	if got := text(t, ctx, "#bag"); got != string(coi)+"-APH-01" {
		t.Errorf("bag %q", got)
	}
	if got := text(t, ctx, "#state"); !strings.Contains(got, "Collected") {
		t.Errorf("state %q", got)
	}
	shot(t, ctx, "03-scan-result-next-step")

	// Record the ship step: data fields and two signatures. The nurse's
	// user ID is pre-filled in the box her role signs.
	run(t, ctx, "fill the ship form",
		chromedp.SendKeys(chromedp.CSS(`#form-ship input[name=shipper]`), "SHP-0042"),
		chromedp.SendKeys(chromedp.CSS(`#form-ship input[name=sig_password_1]`), webPassword(wNurse1)),
		chromedp.SendKeys(chromedp.CSS(`#form-ship input[name=sig_user_2]`), wCourier),
		chromedp.SendKeys(chromedp.CSS(`#form-ship input[name=sig_password_2]`), "wrong-password-9"),
		chromedp.Submit(chromedp.CSS(`#form-ship form`)),
		chromedp.WaitVisible(chromedp.CSS("#message")),
	)
	if got := text(t, ctx, "#message"); !strings.Contains(got, "A signature was not accepted.") {
		t.Errorf("refusal message %q", got)
	}
	shipper := value(t, ctx, "shipper kept", chromedp.Value(chromedp.CSS(`#form-ship input[name=shipper]`)))
	pw := value(t, ctx, "password not kept", chromedp.Value(chromedp.CSS(`#form-ship input[name=sig_password_2]`)))
	if shipper != "SHP-0042" || pw != "" {
		t.Errorf("after refusal: shipper %q (want kept), password %q (want empty)", shipper, pw)
	}
	shot(t, ctx, "04-step-refused")
	run(t, ctx, "sign again",
		chromedp.SendKeys(chromedp.CSS(`#form-ship input[name=sig_password_1]`), webPassword(wNurse1)),
		chromedp.SendKeys(chromedp.CSS(`#form-ship input[name=sig_password_2]`), webPassword(wCourier)+"\r"),
		chromedp.WaitVisible(chromedp.CSS("#flash")),
	)
	if got := text(t, ctx, "#flash"); !strings.Contains(got, "Recorded: Hand over for shipping") {
		t.Errorf("flash %q", got)
	}
	shot(t, ctx, "05-step-recorded")
	if st := e.chain(coi).State; st != custody.StateToManufacturing {
		t.Fatalf("state %s after the browser recorded ship", st)
	}
}

// bedsideScan runs the two scans of the bedside check with the keyboard.
func bedsideScan(t *testing.T, ctx context.Context, e *webEnv, coi custody.COI, bag, wristband string) {
	t.Helper()
	run(t, ctx, "bedside scans",
		chromedp.Navigate(e.ts.URL+coiPath(coi)),
		chromedp.WaitVisible(chromedp.CSS("#start-bedside")),
		chromedp.Click(chromedp.CSS("#start-bedside")),
		chromedp.WaitVisible(chromedp.CSS(".stage-bag #bedside-code")),
		chromedp.KeyEvent(bag+"\r"),
		chromedp.WaitVisible(chromedp.CSS(".stage-wristband #bedside-code")),
	)
	shot(t, ctx, "06-bedside-wristband")
	run(t, ctx, "scan the wristband",
		chromedp.KeyEvent(wristband+"\r"),
		chromedp.WaitVisible(chromedp.CSS("#bedside-sign")),
	)
}

func TestBrowserBedside(t *testing.T) {
	e := newWebEnv(t, false)
	coi := e.enroll()
	e.advance(coi, custody.StateAtTreatment)
	// 10-inch tablet in portrait.
	ctx := newChrome(t, 800, 1280, 90*time.Second)
	browserLogin(t, ctx, e, wNurse1)
	bag := payload(coi, custody.BagFinalProduct, 1)

	// Mismatch: another patient's wristband.
	bedsideScan(t, ctx, e, coi, bag, "MRN-0000001")
	shot(t, ctx, "07-bedside-sign")
	// Keyboard only: focus starts in the first empty field (nurse 1's
	// password); Tab to the next nurse's ID and password; Enter signs.
	run(t, ctx, "sign the bedside check",
		chromedp.KeyEvent(webPassword(wNurse1)+"\t"+wNurse2+"\t"+webPassword(wNurse2)+"\r"),
		chromedp.WaitVisible(chromedp.CSS("#mm-title")),
	)
	bg := value(t, ctx, "mismatch colour", chromedp.Evaluate[string](`getComputedStyle(document.querySelector(".mismatch")).backgroundColor`))
	full := value(t, ctx, "mismatch size", chromedp.Evaluate[bool](`(function(){var r=document.querySelector(".mismatch").getBoundingClientRect();return r.width>=innerWidth-1&&r.height>=innerHeight-1})()`))
	if bg != "rgb(176, 0, 32)" || !full {
		t.Errorf("mismatch screen: background %s, fills the screen %v; want red over the whole screen", bg, full)
	}
	if got := text(t, ctx, "#mm-reasons"); !strings.Contains(got, "The wristband does not belong to this chain's patient.") {
		t.Errorf("mismatch reasons %q", got)
	}
	shot(t, ctx, "08-bedside-mismatch")
	// It cannot be dismissed by navigating away.
	run(t, ctx, "navigate away", chromedp.Navigate(e.ts.URL+"/scan"), chromedp.WaitVisible(chromedp.CSS("#mm-title")))
	loc := value(t, ctx, "location", chromedp.Location())
	if !strings.HasSuffix(loc, "/mismatch") {
		t.Errorf("navigating away during a mismatch lands on %q", loc)
	}
	// Acknowledge with the keyboard: the button has focus.
	run(t, ctx, "acknowledge", chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.CSS("#flash")))
	if got := text(t, ctx, "#flash"); !strings.Contains(got, "Mismatch acknowledged") {
		t.Errorf("flash %q", got)
	}
	// The bag is set aside until QA decides: no bedside check offered.
	if got := text(t, ctx, "main"); strings.Contains(got, "Start the bedside check") || !strings.Contains(got, "await a QA disposition") {
		t.Errorf("chain page after the acknowledgement: %q", got)
	}
	e.settleMismatches(coi) // QA accepts after the investigation

	// Match.
	bedsideScan(t, ctx, e, coi, bag, webPatient.MRN)
	html := value(t, ctx, "wristband not shown", chromedp.OuterHTML(chromedp.CSS("main")))
	if strings.Contains(html, webPatient.MRN) {
		t.Error("the bedside page shows the wristband code")
	}
	run(t, ctx, "sign the bedside check",
		chromedp.KeyEvent(webPassword(wNurse1)+"\t"+wNurse2+"\t"+webPassword(wNurse2)+"\r"),
		chromedp.WaitVisible(chromedp.CSS("#flash")),
	)
	if got := text(t, ctx, "#flash"); !strings.Contains(got, "Bedside check passed") {
		t.Errorf("flash %q", got)
	}
	shot(t, ctx, "09-bedside-passed")
	if st := e.chain(coi).State; st != custody.StateVerified {
		t.Fatalf("state %s", st)
	}
}

func TestBrowserQAConsole(t *testing.T) {
	e := newWebEnv(t, false)
	for i := 0; i < 4; i++ {
		c := e.enroll()
		e.advance(c, []custody.State{custody.StateCollected, custody.StateManufactured, custody.StateAtTreatment, custody.StateEnrolled}[i])
	}
	coi := e.enroll()
	e.advance(coi, custody.StateToTreatment)
	e.clock.Advance(10 * time.Minute)
	e.readings("SHP-0002", 120, func(i int) float64 { return -185 + float64(i%10)/5 + float64(max(0, i-90)) })
	exc := e.excursion(coi)
	// The monitor records its end; QA decides on final figures only.
	worst, start := -120.0, e.clock.Now().Add(-30*time.Minute)
	if _, ok, err := e.svc.ReviseExcursion(context.Background(), coi, 2, custody.Excursion{
		ID: custody.ExcursionID(custody.ExcursionTemperature, start), Kind: custody.ExcursionTemperature, Start: start,
		End: start.Add(20 * time.Minute), Worst: &worst, Duration: 20 * time.Minute, Breach: 20 * time.Minute}); err != nil || !ok {
		t.Fatalf("record the excursion's end: %v %v", ok, err)
	}
	ctx := newChrome(t, 1280, 800, 90*time.Second)
	browserLogin(t, ctx, e, wQA)

	run(t, ctx, "console", chromedp.WaitVisible(chromedp.CSS("#open-issues")))
	if got := text(t, ctx, "#open-issues"); !strings.Contains(got, coi.Display()) || !strings.Contains(got, "temperature excursion") {
		t.Errorf("open issues %q", got)
	}
	shot(t, ctx, "10-qa-console")

	run(t, ctx, "review the excursion",
		chromedp.Click(chromedp.CSS(`#open-issues a.btn`)),
		chromedp.WaitVisible(chromedp.CSS("#issues")),
		chromedp.WaitVisible(chromedp.CSS("[data-chart] polyline")),
	)
	points := func() int {
		return value(t, ctx, "count chart points", chromedp.Evaluate[int](
			`document.querySelector("polyline.temp").getAttribute("points").trim().split(" ").length`))
	}
	if n := points(); n != 120 {
		t.Errorf("chart shows %d points, want 120", n)
	}
	value(t, ctx, "stream open", chromedp.Poll[bool](`document.querySelector("[data-live-status]").textContent === "live"`,
		chromedp.WithPollingTimeout(10*time.Second)))
	shot(t, ctx, "11-qa-chain-excursion")

	// Live readings reach the chart; the page keeps a bounded ring.
	e.clock.Advance(15 * time.Minute)
	rs := make([]custody.Reading, 700)
	for i := range rs {
		c := -181.5 + float64(i%7)/10
		rs[i] = custody.Reading{Shipper: "SHP-0002", Seq: uint64(1000 + i), HasSeq: true,
			DeviceTime: e.clock.Now().Add(time.Duration(i-700) * time.Second), TempC: &c}
	}
	if _, err := e.store.AddReadings(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	value(t, ctx, "live points arrive", chromedp.Poll[bool](
		`document.querySelector("[data-chart-caption]").textContent.indexOf("latest -180.9") >= 0`,
		chromedp.WithPollingTimeout(15*time.Second)))
	if n := points(); n != 600 {
		t.Errorf("after 700 live readings the chart holds %d points, want the ring's 600", n)
	}

	// Disposition the excursion.
	run(t, ctx, "disposition",
		chromedp.SetValue(chromedp.CSS(`#form-disposition select[name=excursion]`), fmt.Sprint(exc)),
		chromedp.Click(chromedp.CSS(`#form-disposition input[name=decision][value=accept]`)),
		chromedp.SendKeys(chromedp.CSS(`#form-disposition textarea[name=reason]`), "Warming within the stability data; product acceptable"),
		chromedp.SendKeys(chromedp.CSS(`#form-disposition input[name=sig_password_1]`), webPassword(wQA)),
		chromedp.Submit(chromedp.CSS(`#form-disposition form`)),
		chromedp.WaitVisible(chromedp.CSS("#flash")),
	)
	if got := text(t, ctx, "#flash"); !strings.Contains(got, "Recorded: QA disposition") {
		t.Errorf("flash %q", got)
	}
	if n := len(e.chain(coi).OpenIssues()); n != 0 {
		t.Fatalf("%d open issues after the disposition", n)
	}

	// Download the custody report and the EPCIS export with the session.
	got := value(t, ctx, "download the report", chromedp.Evaluate[string](`(async () => {
		const out = [];
		for (const a of document.querySelectorAll('a[href$="report.pdf"], a[href$="epcis.json"]')) {
			const r = await fetch(a.getAttribute("href"));
			const b = new Uint8Array(await r.arrayBuffer());
			out.push(r.status + " " + r.headers.get("content-type") + " " + String.fromCharCode(...b.slice(0, 5)));
		}
		return out.join("|");
	})()`, chromedp.EvalAwaitPromise))
	parts := strings.Split(got, "|")
	if len(parts) != 2 || !strings.HasPrefix(parts[0], "200 application/pdf %PDF-") || !strings.HasPrefix(parts[1], "200 application/ld+json") {
		t.Errorf("downloads: %q", got)
	}
	shot(t, ctx, "12-qa-chain-dispositioned")
}

// markPage marks the document shown now, so that newPageVisible after a
// click waits for the page the click loads rather than finding sel on the
// page still shown (reading from a page being replaced fails with "Cannot
// find context").
func markPage() chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`document.documentElement.dataset.stale = "1"`)
}

// newPageVisible waits until a page loaded after markPage shows sel.
func newPageVisible(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS("html:not([data-stale]) " + sel))
}
