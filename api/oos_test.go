package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

// TestExceptionalReleaseAPI: through the API, an approved request's chain
// is manufactured, QA records oos, release is refused, an exceptional
// release is refused until the physician's request and consent are
// recorded, then accepted with QA's and the medical director's approvals.
func TestExceptionalReleaseAPI(t *testing.T) {
	e := accessAPIEnv(t, t.TempDir())
	const director = "md.ann"
	tok, err := e.svc.AddUserIn(context.Background(), director, "Dr Ann", custody.RoleMedicalDirector, password(director), "CELLCO", []string{"MFG-1"})
	if err != nil {
		t.Fatal(err)
	}
	e.tokens[director] = tok
	r := e.do(t, http.MethodPost, "/api/v1/access/requests", physician, accessBody("standard"))
	if r.Code != http.StatusCreated {
		t.Fatalf("submit: %s", r)
	}
	base := "/api/v1/access/requests/" + r.object(t)["id"].(string)
	for _, s := range []struct {
		user, step string
		data       map[string]any
	}{
		{qa, "decide", map[string]any{"text": "Meets criteria", "approve": true}}, {qa, "loa-issued", map[string]any{}},
		{physician, "ind-acknowledged", map[string]any{"reference": "IND 1"}}, {coord, "irb-approved", map[string]any{"reference": "IRB-1"}},
	} {
		if r := e.do(t, http.MethodPost, base+"/records", s.user, map[string]any{"step": s.step, "data": s.data}); r.Code != http.StatusCreated {
			t.Fatalf("%s: %s", s.step, r)
		}
	}
	r = e.do(t, http.MethodPost, base+"/enroll", coord, map[string]any{"patient": map[string]any{"name": "Alice Martin",
		"birth_date": "1961-07-14", "mrn": "PAR-778812"}, "collection_site": "PAR-1"})
	if r.Code != http.StatusCreated {
		t.Fatalf("enroll: %s", r)
	}
	coi := custody.COI(r.object(t)["coi"].(string))
	e.advance(t, coi, "PAR-778812", 4)
	e.mustStep(t, coi, qa, custody.StepOOS, map[string]any{"attributes": []string{"viability"}, "reason": "62% against 70%"},
		sig{qa, custody.MeaningAuthored, ""})
	refused := func(step custody.Step, data any, code string, sigs ...sig) {
		t.Helper()
		before := e.ledgerRecords(t)
		r := e.step(t, coi, qa, step, data, sigs...)
		if got, _ := r.errorBody(t); r.Code != http.StatusConflict || got != code {
			t.Fatalf("%s: %s, want 409 %s", step, r, code)
		}
		if e.ledgerRecords(t) != before {
			t.Fatalf("refused %s wrote a record", step)
		}
	}
	refused(custody.StepRelease, nil, "out_of_specification", sig{qa, custody.MeaningApproved, ""})
	both := []sig{{qa, custody.MeaningApproved, ""}, {director, custody.MeaningApproved, ""}}
	refused(custody.StepExceptionalRelease, nil, "exceptional_release_incomplete", both...)
	e.mustStep(t, coi, physician, custody.StepExceptionalReleaseRequest, map[string]any{"reason": "No alternative."}, sig{physician, custody.MeaningAuthored, ""})
	refused(custody.StepExceptionalRelease, nil, "exceptional_release_incomplete", both...)
	e.mustStep(t, coi, physician, custody.StepConsent, map[string]any{"obtained_by": "treating physician", "obtained_at": "2026-11-01T09:00:00Z"},
		sig{physician, custody.MeaningAuthored, ""})
	rec := e.mustStep(t, coi, qa, custody.StepExceptionalRelease, map[string]any{"statement": "Released out of specification."}, both...)
	if len(rec.Signatures) != 2 || e.chain(t, coi).State != custody.StateReleased {
		t.Fatalf("exceptional release: %+v, chain %s", rec.Signatures, e.chain(t, coi).State)
	}

	// The label of a final-product bag says so; an apheresis bag's does not.
	for bag, want := range map[string]bool{"-FP-01": true, "-APH-01": false} {
		r := e.do(t, http.MethodGet, chainPath(coi, "/bags/", string(coi), bag, "/label.zpl"), qa, nil)
		if r.Code != http.StatusOK {
			t.Fatalf("label %s: %s", bag, r)
		}
		if got := strings.Contains(string(r.Body), "EXCEPTIONAL RELEASE _E2_80_94 OUT OF SPECIFICATION"); got != want {
			t.Errorf("label %s carries the notice: %v, want %v", bag, got, want)
		}
	}
	// The custody report prints the oos record, who signed the release and
	// the request's history, without the patient's identifiers.
	r = e.do(t, http.MethodGet, chainPath(coi, "/report.pdf"), qa, nil)
	if r.Code != http.StatusOK {
		t.Fatalf("report: %s", r)
	}
	text := reportText(t, r.Body)
	id := strings.TrimPrefix(base, "/api/v1/access/requests/")
	for _, want := range []string{"Out of specification and exceptional release", "Failed attributes", "Reason: 62% against 70%",
		"QA signature", "Director's signature", "Dr Ann (md.ann, medical-director), approved",
		"Expanded-access request " + id + " (6 records)", id + "; names this chain back", "decide", "APPROVED: Meets criteria",
		"loa-issued", "ind-acknowledged", "Reference: IND 1", "irb-approved", "Reference: IRB-1", "Became chain " + string(coi)} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, phi := range []string{"Alice", "Martin", "PAR-778812", "1961-07-14"} {
		if strings.Contains(text, phi) {
			t.Errorf("report prints the patient's %q", phi)
		}
	}
	// The EPCIS export carries both.
	r = e.do(t, http.MethodGet, chainPath(coi, "/epcis"), qa, nil)
	if r.Code != http.StatusOK {
		t.Fatalf("epcis: %s", r)
	}
	for _, want := range []string{`"coid:step": "oos"`, `"disposition": "non_conformant"`, `"coid:step": "exceptional-release"`,
		`"disposition": "available"`, `"coid:accessRequest": "https://coid.invalid/id/access-request/` + id + `"`,
		`"coid:role": "medical-director"`} {
		if !strings.Contains(string(r.Body), want) {
			t.Errorf("EPCIS export lacks %s", want)
		}
	}
}
