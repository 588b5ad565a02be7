package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coid-project/coid/custody"
)

// TestBrowserAccessQueue: QA reaches the queue from the navigation; the
// emergency past its 24 hours is marked in red on its row and counted at
// the top; reassigning it to a colleague (refused first for a missing
// signature password by the browser's own check, then for a wrong one by
// coid) shows the new assignee.
func TestBrowserAccessQueue(t *testing.T) {
	e := newWebEnv(t, false)
	accessNetwork(t, e)
	late := e.submitRequest(custody.UrgencyEmergency)
	fresh := e.submitRequest(custody.UrgencyStandard)
	e.clock.Advance(25 * time.Hour)

	ctx := newChrome(t, 1280, 900, 90*time.Second)
	browserLogin(t, ctx, e, wQA)
	run(t, ctx, "open the queue from the navigation",
		chromedp.Click(chromedp.CSS(`header nav a[href="/access/queue"]`)),
		chromedp.WaitVisible(chromedp.CSS("#queue")))
	shot(t, ctx, "access-queue")
	if got := text(t, ctx, "#count-breached"); got != "1" {
		t.Errorf("breached count %q", got)
	}
	border := func(id custody.COI) string {
		return value(t, ctx, "row border", chromedp.Evaluate[string](`(function(){var td=document.querySelector("#req-`+string(id)+` td");
			var s=getComputedStyle(td);return s.borderLeftWidth+" "+s.borderLeftColor})()`))
	}
	lateBorder, freshBorder := border(late.ID), border(fresh.ID)
	if !strings.HasPrefix(lateBorder, "6px rgb(") || lateBorder == freshBorder {
		t.Errorf("breached row's border %q, fresh row's %q", lateBorder, freshBorder)
	}
	if got := text(t, ctx, "#req-"+string(late.ID)+" td.clock"); !strings.Contains(got, "Past its service level") {
		t.Errorf("breached row's clock %q", got)
	}

	form := "#assign-" + string(late.ID)
	run(t, ctx, "reassign with a wrong password",
		chromedp.Click(chromedp.CSS(form+" summary")),
		chromedp.SetValue(chromedp.CSS(form+" select[name=assignee]"), wTeam),
		chromedp.SendKeys(chromedp.CSS(form+" textarea[name=text]"), "Covering the emergency while I am in the clean room."),
		chromedp.SendKeys(chromedp.CSS(form+" input[name=sig_password_1]"), "not-my-password-1"),
		chromedp.Submit(chromedp.CSS(form+" form")),
		chromedp.WaitVisible(chromedp.CSS("#message")))
	if got := text(t, ctx, "#message"); !strings.Contains(got, "A signature was not accepted.") {
		t.Errorf("refusal %q", got)
	}
	if got := value(t, ctx, "assignee kept", chromedp.Value(chromedp.CSS(form+" select[name=assignee]"))); got != wTeam {
		t.Errorf("assignee after refusal %q", got)
	}
	run(t, ctx, "sign again",
		chromedp.SendKeys(chromedp.CSS(form+" input[name=sig_password_1]"), webPassword(wQA)),
		markPage(),
		chromedp.Submit(chromedp.CSS(form+" form")),
		newPageVisible("#flash"))
	if got := text(t, ctx, "#req-"+string(late.ID)+" td[data-assignee]"); got != wTeam {
		t.Errorf("assignee shown %q", got)
	}
	if got := e.request(late.ID).Assignee; got != wTeam {
		t.Fatalf("assignee recorded %q", got)
	}
}
