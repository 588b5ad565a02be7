package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserAdminUsers: on an 820 px tablet an administrator disables a
// user and resets another's password, each with a reason, and the list
// says what changed without scrolling sideways.
func TestBrowserAdminUsers(t *testing.T) {
	e := newWebEnv(t, false)
	ctx := newChrome(t, 820, 1180, 90*time.Second)
	browserLogin(t, ctx, e, wAdmin)
	row := `#user-` + strings.ReplaceAll(wNurse1, ".", `\.`)
	run(t, ctx, "disable",
		chromedp.Navigate(e.ts.URL+"/admin/users"),
		chromedp.WaitVisible(chromedp.CSS(row)),
		chromedp.SendKeys(chromedp.CSS(row+` form[data-action=disable] input[name=reason]`), "left the unit\r"),
		chromedp.WaitVisible(chromedp.CSS(`#flash`)),
	)
	if got := text(t, ctx, row); !strings.Contains(got, "disabled") {
		t.Errorf("row after disable: %q", got)
	}
	qrow := `#user-` + strings.ReplaceAll(wQA, ".", `\.`)
	run(t, ctx, "reset",
		chromedp.Navigate(e.ts.URL+"/admin/users"), // no flash left from the disable
		chromedp.WaitVisible(chromedp.CSS(qrow)),
		chromedp.SendKeys(chromedp.CSS(qrow+` form[data-action=reset] input[name=temporary]`), "Temp-Pass-9876-x"),
		chromedp.SendKeys(chromedp.CSS(qrow+` form[data-action=reset] input[name=reason]`), "forgot it\r"),
		chromedp.WaitVisible(chromedp.CSS(`#flash`)),
	)
	if got := text(t, ctx, qrow); !strings.Contains(got, "must change password") {
		t.Errorf("row after reset: %q", got)
	}
	if wide := value(t, ctx, "width", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > innerWidth`)); wide {
		t.Error("the users screen scrolls sideways at 820 px")
	}
}
