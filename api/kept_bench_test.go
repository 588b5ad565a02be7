package api_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/boltstore/storegen"
)

// keptToken is the API token the benchmarks over kept stores give the
// generated user (stored hashed, as any token; adding it again changes
// nothing).
func keptToken(user string) string { return custody.TokenPrefix + "storegen-bench-" + user }

// keptServer opens the kept store of cfg under root (generating it first
// if it is not there) and serves the API over it, its clock an hour
// after the generated store's last record, giving the generated user
// keptToken(user). It returns the server's URL and the service.
func keptServer(b *testing.B, root string, cfg storegen.Config, user string) (string, *custody.Service, *boltstore.Store) {
	b.Helper()
	ctx := context.Background()
	dir, _, err := storegen.Ensure(ctx, root, cfg)
	if err != nil {
		b.Fatal(err)
	}
	st, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	now := cfg.End().Add(time.Hour)
	svc, err := storegen.NewService(st, func() time.Time { return now }, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.AddToken(ctx, user, custody.TokenHash(keptToken(user))); err != nil {
		b.Fatal(err)
	}
	srv, err := api.New(api.Config{Service: svc, Logger: slog.New(slog.DiscardHandler), Version: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	b.Cleanup(ts.Close)
	return ts.URL, svc, st
}

// BenchmarkKeptStore measures, over each kept store storegen.FromEnv
// names (COID_BENCH_STORE, COID_BENCH_CHAINS; skipped without them), the
// list and read routes the speed targets name, 16 clients each:
//
//	chains-first      GET /api/v1/chains (a client that sends no limit)
//	chains-deep       GET /api/v1/chains?after=COI, three quarters in
//	excursions        GET /api/v1/excursions
//	chain-vs-healthz  GET /api/v1/chains/{coi} of a 10-record chain
//	                  against GET /healthz in the same run (p99 ratio)
//
// Each reports p50 and p99 in milliseconds, and the process's CPU time
// per request, client and server together (cpu-ms/op: on a shared
// machine what a request costs apart from its wait for a core) (the target: every list under
// 50 ms p99, the chain within 2x /healthz). The user is the generated
// qa1, who reads every chain (with a network, as the manufacturer's QA);
// BenchmarkKeptStoreScoped measures the same as a site's QA.
//
//	COID_BENCH_STORE=/var/tmp/coid-bench go test -run '^$' -bench KeptStore -benchtime 2000x ./api
func BenchmarkKeptStore(b *testing.B) { keptStoreBench(b, "qa1") }

// BenchmarkKeptStoreScoped is BenchmarkKeptStore as storegen.ScopedQA,
// QA of one hospital of the kept stores' network (COID_BENCH_NETWORK),
// who reads about one chain in N: its lists and its chain read, three
// quarters into its own chains. Skipped for a store without a network.
//
//	COID_BENCH_STORE=/var/tmp/coid-bench COID_BENCH_NETWORK=50 go test -run '^$' -bench KeptStoreScoped -benchtime 2000x ./api
func BenchmarkKeptStoreScoped(b *testing.B) { keptStoreBench(b, storegen.ScopedQA) }

// keptStoreBench is BenchmarkKeptStore as the generated user.
func keptStoreBench(b *testing.B, user string) {
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
			base, svc, _ := keptServer(b, root, cfg, user)
			mid := keptDeepChain(b, svc, user)
			token := keptToken(user)
			get := func(path string) func() (*http.Request, error) {
				return func() (*http.Request, error) {
					req, err := http.NewRequest(http.MethodGet, base+path, nil)
					if err == nil {
						req.Header.Set("Authorization", "Bearer "+token)
					}
					return req, err
				}
			}
			b.Run("chains-first", func(b *testing.B) { withCPU(b, func() { latencyBench(b, http.StatusOK, get("/api/v1/chains")) }) })
			b.Run("chains-deep", func(b *testing.B) {
				withCPU(b, func() { latencyBench(b, http.StatusOK, get("/api/v1/chains?after="+url.QueryEscape(string(mid)))) })
			})
			b.Run("excursions", func(b *testing.B) { withCPU(b, func() { latencyBench(b, http.StatusOK, get("/api/v1/excursions")) }) })
			b.Run("chain-vs-healthz", func(b *testing.B) { withCPU(b, func() { chainVsHealthz(b, base, mid, token) }) })
		})
	}
}

// keptDeepChain returns the chain three quarters into the chains user
// reads, in COI order.
func keptDeepChain(b *testing.B, svc *custody.Service, user string) custody.COI {
	b.Helper()
	ctx := context.Background()
	u, err := svc.User(ctx, user)
	if err != nil {
		b.Fatal(err)
	}
	var cois []custody.COI
	for after := custody.COI(""); ; {
		page, err := svc.ChainsFor(ctx, u, "", after, custody.MaxChainPage)
		if err != nil {
			b.Fatal(err)
		}
		for _, ci := range page.Chains {
			cois = append(cois, ci.COI)
		}
		if after = page.Next; after == "" {
			break
		}
	}
	if len(cois) == 0 {
		b.Fatalf("%s reads no chain", user)
	}
	return cois[max(len(cois)*3/4-1, 0)]
}

// withCPU runs fn and reports the process's CPU time per b.N.
func withCPU(b *testing.B, fn func()) {
	cpu0 := storegen.CPUTime()
	fn()
	b.ReportMetric(float64((storegen.CPUTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}
