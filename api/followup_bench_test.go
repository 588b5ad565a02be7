package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// BenchmarkOverdueFollowUps10k measures GET /api/v1/follow-up/overdue (a
// page of 100 chains) over 10,000 infused chains, one in ten with
// follow-ups overdue, under concurrent load. The chains are enrolled
// through the service; their infusion and follow-up records are written
// straight through Store.Append with the index entry the service would
// compute (walking 10,000 journeys through the service would take too
// long), as the dashboard's benchmark does; so the ledger, whose chains
// skip from enrolled to infused, is not verified after it.
func BenchmarkOverdueFollowUps10k(b *testing.B) {
	e := networkEnv(b, "2027-03-01", forBenchmark(), unverified())
	ctx := context.Background()
	co, err := e.store.User(ctx, coord)
	if err != nil {
		b.Fatal(err)
	}
	const n, workers = 10000, 8
	sites := custody.Sites{Collection: "PAR-1", Manufacturing: "MFG-1", Treatment: "PAR-1"}
	now := e.svc.Now()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				c, err := e.svc.Enroll(ctx, co, custody.EnrollRequest{Patient: custody.PHI{Name: "Bench Patient", BirthDate: "1961-07-19",
					MRN: fmt.Sprintf("MRN-%07d", i)}, Product: "CART-19", Sites: sites})
				if err != nil {
					errs <- err
					return
				}
				// Infused 0-199 days ago; one chain in ten has recorded
				// none of its follow-ups, the others all that are due.
				infused := now.Add(-time.Duration(i%200) * 24 * time.Hour).UTC()
				fu := &custody.FollowUpPending{COI: c.COI, Product: "CART-19", Sites: sites, Infused: infused, Done: []int{}}
				if i%10 != 0 {
					fu.Done = []int{7, 14, 28, 90}
				}
				rec := custody.Record{V: custody.EncodingVersion, Chain: c.COI, Step: custody.StepInfuse, Time: infused, Site: "PAR-1",
					SubmittedBy: nurse1, Data: []byte(`{}`), Signatures: []custody.Signature{{User: nurse1, Name: "Nurse", Role: custody.RoleNurse,
						Meaning: custody.MeaningPerformed, Time: custody.FormatTime(infused), Method: custody.ViaToken}}}
				if _, err := e.store.Append(ctx, custody.Draft{Record: rec, ExpectRecords: uint64(len(c.Records)), State: custody.StateInfused,
					OpenIssues: custody.IssueCounts{Kept: true}, FollowUp: fu}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(e.srv.Handler())
	b.Cleanup(ts.Close)
	target, auth := ts.URL+"/api/v1/follow-up/overdue?limit=100", "Bearer "+e.tokens[qa]
	latencyBench(b, http.StatusOK, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodGet, target, nil)
		if err == nil {
			req.Header.Set("Authorization", auth)
		}
		return req, err
	})
}
