package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coid-project/coid/custody"
)

// TestBrowserExceptionalRelease: after QA's oos record the release form
// says it is refused; the exceptional release sent before the patient's
// consent is refused with the domain's words beside that element, and
// accepted with QA's and the medical director's signatures once the
// physician has recorded it.
func TestBrowserExceptionalRelease(t *testing.T) {
	e := newWebEnv(t, false)
	accessNetwork(t, e)
	_, coi := e.accessChain(custody.StateManufactured)

	ctx := newChrome(t, 1280, 900, 120*time.Second)
	browserLogin(t, ctx, e, wQA)
	run(t, ctx, "record the oos",
		chromedp.Navigate(e.ts.URL+coiPath(coi)),
		chromedp.WaitVisible(chromedp.CSS("#form-oos")),
		chromedp.Click(chromedp.CSS("#form-oos summary")),
		chromedp.Click(chromedp.CSS(`#form-oos input[value=viability]`)),
		chromedp.SendKeys(chromedp.CSS(`#form-oos textarea[name=reason]`), "Viability 62% against a limit of 70%."),
		chromedp.SendKeys(chromedp.CSS(`#form-oos input[name=sig_password_1]`), webPassword(wQA)),
		markPage(),
		chromedp.Submit(chromedp.CSS(`#form-oos form`)),
		newPageVisible("#flash"))
	if got := text(t, ctx, "#form-release [data-notice]"); !strings.Contains(got, "Standard release refused") {
		t.Errorf("release notice %q", got)
	}
	e.step(coi, custody.StepExceptionalReleaseRequest, `{"reason":"No alternative therapy."}`, wsig(wDoc, custody.MeaningAuthored))

	er := "#form-exceptional-release"
	sign := func(what string) {
		run(t, ctx, what,
			chromedp.Navigate(e.ts.URL+coiPath(coi)),
			chromedp.WaitVisible(chromedp.CSS(er)),
			chromedp.SetValue(chromedp.CSS(er+" textarea[name=statement]"), "Released out of specification for this patient."),
			chromedp.SendKeys(chromedp.CSS(er+" input[name=sig_password_1]"), webPassword(wQA)),
			chromedp.SendKeys(chromedp.CSS(er+" input[name=sig_user_2]"), wMD),
			chromedp.SendKeys(chromedp.CSS(er+" input[name=sig_password_2]"), webPassword(wMD)),
			chromedp.Submit(chromedp.CSS(er+" form")),
			chromedp.WaitVisible(chromedp.CSS("#message, #flash")))
	}
	sign("exceptional release before consent")
	got := text(t, ctx, er+` li[data-element="informed-consent"] .field-error`)
	if !strings.Contains(got, "The patient's informed consent is not recorded") {
		t.Errorf("refusal beside the consent %q", got)
	}
	shot(t, ctx, "exceptional-release-refused")
	if st := e.chain(coi).State; st != custody.StateManufactured {
		t.Fatalf("refused release moved the chain to %s", st)
	}

	e.step(coi, custody.StepConsent, `{"obtained_by":"treating physician","obtained_at":"2026-11-22T10:00:00Z"}`, wsig(wDoc, custody.MeaningAuthored))
	sign("exceptional release with all its elements")
	if got := text(t, ctx, "#flash"); !strings.Contains(got, "signed by Printed "+wQA+" and Printed "+wMD) {
		t.Errorf("flash %q", got)
	}
	if st := e.chain(coi).State; st != custody.StateReleased {
		t.Fatalf("chain %s after the exceptional release", st)
	}
}

// TestBrowserFollowUpForm: a nurse records the day-7 follow-up after the
// infusion with the coded selects; day 7 is then no longer offered.
func TestBrowserFollowUpForm(t *testing.T) {
	e := newWebEnv(t, false)
	accessNetwork(t, e)
	_, coi := e.accessChain(custody.StateInfused)
	e.clock.Advance(8 * 24 * time.Hour)

	ctx := newChrome(t, 820, 1180, 90*time.Second)
	browserLogin(t, ctx, e, wNurse1)
	f := "#form-follow-up"
	run(t, ctx, "record day 7",
		chromedp.Navigate(e.ts.URL+coiPath(coi)),
		chromedp.WaitVisible(chromedp.CSS(f)),
		chromedp.SetValue(chromedp.CSS(f+" select[name=day]"), "7"),
		chromedp.SetValue(chromedp.CSS(f+" input[name=assessed_date]"), "2026-11-29"),
		chromedp.SetValue(chromedp.CSS(f+" select[name=crs_grade]"), "2"),
		chromedp.SetValue(chromedp.CSS(f+" select[name=icans_grade]"), "0"),
		chromedp.SetValue(chromedp.CSS(f+" select[name=response]"), "PR"),
		chromedp.SendKeys(chromedp.CSS(f+" input[name=sig_password_1]"), webPassword(wNurse1)),
		markPage(),
		chromedp.Submit(chromedp.CSS(f+" form")),
		newPageVisible("#flash"))
	shot(t, ctx, "follow-up-recorded")
	ch := e.chain(coi)
	last := ch.Records[len(ch.Records)-1]
	if last.Step != custody.StepFollowUp || !strings.Contains(string(last.Data), `"crs_grade":2`) {
		t.Fatalf("last record %s %s", last.Step, last.Data)
	}
	days := value(t, ctx, "days offered", chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#form-follow-up select[name=day] option")).map(function(o){return o.value}).join(",")`))
	if days != "14,28,90" {
		t.Errorf("days offered after day 7: %q", days)
	}
}
