package custody_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
)

// env is a service over a real bbolt file with one user of each role.
type env struct {
	t     testing.TB
	svc   *custody.Service
	store *boltstore.Store
	ctx   context.Context
	mu    sync.Mutex
	now   time.Time
	users map[string]custody.User
	// logs holds everything the service logged.
	logs lockedBuffer
}

var testUsers = []struct {
	id   string
	role custody.Role
}{
	{"coord", custody.RoleCoordinator}, {"nurse1", custody.RoleNurse}, {"nurse2", custody.RoleNurse},
	{"courier1", custody.RoleCourier}, {"mfg1", custody.RoleManufacturing}, {"mfg2", custody.RoleManufacturing},
	{"qa1", custody.RoleQA}, {"admin1", custody.RoleAdmin},
}

func password(id string) string { return "pw-" + id + "-secret" }

func newEnv(t testing.TB) *env {
	t.Helper()
	store, err := boltstore.Open(t.TempDir(), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: store, ctx: context.Background(), now: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), users: map[string]custody.User{}}
	svc, err := custody.NewService(custody.Config{Store: store, Hasher: passwd.Fast(), Logger: slog.New(slog.NewTextHandler(&e.logs, nil)),
		Now: e.clock, FIN: "A9999", Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles()))})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	for _, u := range testUsers {
		if _, err := svc.AddUser(e.ctx, u.id, "Printed "+u.id, u.role, password(u.id)); err != nil {
			t.Fatal(err)
		}
		e.users[u.id], _ = store.User(e.ctx, u.id)
	}
	t.Cleanup(func() {
		// Every test leaves a ledger that verifies.
		rep, err := custody.VerifyLog(e.ctx, store)
		if err != nil || !rep.OK {
			t.Errorf("ledger does not verify after test: %+v %v", rep, err)
		}
		// Nor does it leave an index that disagrees with the ledger.
		if err := store.CheckFile(e.ctx); err != nil {
			t.Errorf("store check after test: %v", err)
		}
		store.Close()
	})
	return e
}

// clock advances one minute per reading so records have distinct times.
func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(time.Minute)
	return e.now
}

func (e *env) records() uint64 {
	e.t.Helper()
	seq, _, err := e.store.Head(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return seq
}

func sig(user string, m custody.Meaning) custody.SignatureRequest {
	return custody.SignatureRequest{User: user, Password: password(user), Meaning: m}
}

var patient = custody.PHI{Name: "Jane Q Doe", BirthDate: "1970-01-02", MRN: "MRN-0012345"}

func (e *env) enroll() custody.COI {
	e.t.Helper()
	c, err := e.svc.Enroll(e.ctx, e.users["coord"], custody.EnrollRequest{Patient: patient, Product: "Autologous CAR-T cells",
		Sites: custody.Sites{Collection: "St Elsewhere Apheresis", Manufacturing: "CellWorks NJ", Treatment: "St Elsewhere BMT"}})
	if err != nil {
		e.t.Fatal(err)
	}
	return c.COI
}

func (e *env) step(coi custody.COI, actor string, step custody.Step, data any, sigs ...custody.SignatureRequest) (custody.Record, error) {
	b, err := json.Marshal(data)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.svc.Record(e.ctx, e.users[actor], coi, custody.StepRequest{Step: step, Data: b, Signatures: sigs})
}

func (e *env) must(coi custody.COI, actor string, step custody.Step, data any, sigs ...custody.SignatureRequest) custody.Record {
	e.t.Helper()
	r, err := e.step(coi, actor, step, data, sigs...)
	if err != nil {
		e.t.Fatalf("%s: %v", step, err)
	}
	return r
}

type journeyStep struct {
	step custody.Step
	data any
	sigs []custody.SignatureRequest
}

// journey returns the default journey's steps after enroll, in order.
func journey(coi custody.COI) []journeyStep {
	return []journeyStep{
		{custody.StepCollect, map[string]any{"din": "A999926123456", "volume_ml": 212.5, "bags": 2,
			"started_at": "2026-11-23T06:00:00Z", "ended_at": "2026-11-23T07:30:00Z"},
			[]custody.SignatureRequest{sig("nurse1", custody.MeaningPerformed), sig("nurse2", custody.MeaningVerified)}},
		{custody.StepShip, map[string]any{"shipper": "SHP-0042", "profile": "cryogenic"},
			[]custody.SignatureRequest{sig("nurse1", custody.MeaningHandedOver), sig("courier1", custody.MeaningReceived)}},
		{custody.StepReceive, map[string]any{"seal_intact": true}, []custody.SignatureRequest{sig("mfg1", custody.MeaningReceived)}},
		{custody.StepManufacture, map[string]any{"final_bags": 2}, []custody.SignatureRequest{sig("mfg1", custody.MeaningPerformed)}},
		{custody.StepRelease, map[string]any{}, []custody.SignatureRequest{sig("qa1", custody.MeaningApproved)}},
		{custody.StepShip, map[string]any{"shipper": "SHP-0043", "profile": "cryogenic"},
			[]custody.SignatureRequest{sig("mfg1", custody.MeaningHandedOver), sig("courier1", custody.MeaningReceived)}},
		{custody.StepReceive, map[string]any{"seal_intact": true}, []custody.SignatureRequest{sig("nurse1", custody.MeaningReceived)}},
		{custody.StepBedsideVerify, map[string]any{"bag_code": custody.LabelPayload(custody.BagID{COI: coi, Kind: custody.BagFinalProduct, N: 1}),
			"wristband_code": patient.MRN}, []custody.SignatureRequest{sig("nurse1", custody.MeaningVerified), sig("nurse2", custody.MeaningVerified)}},
		{custody.StepInfuse, map[string]any{}, []custody.SignatureRequest{sig("nurse2", custody.MeaningPerformed)}},
	}
}

// advance records the journey's steps until the chain is in state s.
func (e *env) advance(coi custody.COI, s custody.State) {
	e.t.Helper()
	for _, js := range journey(coi) {
		c, err := e.svc.Chain(e.ctx, coi)
		if err != nil {
			e.t.Fatal(err)
		}
		if c.State == s {
			return
		}
		e.must(coi, "nurse1", js.step, js.data, js.sigs...)
	}
	if c, _ := e.svc.Chain(e.ctx, coi); c.State != s {
		panic(fmt.Sprintf("journey never reaches %s", s))
	}
}
