package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserConsoleAttentionOrder: in the browser the attention strip is
// the first thing on the console after the heading, its panels in order
// (open excursions, refused telemetry, expiring qualifications), and a
// panel's link scrolls to its section.
func TestBrowserConsoleAttentionOrder(t *testing.T) {
	e, _ := attentionEnv(t)
	ctx := newChrome(t, 1280, 900, 90*time.Second)
	browserLogin(t, ctx, e, wQA)
	run(t, ctx, "console", chromedp.Navigate(e.ts.URL+"/qa"), chromedp.WaitVisible(chromedp.CSS("#attention")))
	got := value(t, ctx, "panel order", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll("#attention .attention-panel")).map(a => a.dataset.kind)`))
	if want := "open-excursions quarantined-telemetry expiring-qualifications"; strings.Join(got, " ") != want {
		t.Fatalf("attention panels %v, want %s", got, want)
	}
	if !value(t, ctx, "strip above the issues", chromedp.Evaluate[bool](
		`document.querySelector("#attention").getBoundingClientRect().bottom <= document.querySelector("#open-issues").getBoundingClientRect().top`)) {
		t.Fatal("the attention strip is not above the open issues")
	}
	run(t, ctx, "follow the quarantine panel",
		chromedp.Click(chromedp.CSS(`#attention a[data-kind="quarantined-telemetry"]`)),
		chromedp.WaitVisible(chromedp.CSS("#quarantine")))
	if h := value(t, ctx, "location", chromedp.Evaluate[string](`location.hash`)); h != "#quarantine" {
		t.Fatalf("after the quarantine panel: location %q, want #quarantine", h)
	}
}
