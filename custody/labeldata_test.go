package custody_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/labels"
)

// phiStore is a store whose PHI lookup answers what the test says.
type phiStore struct {
	custody.Store
	phi func(custody.COI) (custody.PHI, error)
}

var _ custody.Store = phiStore{}

func (s phiStore) PHI(_ context.Context, coi custody.COI) (custody.PHI, error) { return s.phi(coi) }

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// labelService is a second service over e's store, with its log captured
// and, when wrap is set, its store wrapped.
func labelService(t *testing.T, e *env, wrap func(custody.Store) custody.Store) (*custody.Service, *lockedBuffer) {
	t.Helper()
	var st custody.Store = e.store
	if wrap != nil {
		st = wrap(st)
	}
	logs := &lockedBuffer{}
	svc, err := custody.NewService(custody.Config{Store: st, Hasher: passwd.Fast(),
		Logger: slog.New(slog.NewJSONHandler(logs, nil)), Now: e.clock, FIN: "A9999",
		Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles()))})
	if err != nil {
		t.Fatal(err)
	}
	return svc, logs
}

func bagOf(coi custody.COI, kind custody.BagKind, n int) custody.BagID {
	return custody.BagID{COI: coi, Kind: kind, N: n}
}

func TestLabelContentRoles(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll()
	e.advance(coi, custody.StateCollected)
	bag := bagOf(coi, custody.BagApheresis, 1)
	for _, u := range testUsers {
		t.Run(u.id, func(t *testing.T) {
			want := u.role != custody.RoleCourier && u.role != custody.RoleAdmin
			if got := custody.MayPrintLabels(u.role); got != want {
				t.Errorf("MayPrintLabels(%s) = %v, want %v", u.role, got, want)
			}
			_, err := e.svc.LabelContent(e.ctx, e.users[u.id], bag)
			_, errs := e.svc.ChainLabelContents(e.ctx, e.users[u.id], coi)
			for _, err := range []error{err, errs} {
				if want && err != nil {
					t.Errorf("%s: %v", u.role, err)
				}
				if !want && !errors.Is(err, custody.ErrForbidden) {
					t.Errorf("%s: err = %v, want ErrForbidden", u.role, err)
				}
			}
		})
	}
	// The role is checked before anything is read: a forbidden role learns
	// nothing about which chains exist.
	_, err := e.svc.LabelContent(e.ctx, e.users["courier1"], bagOf("CHA999926999999", custody.BagApheresis, 1))
	if !errors.Is(err, custody.ErrForbidden) {
		t.Errorf("courier, unknown chain: %v, want ErrForbidden", err)
	}
	if _, err := e.svc.LabelContent(e.ctx, custody.User{ID: "x", Role: custody.RoleSystem}, bag); !errors.Is(err, custody.ErrForbidden) {
		t.Errorf("system role: %v, want ErrForbidden", err)
	}
}

func TestLabelContentApheresis(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll()
	e.advance(coi, custody.StateCollected)
	c, err := e.svc.Chain(e.ctx, coi)
	if err != nil {
		t.Fatal(err)
	}
	collect := c.Records[1]
	nurse := e.users["nurse1"]
	for n := 1; n <= 2; n++ {
		l, err := e.svc.LabelContent(e.ctx, nurse, bagOf(coi, custody.BagApheresis, n))
		if err != nil {
			t.Fatal(err)
		}
		want := custody.LabelContent{
			Bag: bagOf(coi, custody.BagApheresis, n), Product: "Autologous CAR-T cells", DIN: "A999926123456",
			PatientName: patient.Name, BirthDate: patient.BirthDate,
			TimeLabel: custody.LabelCollected, Time: time.Date(2026, 11, 23, 7, 30, 0, 0, time.UTC),
			Site: "St Elsewhere Apheresis", Storage: custody.StorageFresh, Facility: "FIN A9999",
			Registered: collect.Time, RegisteredSeq: collect.Seq,
		}
		if l != want {
			t.Errorf("bag %d:\n got %#v\nwant %#v", n, l, want)
		}
	}
	// Once the first leg ships, the label shows its profile's storage.
	js := journey(coi)[1] // the journey ships cryogenic
	e.must(coi, "nurse1", js.step, js.data, js.sigs...)
	l, err := e.svc.LabelContent(e.ctx, nurse, bagOf(coi, custody.BagApheresis, 1))
	if err != nil {
		t.Fatal(err)
	}
	if l.Storage != custody.StorageCryogenic || l.Registered != collect.Time {
		t.Errorf("after a cryogenic ship: storage %q, registered %v", l.Storage, l.Registered)
	}
}

