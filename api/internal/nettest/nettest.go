// Package nettest builds registered networks for the tests of api and
// api/web: organisations, their sites, the couriers' shippers, users bound
// to an organisation and sites, and chains enrolled at those sites. Both
// packages' read-scope, signer-site and network tests (and the network
// benchmarks) build the same kinds of network; this package is the one
// place that knows how.
//
// Everything goes through the service and the store the test built
// (registrations are audited as in production); nothing here keeps state
// between calls. A failure ends the test with tb.Fatalf.
package nettest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/coid-project/coid/custody"
)

// Net is a test environment's service and store as the fixtures use them.
type Net struct {
	Svc   *custody.Service
	Store custody.UserStore
	// Admin registers the network's entries.
	Admin custody.User
	// Password gives a user's password from its ID, as the test's
	// environment signs in with it.
	Password func(id string) string
}

// Site returns a registered site with a valid accreditation (until
// 2027-06-30) and qualification (2026-01-15 to 2027-01-15), in zone (an
// IANA name), in Paris, of the kinds given.
func Site(code, name, org, zone string, kinds ...custody.SiteRole) custody.Site {
	return custody.Site{Code: code, Name: name, Kinds: kinds, Organisation: org, TimeZone: zone,
		Address: "1 avenue Claude Vellefaux, 75010 Paris", Country: "FR",
		Accreditation: custody.Accreditation{Status: custody.AccreditationAccredited, Expiry: "2027-06-30"},
		Qualification: custody.Qualification{TrainingDone: true, Date: "2026-01-15", Expiry: "2027-01-15"}}
}

// Register registers the organisations, then the sites, then the
// shippers, each change with reason.
func (n Net) Register(tb testing.TB, reason string, orgs []custody.Organisation, sites []custody.Site, shippers []custody.Shipper) {
	tb.Helper()
	ctx := context.Background()
	for _, o := range orgs {
		if _, err := n.Svc.RegisterOrganisation(ctx, n.Admin, o, reason); err != nil {
			tb.Fatalf("organisation %s: %v", o.Code, err)
		}
	}
	for _, s := range sites {
		if _, err := n.Svc.RegisterSite(ctx, n.Admin, s, reason); err != nil {
			tb.Fatalf("site %s: %v", s.Code, err)
		}
	}
	for _, sh := range shippers {
		if _, err := n.Svc.RegisterShipper(ctx, n.Admin, sh, reason); err != nil {
			tb.Fatalf("shipper %s: %v", sh.ID, err)
		}
	}
}

// Bind binds an existing user to an organisation and sites ("" and none:
// unbound), directly in the store, as an administrator's change would.
func (n Net) Bind(tb testing.TB, id, org string, sites ...string) {
	tb.Helper()
	if err := n.bind(context.Background(), id, org, sites); err != nil {
		tb.Fatal(err)
	}
}

func (n Net) bind(ctx context.Context, id, org string, sites []string) error {
	sites = slices.Clone(sites)
	slices.Sort(sites)
	if _, err := n.Store.UpdateUser(ctx, id, func(u *custody.User) error {
		u.Organisation, u.Sites = org, sites
		return nil
	}); err != nil {
		return fmt.Errorf("bind user %s: %w", id, err)
	}
	return nil
}

// User is a user of a network: ID, role, organisation and sites.
type User struct {
	ID    string
	Role  custody.Role
	Org   string
	Sites []string
}

// NewUser creates the user, named "Printed <id>", with its password, binds
// it, and returns its first API token. Unlike AddUser it returns its error,
// so goroutines building a large network may call it.
func (n Net) NewUser(ctx context.Context, u User) (string, error) {
	tok, err := n.Svc.AddUser(ctx, u.ID, "Printed "+u.ID, u.Role, n.Password(u.ID))
	if err != nil {
		return "", fmt.Errorf("add user %s: %w", u.ID, err)
	}
	return tok, n.bind(ctx, u.ID, u.Org, u.Sites)
}

