package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserAdminRegistry: on an 820 px portrait tablet an
// administrator registers an organisation (a code taken is refused
// beside the code, with the rest kept) and suspends it with a reason;
// creates a site through the form, edits it and sees a bad GLN refused
// beside the GLN field with what was typed kept; corrects it; and maps
// the free-text site name of a chain from before the network to the new
// site. No page scrolls sideways.
func TestBrowserAdminRegistry(t *testing.T) {
	e := newWebEnv(t, false)
	e.enroll() // a chain whose sites are free text
	ctx := newChrome(t, 820, 1180, 120*time.Second)
	browserLogin(t, ctx, e, wAdmin)
	noSideways := func(what string) {
		t.Helper()
		if wide := value(t, ctx, what+": width", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > innerWidth`)); wide {
			t.Errorf("%s scrolls sideways at 820 px", what)
		}
	}
	js := func(what, expr string) string {
		t.Helper()
		return value(t, ctx, what, chromedp.Evaluate[string](expr))
	}

	run(t, ctx, "open the organisations from the navigation",
		chromedp.Navigate(e.ts.URL+"/scan"),
		chromedp.Click(chromedp.CSS(`header nav a[href="/admin"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/admin/organisations"]`)),
		chromedp.Click(chromedp.CSS(`a[href="/admin/organisations"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#registry-form`)),
	)
	run(t, ctx, "register a hospital",
		chromedp.SendKeys(chromedp.CSS(`#f-code`), "APHP"),
		chromedp.SendKeys(chromedp.CSS(`#f-name`), "Assistance Publique - Hopitaux de Paris"),
		chromedp.SetValue(chromedp.CSS(`#f-kind`), "hospital"),
		chromedp.SendKeys(chromedp.CSS(`#f-reason`), "onboarding\r"),
		chromedp.WaitVisible(chromedp.CSS(`#flash`)),
	)
	run(t, ctx, "register the same code again",
		chromedp.SendKeys(chromedp.CSS(`#f-code`), "APHP"),
		chromedp.SendKeys(chromedp.CSS(`#f-name`), "Typed again"),
		chromedp.SendKeys(chromedp.CSS(`#f-reason`), "twice\r"),
		chromedp.WaitVisible(chromedp.CSS(`[data-field=code] .field-error`)),
	)
	if got := js("kept", `document.getElementById("f-name").value + "|" + document.getElementById("f-reason").value`); got != "Typed again|twice" {
		t.Errorf("the refused form kept %q", got)
	}
	noSideways("refused organisation form")
	run(t, ctx, "suspend the organisation",
		chromedp.Navigate(e.ts.URL+"/admin/organisations"),
		chromedp.WaitVisible(chromedp.CSS(`#organisation-APHP form.admin-inline`)),
		chromedp.SendKeys(chromedp.CSS(`#organisation-APHP form.admin-inline input[name=reason]`), "accreditation lapsed\r"),
		chromedp.WaitVisible(chromedp.CSS(`#flash`)),
	)
	if got := text(t, ctx, "#flash"); !strings.Contains(got, "APHP suspended") {
		t.Errorf("flash after suspend: %q", got)
	}
	run(t, ctx, "resume it",
		chromedp.SendKeys(chromedp.CSS(`#organisation-APHP form.admin-inline input[name=reason]`), "renewed\r"),
		chromedp.WaitVisible(chromedp.CSS(`#organisation-APHP .btn.danger`)),
	)
	noSideways("organisations")

	run(t, ctx, "create a site",
		chromedp.Navigate(e.ts.URL+"/admin"),
		chromedp.Click(chromedp.CSS(`a[href="/admin/sites"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#registry-form`)),
		chromedp.SendKeys(chromedp.CSS(`#f-code`), "PAR-1"),
		chromedp.SendKeys(chromedp.CSS(`#f-name`), "Hopital Saint-Louis"),
		chromedp.SetValue(chromedp.CSS(`#f-organisation`), "APHP"),
		chromedp.Click(chromedp.CSS(`#registry-form input[value=collection]`)),
		chromedp.Click(chromedp.CSS(`#registry-form input[value=treatment]`)),
		chromedp.SendKeys(chromedp.CSS(`#f-time_zone`), "Europe/Paris"),
		chromedp.SendKeys(chromedp.CSS(`#f-address`), "1 avenue Claude Vellefaux"),
		chromedp.SendKeys(chromedp.CSS(`#f-country`), "FR"),
		chromedp.SendKeys(chromedp.CSS(`#f-gln`), "4006381333931"),
		chromedp.SetValue(chromedp.CSS(`#f-accreditation-status`), "accredited"),
		chromedp.SetValue(chromedp.CSS(`#f-accreditation-expiry`), "2027-06-30"),
		chromedp.Click(chromedp.CSS(`#f-qualification-training_done`)),
		chromedp.SetValue(chromedp.CSS(`#f-qualification-date`), "2026-01-15"),
		chromedp.SetValue(chromedp.CSS(`#f-qualification-expiry`), "2027-01-15"),
		chromedp.SendKeys(chromedp.CSS(`#f-reason`), "onboarding"),
		chromedp.Submit(chromedp.CSS(`#registry-form`)),
		chromedp.WaitVisible(chromedp.CSS(`#flash`)),
	)
	if got := text(t, ctx, `#site-PAR-1`); !strings.Contains(got, "collection, treatment") || !strings.Contains(got, "Europe/Paris") || !strings.Contains(got, "4006381333931") {
		t.Errorf("site row %q", got)
	}
	noSideways("sites")
	shot(t, ctx, "admin-sites")

	run(t, ctx, "edit it with a bad GLN",
		chromedp.Click(chromedp.CSS(`#site-PAR-1 a[href="/admin/sites/PAR-1/edit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#registry-form`)),
		chromedp.SetValue(chromedp.CSS(`#f-time_zone`), "Europe/Berlin"),
		chromedp.SetValue(chromedp.CSS(`#f-gln`), "4006381333932"),
		chromedp.SendKeys(chromedp.CSS(`#f-reason`), "moved"),
		chromedp.Submit(chromedp.CSS(`#registry-form`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-field=gln] .field-error`)),
	)
	// The refusal sits right under the GLN input, names it for assistive
	// technology, and is the only one on the page.
	if got := js("placed", `(function(){
		const i = document.getElementById("f-gln"), m = document.getElementById("f-gln-error");
		const gap = m.getBoundingClientRect().top - i.getBoundingClientRect().bottom;
		return [m.textContent.includes("check digit is 1") , gap >= 0 && gap < 40, i.getAttribute("aria-describedby") === "f-gln-error",
			i.getAttribute("aria-invalid") === "true", document.querySelectorAll(".field-error").length === 1, !document.getElementById("form-error")].join(",")
	})()`); got != "true,true,true,true,true,true" {
		t.Errorf("GLN refusal: text, below the input, described-by, invalid, only one, not at the top = %s", got)
	}
	if got := js("kept", `document.getElementById("f-time_zone").value + "|" + document.getElementById("f-gln").value + "|" + document.getElementById("f-reason").value`); got != "Europe/Berlin|4006381333932|moved" {
		t.Errorf("the refused edit kept %q", got)
	}
	noSideways("refused site edit")
	shot(t, ctx, "admin-site-edit-refused")
	if got := text(t, ctx, "h1"); !strings.Contains(got, "PAR-1") {
		t.Errorf("edit page heading %q", got)
	}
	run(t, ctx, "correct the GLN",
		chromedp.SetValue(chromedp.CSS(`#f-gln`), "5412345000013"),
		chromedp.Submit(chromedp.CSS(`#registry-form`)),
		chromedp.WaitVisible(chromedp.CSS(`#flash`)),
	)
	if got := text(t, ctx, `#site-PAR-1`); !strings.Contains(got, "Europe/Berlin") || !strings.Contains(got, "5412345000013") {
		t.Errorf("site row after the edit %q", got)
	}
	if got := text(t, ctx, "#flash"); !strings.Contains(got, "Site PAR-1 changed") {
		t.Errorf("flash after edit %q", got)
	}

	row := `li[data-name="St. Mary Apheresis"]`
	run(t, ctx, "map an old site name",
		chromedp.Navigate(e.ts.URL+"/admin"),
		chromedp.Click(chromedp.CSS(`a[href="/admin/site-mappings"]`)),
		chromedp.WaitVisible(chromedp.CSS(row+` select[name=site]`)),
		chromedp.SetValue(chromedp.CSS(row+` select[name=site]`), "PAR-1"),
		chromedp.SendKeys(chromedp.CSS(row+` input[name=reason]`), "migration: the apheresis unit is Saint-Louis\r"),
		chromedp.WaitVisible(chromedp.CSS(`#flash`)),
	)
	if got := text(t, ctx, row); !strings.Contains(got, "mapped to") || !strings.Contains(got, "PAR-1") {
		t.Errorf("mapped row %q", got)
	}
	noSideways("site mappings")
	shot(t, ctx, "admin-site-mappings")
}
