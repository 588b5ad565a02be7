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

// TestBrowserAdminSite: on an 820 px tablet an administrator fills the
// site form (kinds as checkboxes), sees a mistyped zone refused with the
// rest kept, corrects it and registers the site.
func TestBrowserAdminSite(t *testing.T) {
	e := newWebEnv(t, false)
	ctx := newChrome(t, 820, 1180, 30*time.Second)
	browserLogin(t, ctx, e, wAdmin)
	run(t, ctx, "organisation",
		chromedp.Navigate(e.ts.URL+"/admin/organisations"),
		chromedp.SendKeys(chromedp.CSS(`input[name=code]`), "APHP"),
		chromedp.SendKeys(chromedp.CSS(`input[name=name]`), "AP-HP"),
		chromedp.SendKeys(chromedp.CSS(`section[aria-labelledby=new-org] input[name=reason]`), "onboarding\r"),
		chromedp.WaitVisible(chromedp.CSS(`#flash`)),
	)
	run(t, ctx, "fill the site form with a wrong zone",
		chromedp.Navigate(e.ts.URL+"/admin/sites"),
		chromedp.WaitVisible(chromedp.CSS(`#site-form`)),
		chromedp.SendKeys(chromedp.CSS(`#site-form input[name=code]`), "PAR-1"),
		chromedp.SendKeys(chromedp.CSS(`#site-form input[name=name]`), "Hopital Saint-Louis"),
		chromedp.SendKeys(chromedp.CSS(`#site-form input[name=organisation]`), "APHP"),
		chromedp.Click(chromedp.CSS(`#site-form input[value=treatment]`)),
		chromedp.SendKeys(chromedp.CSS(`#site-form input[name=time_zone]`), "Mars/Olympus"),
		chromedp.SendKeys(chromedp.CSS(`#site-form input[name=address]`), "1 avenue Claude Vellefaux"),
		chromedp.SendKeys(chromedp.CSS(`#site-form input[name=country]`), "FR"),
		chromedp.SendKeys(chromedp.CSS(`#site-form input[name=reason]`), "onboarding"),
		chromedp.Submit(chromedp.CSS(`#site-form`)),
		chromedp.WaitVisible(chromedp.CSS(`#form-error`)),
	)
	if wide := value(t, ctx, "width", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > innerWidth`)); wide {
		t.Error("the site form scrolls sideways at 820 px")
	}
	if got := value(t, ctx, "kept", chromedp.Evaluate[string](`document.querySelector("#site-form input[name=address]").value + "|" + document.querySelector("#site-form input[value=treatment]").checked`)); got != "1 avenue Claude Vellefaux|true" {
		t.Errorf("the refused form kept %q", got)
	}
	run(t, ctx, "correct the zone",
		chromedp.Evaluate[chromedp.Void](`(function(f){f.time_zone.value="Europe/Paris";f.accreditation_expiry.value="2027-06-30";`+
			`f.training_done.checked=true;f.training_date.value="2026-01-15";f.training_expiry.value="2027-01-15"})(document.getElementById("site-form")), undefined`),
		chromedp.Submit(chromedp.CSS(`#site-form`)),
		chromedp.WaitVisible(chromedp.CSS(`#flash`)),
	)
	if got := text(t, ctx, `#site-PAR-1`); !strings.Contains(got, "treatment") || !strings.Contains(got, "Europe/Paris") {
		t.Errorf("site row %q", got)
	}
}
