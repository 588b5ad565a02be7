package web_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/storetest"
)

// dashboardChains is the size of the dashboard benchmark's store.
const dashboardChains = 50000

// buildDashboardStore writes n chain summaries straight through the store
// (the service would take too long for the fixture): 40 treatment
// centres, apheresis spread over 2026, each chain with its plan and the
// milestones reached so far, a few days late here and there; four in five
// infused, the others on their way, some past their window.
func buildDashboardStore(b *testing.B, e *webEnv, n int) {
	b.Helper()
	ctx := context.Background()
	start := time.Date(2026, 1, 1, 11, 0, 0, 0, time.UTC)
	plan := []int{0, 1, 11, 14, 14, 16, 16} // days from apheresis, as CART-19's lead times
	parallel(b, n, func(i int) error {
		d := storetest.Draft(storetest.COI(i+1), i, true, 0)
		// The records are enroll records: the summaries keep that state, as
		// verification after the benchmark checks.
		d.Product, d.State = "CART-19", custody.StateEnrolled
		d.Sites = custody.Sites{Collection: fmt.Sprintf("C%02d", i%40), Manufacturing: "MFG-1", Treatment: fmt.Sprintf("C%02d", i%40)}
		var p custody.Progress
		aph := start.AddDate(0, 0, i%330)
		for k := range custody.NumMilestones {
			p.Planned[k] = custody.PlannedTime{Time: aph.AddDate(0, 0, plan[k]), Offset: 3600}
		}
		p.WindowEnd = custody.PlannedTime{Time: aph.AddDate(0, 0, 30), Offset: 3600}
		reached := custody.NumMilestones
		if i%5 == 4 {
			reached = custody.MilestoneKind(i % int(custody.NumMilestones))
		}
		late := time.Duration(i%7) * 7 * time.Hour
		for k := range reached {
			p.Actual[k] = p.Planned[k].Time.Add(late * time.Duration(k+1))
		}
		d.Progress = &p
		_, err := e.store.Append(ctx, d)
		return err
	})
}

// BenchmarkDashboard50k times the dashboard page (GET /dashboard, a
// year's figures, rendered with its plots) over 50,000 chains, as the
// manufacturer's QA sees it, and reports the 99th percentile.
func BenchmarkDashboard50k(b *testing.B) {
	e := newWebEnv(b, false)
	webSchedule(b, e, true)
	buildDashboardStore(b, e, dashboardChains)
	br := e.login(wQA)
	p := br.get("/dashboard?from=2026-01&to=2026-12")
	if p.Code != 200 {
		b.Fatalf("dashboard: %d %s", p.Code, excerpt(p.Body))
	}
	timed(b, func() int { return br.get("/dashboard?from=2026-01&to=2026-12").Code })
}
