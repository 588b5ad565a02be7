package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/api/internal/nettest"
	"github.com/coid-project/coid/custody"
)

// The network-sized read benchmarks: 100 registered sites, 5,000 users and
// 10,000 chains, built once through the service over a real bbolt file,
// then the scoped chain list (a nurse at one site, the manufacturer's QA)
// and the QA console timed request by request, reporting the 99th
// percentile.
const (
	benchSites  = 100 // 98 hospital sites and 2 manufacturing sites
	benchUsers  = 5000
	benchChains = 10000
)

// parallel runs fn(i) for i in [0, n) on a few goroutines, so the bbolt
// writer commits the fixture's writes in groups.
func parallel(b *testing.B, n int, fn func(i int) error) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

func buildNetwork(b *testing.B) (*webEnv, map[string]string) {
	b.Helper()
	e := newWebEnv(b, false)
	ctx := context.Background()
	n := e.net()
	// The chains are enrolled first, as before the network: once their
	// sites are registered, only a coordinator bound to each collection
	// site could enroll them. Their site names resolve when read.
	coord := e.users[wCoord]
	parallel(b, benchChains, func(i int) error {
		s := i % 98
		_, err := e.svc.Enroll(ctx, coord, custody.EnrollRequest{
			Patient: custody.PHI{Name: webPatient.Name, BirthDate: webPatient.BirthDate, MRN: webPatient.MRN},
			Product: "Autologous anti-CD19 CAR-T",
			Sites: custody.Sites{Collection: fmt.Sprintf("S%03d", s), Manufacturing: fmt.Sprintf("MFG-%d", 1+i%2),
				Treatment: fmt.Sprintf("S%03d", s^1)}})
		return err
	})
	orgs := []custody.Organisation{{Code: "MANU", Name: "Manufacturer", Kind: custody.OrgManufacturer}}
	for h := range 49 {
		orgs = append(orgs, custody.Organisation{Code: fmt.Sprintf("H%02d", h), Name: fmt.Sprintf("Hospital %d", h), Kind: custody.OrgHospital})
	}
	site := func(code, org string, kinds ...custody.SiteRole) custody.Site {
		return nettest.Site(code, "Site "+code, org, "Europe/Paris", kinds...)
	}
	sites := []custody.Site{site("MFG-1", "MANU", custody.SiteManufacturing), site("MFG-2", "MANU", custody.SiteManufacturing)}
	for s := range benchSites - 2 {
		sites = append(sites, site(fmt.Sprintf("S%03d", s), fmt.Sprintf("H%02d", s/2), custody.SiteCollection, custody.SiteTreatment))
	}
	n.Register(b, "bench", orgs, sites, nil)
	tokens := map[string]string{}
	var mu sync.Mutex
	parallel(b, benchUsers, func(i int) error {
		id := fmt.Sprintf("nurse.b%04d", i)
		tok, err := n.NewUser(ctx, nettest.User{ID: id, Role: custody.RoleNurse, Org: fmt.Sprintf("H%02d", (i%98)/2),
			Sites: []string{fmt.Sprintf("S%03d", i%98)}})
		mu.Lock()
		tokens[id] = tok
		mu.Unlock()
		return err
	})
	tokens["qa.bench"] = n.AddUser(b, nettest.User{ID: "qa.bench", Role: custody.RoleQA, Org: "MANU"})
	return e, tokens
}

// timed runs req b.N times and reports the 99th percentile in ms.
func timed(b *testing.B, do func() int) {
	b.Helper()
	d := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if code := do(); code != http.StatusOK {
			b.Fatalf("status %d", code)
		}
		d = append(d, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(d)
	p99 := d[min(len(d)-1, len(d)*99/100)]
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99_ms")
}

func BenchmarkNetworkReads(b *testing.B) {
	e, tokens := buildNetwork(b)
	h := e.srv.Handler()
	list := func(id string) func() int {
		return func() int {
			req := httptest.NewRequest(http.MethodGet, "/api/v1/chains?limit=100", nil)
			req.Header.Set("Authorization", "Bearer "+tokens[id])
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec.Code
		}
	}
	b.Run("list_nurse_one_site", func(b *testing.B) { timed(b, list("nurse.b0000")) })
	b.Run("list_qa_manufacturer", func(b *testing.B) { timed(b, list("qa.bench")) })
	b.Run("console_qa_manufacturer", func(b *testing.B) {
		br := e.login("qa.bench")
		timed(b, func() int { return br.get("/qa").Code })
	})
}
