package web_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// BenchmarkAccessQueuePage renders the triage queue page (its first 50
// requests, the counts and the figures) as QA of the manufacturing site
// over n open requests, one in ten an emergency, with one in a hundred
// decided for the figures; it reports the latency percentiles (the
// target: p99 under 50 ms at 10,000). The requests are submitted through
// the service.
func BenchmarkAccessQueuePage(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("requests=%d", n), func(b *testing.B) {
			e := newWebEnv(b, false)
			accessNetwork(b, e)
			ctx := context.Background()
			yes := true
			for i := range n {
				u := custody.UrgencyStandard
				if i%10 == 0 {
					u = custody.UrgencyEmergency
				}
				r, err := e.svc.SubmitAccess(ctx, e.users[wDoc], custody.AccessSubmission{Urgency: u, Indication: "relapsed DLBCL",
					ClinicalSummary: "Relapse after transplant; ECOG 1.", TreatmentPlan: "Single infusion.",
					Jurisdiction: custody.USFDASinglePatient, Product: "CART-19", TreatmentSite: "PAR-1", ManufacturingSite: "MFG-1"}, nil)
				if err != nil {
					b.Fatal(err)
				}
				if i%100 == 1 {
					if _, err := e.svc.RecordAccess(ctx, e.users[wQA], r.ID, custody.AccessStep{Step: custody.StepAccessDecide,
						Data: custody.AccessStepData{Text: "Eligible.", Approve: &yes}}); err != nil {
						b.Fatal(err)
					}
				}
			}
			br := e.login(wQA)
			var ds []time.Duration
			for b.Loop() {
				start := time.Now()
				renderOnce(b, e, br, "/access/queue")
				ds = append(ds, time.Since(start))
			}
			slices.Sort(ds)
			b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