func TestLabelStorageByProfile(t *testing.T) {
	for profile, want := range map[string]string{
		"refrigerated": "Store at 2-8 °C",
		"cryogenic":    "Store at or below -150 °C",
		"room":         "Store at 15-25 °C",
	} {
		t.Run(profile, func(t *testing.T) {
			e := newEnv(t)
			coi := e.enroll()
			e.advance(coi, custody.StateCollected)
			e.must(coi, "nurse1", custody.StepShip, map[string]any{"shipper": "SHP-1", "profile": profile},
				sig("nurse1", custody.MeaningHandedOver), sig("courier1", custody.MeaningReceived))
			l, err := e.svc.LabelContent(e.ctx, e.users["nurse1"], bagOf(coi, custody.BagApheresis, 2))
			if err != nil {
				t.Fatal(err)
			}
			if l.Storage != want {
				t.Errorf("storage %q, want %q", l.Storage, want)
			}
		})
	}
}

func TestLabelContentFinalProduct(t *testing.T) {
	// manufacture and release data beyond the documented fields are kept
	// in the record, so an expiry can ride on either.
	const mfgExpiry, relExpiry = "2027-05-23T23:59:00+02:00", "2027-06-01T00:00:00Z"
	for _, tc := range []struct {
		name        string
		mfgData     map[string]any
		releaseData map[string]any
		label       string
		time        func(mfg custody.Record) time.Time
	}{
		{"no expiry", map[string]any{"final_bags": 3}, nil, custody.LabelManufactured,
			func(m custody.Record) time.Time { return m.Time }},
		{"expiry at manufacture", map[string]any{"final_bags": 3, "expires_at": mfgExpiry}, map[string]any{"expires_at": relExpiry},
			custody.LabelExpires, func(custody.Record) time.Time { return time.Date(2027, 5, 23, 21, 59, 0, 0, time.UTC) }},
		{"expiry at release", map[string]any{"final_bags": 3}, map[string]any{"expires_at": relExpiry},
			custody.LabelExpires, func(custody.Record) time.Time { return time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			coi := e.enroll()
			e.advance(coi, custody.StateAtManufacturing)
			mfg := e.must(coi, "mfg1", custody.StepManufacture, tc.mfgData, sig("mfg1", custody.MeaningPerformed))
			if tc.releaseData != nil {
				e.must(coi, "qa1", custody.StepRelease, tc.releaseData, sig("qa1", custody.MeaningApproved))
			}
			for n := 1; n <= 3; n++ {
				l, err := e.svc.LabelContent(e.ctx, e.users["mfg1"], bagOf(coi, custody.BagFinalProduct, n))
				if err != nil {
					t.Fatal(err)
				}
				want := custody.LabelContent{
					Bag: bagOf(coi, custody.BagFinalProduct, n), Product: "Autologous CAR-T cells", DIN: "A999926123456",
					PatientName: patient.Name, BirthDate: patient.BirthDate,
					TimeLabel: tc.label, Time: tc.time(mfg).UTC(), Site: "CellWorks NJ",
					Storage: custody.StorageCryogenic, Facility: "FIN A9999",
					Registered: mfg.Time, RegisteredSeq: mfg.Seq,
				}
				if l != want {
					t.Errorf("bag %d:\n got %#v\nwant %#v", n, l, want)
				}
			}
		})
	}
	t.Run("unreadable expiry", func(t *testing.T) {
		e := newEnv(t)
		coi := e.enroll()
		e.advance(coi, custody.StateAtManufacturing)
		e.must(coi, "mfg1", custody.StepManufacture, map[string]any{"final_bags": 1, "expires_at": "next May"},
			sig("mfg1", custody.MeaningPerformed))
		_, err := e.svc.LabelContent(e.ctx, e.users["mfg1"], bagOf(coi, custody.BagFinalProduct, 1))
		if !errors.Is(err, custody.ErrInvalid) || !strings.Contains(err.Error(), "expires_at") {
			t.Errorf("err = %v, want ErrInvalid naming expires_at", err)
		}
		// The apheresis bags still print.
		if _, err := e.svc.LabelContent(e.ctx, e.users["mfg1"], bagOf(coi, custody.BagApheresis, 1)); err != nil {
			t.Error(err)
		}
	})
}

