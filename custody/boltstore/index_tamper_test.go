package boltstore

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/custody/storetest"
	bolt "go.etcd.io/bbolt"
)

// The chains bucket (summaries and record positions) is not hashed: these
// tests change it on disk, as someone with the file could, and check that
// verification names the chain and that the service's reads refuse it.

// tamperEnv is a service on a bbolt file that a test closes, changes with
// bbolt directly, and reopens.
type tamperEnv struct {
	t     *testing.T
	ctx   context.Context
	dir   string
	st    *Store
	svc   *custody.Service
	clock time.Time
}

func newTamperEnv(t *testing.T) *tamperEnv {
	e := &tamperEnv{t: t, ctx: context.Background(), dir: t.TempDir(), clock: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	e.open()
	for id, r := range map[string]custody.Role{"coord": custody.RoleCoordinator, "n1": custody.RoleNurse, "n2": custody.RoleNurse,
		"cour": custody.RoleCourier, "mfg": custody.RoleManufacturing, "qa": custody.RoleQA} {
		if _, err := e.svc.AddUser(e.ctx, id, "P "+id, r, "pw-"+id+"-secret"); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *tamperEnv) open() {
	e.st = openT(e.t, e.dir)
	e.t.Cleanup(func() { e.st.Close() })
	svc, err := custody.NewService(custody.Config{Store: e.st, Hasher: passwd.Fast(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { e.clock = e.clock.Add(time.Minute); return e.clock }, FIN: "A9999",
		Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles())), Telemetry: custody.TelemetryConfig{Readings: e.st}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.svc = svc
}

// tamperChain closes the store, lets fn change coi's chain entry in the
// file, and reopens the store and the service.
func (e *tamperEnv) tamperChain(coi custody.COI, fn func(ce *chainEntry)) {
	e.t.Helper()
	e.st.Close()
	db, err := bolt.Open(e.dir+"/"+FileName, 0o600, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		ce, err := getChain(tx, coi)
		if err != nil {
			return err
		}
		fn(ce)
		return tx.Bucket(bucketChains).Put([]byte(coi), encodeChain(nil, ce))
	}); err != nil {
		e.t.Fatal(err)
	}
	db.Close()
	e.open()
}

func (e *tamperEnv) user(id string) custody.User {
	u, err := e.st.User(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func tsig(id string, m custody.Meaning) custody.SignatureRequest {
	return custody.SignatureRequest{User: id, Password: "pw-" + id + "-secret", Meaning: m}
}

func (e *tamperEnv) enroll() custody.COI {
	c, err := e.svc.Enroll(e.ctx, e.user("coord"), custody.EnrollRequest{Patient: custody.PHI{Name: "Jane Doe", BirthDate: "1970-01-02", MRN: "MRN-1"},
		Product: "CAR-T", Sites: custody.Sites{Collection: "A", Manufacturing: "B", Treatment: "C"}})
	if err != nil {
		e.t.Fatal(err)
	}
	return c.COI
}

func (e *tamperEnv) step(coi custody.COI, st custody.Step, data any, sigs ...custody.SignatureRequest) (custody.Record, error) {
	b, err := json.Marshal(data)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.svc.Record(e.ctx, e.user("n1"), coi, custody.StepRequest{Step: st, Data: b, Signatures: sigs})
}

func (e *tamperEnv) must(coi custody.COI, st custody.Step, data any, sigs ...custody.SignatureRequest) custody.Record {
	e.t.Helper()
	r, err := e.step(coi, st, data, sigs...)
	if err != nil {
		e.t.Fatalf("%s: %v", st, err)
	}
	return r
}

// collectAndShip takes a chain from enrolled to in transit to
// manufacturing.
func (e *tamperEnv) collectAndShip(coi custody.COI) {
	e.must(coi, custody.StepCollect, map[string]any{"din": "A999926123456", "volume_ml": 200, "bags": 1, "started_at": "2026-11-23T06:00:00Z",
		"ended_at": "2026-11-23T07:00:00Z"}, tsig("n1", custody.MeaningPerformed), tsig("n2", custody.MeaningVerified))
	e.must(coi, custody.StepShip, map[string]any{"shipper": "SHP-0042", "profile": "cryogenic"},
		tsig("n1", custody.MeaningHandedOver), tsig("cour", custody.MeaningReceived))
}

// verifyFails runs what `coid verify` and GET /api/v1/verify run, and
// checks that it fails at record wantBad naming chain coi and saying
// each of want.
func (e *tamperEnv) verifyFails(coi custody.COI, wantBad uint64, want ...string) {
	e.t.Helper()
	for name, verify := range map[string]func() (custody.Report, error){
		"VerifyLog":      func() (custody.Report, error) { return custody.VerifyLog(e.ctx, e.st) },
		"VerifyLedger":   func() (custody.Report, error) { return e.svc.VerifyLedger(e.ctx) },
		"VerifyLedgerAt": func() (custody.Report, error) { return e.svc.VerifyLedgerAt(e.ctx, nil) },
	} {
		rep, err := verify()
		if err != nil {
			e.t.Fatalf("%s: %v", name, err)
		}
		if rep.OK || rep.FirstBad != wantBad || rep.Chain != coi {
			e.t.Fatalf("%s: %+v; want a failure at record %d of chain %s", name, rep, wantBad, coi)
		}
		for _, w := range want {
			if !strings.Contains(rep.Problem, w) {
				e.t.Errorf("%s: problem %q does not say %q", name, rep.Problem, w)
			}
		}
		if !errors.Is(rep.Err(), custody.ErrChainBroken) {
			e.t.Errorf("%s: Err() = %v", name, rep.Err())
		}
	}
}

// TestIndexPointingAtAnotherChainsRecord points chain A's excursion
// position at chain B's note: the count, head and state stay as they were,
// so only the positions give it away. Folded from the index alone, the
// excursion would vanish and release would go through.
func TestIndexPointingAtAnotherChainsRecord(t *testing.T) {
	e := newTamperEnv(t)
	a, b := e.enroll(), e.enroll()
	other := e.must(b, custody.StepNote, map[string]any{"text": "hello"}, tsig("n1", custody.MeaningAuthored))
	e.collectAndShip(a)
	c, err := e.svc.Chain(e.ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	exc, _, err := e.svc.RecordExcursion(e.ctx, a, 1, custody.Excursion{ID: "temperature/x", Kind: custody.ExcursionTemperature,
		Start: c.Legs[0].ShippedAt.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	e.must(a, custody.StepReceive, map[string]any{"seal_intact": true}, tsig("mfg", custody.MeaningReceived))
	e.must(a, custody.StepManufacture, map[string]any{"final_bags": 1}, tsig("mfg", custody.MeaningPerformed))
	if _, err := e.step(a, custody.StepRelease, map[string]any{}, tsig("qa", custody.MeaningApproved)); !errors.Is(err, custody.ErrConflict) {
		t.Fatalf("release with an open excursion: %v, want ErrConflict", err)
	}
	if rep, err := custody.VerifyLog(e.ctx, e.st); err != nil || !rep.OK {
		t.Fatalf("before tampering: %+v %v", rep, err)
	}

	e.tamperChain(a, func(ce *chainEntry) { ce.Seqs[slices.Index(ce.Seqs, exc.Seq)] = other.Seq })

	e.verifyFails(a, exc.Seq, "index", string(b))
	// The service's reads refuse the chain instead of folding it without
	// its excursion.
	if _, err := e.st.Records(e.ctx, a); !errors.Is(err, custody.ErrChainBroken) || !strings.Contains(err.Error(), "record 3") {
		t.Errorf("store Records: %v, want ErrChainBroken naming record 3", err)
	}
	if _, err := e.svc.Chain(e.ctx, a); !errors.Is(err, custody.ErrChainBroken) {
		t.Errorf("service Chain: %v, want ErrChainBroken", err)
	}
	if r, err := e.step(a, custody.StepRelease, map[string]any{}, tsig("qa", custody.MeaningApproved)); err == nil {
		t.Errorf("release of a chain with an open excursion went through after the index was altered: record %d", r.Seq)
	}
	// Chain B is untouched and still reads.
	if _, err := e.svc.Chain(e.ctx, b); err != nil {
		t.Errorf("chain B: %v", err)
	}
}

// TestSummaryStateChanged sets the stored state of a chain in transit to
// infused. Nothing hashed changes; verification must name the chain and
// the state its records lead to, and the chain as the service reads it
// keeps its true state.
func TestSummaryStateChanged(t *testing.T) {
	e := newTamperEnv(t)
	coi := e.enroll()
	e.collectAndShip(coi)
	// The ship record, the chain's third and the log's, set the state.
	e.tamperChain(coi, func(ce *chainEntry) { ce.State = custody.StateInfused })

	e.verifyFails(coi, 3, `"infused"`, string(custody.StateToManufacturing))
	c, err := e.svc.Chain(e.ctx, coi)
	if err != nil || c.State != custody.StateToManufacturing {
		t.Fatalf("service Chain: %v %v, want the state its records lead to", c.State, err)
	}
	rep, err := e.svc.VerifyChain(e.ctx, coi)
	if err != nil || rep.OK || !strings.Contains(rep.Problem, `"infused"`) {
		t.Fatalf("VerifyChain: %+v %v", rep, err)
	}
}

// TestIndexTamperTable changes the chain entries of a filled store in
// other ways that keep count, head and state: verification fails at the
// chain's record the index no longer leads to, and Records refuses.
func TestIndexTamperTable(t *testing.T) {
	const chains, per = 3, 4 // record k belongs to chain (k-1)%3+1: chain 2 holds 2, 5, 8, 11
	tests := []struct {
		name    string
		change  func(ce *chainEntry)
		wantBad uint64
		say     string
	}{
		{"two positions swapped", func(ce *chainEntry) { ce.Seqs[1], ce.Seqs[2] = ce.Seqs[2], ce.Seqs[1] }, 5, "record 8 as its record 2, but that is the chain's record 3"},
		{"a position repeated", func(ce *chainEntry) { ce.Seqs[1] = ce.Seqs[0] }, 5, "record 2 as its record 2, but that is the chain's record 1"},
		{"a position past the log", func(ce *chainEntry) { ce.Seqs[2] = 99 }, 8, "no record"},
		{"a position of another chain", func(ce *chainEntry) { ce.Seqs[0] = 1 }, 2, "chain " + string(storetest.COI(1))},
		{"no record of the chain at all", func(ce *chainEntry) { copy(ce.Seqs, []uint64{1, 4, 7, 11}) }, 2, "chain " + string(storetest.COI(1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir)
			fill(t, s, chains, per)
			s.Close()
			db, err := bolt.Open(dir+"/"+FileName, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(tx *bolt.Tx) error {
				ce, err := getChain(tx, storetest.COI(2))
				if err != nil {
					return err
				}
				tt.change(ce)
				return tx.Bucket(bucketChains).Put([]byte(storetest.COI(2)), encodeChain(nil, ce))
			}); err != nil {
				t.Fatal(err)
			}
			db.Close()
			s = openT(t, dir)
			defer s.Close()
			rep := verify(t, s)
			if rep.OK || rep.FirstBad != tt.wantBad || rep.Chain != storetest.COI(2) || !strings.Contains(rep.Problem, tt.say) {
				t.Fatalf("report %+v, want record %d of chain %s named, saying %q", rep, tt.wantBad, storetest.COI(2), tt.say)
			}
			if _, err := s.Records(context.Background(), storetest.COI(2)); !errors.Is(err, custody.ErrChainBroken) {
				t.Fatalf("Records: %v, want ErrChainBroken", err)
			}
			for _, c := range []int{1, 3} {
				if _, err := s.Records(context.Background(), storetest.COI(c)); err != nil {
					t.Fatalf("untouched chain %d: %v", c, err)
				}
			}
		})
	}
}
