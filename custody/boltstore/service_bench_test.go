package boltstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/custody/phitext"
)

// The benchmarks in this file drive the whole path of a recorded step
// through the domain (custody.Service.Record: parse and check the step
// data, fold the chain, authenticate the signers, seal a leg at receipt,
// append through the bbolt writer) over a real file, configured as the
// server configures it. They use only the service's exported API, so that
// the same file measures older and newer trees alike.

// benchPatient is every benchmark chain's patient.
func benchPatient() custody.PHI {
	return custody.PHI{Name: "Jane Q Doe", BirthDate: "1970-01-02", MRN: "MRN-0012345"}
}

// benchStep is one step of the default journey after enrollment.
type benchStep struct {
	actor string
	step  custody.Step
	data  json.RawMessage
	sigs  []custody.SignatureRequest
}

// serviceBench is a service over a bbolt file in a temporary directory,
// with one user of each role.
type serviceBench struct {
	svc   *custody.Service
	users map[string]custody.User
}

func benchPassword(id string) string { return "pw-" + id + "-secret" }

func newServiceBench(b *testing.B) *serviceBench {
	b.Helper()
	st, err := boltstore.Open(b.TempDir(), boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	// A still clock, after the collection times in the journey's data.
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	svc, err := custody.NewService(custody.Config{Store: st, Hasher: passwd.Fast(), Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return now }, FIN: "A9999", Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles())),
		Telemetry: custody.TelemetryConfig{Readings: st}, Folder: phitext.Folder{}})
	if err != nil {
		b.Fatal(err)
	}
	sb := &serviceBench{svc: svc, users: map[string]custody.User{}}
	roles := map[string]custody.Role{"coord": custody.RoleCoordinator, "nurse1": custody.RoleNurse, "nurse2": custody.RoleNurse,
		"courier1": custody.RoleCourier, "mfg1": custody.RoleManufacturing, "qa1": custody.RoleQA}
	ctx := context.Background()
	for _, id := range slices.Sorted(maps.Keys(roles)) {
		if _, err := svc.AddUser(ctx, id, "Printed "+id, roles[id], benchPassword(id)); err != nil {
			b.Fatal(err)
		}
		if sb.users[id], err = svc.User(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
	return sb
}

// enroll starts n chains from callers goroutines (so their commits are
// grouped) and returns their identifiers.
func (sb *serviceBench) enroll(b testing.TB, n, callers int) []custody.COI {
	b.Helper()
	out := make([]custody.COI, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				c, err := sb.svc.Enroll(context.Background(), sb.users["coord"], custody.EnrollRequest{Patient: benchPatient(),
					Product: "Autologous CAR-T cells", Sites: custody.Sites{Collection: "St Elsewhere Apheresis",
						Manufacturing: "CellWorks NJ", Treatment: "St Elsewhere BMT"}})
				if err != nil {
					b.Error(err)
					return
				}
				out[i] = c.COI
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	return out
}

// benchJourney returns the default journey's steps after enrollment, in
// order, for chain coi: nine records from collection to infusion.
func benchJourney(b testing.TB, coi custody.COI) []benchStep {
	sig := func(user string, m custody.Meaning) custody.SignatureRequest {
		return custody.SignatureRequest{User: user, Password: benchPassword(user), Meaning: m}
	}
	raw := func(v any) json.RawMessage {
		j, err := json.Marshal(v)
		if err != nil {
			b.Fatal(err)
		}
		return j
	}
	fp1 := custody.LabelPayload(custody.BagID{COI: coi, Kind: custody.BagFinalProduct, N: 1})
	return []benchStep{
		{"nurse1", custody.StepCollect, raw(map[string]any{"din": "A999926123456", "volume_ml": 212.5, "bags": 2,
			"started_at": "2026-11-23T06:00:00Z", "ended_at": "2026-11-23T07:30:00Z"}),
			[]custody.SignatureRequest{sig("nurse1", custody.MeaningPerformed), sig("nurse2", custody.MeaningVerified)}},
		{"nurse1", custody.StepShip, raw(map[string]any{"shipper": "SHP-0042", "profile": "refrigerated"}),
			[]custody.SignatureRequest{sig("nurse1", custody.MeaningHandedOver), sig("courier1", custody.MeaningReceived)}},
		{"mfg1", custody.StepReceive, raw(map[string]any{"seal_intact": true}), []custody.SignatureRequest{sig("mfg1", custody.MeaningReceived)}},
		{"mfg1", custody.StepManufacture, raw(map[string]any{"final_bags": 2}), []custody.SignatureRequest{sig("mfg1", custody.MeaningPerformed)}},
		{"qa1", custody.StepRelease, raw(map[string]any{}), []custody.SignatureRequest{sig("qa1", custody.MeaningApproved)}},
		{"mfg1", custody.StepShip, raw(map[string]any{"shipper": "SHP-0099", "profile": "cryogenic"}),
			[]custody.SignatureRequest{sig("mfg1", custody.MeaningHandedOver), sig("courier1", custody.MeaningReceived)}},
		{"nurse1", custody.StepReceive, raw(map[string]any{"seal_intact": true}), []custody.SignatureRequest{sig("nurse1", custody.MeaningReceived)}},
		{"nurse1", custody.StepBedsideVerify, raw(map[string]any{"bag_code": fp1, "wristband_code": benchPatient().MRN}),
			[]custody.SignatureRequest{sig("nurse1", custody.MeaningVerified), sig("nurse2", custody.MeaningVerified)}},
		{"nurse1", custody.StepInfuse, raw(map[string]any{}), []custody.SignatureRequest{sig("nurse1", custody.MeaningPerformed)}},
	}
}

// runServiceRecord records b.N journey steps from callers goroutines, each
// walking its own chains from collection to infusion, then taking the next
// chain enrolled beforehand (enrollment is not timed). It reports the
// recorded steps per second.
func runServiceRecord(b *testing.B, callers int) {
	sb := newServiceBench(b)
	const perChain = 9
	chains := sb.enroll(b, b.N/perChain+callers+1, callers)
	journeys := make([][]benchStep, len(chains))
	for i, coi := range chains {
		journeys[i] = benchJourney(b, coi)
	}
	var ops, nextChain atomic.Int64
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			c, k := nextChain.Add(1)-1, 0
			for ops.Add(1) <= int64(b.N) {
				if k == perChain {
					c, k = nextChain.Add(1)-1, 0
				}
				s := journeys[c][k]
				if _, err := sb.svc.Record(ctx, sb.users[s.actor], chains[c], custody.StepRequest{Step: s.step, Data: s.data, Signatures: s.sigs}); err != nil {
					b.Error(fmt.Errorf("step %d (%s) of chain %s: %w", k, s.step, chains[c], err))
					return
				}
				k++
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
}

// BenchmarkServiceRecord measures recorded steps (Service.Record, from
// collection to infusion) with 16 concurrent callers, each on its own
// chains, so commits are grouped and the domain's own work shows.
func BenchmarkServiceRecord(b *testing.B) { runServiceRecord(b, 16) }

// BenchmarkServiceRecord1Caller is the same path with one caller: every
// record pays its commit's fsyncs alone.
func BenchmarkServiceRecord1Caller(b *testing.B) { runServiceRecord(b, 1) }
