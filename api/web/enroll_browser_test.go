package web_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserEnrollFromLists enrolls through the form's select lists, as
// a coordinator does once the network is registered.
func TestBrowserEnrollFromLists(t *testing.T) {
	e := newWebEnv(t, false)
	webNetwork(t, e)
	ctx := newChrome(t, 820, 1180, 60*time.Second)
	browserLogin(t, ctx, e, wCoord)
	run(t, ctx, "enroll form", chromedp.Navigate(e.ts.URL+"/enroll"), chromedp.WaitVisible(chromedp.CSS("#form-enroll select[name=collection]")))
	got := value(t, ctx, "the collection list", chromedp.Evaluate[string](
		`Array.from(document.querySelectorAll("#form-enroll select[name=collection] option")).map(function(o){return o.value}).join("|")`))
	if got != "|PAR-1" {
		t.Errorf("collection options %q, want the prompt and PAR-1 (not the suspended SUSP-1 nor the plant)", got)
	}
	ok := value(t, ctx, "fill the form", chromedp.Evaluate[bool](`(function(){var f=document.getElementById("form-enroll").elements;
		f["name"].value="Ann Example"; f["birth_date"].value="1960-01-01"; f["mrn"].value="MRN-1";
		f["product"].value="CART-19"; f["collection"].value="PAR-1"; f["manufacturing"].value="MFG-1"; f["treatment"].value="PAR-1";
		return f["product"].tagName==="SELECT" && f["manufacturing"].value==="MFG-1"})()`))
	if !ok {
		t.Fatal("the form has no product list, or MFG-1 is not offered for manufacturing")
	}
	run(t, ctx, "enroll", chromedp.Click(chromedp.CSS("#enroll-submit")), chromedp.WaitVisible(chromedp.CSS("#chain-title")))
}
