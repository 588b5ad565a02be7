package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/coid-project/coid/custody"
)

// BenchmarkTriageQueue10k measures GET /api/v1/access/queue (a page of
// 100) over 10,000 open requests under concurrent load. The requests are
// submitted through the service, not over HTTP.
func BenchmarkTriageQueue10k(b *testing.B) {
	e := accessAPIEnv(b, b.TempDir())
	ctx := context.Background()
	doc, err := e.store.User(ctx, physician)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 10000 {
		u := custody.UrgencyStandard
		if i%10 == 0 {
			u = custody.UrgencyEmergency
		}
		sub := custody.AccessSubmission{Urgency: u, Indication: "relapsed DLBCL", ClinicalSummary: "Relapse after transplant; ECOG 1.",
			TreatmentPlan: "Single infusion.", Jurisdiction: custody.USFDASinglePatient, Product: "CART-19", TreatmentSite: "PAR-1", ManufacturingSite: "MFG-1"}
		if _, err := e.svc.SubmitAccess(ctx, doc, sub, nil); err != nil {
			b.Fatal(err)
		}
	}
	ts := httptest.NewServer(e.srv.Handler())
	b.Cleanup(ts.Close)
	target, auth := ts.URL+"/api/v1/access/queue?limit=100", "Bearer "+e.tokens[qa]
	latencyBench(b, http.StatusOK, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodGet, target, nil)
		if err == nil {
			req.Header.Set("Authorization", auth)
		}
		return req, err
	})
}
