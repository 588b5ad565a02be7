package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

// accessChain returns the chain enrolled from an approved request whose
// US requirements are met, taken to state to by its sites' staff.
func (e *webEnv) accessChain(to custody.State) (custody.COI, custody.COI) {
	e.t.Helper()
	r := e.submitRequest(custody.UrgencyStandard)
	yes := true
	e.accessStep(r.ID, wQA, custody.StepAccessDecide, custody.AccessStepData{Text: "Eligible.", Approve: &yes})
	e.accessStep(r.ID, wQA, custody.StepLOAIssued, custody.AccessStepData{})
	e.accessStep(r.ID, wDoc, custody.StepINDAcknowledged, custody.AccessStepData{Reference: "IND 123456"})
	e.accessStep(r.ID, wDoc, custody.StepIRBWaived, custody.AccessStepData{})
	_, ch, err := e.svc.EnrollAccess(context.Background(), e.users[wCoord], r.ID, custody.AccessEnrollment{
		Patient:        custody.PHI{Name: webPatient.Name, BirthDate: webPatient.BirthDate, MRN: webPatient.MRN},
		CollectionSite: "PAR-1", Signatures: []custody.SignatureRequest{wsig(wCoord, custody.MeaningAuthored)}})
	if err != nil {
		e.t.Fatalf("enroll the request: %v", err)
	}
	e.networkAdvance(ch.COI, to)
	return r.ID, ch.COI
}

