package web_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// Page render speed with 100 chains in flight: every page must render
// server-side in under 50 ms at the 99th percentile.

// webLoad builds 100 chains spread over the journey, ten with an open
// excursion, and returns a signed-in QA browser and one chain.
func webLoad(tb testing.TB) (*webEnv, *browser, custody.COI) {
	e := newWebEnv(tb, false)
	states := []custody.State{custody.StateEnrolled, custody.StateCollected, custody.StateToManufacturing,
		custody.StateAtManufacturing, custody.StateManufactured, custody.StateReleased, custody.StateToTreatment,
		custody.StateAtTreatment}
	var last custody.COI
	for i := 0; i < 100; i++ {
		coi := e.enroll()
		st := states[i%len(states)]
		if i == 99 {
			st = custody.StateToTreatment
		}
		e.advance(coi, st)
		if st == custody.StateToTreatment {
			e.excursion(coi)
		}
		last = coi
	}
	e.readings("SHP-0002", 600, func(i int) float64 { return -185 + float64(i%20)/10 })
	return e, e.login(wQA), last
}

func webPages(coi custody.COI) map[string]string {
	return map[string]string{"console": "/qa", "chain": coiPath(coi), "scan": "/scan", "bedside": coiPath(coi) + "/bedside"}
}

// renderOnce serves one page in-process, bypassing the network.
func renderOnce(tb testing.TB, e *webEnv, b *browser, path string) {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for _, c := range b.c.Jar.Cookies(req.URL) {
		req.AddCookie(c)
	}
	u, _ := req.URL.Parse(e.ts.URL + path)
	for _, c := range b.c.Jar.Cookies(u) {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		tb.Fatalf("GET %s: %d", path, rec.Code)
	}
}

// BenchmarkWebPages renders each page with 100 chains in flight and
// reports its latency percentiles (the target: p99 under 50 ms).
func BenchmarkWebPages(b *testing.B) {
	e, br, coi := webLoad(b)
	for name, path := range webPages(coi) {
		b.Run(name, func(b *testing.B) {
			var ds []time.Duration
			for b.Loop() {
				start := time.Now()
				renderOnce(b, e, br, path)
				ds = append(ds, time.Since(start))
			}
			slices.Sort(ds)
			b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
