package web_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/coid-project/coid/custody"
)

// BenchmarkAdminUsers: the accounts screen of a network of 5,000 users
// over 100 sites (a real bbolt file): the first page, a page filtered by
// site and role, a text search, a page deep in the list, and one
// account's page, timed request by request (p99).
func BenchmarkAdminUsers(b *testing.B) {
	e := newWebEnv(b, false)
	ctx := context.Background()
	adm := e.users[wAdmin]
	if _, err := e.svc.RegisterOrganisation(ctx, adm, custody.Organisation{Code: "HOSP", Name: "Hospital", Kind: custody.OrgHospital}, "bench"); err != nil {
		b.Fatal(err)
	}
	parallel(b, 100, func(i int) error {
		_, err := e.svc.RegisterSite(ctx, adm, custody.Site{Code: fmt.Sprintf("S%03d", i), Name: fmt.Sprintf("Site %d", i),
			Kinds: []custody.SiteRole{custody.SiteCollection, custody.SiteTreatment}, Organisation: "HOSP", TimeZone: "Europe/Paris",
			Address: "1 rue X", Country: "FR", Accreditation: custody.Accreditation{Status: custody.AccreditationAccredited, Expiry: "2027-06-30"},
			Qualification: custody.Qualification{TrainingDone: true, Date: "2026-01-01", Expiry: "2027-01-01"}}, "bench")
		return err
	})
	// Stored directly: AddUser compares each new ID with every stored one,
	// which makes the fixture, not the screen, quadratic.
	now := e.clock.Now()
	parallel(b, benchUsers, func(i int) error {
		id := fmt.Sprintf("nurse.b%04d", i)
		_, th, err := custody.NewToken()
		if err != nil {
			return err
		}
		return e.store.CreateUser(ctx, custody.User{ID: id, Name: "Nurse " + id, Role: custody.RoleNurse, Organisation: "HOSP",
			Sites: []string{fmt.Sprintf("S%03d", i%100)}, PasswordHash: "not a hash", Created: now, PasswordChanged: now}, th)
	})
	br := e.login(wAdmin)
	for _, c := range []struct{ name, path string }{
		{"first_page", "/admin/users"},
		{"site_and_role", "/admin/users?site=S042&role=nurse"},
		{"text", "/admin/users?q=b49"},
		{"deep_page", "/admin/users?after=nurse.b4900"},
		{"account", "/admin/users/nurse.b1234"},
	} {
		b.Run(c.name, func(b *testing.B) { timed(b, func() int { return br.get(c.path).Code }) })
	}
}