// networkAdvance takes a chain of the access network to state to, as
// advance does for a chain from before the network.
func (e *webEnv) networkAdvance(coi custody.COI, to custody.State) {
	e.t.Helper()
	bag := payload(coi, custody.BagFinalProduct, 1)
	steps := []struct {
		step custody.Step
		data string
		sigs []custody.SignatureRequest
	}{
		{custody.StepCollect, `{"din":"A999926000123","volume_ml":180,"bags":1,"started_at":"2026-11-22T08:00:00Z","ended_at":"2026-11-22T10:00:00Z"}`,
			[]custody.SignatureRequest{wsig(wNurse1, custody.MeaningPerformed), wsig(wNurse2, custody.MeaningVerified)}},
		{custody.StepShip, `{"shipper":"SHP-0001","profile":"refrigerated"}`,
			[]custody.SignatureRequest{wsig(wNurse1, custody.MeaningHandedOver), wsig(wCourier, custody.MeaningReceived)}},
		{custody.StepReceive, `{"seal_intact":true}`, []custody.SignatureRequest{wsig(wMfg, custody.MeaningReceived)}},
		{custody.StepManufacture, `{"final_bags":1}`, []custody.SignatureRequest{wsig(wMfg, custody.MeaningPerformed)}},
		{custody.StepRelease, `{}`, []custody.SignatureRequest{wsig(wQA, custody.MeaningApproved)}},
		{custody.StepShip, `{"shipper":"SHP-0002","profile":"cryogenic"}`,
			[]custody.SignatureRequest{wsig(wMfg, custody.MeaningHandedOver), wsig(wCourier, custody.MeaningReceived)}},
		{custody.StepReceive, `{"seal_intact":true}`, []custody.SignatureRequest{wsig(wNurse1, custody.MeaningReceived)}},
		{custody.StepBedsideVerify, `{"bag_code":` + jsonString(bag) + `,"wristband_code":"` + webPatient.MRN + `"}`,
			[]custody.SignatureRequest{wsig(wNurse1, custody.MeaningVerified), wsig(wNurse2, custody.MeaningVerified)}},
		{custody.StepInfuse, `{}`, []custody.SignatureRequest{wsig(wNurse2, custody.MeaningPerformed)}},
	}
	for _, s := range steps {
		if e.chain(coi).State == to {
			return
		}
		e.step(coi, s.step, s.data, s.sigs...)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// detailsOf returns the element of body with id id, up to the end of its
// details or form.
func detailsOf(body, id string) string {
	i := strings.Index(body, `id="`+id+`"`)
	if i < 0 {
		return ""
	}
	j := strings.Index(body[i:], "</details>")
	if j < 0 {
		return body[i:]
	}
	return body[i : i+j]
}

// TestOOSAndExceptionalRelease: QA's oos form names the failed
// attributes (none ticked: refused beside them); the standard release
// then says it is refused and the domain refuses it if sent anyway; the
// exceptional release lists its elements and is refused, beside the
// element, for each one missing (the physician's request, the consent,
// the medical director's signature), with nothing written, and accepted
// with all. A nurse is offered none of these forms.
func TestOOSAndExceptionalRelease(t *testing.T) {
	e := newWebEnv(t, false)
	accessNetwork(t, e)
	reqID, coi := e.accessChain(custody.StateManufactured)
	qa := e.login(wQA)
	p := qa.get(coiPath(coi))
	wantBody(t, p, "QA's chain page", `id="form-oos"`, `type="checkbox" name="attributes" value="viability"`, `id="form-release"`)
	wantNotBody(t, p, "QA's chain page before oos", `id="form-exceptional-release"`, "data-notice")
	wantNotBody(t, e.login(wNurse1).get(coiPath(coi)), "nurse's chain page", `id="form-oos"`, `id="form-exceptional-release"`)

	records := func() int { return len(e.chain(coi).Records) }
	refused := func(what string, p page, code int, has ...string) {
		t.Helper()
		before := records()
		wantCode(t, p, code, what)
		wantBody(t, p, what, has...)
		if records() != before {
			t.Errorf("%s wrote a record", what)
		}
	}
	qaSig := url.Values{"sig_user_1": {wQA}, "sig_password_1": {webPassword(wQA)}}
	with := func(v url.Values, more url.Values) url.Values {
		out := url.Values{}
		for k, x := range v {
			out[k] = x
		}
		for k, x := range more {
			out[k] = x
		}
		return out
	}
	before := records()
	p = qa.post(coiPath(coi)+"/steps/oos", with(qaSig, url.Values{"reason": {"Viability 62% against a limit of 70%."}}))
	refused("oos without attributes", p, http.StatusBadRequest, `data-error-for="attributes"`, "Name at least one failed attribute",
		"Viability 62% against a limit of 70%.")
	if records() != before {
		t.Fatal("a refused oos wrote a record")
	}
	p = qa.post(coiPath(coi)+"/steps/oos", with(qaSig, url.Values{"attributes": {"viability", "potency"}, "reason": {"Viability 62% against a limit of 70%."}}))
	wantCode(t, p, http.StatusSeeOther, "oos")
	if x := custody.OOSOf(e.chain(coi)); x == nil || strings.Join(x.Attributes, ",") != "viability,potency" {
		t.Fatalf("OOSOf after the form: %+v", x)
	}

	p = qa.get(coiPath(coi))
	wantBody(t, p, "timeline after oos", "Out of specification (QA)", "Failed attributes: viability; potency")
	rel := detailsOf(p.Body, "form-release")
	if !strings.Contains(rel, "Standard release refused: QA recorded this product out of specification (viability, potency;") ||
		strings.Contains(rel, "<button") {
		t.Errorf("release form after oos:\n%s", rel)
	}
	er := detailsOf(p.Body, "form-exceptional-release")
	for _, s := range []string{`data-element="oos-record"`, `href="/access/requests/` + string(reqID) + `"`, "enrolled",
		`<li class="missing" data-element="physician-request"`, `<li class="missing" data-element="informed-consent"`, `name="sig_user_2"`} {
		if !strings.Contains(er, s) {
			t.Errorf("exceptional-release form lacks %q:\n%s", s, er)
		}
	}
	refused("standard release after oos", qa.post(coiPath(coi)+"/steps/release", qaSig), http.StatusConflict, "This step cannot be recorded now.", "only an exceptional release may follow")

	both := with(url.Values{"statement": {"Released out of specification for this patient."}, "sig_user_1": {wQA}, "sig_password_1": {webPassword(wQA)}},
		url.Values{"sig_user_2": {wMD}, "sig_password_2": {webPassword(wMD)}})
	p = qa.post(coiPath(coi)+"/steps/exceptional-release", both)
	refused("exceptional release without the physician's request", p, http.StatusConflict,
		"This step cannot be recorded now.", `<li class="missing has-error" data-element="physician-request"`, "The treating physician has not requested exceptional release")

	doc := e.login(wDoc)
	wantBody(t, doc.get(coiPath(coi)), "physician's chain page", `id="form-exceptional-release-request"`, `id="form-consent"`)
	docSig := url.Values{"sig_user_1": {wDoc}, "sig_password_1": {webPassword(wDoc)}}
	wantCode(t, doc.post(coiPath(coi)+"/steps/exceptional-release-request", with(docSig, url.Values{"reason": {"No alternative therapy."}})),
		http.StatusSeeOther, "physician's request")
	p = qa.post(coiPath(coi)+"/steps/exceptional-release", both)
	refused("exceptional release without consent", p, http.StatusConflict,
		`<li class="done" data-element="physician-request"`, `<li class="missing has-error" data-element="informed-consent"`, "The patient&#39;s informed consent is not recorded")

	p = doc.post(coiPath(coi)+"/steps/consent", with(docSig, url.Values{"obtained_by": {"treating physician"}, "obtained_at": {"2030-01-01T10:00"}, "tz_offset": {"60"}}))
	refused("consent in the future", p, http.StatusBadRequest, `data-error-for="obtained_at"`)
	wantCode(t, doc.post(coiPath(coi)+"/steps/consent", with(docSig, url.Values{"obtained_by": {"treating physician"}, "obtained_at": {"2026-11-22T11:00"}, "tz_offset": {"60"}})),
		http.StatusSeeOther, "consent")

	one := with(url.Values{}, both)
	one.Del("sig_user_2")
	one.Del("sig_password_2")
	p = qa.post(coiPath(coi)+"/steps/exceptional-release", one)
	refused("exceptional release without the medical director", p, http.StatusConflict, `data-error-for="signatures"`, "1 given")
	p = qa.post(coiPath(coi)+"/steps/exceptional-release", with(both, url.Values{"sig_user_2": {wQA}, "sig_password_2": {webPassword(wQA)}}))
	refused("exceptional release signed twice by QA", p, http.StatusForbidden, `data-error-for="signatures"`)

	p = qa.post(coiPath(coi)+"/steps/exceptional-release", both)
	wantCode(t, p, http.StatusSeeOther, "exceptional release with all its elements")
	ch := e.chain(coi)
	last := ch.Records[len(ch.Records)-1]
	if ch.State != custody.StateReleased || last.Step != custody.StepExceptionalRelease || len(last.Signatures) != 2 ||
		last.Signatures[1].Role != custody.RoleMedicalDirector {
		t.Fatalf("after the exceptional release: %s, %+v", ch.State, last)
	}
}

// TestExceptionalReleaseNeedsApprovedRequest: a chain enrolled without an
// expanded-access request lists that element as missing, and its
// exceptional release is refused beside it with nothing written.
func TestExceptionalReleaseNeedsApprovedRequest(t *testing.T) {
	e := newWebEnv(t, false)
	accessNetwork(t, e)
	coi := e.net().Enroll(t, e.users[wCoord], custody.PHI{Name: webPatient.Name, BirthDate: webPatient.BirthDate, MRN: webPatient.MRN},
		"CART-19", custody.Sites{Collection: "PAR-1", Manufacturing: "MFG-1", Treatment: "PAR-1"})
	e.networkAdvance(coi, custody.StateManufactured)
	e.step(coi, custody.StepOOS, `{"attributes":["sterility"],"reason":"Positive culture at day 7."}`, wsig(wQA, custody.MeaningAuthored))
	e.step(coi, custody.StepExceptionalReleaseRequest, `{"reason":"No alternative therapy."}`, wsig(wDoc, custody.MeaningAuthored))
	e.step(coi, custody.StepConsent, `{"obtained_by":"treating physician","obtained_at":"2026-11-22T10:00:00Z"}`, wsig(wDoc, custody.MeaningAuthored))
	qa := e.login(wQA)
	er := detailsOf(qa.get(coiPath(coi)).Body, "form-exceptional-release")
	if !strings.Contains(er, `<li class="missing" data-element="approved-access-request"`) ||
		!strings.Contains(er, "the chain was not enrolled from an expanded-access request") {
		t.Errorf("checklist of a chain without a request:\n%s", er)
	}
	before := len(e.chain(coi).Records)
	p := qa.post(coiPath(coi)+"/steps/exceptional-release", url.Values{"statement": {"Released out of specification."},
		"sig_user_1": {wQA}, "sig_password_1": {webPassword(wQA)}, "sig_user_2": {wMD}, "sig_password_2": {webPassword(wMD)}})
	wantCode(t, p, http.StatusConflict, "exceptional release without a request")
	wantBody(t, p, "exceptional release without a request", `<li class="missing has-error" data-element="approved-access-request"`,
		"The chain was not enrolled from an expanded-access request")
	if len(e.chain(coi).Records) != before {
		t.Error("a refused exceptional release wrote a record")
	}
}
