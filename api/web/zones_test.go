package web_test

import (
	"context"
	"testing"

	"github.com/coid-project/coid/custody"
)

// TestTimelineSiteZones checks that the chain page shows a record at a
// registered site in that site's local time, zone named, with UTC beside
// it, and a record at a site from before the network in UTC only.
func TestTimelineSiteZones(t *testing.T) {
	e := newWebEnv(t, false)
	ctx := context.Background()
	admin := e.users[wAdmin]
	enroll := func(collection string) custody.COI {
		ch, err := e.svc.Enroll(ctx, e.users[wCoord], custody.EnrollRequest{
			Patient: custody.PHI{Name: webPatient.Name, BirthDate: webPatient.BirthDate, MRN: webPatient.MRN},
			Product: "Autologous anti-CD19 CAR-T", Sites: custody.Sites{Collection: collection,
				Manufacturing: "CellWorks Plant 2", Treatment: "St. Mary Oncology"}})
		if err != nil {
			t.Fatalf("enroll: %v", err)
		}
		return ch.COI
	}
	// Both chains are enrolled before the network is registered; the
	// administrator then maps one's collection site name to CHI-1.
	registered, old := enroll("Midwest Apheresis"), enroll("St. Mary Apheresis")
	if _, err := e.svc.RegisterOrganisation(ctx, admin, custody.Organisation{Code: "MIDWEST", Name: "Midwest Health", Kind: custody.OrgHospital}, "network set-up"); err != nil {
		t.Fatal(err)
	}
	site := custody.Site{Code: "CHI-1", Name: "Midwest Apheresis", Kinds: []custody.SiteRole{custody.SiteCollection, custody.SiteTreatment},
		Organisation: "MIDWEST", TimeZone: "America/Chicago", Address: "1 Lake Shore Drive, Chicago", Country: "US",
		FIN: "F1234", GLN: "4006381333931",
		Accreditation: custody.Accreditation{Status: custody.AccreditationAccredited, Expiry: "2027-06-30"},
		Qualification: custody.Qualification{TrainingDone: true, Date: "2026-01-15", Expiry: "2027-01-15"}}
	if _, err := e.svc.RegisterSite(ctx, admin, site, "network set-up"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.MapSiteName(ctx, admin, "Midwest Apheresis", "CHI-1", "network set-up"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.UpdateUser(ctx, wCoord, func(u *custody.User) error {
		u.Organisation, u.Sites = "MIDWEST", []string{"CHI-1"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b := e.login(wCoord)
	// The clock stands at 2026-11-22 12:00 UTC: 06:00 in Chicago (CST).
	p := b.get(coiPath(registered))
	wantCode(t, p, 200, "registered chain")
	wantBody(t, p, "registered chain", `title="2026-11-22 12:00 UTC">2026-11-22 06:00 CST</time> <span class="muted">(2026-11-22 12:00 UTC)</span>`)
	p = b.get(coiPath(old))
	wantCode(t, p, 200, "old chain")
	wantBody(t, p, "old chain", `<time datetime="2026-11-22T12:00:00Z">2026-11-22 12:00 UTC</time> <span class="muted">at St. Mary Apheresis</span>`)
	wantNotBody(t, p, "old chain", "CST")
}