// AddUser is NewUser ending the test on a failure.
func (n Net) AddUser(tb testing.TB, u User) string {
	tb.Helper()
	tok, err := n.NewUser(context.Background(), u)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// AddUsers adds each user as AddUser does and returns their tokens by ID.
func (n Net) AddUsers(tb testing.TB, users []User) map[string]string {
	tb.Helper()
	out := make(map[string]string, len(users))
	for _, u := range users {
		out[u.ID] = n.AddUser(tb, u)
	}
	return out
}

// Scope registers the read-scope network: hospital HOSPA (collection site
// COL-1, treatment site TRT-1), the manufacturer MANU (MFG-1), hospital
// HOSPB (collection site OTH-1), a second manufacturer MANU2, courier COUR
// owning shipper, the shipper of the environment's first leg, and courier
// COUR2 owning SHP-0777. All sites are in Europe/Paris.
func (n Net) Scope(tb testing.TB, shipper string) {
	tb.Helper()
	n.Register(tb, "network setup", []custody.Organisation{
		{Code: "HOSPA", Name: "Hospital A", Kind: custody.OrgHospital},
		{Code: "HOSPB", Name: "Hospital B", Kind: custody.OrgHospital},
		{Code: "MANU", Name: "Manufacturer", Kind: custody.OrgManufacturer},
		{Code: "MANU2", Name: "Other manufacturer", Kind: custody.OrgManufacturer},
		{Code: "COUR", Name: "Courier", Kind: custody.OrgCourier},
		{Code: "COUR2", Name: "Other courier", Kind: custody.OrgCourier},
	}, []custody.Site{
		Site("COL-1", "Site COL-1", "HOSPA", "Europe/Paris", custody.SiteCollection),
		Site("TRT-1", "Site TRT-1", "HOSPA", "Europe/Paris", custody.SiteTreatment),
		Site("MFG-1", "Site MFG-1", "MANU", "Europe/Paris", custody.SiteManufacturing),
		Site("OTH-1", "Site OTH-1", "HOSPB", "Europe/Paris", custody.SiteCollection),
	}, []custody.Shipper{
		{ID: shipper, Courier: "COUR", RequalificationDue: "2027-03-01"},
		{ID: "SHP-0777", Courier: "COUR2", RequalificationDue: "2027-03-01"},
	})
}

// ScopeUsers are the people of the read-scope network, one a case: a
// nurse at the chain's collection site (nurse.here) and one at another
// hospital (nurse.there), the chain's manufacturer's QA (qa.manu) and
// another's (qa.other), the chain's courier (courier.cour) and another
// (courier.cour2), and a manufacturing user bound to nothing
// (mfg.unbound).
func ScopeUsers() []User {
	return []User{
		{"nurse.here", custody.RoleNurse, "HOSPA", []string{"COL-1"}},
		{"nurse.there", custody.RoleNurse, "HOSPB", []string{"OTH-1"}},
		{"qa.manu", custody.RoleQA, "MANU", nil},
		{"qa.other", custody.RoleQA, "MANU2", nil},
		{"courier.cour", custody.RoleCourier, "COUR", nil},
		{"courier.cour2", custody.RoleCourier, "COUR2", nil},
		{"mfg.unbound", custody.RoleManufacturing, "", nil},
	}
}

// ScopeSites are the read-scope network's sites of its chain: collection
// at COL-1, manufacturing at MFG-1, treatment at TRT-1.
func ScopeSites() custody.Sites {
	return custody.Sites{Collection: "COL-1", Manufacturing: "MFG-1", Treatment: "TRT-1"}
}

// Enroll enrolls a chain for patient at the sites named, by the
// coordinator as.
func (n Net) Enroll(tb testing.TB, as custody.User, patient custody.PHI, product string, sites custody.Sites) custody.COI {
	tb.Helper()
	ch, err := n.Svc.Enroll(context.Background(), as, custody.EnrollRequest{Patient: patient, Product: product, Sites: sites})
	if err != nil {
		tb.Fatalf("enroll: %v", err)
	}
	return ch.COI
}

// Map maps each chain site name (from before the network) to the code of
// its registered site, as an administrator's migration does.
func (n Net) Map(tb testing.TB, reason string, names map[string]string) {
	tb.Helper()
	for name, code := range names {
		if _, _, err := n.Svc.MapSiteName(context.Background(), n.Admin, name, code, reason); err != nil {
			tb.Fatalf("map %q to %s: %v", name, code, err)
		}
	}
}
