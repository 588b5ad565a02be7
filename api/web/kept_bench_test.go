package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/api/web"
	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/boltstore/storegen"
	"github.com/coid-project/coid/sensors"
)

// BenchmarkKeptConsole serves the QA console page (GET /qa, signed in as
// the generated QA user) over HTTP to 16 concurrent clients, over each
// kept store storegen.FromEnv names (COID_BENCH_STORE, COID_BENCH_CHAINS;
// skipped without them), and reports p50 and p99 in milliseconds (the
// target: under 50 ms p99 at 100,000 chains) and the process's CPU time
// per request, client and server together. The generated QA user qa1
// reads every chain (with a network, as the manufacturer's QA);
// BenchmarkKeptConsoleScoped signs in as a site's QA instead.
//
//	COID_BENCH_STORE=/var/tmp/coid-bench go test -run '^$' -bench KeptConsole -benchtime 500x ./api/web
func BenchmarkKeptConsole(b *testing.B) { keptConsoleBench(b, "qa1") }

// BenchmarkKeptConsoleScoped is BenchmarkKeptConsole signed in as
// storegen.ScopedQA, QA of one hospital of the kept stores' network
// (COID_BENCH_NETWORK), who reads about one chain in N. Skipped for a
// store without a network.
//
//	COID_BENCH_STORE=/var/tmp/coid-bench COID_BENCH_NETWORK=50 go test -run '^$' -bench KeptConsoleScoped -benchtime 500x ./api/web
func BenchmarkKeptConsoleScoped(b *testing.B) { keptConsoleBench(b, storegen.ScopedQA) }

// keptConsoleBench is BenchmarkKeptConsole signed in as the generated
// user.
func keptConsoleBench(b *testing.B, user string) {
	root, cfgs, err := storegen.FromEnv()
	if err != nil {
		b.Fatal(err)
	}
	if root == "" {
		b.Skip(storegen.EnvStore + " not set: no kept store to measure")
	}
	for _, cfg := range cfgs {
		b.Run(fmt.Sprintf("chains=%d", cfg.Chains), func(b *testing.B) {
			if _, ok := cfg.UserRoles()[user]; !ok {
				b.Skipf("the kept store has no user %s: it needs a network (%s)", user, storegen.EnvNetwork)
			}
			e := keptWebEnv(b, root, cfg)
			br := e.browser()
			br.get("/login")
			p := br.post("/login", url.Values{"user": {user}, "password": {storegen.Password(user)}})
			if p.Code != http.StatusSeeOther {
				b.Fatalf("sign in: %d %s", p.Code, excerpt(p.Body))
			}
			if p := br.get("/qa"); p.Code != http.StatusOK {
				b.Fatalf("GET /qa: %d %s", p.Code, excerpt(p.Body))
			}
			cpu0 := storegen.CPUTime()
			keptLatency(b, br.c, e.ts.URL+"/qa")
			b.ReportMetric(float64((storegen.CPUTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}

// keptWebEnv opens the kept store of cfg under root (generating it first
// if it is not there) and serves the API and the web UI over it, as
// newWebEnv does, its clock an hour after the store's last record.
func keptWebEnv(b *testing.B, root string, cfg storegen.Config) *webEnv {
	b.Helper()
	dir, _, err := storegen.Ensure(context.Background(), root, cfg)
	if err != nil {
		b.Fatal(err)
	}
	st, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	clock := &webClock{t: cfg.End().Add(time.Hour)}
	log := slog.New(slog.DiscardHandler)
	svc, err := storegen.NewService(st, clock.Now, log)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := api.New(api.Config{Service: svc, Logger: log, Version: "bench", Telemetry: api.TelemetryConfig{Alerts: sensors.NewAlertHub()}})
	if err != nil {
		b.Fatal(err)
	}
	if err := web.Mount(srv, web.WithQuarantine(st)); err != nil {
		b.Fatal(err)
	}
	e := &webEnv{t: b, store: st, svc: svc, srv: srv, clock: clock, users: map[string]custody.User{}, logs: &syncBuffer{}}
	e.ts = httptest.NewServer(srv.Handler())
	b.Cleanup(e.ts.Close)
	return e
}

// keptLatency GETs target b.N times from 16 goroutines (8 per core on 2
// cores) through client, checks each answer is 200, and reports p50, p99
// and requests per second.
func keptLatency(b *testing.B, client *http.Client, target string) {
	b.Helper()
	var (
		mu  sync.Mutex
		all []time.Duration
	)
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var lat []time.Duration
		defer func() {
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
		for pb.Next() {
			t0 := time.Now()
			res, err := client.Get(target)
			if err != nil {
				b.Error(err)
				return
			}
			_, err = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != http.StatusOK {
				b.Errorf("GET %s: status %d, %v", target, res.StatusCode, err)
				return
			}
			lat = append(lat, time.Since(t0))
		}
	})
	el := time.Since(start)
	b.StopTimer()
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(float64(len(all)-1)*p)].Nanoseconds()) / 1e6 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(all))/el.Seconds(), "req/s")
}