func TestLabelContentNotFound(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll()
	nurse := e.users["nurse1"]
	if _, err := e.svc.ChainLabelContents(e.ctx, nurse, coi); !errors.Is(err, custody.ErrNotFound) || !strings.Contains(err.Error(), "no bags") {
		t.Errorf("chain without bags: %v, want ErrNotFound saying so", err)
	}
	e.advance(coi, custody.StateCollected)
	other := e.enroll()
	for _, tc := range []struct {
		name string
		bag  custody.BagID
	}{
		{"final product before manufacture", bagOf(coi, custody.BagFinalProduct, 1)},
		{"apheresis bag beyond the count", bagOf(coi, custody.BagApheresis, 3)},
		{"bag of a chain without bags", bagOf(other, custody.BagApheresis, 1)},
		{"unknown chain", bagOf("CHA999926999999", custody.BagApheresis, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.svc.LabelContent(e.ctx, nurse, tc.bag); !errors.Is(err, custody.ErrNotFound) {
				t.Errorf("err = %v, want ErrNotFound", err)
			}
		})
	}
	if _, err := e.svc.ChainLabelContents(e.ctx, nurse, "CHA999926999999"); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("unknown chain: %v, want ErrNotFound", err)
	}
}

func TestChainLabelContents(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll()
	e.advance(coi, custody.StateManufactured)
	ls, err := e.svc.ChainLabelContents(e.ctx, e.users["qa1"], coi)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range ls {
		got = append(got, l.Bag.String())
		one, err := e.svc.LabelContent(e.ctx, e.users["qa1"], l.Bag)
		if err != nil || one != l {
			t.Errorf("%s: chain content %#v, bag content %#v, %v", l.Bag, l, one, err)
		}
	}
	want := []string{coi.String() + "-APH-01", coi.String() + "-APH-02", coi.String() + "-FP-01", coi.String() + "-FP-02"}
	if !slices.Equal(got, want) {
		t.Errorf("bags %v, want %v", got, want)
	}
}

// TestLabelPHIChecks: the PHI printed must be the enrolled patient's; a
// store that lost or swapped it stops printing.
func TestLabelPHIChecks(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll()
	e.advance(coi, custody.StateCollected)
	bag := bagOf(coi, custody.BagApheresis, 1)
	real, err := e.store.PHI(e.ctx, coi)
	if err != nil {
		t.Fatal(err)
	}
	swapped := real
	swapped.Name = "John Other"
	for _, tc := range []struct {
		name string
		phi  func(custody.COI) (custody.PHI, error)
		want error
	}{
		{"erased", func(custody.COI) (custody.PHI, error) {
			return custody.PHI{}, fmt.Errorf("phi: %w", custody.ErrNotFound)
		}, custody.ErrNotFound},
		{"another patient", func(custody.COI) (custody.PHI, error) { return swapped, nil }, custody.ErrChainBroken},
		{"store failure", func(custody.COI) (custody.PHI, error) { return custody.PHI{}, custody.ErrClosed }, custody.ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, logs := labelService(t, e, func(s custody.Store) custody.Store { return phiStore{s, tc.phi} })
			_, err := svc.LabelContent(e.ctx, e.users["nurse1"], bag)
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if strings.Contains(logs.String(), "label printed") {
				t.Error("a refused label was logged as printed")
			}
			if strings.Contains(logs.String(), swapped.Name) || strings.Contains(err.Error(), swapped.Name) {
				t.Error("the swapped name leaked")
			}
		})
	}
}

