package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// benchParallelism times GOMAXPROCS is the number of client goroutines
// (16 on the 2-core reference machine).
const benchParallelism = 8

// latencyBench runs concurrent requests made by newReq with
// b.RunParallel, checks each status, and reports the p50 and p99 latency
// in milliseconds and the throughput in requests per second.
func latencyBench(b *testing.B, want int, newReq func() (*http.Request, error)) {
	b.Helper()
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	b.Cleanup(tr.CloseIdleConnections)
	var (
		mu  sync.Mutex
		all []time.Duration
	)
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		lat := make([]time.Duration, 0, 4096)
		defer func() {
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
		for pb.Next() {
			req, err := newReq()
			if err != nil {
				b.Error(err)
				return
			}
			t0 := time.Now()
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, err = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			d := time.Since(t0)
			if err != nil || res.StatusCode != want {
				b.Errorf("status %d (want %d), read error %v", res.StatusCode, want, err)
				return
			}
			lat = append(lat, d)
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		i := int(float64(len(all)-1) * p)
		return float64(all[i].Nanoseconds()) / 1e6
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
}

// BenchmarkGetChain30 measures GET /api/v1/chains/{coi} for a chain of 30
// records (enroll, collect, 28 notes) under concurrent load.
func BenchmarkGetChain30(b *testing.B) {
	e := newEnv(b, forBenchmark())
	coi := e.enroll(b, patientA)
	e.advance(b, coi, patientA.MRN, 1)
	for i := 0; len(e.chain(b, coi).Records) < 30; i++ {
		e.mustStep(b, coi, nurse1, custody.StepNote, map[string]any{"text": fmt.Sprintf("observation %d: bag temperature and seal checked", i)},
			sig{nurse1, custody.MeaningAuthored, ""})
	}
	if n := len(e.chain(b, coi).Records); n != 30 {
		b.Fatalf("chain has %d records, want 30", n)
	}
	ts := httptest.NewServer(e.srv.Handler())
	b.Cleanup(ts.Close)
	target, auth := ts.URL+chainPath(coi), "Bearer "+e.tokens[qa]
	latencyBench(b, http.StatusOK, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodGet, target, nil)
		if err == nil {
			req.Header.Set("Authorization", auth)
		}
		return req, err
	})
}

// BenchmarkScan measures POST /api/v1/scan of a bag label payload on a
// collected chain under concurrent load.
func BenchmarkScan(b *testing.B) {
	e := newEnv(b, forBenchmark())
	coi := e.enroll(b, patientA)
	e.advance(b, coi, patientA.MRN, 1)
	body, err := json.Marshal(map[string]string{"code": custody.LabelPayload(custody.BagID{COI: coi, Kind: custody.BagApheresis, N: 1})})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(e.srv.Handler())
	b.Cleanup(ts.Close)
	target, auth := ts.URL+"/api/v1/scan", "Bearer "+e.tokens[nurse1]
	latencyBench(b, http.StatusOK, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Authorization", auth)
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	})
}

// BenchmarkChainVsHealthz measures GET /api/v1/chains/{coi} of a 30-record
// chain and GET /healthz in the same run: the same server, the same 16
// client goroutines (on 2 cores), each alternating between the two
// routes, so load and machine noise fall on both alike. It reports each
// route's p99 and their ratio (chain-p99/healthz-p99), the figure the
// chain read is held to (within 2).
func BenchmarkChainVsHealthz(b *testing.B) {
	e := newEnv(b, forBenchmark())
	coi := e.enroll(b, patientA)
	e.advance(b, coi, patientA.MRN, 1)
	for i := 0; len(e.chain(b, coi).Records) < 30; i++ {
		e.mustStep(b, coi, nurse1, custody.StepNote, map[string]any{"text": fmt.Sprintf("observation %d: bag temperature and seal checked", i)},
			sig{nurse1, custody.MeaningAuthored, ""})
	}
	ts := httptest.NewServer(e.srv.Handler())
	b.Cleanup(ts.Close)
	chainVsHealthz(b, ts.URL, coi, e.tokens[qa])
}

// chainVsHealthz measures GET /api/v1/chains/{coi} (with token) against
// GET /healthz on the server at base, as BenchmarkChainVsHealthz
// describes, and reports both p99s and their ratio.
func chainVsHealthz(b *testing.B, base string, coi custody.COI, token string) {
	chain, health, auth := base+chainPath(coi), base+"/healthz", "Bearer "+token
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	b.Cleanup(tr.CloseIdleConnections)
	var (
		mu       sync.Mutex
		lat      [2][]time.Duration
		routes   = [2]string{chain, health}
		duration = func(route int) (time.Duration, error) {
			req, err := http.NewRequest(http.MethodGet, routes[route], nil)
			if err != nil {
				return 0, err
			}
			if route == 0 {
				req.Header.Set("Authorization", auth)
			}
			t0 := time.Now()
			res, err := client.Do(req)
			if err != nil {
				return 0, err
			}
			_, err = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			d := time.Since(t0)
			if err == nil && res.StatusCode != http.StatusOK {
				err = fmt.Errorf("GET %s: status %d", routes[route], res.StatusCode)
			}
			return d, err
		}
	)
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine [2][]time.Duration
		defer func() {
			mu.Lock()
			lat[0], lat[1] = append(lat[0], mine[0]...), append(lat[1], mine[1]...)
			mu.Unlock()
		}()
		for i := 0; pb.Next(); i++ {
			d, err := duration(i % 2)
			if err != nil {
				b.Error(err)
				return
			}
			mine[i%2] = append(mine[i%2], d)
		}
	})
	b.StopTimer()
	if len(lat[0]) == 0 || len(lat[1]) == 0 {
		return
	}
	p99 := func(all []time.Duration) float64 {
		slices.Sort(all)
		return float64(all[int(float64(len(all)-1)*0.99)].Nanoseconds()) / 1e6
	}
	c, h := p99(lat[0]), p99(lat[1])
	b.ReportMetric(c, "chain-p99-ms")
	b.ReportMetric(h, "healthz-p99-ms")
	b.ReportMetric(c/h, "p99-ratio")
}
