package boltstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/custody/phitext"
)

// The store generator of the verification benchmark: chains walked from
// enrollment to infusion through the service (ten records each, two legs
// received with their telemetry seals), each leg with its own shipper and
// COID_VERIFY_READINGS minute readings (default 66, so a chain holds about
// 131 readings, the proportion of the 100,000-chain store).
//
//	COID_VERIFY_CHAINS   chains to generate (default 1,000)
//	COID_VERIFY_READINGS readings per leg (default 66)
//	COID_VERIFY_STORE    a directory to keep the store in: generated once,
//	                     reused by later runs with the same figures
//
// Generating 10,000 chains takes a few minutes on 2 cores.

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// verifyBenchService opens (generating it first if needed) the benchmark
// store and returns a service over it, as coid verify configures one,
// and the number of readings sealed.
func verifyBenchService(b *testing.B) (*custody.Service, int) {
	b.Helper()
	chains, perLeg := envInt("COID_VERIFY_CHAINS", 1000), envInt("COID_VERIFY_READINGS", 66)
	dir := os.Getenv("COID_VERIFY_STORE")
	if dir == "" {
		dir = b.TempDir()
	} else {
		dir = filepath.Join(dir, fmt.Sprintf("chains%d-readings%d", chains, perLeg))
	}
	if _, err := os.Stat(filepath.Join(dir, boltstore.FileName)); err != nil {
		b.Logf("generating %d chains with %d readings a leg in %s", chains, perLeg, dir)
		svc, st := verifyService(b, dir)
		generateVerifyStore(b, svc, st, chains, perLeg)
		st.Close()
	}
	svc, _ := verifyService(b, dir)
	return svc, chains * 2 * perLeg
}

// verifyT0 is when the generated chains are collected.
var verifyT0 = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

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
	vs.clock.Store(verifyT0.UnixNano())
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

// generateVerifyStore walks chains chains from enrollment to infusion on
// svc, the steps of each phase for all chains before the next phase, with
// perLeg readings stored for each leg before it is received: shipper
// SHP-A%06d carries chain i's first leg, SHP-B%06d its second.
func generateVerifyStore(b testing.TB, svc *custody.Service, st *verifyStore, chains, perLeg int) {
	b.Helper()
	t0 := verifyT0
	clock := &st.clock
	sb := &serviceBench{svc: svc, users: map[string]custody.User{}}
	roles := map[string]custody.Role{"coord": custody.RoleCoordinator, "nurse1": custody.RoleNurse, "nurse2": custody.RoleNurse,
		"courier1": custody.RoleCourier, "mfg1": custody.RoleManufacturing, "qa1": custody.RoleQA}
	ctx := context.Background()
	for _, id := range slices.Sorted(maps.Keys(roles)) {
		if _, err := svc.AddUser(ctx, id, "Printed "+id, roles[id], benchPassword(id)); err != nil {
			b.Fatal(err)
		}
		u, err := svc.User(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		sb.users[id] = u
	}
	cois := sb.enroll(b, chains, 16)
	journeys := make([][]benchStep, chains)
	for i, coi := range cois {
		j := benchJourney(b, coi)
		j[1].data = json.RawMessage(fmt.Sprintf(`{"shipper":"SHP-A%06d","profile":"refrigerated"}`, i))
		j[5].data = json.RawMessage(fmt.Sprintf(`{"shipper":"SHP-B%06d","profile":"cryogenic"}`, i))
		journeys[i] = j
	}
	steps := func(from, to int) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for c := next.Add(1) - 1; c < int64(chains); c = next.Add(1) - 1 {
					for k := from; k < to; k++ {
						s := journeys[c][k]
						if _, err := svc.Record(ctx, sb.users[s.actor], cois[c], custody.StepRequest{Step: s.step, Data: s.data, Signatures: s.sigs}); err != nil {
							b.Error(fmt.Errorf("step %d (%s) of chain %s: %w", k, s.step, cois[c], err))
							return
						}
					}
				}
			})
		}
		wg.Wait()
		if b.Failed() {
			b.FailNow()
		}
	}
	readings := func(prefix string, start time.Time, tempC float64) {
		batch := make([]custody.Reading, 0, 4096)
		flush := func() {
			if _, err := st.AddReadings(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
		for i := range chains {
			for k := range perLeg {
				t, bat := tempC+float64(k%7)/10, 90.0
				r := custody.Reading{Shipper: fmt.Sprintf("%s%06d", prefix, i), Seq: uint64(k + 1), HasSeq: true,
					DeviceTime: start.Add(time.Duration(k+1) * time.Minute), ReceivedTime: start.Add(time.Duration(k+1)*time.Minute + time.Second), TempC: &t}
				if k%10 == 0 {
					r.BatteryPct = &bat
				}
				if batch = append(batch, r); len(batch) == cap(batch) {
					flush()
				}
			}
		}
		flush()
	}
	steps(0, 2) // collect, ship
	readings("SHP-A", t0, 4.5)
	t1 := t0.Add(time.Duration(perLeg+1) * time.Minute)
	clock.Store(t1.UnixNano())
	steps(2, 6) // receive, manufacture, release, ship
	readings("SHP-B", t1, -180)
	clock.Store(t1.Add(time.Duration(perLeg+1) * time.Minute).UnixNano())
	steps(6, 9) // receive, bedside verification, infusion
}

// BenchmarkVerifyLedgerReadings runs what coid verify runs on the ledger
// (custody.Service.VerifyLedger: every record, then every received leg's
// seal recomputed from its stored readings) over the generated store, and
// reports readings per second (the readings sealed over the whole time)
// and CPU seconds per run.
func BenchmarkVerifyLedgerReadings(b *testing.B) {
	svc, readings := verifyBenchService(b)
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
	svc, _ := verifyBenchService(b)
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
