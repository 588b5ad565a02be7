package boltstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/boltstore/storegen"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/custody/phitext"
)

// The verification benchmarks run over stores from storegen: chains
// walked from enrollment to infusion through the service (ten records
// each, two legs received with their telemetry seals), each leg with its
// own shipper and minute readings stored before its receipt (66 a leg by
// default, so a chain holds about 131 readings, the proportion of the
// issue's 100,000-chain store).
//
//	COID_VERIFY_CHAINS   chains to generate (default 1,000)
//	COID_VERIFY_READINGS readings per leg (default 66)
//	COID_VERIFY_STORE    a directory to keep the store in: generated once,
//	                     reused by later runs with the same figures
//
// Without any of these, COID_BENCH_STORE and COID_BENCH_CHAINS (see
// storegen.FromEnv) name the kept stores, one sub-benchmark each; without
// those either, a store of 1,000 chains is generated for the run.

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// verifyBenchStores returns the directory the verification benchmarks'
// stores are kept under (empty: generate one for the run) and their
// sizes.
func verifyBenchStores(b *testing.B) (string, []storegen.Config) {
	b.Helper()
	root := os.Getenv("COID_VERIFY_STORE")
	if root == "" && os.Getenv("COID_VERIFY_CHAINS") == "" && os.Getenv("COID_VERIFY_READINGS") == "" {
		kept, cfgs, err := storegen.FromEnv()
		if err != nil {
			b.Fatal(err)
		}
		if kept != "" {
			return kept, cfgs
		}
	}
	return root, []storegen.Config{{Chains: envInt("COID_VERIFY_CHAINS", 1000), PerLeg: envInt("COID_VERIFY_READINGS", storegen.DefaultPerLeg)}}
}

// verifyBenchService opens (generating it first if needed) the benchmark
// store of cfg under root (empty: a temporary directory) and returns a
// service over it, as coid verify configures one, and the number of
// readings sealed.
func verifyBenchService(b *testing.B, root string, cfg storegen.Config) (*custody.Service, int) {
	b.Helper()
	ctx := context.Background()
	var dir string
	if root == "" {
		dir = b.TempDir()
		if _, err := storegen.Generate(ctx, dir, cfg); err != nil {
			b.Fatal(err)
		}
	} else {
		var err error
		if dir, _, err = storegen.Ensure(ctx, root, cfg); err != nil {
			b.Fatal(err)
		}
	}
	svc, _ := verifyService(b, dir)
	return svc, cfg.Readings()
}

// verifyService opens the store in dir and returns a service over it
// whose clock stands at verifyT0 until the generator moves it.
func verifyService(b testing.TB, dir string) (*custody.Service, *verifyStore) {
	b.Helper()
	st, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	vs := &verifyStore{Store: st}
	vs.clock.Store(storegen.T0.UnixNano())
	svc, err := custody.NewService(custody.Config{Store: st, Hasher: passwd.Fast(), Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return time.Unix(0, vs.clock.Load()).UTC() }, FIN: "A9999",
		Profiles:  slices.Sorted(maps.Keys(custody.BuiltinProfiles())),
		Telemetry: custody.TelemetryConfig{Readings: st}, Folder: phitext.Folder{}})
	if err != nil {
		b.Fatal(err)
	}
	return svc, vs
}

// verifyStore is the generator's store and the clock of its service.
type verifyStore struct {
	*boltstore.Store
	clock atomic.Int64
}

// BenchmarkVerifyLedgerReadings runs what coid verify runs on the ledger
// (custody.Service.VerifyLedger: every record, then every received leg's
// seal recomputed from its stored readings) over the generated store, and
// reports readings per second (the readings sealed over the whole time)
// and CPU seconds per run.
func BenchmarkVerifyLedgerReadings(b *testing.B) {
	root, cfgs := verifyBenchStores(b)
	for _, cfg := range cfgs {
		b.Run(fmt.Sprintf("chains=%d", cfg.Chains), func(b *testing.B) {
			svc, readings := verifyBenchService(b, root, cfg)
			benchVerifyLedger(b, svc, readings)
		})
	}
}

func benchVerifyLedger(b *testing.B, svc *custody.Service, readings int) {
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for range b.N {
		rep, err := svc.VerifyLedger(ctx)
		if err != nil || !rep.OK {
			b.Fatal(rep, err)
		}
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(readings*b.N)/el.Seconds(), "readings/s")
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
}

// BenchmarkVerifyLedgerSinceLastTenth runs what coid verify --since runs
// in the service (custody.Service.VerifyLedgerSince) from a checkpoint at
// nine tenths of the generated store's records: every record, and the
// seals of the legs received in the last tenth (about a sixth of the
// second legs, the generator receiving them last).
func BenchmarkVerifyLedgerSinceLastTenth(b *testing.B) {
	root, cfgs := verifyBenchStores(b)
	for _, cfg := range cfgs {
		b.Run(fmt.Sprintf("chains=%d", cfg.Chains), func(b *testing.B) {
			svc, _ := verifyBenchService(b, root, cfg)
			benchVerifyLedgerSince(b, svc)
		})
	}
}

func benchVerifyLedgerSince(b *testing.B, svc *custody.Service) {
	ctx := context.Background()
	full, err := svc.VerifyLedger(ctx)
	if err != nil || !full.OK {
		b.Fatal(full, err)
	}
	after := full.Records - full.Records/10
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		rep, err := svc.VerifyLedgerSince(ctx, after)
		if err != nil || !rep.OK {
			b.Fatal(rep, err)
		}
	}
	b.StopTimer()
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
}
