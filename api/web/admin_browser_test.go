package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserAdminOrganisations: on an 820 px portrait tablet, an
// administrator registers an organisation through the form, sees a
// refused form keep what was typed, and suspends with a reason; the page
// never scrolls sideways.
func TestBrowserAdminOrganisations(t *testing.T) {
	e := newWebEnv(t, false)
	ctx := newChrome(t, 820, 1180, 90*time.Second)
	browserLogin(t, ctx, e, wAdmin)
	noSideways := func(what string) {
		t.Helper()
		if wide := value(t, ctx, what+": width", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > innerWidth`)); wide {
			t.Errorf("%s scrolls sideways at 820 px", what)
		}
	}
	run(t, ctx, "open the organisations from the navigation",
		chromedp.Navigate(e.ts.URL+"/scan"),
		chromedp.Click(chromedp.CSS(`header nav a[href="/admin"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/admin/organisations"]`)),
		chromedp.Click(chromedp.CSS(`a[href="/admin/organisations"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#new-org`)),
	)
	run(t, ctx, "register",
		chromedp.SendKeys(chromedp.CSS(`input[name=code]`), "APHP"),
		chromedp.SendKeys(chromedp.CSS(`input[name=name]`), "Assistance Publique - Hopitaux de Paris"),
		chromedp.SendKeys(chromedp.CSS(`section[aria-labelledby=new-org] input[name=reason]`), "onboarding\r"),
		chromedp.WaitVisible(chromedp.CSS(`#flash`)),
	)
	noSideways("list with a row")
	run(t, ctx, "register the same code again",
		chromedp.SendKeys(chromedp.CSS(`input[name=code]`), "APHP"),
		chromedp.SendKeys(chromedp.CSS(`input[name=name]`), "Typed again"),
		chromedp.SendKeys(chromedp.CSS(`section[aria-labelledby=new-org] input[name=reason]`), "twice\r"),
		chromedp.WaitVisible(chromedp.CSS(`#form-error`)),
	)
	if got := value(t, ctx, "kept name", chromedp.Evaluate[string](`document.querySelector("input[name=name]").value`)); got != "Typed again" {
		t.Errorf("the refused form kept name %q", got)
	}
	noSideways("refused form")
	run(t, ctx, "suspend",
		chromedp.Navigate(e.ts.URL+"/admin/organisations"), // no flash left from the register
		chromedp.WaitVisible(chromedp.CSS(`form.admin-inline`)),
		chromedp.SendKeys(chromedp.CSS(`form.admin-inline input[name=reason]`), "accreditation lapsed\r"),
		chromedp.WaitVisible(chromedp.CSS(`#flash`)),
	)
	if got := text(t, ctx, "#flash"); !strings.Contains(got, "APHP suspended") {
		t.Errorf("flash after suspend: %q", got)
	}
	noSideways("suspended row")
}

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