// TestLabelLogging: printing is logged with the chain, bag and user, and
// never with the patient's identifiers.
func TestLabelLogging(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll()
	e.advance(coi, custody.StateManufactured)
	svc, logs := labelService(t, e, nil)
	l, err := svc.LabelContent(e.ctx, e.users["nurse2"], bagOf(coi, custody.BagFinalProduct, 2))
	if err != nil {
		t.Fatal(err)
	}
	if l.PatientName != patient.Name {
		t.Fatalf("label shows %q", l.PatientName)
	}
	if _, err := svc.ChainLabelContents(e.ctx, e.users["qa1"], coi); err != nil {
		t.Fatal(err)
	}
	// A careless caller logging the content logs no PHI either.
	slog.New(slog.NewTextHandler(logs, nil)).Info("careless", "label", l, "as_string", fmt.Sprint(l), "as_v", fmt.Sprintf("%+v", l))
	out := logs.String()
	if n := strings.Count(out, `"msg":"label printed"`); n != 5 {
		t.Errorf("%d label printed lines, want 5 (one per bag):\n%s", n, out)
	}
	for _, want := range []string{`"coi":"` + string(coi) + `"`, `"bag":"` + string(coi) + `-FP-02"`, `"user":"nurse2"`, `"user":"qa1"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	for _, id := range []string{patient.Name, patient.BirthDate, patient.MRN} {
		if strings.Contains(out, id) {
			t.Errorf("log contains patient identifier %q:\n%s", id, out)
		}
	}
}

// TestLabelStorageOfAConfiguredProfile: a profile configured with
// --profiles prints its limits, not its name.
func TestLabelStorageOfAConfiguredProfile(t *testing.T) {
	e := newEnv(t)
	ps, err := custody.ParseProfiles([]byte(`[{"name":"cryo-demo","max_c":-150,"grace":"2s","expected_interval":"1s","silence_intervals":30}]`))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := custody.NewService(custody.Config{Store: e.store, Hasher: passwd.Fast(), Logger: slog.New(slog.DiscardHandler),
		Now: e.clock, FIN: "A9999", Profiles: slices.Sorted(maps.Keys(ps)), Telemetry: custody.TelemetryConfig{Readings: e.store, Profiles: ps}})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	coi := e.enroll()
	e.advance(coi, custody.StateCollected)
	e.must(coi, "nurse1", custody.StepShip, map[string]any{"shipper": "SHP-1", "profile": "cryo-demo"},
		sig("nurse1", custody.MeaningHandedOver), sig("courier1", custody.MeaningReceived))
	l, err := e.svc.LabelContent(e.ctx, e.users["nurse1"], bagOf(coi, custody.BagApheresis, 1))
	if err != nil {
		t.Fatal(err)
	}
	if l.Storage != "Store at or below -150 °C" {
		t.Fatalf("storage %q", l.Storage)
	}
}

// TestEnrollmentRefusesWhatLabelsCannotPrint: the patient's name and the
// product go on every bag label and cannot be changed after enrollment, so
// a name the label fonts cannot print (or too long a product) is refused
// at enrollment, with nothing written, rather than leave a chain whose
// labels can never be printed. The error never quotes the name.
func TestEnrollmentRefusesWhatLabelsCannotPrint(t *testing.T) {
	e := newEnv(t)
	svc, err := custody.NewService(custody.Config{Store: e.store, Hasher: passwd.Fast(), Logger: slog.New(slog.DiscardHandler),
		Now: e.clock, FIN: "A9999", Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles())), LabelText: labels.CheckEnrollment})
	if err != nil {
		t.Fatal(err)
	}
	enroll := func(name, product string) error {
		_, err := svc.Enroll(e.ctx, e.users["coord"], custody.EnrollRequest{Patient: custody.PHI{Name: name, BirthDate: "1970-01-02", MRN: "MRN-777"},
			Product: product, Sites: custody.Sites{Collection: "A", Manufacturing: "B", Treatment: "C"}})
		return err
	}
	before := e.records()
	for _, tc := range []struct{ name, product string }{
		{"Łukasz Wójcik", "CAR-T"},
		{"Иван Петров", "CAR-T"},
		{"Jane Doe\u202e", "CAR-T"},
		{"Jane Doe", strings.Repeat("Autologous ", 5)},
		{"Jane Doe", "CAR-T ✓"},
	} {
		err := enroll(tc.name, tc.product)
		if !errors.Is(err, custody.ErrInvalid) || !strings.Contains(err.Error(), "labels could not print") {
			t.Errorf("%q / %q: %v", tc.name, tc.product, err)
		}
		if err != nil && strings.Contains(err.Error(), "Łukasz") || err != nil && strings.Contains(err.Error(), "Иван") {
			t.Errorf("the refusal quotes the patient's name: %v", err)
		}
	}
	if e.records() != before {
		t.Fatal("refused enrollments wrote records")
	}
	if err := enroll("José Núñez-O'Brien", "Autologous CAR-T cells"); err != nil {
		t.Fatalf("a name the labels print: %v", err)
	}
}
