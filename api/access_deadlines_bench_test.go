package api_test

import (
	"context"
	"testing"

	"github.com/coid-project/coid/custody"
)

// BenchmarkAccessDeadlines1k measures what the QA console and the triage
// queue add to find the deadlines owed: 1,000 approved emergency requests,
// each with an emergency authorisation (so each owes its IRB report),
// beside 1,000 chains' worth of nothing else, listed for QA of the
// manufacturing site. The requests are recorded through the service.
func BenchmarkAccessDeadlines1k(b *testing.B) {
	e := accessAPIEnv(b, b.TempDir())
	ctx := context.Background()
	doc, err := e.store.User(ctx, physician)
	if err != nil {
		b.Fatal(err)
	}
	team, err := e.store.User(ctx, qa)
	if err != nil {
		b.Fatal(err)
	}
	yes := true
	for range 1000 {
		r, err := e.svc.SubmitAccess(ctx, doc, custody.AccessSubmission{Urgency: custody.UrgencyEmergency, Indication: "relapsed DLBCL",
			ClinicalSummary: "Relapse after transplant; ECOG 1.", TreatmentPlan: "Single infusion.", Jurisdiction: custody.USFDASinglePatient,
			Product: "CART-19", TreatmentSite: "PAR-1", ManufacturingSite: "MFG-1"}, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range []struct {
			by   custody.User
			step custody.Step
			d    custody.AccessStepData
		}{{team, custody.StepAccessDecide, custody.AccessStepData{Text: "ok", Approve: &yes}}, {team, custody.StepLOAIssued, custody.AccessStepData{}},
			{doc, custody.StepEmergencyAuthorise, custody.AccessStepData{Reference: "FDA phone"}}} {
			if _, err := e.svc.RecordAccess(ctx, s.by, r.ID, custody.AccessStep{Step: s.step, Data: s.d}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for b.Loop() {
		list, err := e.svc.AccessDeadlines(ctx, team)
		if err != nil || len(list) != 1000 {
			b.Fatalf("%d deadlines, %v", len(list), err)
		}
	}
}
