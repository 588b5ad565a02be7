package web_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// TestWebConsoleAccessDeadlines: the IRB report owed after an emergency
// authorisation is raised on the QA console of the manufacturer's QA,
// due and then overdue (marked), and is gone once recorded; a console
// user who may not read the request sees no such section.
func TestWebConsoleAccessDeadlines(t *testing.T) {
	e := newWebEnv(t, false)
	webNetwork(t, e)
	ctx := context.Background()
	const doc = "doc.hana"
	if _, err := e.svc.AddUserIn(ctx, doc, "Dr Hana", custody.RolePhysician, webPassword(doc), "APHP", []string{"PAR-1"}); err != nil {
		t.Fatal(err)
	}
	e.net().Bind(t, wQA, "CELLCO", "MFG-1")
	for _, id := range []string{doc, wQA} {
		e.users[id], _ = e.store.User(ctx, id)
	}
	e.clock.Advance(4 * 24 * time.Hour) // 2026-11-26, a Thursday
	r, err := e.svc.SubmitAccess(ctx, e.users[doc], custody.AccessSubmission{Urgency: custody.UrgencyEmergency,
		Indication: "relapsed DLBCL", ClinicalSummary: "Relapse after transplant.", TreatmentPlan: "Single infusion.",
		Jurisdiction: custody.USFDASinglePatient, Product: "CART-19", TreatmentSite: "PAR-1", ManufacturingSite: "MFG-1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	record := func(by string, st custody.Step, d custody.AccessStepData) {
		t.Helper()
		if _, err := e.svc.RecordAccess(ctx, e.users[by], r.ID, custody.AccessStep{Step: st, Data: d}); err != nil {
			t.Fatalf("%s: %v", st, err)
		}
	}
	record(wQA, custody.StepAccessDecide, custody.AccessStepData{Text: "Emergency, meets criteria.", Approve: &yes})
	record(wQA, custody.StepLOAIssued, custody.AccessStepData{})
	qa := e.login(wQA)
	p := qa.get("/qa")
	wantCode(t, p, http.StatusOK, "console")
	wantNotBody(t, p, "console before the emergency authorisation", `id="access-deadlines"`)

	record(doc, custody.StepEmergencyAuthorise, custody.AccessStepData{Reference: "FDA phone authorisation 42"})
	p = qa.get("/qa")
	wantBody(t, p, "console with an IRB report due", `id="access-deadlines"`, `Expanded-access deadlines <span class="count">1</span>`,
		string(r.ID), "IRB report after the emergency authorisation (irb-reported)", `datetime="2026-12-03T12:00:00Z"`, "due in 7 d")
	wantNotBody(t, p, "console with an IRB report due", "overdue by")
	// Manufacturing staff bound to no site may not read the request: no
	// section.
	wantNotBody(t, e.login(wMfg).get("/qa"), "console of manufacturing staff bound to no site", `id="access-deadlines"`)

	e.clock.Advance(8 * 24 * time.Hour)
	qa = e.login(wQA) // the session of 8 days ago has expired
	p = qa.get("/qa")
	wantBody(t, p, "console with the IRB report overdue", `<tr class="open"><td>`+string(r.ID), `<strong class="warn">overdue by 1 d`)

	record(doc, custody.StepIRBReported, custody.AccessStepData{Reference: "IRB notified"})
	wantNotBody(t, qa.get("/qa"), "console after the IRB report", `id="access-deadlines"`)
}
