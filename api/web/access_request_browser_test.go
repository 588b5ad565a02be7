package web_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coid-project/coid/custody"
)

// browserLogout signs out with the header's button.
func browserLogout(t *testing.T, ctx context.Context) {
	t.Helper()
	run(t, ctx, "sign out", chromedp.Submit(chromedp.CSS(`form[action="/logout"]`)), chromedp.WaitVisible(chromedp.CSS("#login-user")))
}

// TestBrowserAccessRequest: a physician fills the request form in
// Chromium and lands on the request page; once the access team has
// approved it, the physician records FDA's acknowledgement with its
// letter as a PDF, QA records the letter of authorisation and a
// coordinator the IRB waiver; the enrollment form, disabled with the
// domain's refusal until then, enrolls the patient and leads to the
// chain, which links back to the request.
func TestBrowserAccessRequest(t *testing.T) {
	e, _ := accessWebEnv(t)
	pdfs := t.TempDir()
	for name, note := range map[string]string{"ack.pdf": "acknowledgement", "loa.pdf": "letter", "waiver.pdf": "waiver"} {
		if err := os.WriteFile(filepath.Join(pdfs, name), webPDF(note), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx := newChrome(t, 1280, 900, 150*time.Second)

	browserLogin(t, ctx, e, wPhys)
	run(t, ctx, "physician's home is the request list", chromedp.WaitVisible(chromedp.CSS("#access-new")))
	run(t, ctx, "fill the request form",
		chromedp.Click(chromedp.CSS("#access-new")),
		chromedp.WaitVisible(chromedp.CSS("#form-access-new")),
		chromedp.Click(chromedp.CSS(`input[name=urgency][value=standard]`)),
		chromedp.SendKeys(chromedp.CSS("#f-indication"), "Relapsed DLBCL after two lines"),
		chromedp.SendKeys(chromedp.CSS("#f-clinical_summary"), "Relapse 3 months after transplant.\nECOG 1; organ function adequate."),
		chromedp.SendKeys(chromedp.CSS("#f-treatment_plan"), "Lymphodepletion, then a single infusion."),
		chromedp.SetValue(chromedp.CSS("#f-jurisdiction"), custody.USFDASinglePatient),
		chromedp.SetValue(chromedp.CSS("#f-product"), "CART-19"),
		chromedp.SetValue(chromedp.CSS("#f-manufacturing_site"), "MFG-1"),
		chromedp.SendKeys(chromedp.CSS(`#form-access-new input[name=sig_password_1]`), "wrong-password-1"),
		chromedp.Submit(chromedp.CSS("#form-access-new")),
		chromedp.WaitVisible(chromedp.CSS(`[data-field="signatures"] .field-error`)),
	)
	if got := value(t, ctx, "indication kept", chromedp.Value(chromedp.CSS("#f-indication"))); got != "Relapsed DLBCL after two lines" {
		t.Errorf("after a refused signature the indication is %q", got)
	}
	run(t, ctx, "sign again",
		chromedp.SendKeys(chromedp.CSS(`#form-access-new input[name=sig_password_1]`), webPassword(wPhys)),
		chromedp.Submit(chromedp.CSS("#form-access-new")),
		chromedp.WaitVisible(chromedp.CSS("#access-title")),
	)
	id := custody.COI(text(t, ctx, "#access-title"))
	if got := text(t, ctx, "#access-state"); !strings.Contains(got, "Submitted") {
		t.Errorf("state %q", got)
	}
	if got := text(t, ctx, "#access-clock"); !strings.Contains(got, "Service level") {
		t.Errorf("clock %q", got)
	}

	// The access team approves (its queue is another screen).
	qa, err := e.svc.User(context.Background(), wQA)
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	if _, err := e.svc.RecordAccess(context.Background(), qa, id, custody.AccessStep{Step: custody.StepAccessDecide,
		Data: custody.AccessStepData{Text: "Meets the criteria", Approve: &yes}, Signatures: []custody.SignatureRequest{wsig(wQA, custody.MeaningApproved)}}); err != nil {
		t.Fatal(err)
	}

	page := e.ts.URL + "/access/requests/" + string(id)
	run(t, ctx, "the physician records FDA's acknowledgement with its letter",
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.CSS("#checklist")),
		chromedp.Click(chromedp.CSS("#form-ind-acknowledged summary")),
		chromedp.SendKeys(chromedp.CSS(`#form-ind-acknowledged input[name=reference]`), "IND 123456"),
		chromedp.SetUploadFiles(chromedp.CSS(`#form-ind-acknowledged input[name=document]`), []string{filepath.Join(pdfs, "ack.pdf")}),
		chromedp.SendKeys(chromedp.CSS(`#form-ind-acknowledged input[name=sig_password_1]`), webPassword(wPhys)),
		markPage(),
		chromedp.Submit(chromedp.CSS(`#form-ind-acknowledged form`)),
		newPageVisible("#flash"),
	)
	if got := text(t, ctx, `[data-check="ind-acknowledged"]`); !strings.Contains(got, "Done") || !strings.Contains(got, "IND 123456") || !strings.Contains(got, "FDA acknowledgement letter (PDF") {
		t.Errorf("IND item: %q", got)
	}
	browserLogout(t, ctx)

	browserLogin(t, ctx, e, wQA)
	run(t, ctx, "QA records the letter of authorisation",
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.CSS("#checklist")),
		chromedp.Click(chromedp.CSS("#form-loa-issued summary")),
		chromedp.SetUploadFiles(chromedp.CSS(`#form-loa-issued input[name=document]`), []string{filepath.Join(pdfs, "loa.pdf")}),
		chromedp.SendKeys(chromedp.CSS(`#form-loa-issued input[name=sig_password_1]`), webPassword(wQA)),
		markPage(),
		chromedp.Submit(chromedp.CSS(`#form-loa-issued form`)),
		newPageVisible("#flash"),
	)
	browserLogout(t, ctx)

	browserLogin(t, ctx, e, wCoord)
	run(t, ctx, "the coordinator's page", chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("#enroll-blocked")))
	if got := text(t, ctx, "#enroll-blocked"); !strings.Contains(got, "irb-approved or irb-waived") {
		t.Errorf("enroll blocked with %q", got)
	}
	if !value(t, ctx, "enroll disabled", chromedp.Evaluate[bool](`document.querySelector("#access-enroll-submit").disabled`)) {
		t.Error("the enroll button is enabled before the requirements are met")
	}
	run(t, ctx, "the coordinator records the IRB waiver",
		chromedp.Click(chromedp.CSS("#form-irb-waived summary")),
		chromedp.SetUploadFiles(chromedp.CSS(`#form-irb-waived input[name=document]`), []string{filepath.Join(pdfs, "waiver.pdf")}),
		chromedp.SendKeys(chromedp.CSS(`#form-irb-waived input[name=sig_password_1]`), webPassword(wCoord)),
		markPage(),
		chromedp.Submit(chromedp.CSS(`#form-irb-waived form`)),
		newPageVisible("#flash"),
		chromedp.WaitVisible(chromedp.CSS("#form-access-enroll")),
	)
	if value(t, ctx, "enroll enabled", chromedp.Evaluate[bool](`document.querySelector("#access-enroll-submit").disabled`)) {
		t.Error("the enroll button is disabled with the requirements met")
	}
	shot(t, ctx, "30-access-request-checklist")
	run(t, ctx, "enroll",
		chromedp.SendKeys(chromedp.CSS(`#form-access-enroll input[name=name]`), "Jo Example"),
		chromedp.SetValue(chromedp.CSS(`#form-access-enroll input[name=birth_date]`), "1960-01-02"),
		chromedp.SendKeys(chromedp.CSS(`#form-access-enroll input[name=mrn]`), "MRN-998877"),
		chromedp.SetValue(chromedp.CSS(`#form-access-enroll select[name=collection]`), "PAR-1"),
		chromedp.SendKeys(chromedp.CSS(`#form-access-enroll input[name=sig_password_1]`), webPassword(wCoord)),
		chromedp.Submit(chromedp.CSS("#form-access-enroll")),
		chromedp.WaitVisible(chromedp.CSS("#chain-title")),
	)
	if got := text(t, ctx, "#access-request-link"); !strings.Contains(got, string(id)) {
		t.Errorf("chain page's link to the request: %q", got)
	}
	run(t, ctx, "back to the request",
		chromedp.Click(chromedp.CSS("#access-request-link a")),
		chromedp.WaitVisible(chromedp.CSS("#access-chain")),
	)
	if got := text(t, ctx, "#access-state"); !strings.Contains(got, "Enrolled") {
		t.Errorf("state after enrollment %q", got)
	}
}
