package web_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/coid-project/coid/custody"
)

// TestWebQAReview: on a complete chain QA finds the review form, signs it
// with a statement, and the timeline and the chain show the signed review;
// a nurse is not offered the form, and a review without a statement is
// refused with nothing written.
func TestWebQAReview(t *testing.T) {
	e := newWebEnv(t, false)
	coi := e.enroll()
	e.advance(coi, custody.StateInfused)
	qa, nurse := e.login(wQA), e.login(wNurse1)
	wantBody(t, qa.get(coiPath(coi)), "QA chain page", "Sign the QA review of this custody record", `name="statement"`)
	wantNotBody(t, nurse.get(coiPath(coi)), "nurse chain page", "Sign the QA review of this custody record")
	before, err := e.svc.Chain(context.Background(), coi)
	if err != nil {
		t.Fatal(err)
	}
	p := qa.post(coiPath(coi)+"/steps/review", url.Values{"statement": {""}, "sig_user_1": {wQA}, "sig_password_1": {webPassword(wQA)}})
	wantCode(t, p, http.StatusBadRequest, "review without a statement")
	if c, _ := e.svc.Chain(context.Background(), coi); len(c.Records) != len(before.Records) {
		t.Fatalf("a refused review wrote %d records", len(c.Records)-len(before.Records))
	}
	stmt := "Custody record reviewed: identity intact, no open issues."
	p = qa.post(coiPath(coi)+"/steps/review", url.Values{"statement": {stmt}, "sig_user_1": {wQA}, "sig_password_1": {webPassword(wQA)}})
	if p.Code != http.StatusSeeOther && p.Code != http.StatusOK {
		t.Fatalf("review: %d %s", p.Code, p.Body)
	}
	c, err := e.svc.Chain(context.Background(), coi)
	if err != nil {
		t.Fatal(err)
	}
	last := c.Records[len(c.Records)-1]
	if last.Step != custody.StepReview || len(last.Signatures) != 1 || last.Signatures[0].User != wQA ||
		last.Signatures[0].Meaning != custody.MeaningReviewed {
		t.Fatalf("last record: %+v", last)
	}
	wantBody(t, qa.get(coiPath(coi)), "chain after review", "Custody record reviewed by QA", stmt)
}
