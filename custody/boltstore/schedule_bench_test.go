package boltstore_test

import (
	"context"
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
)

// scheduleBench is a registered network over a bbolt file: a hospital
// site APH-1 (collection and treatment, Paris) and plants PLANT-00 to
// PLANT-nn (New York) making KYM, whose lead times are set, closed on
// Sundays and at Christmas when closed is set; the coordinator works at
// APH-1.
type scheduleBench struct {
	svc   *custody.Service
	store *boltstore.Store
	coord custody.User
}

const benchCoordPassword = "pw-coord-secret"

func newScheduleBench(b *testing.B, plants, chairs, slots int, closed bool) *scheduleBench {
	b.Helper()
	st, err := boltstore.Open(b.TempDir(), boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	svc, err := custody.NewService(custody.Config{Store: st, Hasher: passwd.Fast(), Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return now }, FIN: "A9999", Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles()))})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	admin := custody.User{ID: "admin1", Role: custody.RoleAdmin}
	for _, o := range []custody.Organisation{{Code: "HOSP", Name: "Hospital", Kind: custody.OrgHospital}, {Code: "MAKER", Name: "Maker", Kind: custody.OrgManufacturer}} {
		if _, err := svc.RegisterOrganisation(ctx, admin, o, "set-up"); err != nil {
			b.Fatal(err)
		}
	}
	site := func(code, org, zone string, kinds ...custody.SiteRole) custody.Site {
		return custody.Site{Code: code, Name: code, Kinds: kinds, Organisation: org, TimeZone: zone, Address: "1 rue de la Paix", Country: "FR",
			Accreditation: custody.Accreditation{Status: custody.AccreditationAccredited, Expiry: "2028-06-30"},
			Qualification: custody.Qualification{TrainingDone: true, Date: "2026-01-15", Expiry: "2028-01-15"}}
	}
	sites := []custody.Site{site("APH-1", "HOSP", "Europe/Paris", custody.SiteCollection, custody.SiteTreatment)}
	for i := range plants {
		sites = append(sites, site(fmt.Sprintf("PLANT-%02d", i), "MAKER", "America/New_York", custody.SiteManufacturing))
	}
	for _, s := range sites {
		if _, err := svc.RegisterSite(ctx, admin, s, "set-up"); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := svc.RegisterProduct(ctx, admin, custody.Product{Code: "KYM", Name: "KYM", ISBTCode: "S1234V00", StorageProfile: "cryogenic",
		ShelfLifeHours: 8760, ManufacturingDays: 10, ApheresisToStartDays: 1, ReleaseDays: 3, ShippingDays: 2, InfusionWindowDays: 14}, "set-up"); err != nil {
		b.Fatal(err)
	}
	if _, err := svc.SetCapacity(ctx, admin, "APH-1", custody.Capacity{Chairs: chairs}, "set-up"); err != nil {
		b.Fatal(err)
	}
	for _, s := range sites[1:] {
		c := custody.Capacity{Slots: map[string]int{"KYM": slots}}
		if closed {
			c.ClosedWeekdays = []time.Weekday{time.Sunday}
			c.Closures = []custody.Closure{{From: "2027-12-24", To: "2027-12-26", Reason: "holidays"}}
		}
		if _, err := svc.SetCapacity(ctx, admin, s.Code, c, "set-up"); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := svc.AddUserIn(ctx, "coord", "Printed coord", custody.RoleCoordinator, benchCoordPassword, "HOSP", []string{"APH-1"}); err != nil {
		b.Fatal(err)
	}
	coord, err := svc.User(ctx, "coord")
	if err != nil {
		b.Fatal(err)
	}
	return &scheduleBench{svc: svc, store: st, coord: coord}
}

// enroll enrolls n chains, the i-th made at plant i%plants, from 16
// goroutines.
func (sb *scheduleBench) enroll(b *testing.B, n, plants int) []custody.COI {
	b.Helper()
	out := make([]custody.COI, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				c, err := sb.svc.Enroll(context.Background(), sb.coord, custody.EnrollRequest{Patient: benchPatient(), Product: "KYM",
					Sites: custody.Sites{Collection: "APH-1", Manufacturing: fmt.Sprintf("PLANT-%02d", int(i)%plants), Treatment: "APH-1"}})
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

// BenchmarkAvailability20Plants365Days asks for the free KYM slots of 20
// plants over a year, each plant holding claims on most days (target:
// under 20 ms).
func BenchmarkAvailability20Plants365Days(b *testing.B) {
	const plants = 20
	sb := newScheduleBench(b, plants, 10, 4, true)
	ctx := context.Background()
	// One chain per plant holds a claim on each of its open days, taken
	// through the store as one record each.
	cois := sb.enroll(b, plants, plants)
	from := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, coi := range cois {
		var claims []custody.Claim
		for d := range 365 {
			day := from.AddDate(0, 0, d)
			if day.Weekday() == time.Sunday || day.Month() == time.December && day.Day() >= 24 && day.Day() <= 26 {
				continue
			}
			claims = append(claims, custody.Claim{Site: fmt.Sprintf("PLANT-%02d", i), Date: day.Format(custody.DateLayout), Product: "KYM"})
		}
		now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
		rec := custody.Record{V: custody.EncodingVersion, Chain: coi, Step: custody.StepNote, Time: now, SubmittedBy: "coord",
			Data: []byte(`{"text":"bench claims"}`), Signatures: []custody.Signature{{User: "coord", Name: "Printed coord",
				Role: custody.RoleCoordinator, Meaning: custody.MeaningAuthored, Time: custody.FormatTime(now), Method: custody.MethodPassword}}}
		if _, err := sb.store.Append(ctx, custody.Draft{Record: rec, ExpectRecords: 1, State: custody.StateEnrolled, Claims: claims}); err != nil {
			b.Fatal(err)
		}
	}
	q := custody.AvailabilityQuery{Product: "KYM", From: "2027-01-01", To: "2027-12-31"}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		a, err := sb.svc.Availability(ctx, sb.coord, q)
		if err != nil {
			b.Fatal(err)
		}
		if len(a) != plants || len(a[0].Days) != 365 || a[0].Days[0].Used != 1 {
			b.Fatalf("availability: %d sites", len(a))
		}
	}
}

// BenchmarkBooking64Clients books chains from 64 concurrent clients
// through the service (plan, signature, claims taken in the append's
// transaction) on 20 plants (target: 200 bookings/s).
func BenchmarkBooking64Clients(b *testing.B) {
	const plants, clients = 20, 64
	sb := newScheduleBench(b, plants, 1000, 1000, false)
	n := b.N
	cois := sb.enroll(b, n, plants)
	sigs := []custody.SignatureRequest{{User: "coord", Password: benchCoordPassword, Meaning: custody.MeaningAuthored}}
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range clients {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				date := start.AddDate(0, 0, int(i)/500).Format(custody.DateLayout)
				if _, err := sb.svc.Book(context.Background(), sb.coord, cois[i], custody.BookRequest{ApheresisDate: date, Signatures: sigs}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "bookings/s")
}
