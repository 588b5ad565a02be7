package boltstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
)

// BenchmarkSiteLookup reads one of 100 registered sites through the
// service (the store's read and the decoding), as each step that checks
// its site will.
func BenchmarkSiteLookup(b *testing.B) {
	store, err := boltstore.Open(b.TempDir(), boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	svc, err := custody.NewService(custody.Config{Store: store, Hasher: passwd.Fast(), Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC) }, FIN: "A9999",
		Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles()))})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	admin := custody.User{ID: "admin1", Role: custody.RoleAdmin}
	if _, err := svc.RegisterOrganisation(ctx, admin, custody.Organisation{Code: "HOSP", Name: "Hospital", Kind: custody.OrgHospital}, "set-up"); err != nil {
		b.Fatal(err)
	}
	const sites = 100
	for i := range sites {
		s := custody.Site{Code: fmt.Sprintf("SITE-%03d", i), Name: fmt.Sprintf("Site %d", i), Kinds: []custody.SiteRole{custody.SiteCollection, custody.SiteTreatment},
			Organisation: "HOSP", TimeZone: "Europe/Paris", Address: "1 rue de la Paix, Paris", Country: "FR", FIN: "F1234", GLN: "4006381333931",
			Accreditation: custody.Accreditation{Status: custody.AccreditationAccredited, Expiry: "2027-06-30"},
			Qualification: custody.Qualification{TrainingDone: true, Date: "2026-01-15", Expiry: "2027-01-15"}}
		if _, err := svc.RegisterSite(ctx, admin, s, "set-up"); err != nil {
			b.Fatal(err)
		}
	}
	nurse := custody.User{ID: "nurse1", Role: custody.RoleNurse}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		code := fmt.Sprintf("SITE-%03d", i%sites)
		if _, err := svc.Site(ctx, nurse, code); err != nil {
			b.Fatal(err)
		}
	}
}
