package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

// scopeNetwork registers hospital HOSPA (sites COL-1, TRT-1), the
// manufacturer MANU (MFG-1), hospital HOSPB (OTH-1), the manufacturer
// MANU2, courier COUR owning shipper SHP-0001 (the first leg of advance)
// and courier COUR2, and binds one user per case to them.
func scopeNetwork(t *testing.T, e *webEnv) {
	t.Helper()
	ctx := context.Background()
	adm := e.users[wAdmin]
	for _, o := range []custody.Organisation{
		{Code: "HOSPA", Name: "Hospital A", Kind: custody.OrgHospital},
		{Code: "HOSPB", Name: "Hospital B", Kind: custody.OrgHospital},
		{Code: "MANU", Name: "Manufacturer", Kind: custody.OrgManufacturer},
		{Code: "MANU2", Name: "Other manufacturer", Kind: custody.OrgManufacturer},
		{Code: "COUR", Name: "Courier", Kind: custody.OrgCourier},
		{Code: "COUR2", Name: "Other courier", Kind: custody.OrgCourier},
	} {
		if _, err := e.svc.RegisterOrganisation(ctx, adm, o, "network setup"); err != nil {
			t.Fatalf("organisation %s: %v", o.Code, err)
		}
	}
	for _, s := range []struct {
		code, org string
		kind      custody.SiteRole
	}{{"COL-1", "HOSPA", custody.SiteCollection}, {"TRT-1", "HOSPA", custody.SiteTreatment},
		{"MFG-1", "MANU", custody.SiteManufacturing}, {"OTH-1", "HOSPB", custody.SiteCollection}} {
		site := custody.Site{Code: s.code, Name: "Site " + s.code, Kinds: []custody.SiteRole{s.kind},
			Organisation: s.org, TimeZone: "Europe/Paris", Address: "1 avenue Claude Vellefaux, 75010 Paris", Country: "FR",
			Accreditation: custody.Accreditation{Status: custody.AccreditationAccredited, Expiry: "2027-06-30"},
			Qualification: custody.Qualification{TrainingDone: true, Date: "2026-01-15", Expiry: "2027-01-15"}}
		if _, err := e.svc.RegisterSite(ctx, adm, site, "network setup"); err != nil {
			t.Fatalf("site %s: %v", s.code, err)
		}
	}
	for _, sh := range []custody.Shipper{{ID: "SHP-0001", Courier: "COUR", RequalificationDue: "2027-03-01"},
		{ID: "SHP-0777", Courier: "COUR2", RequalificationDue: "2027-03-01"}} {
		if _, err := e.svc.RegisterShipper(ctx, adm, sh, "network setup"); err != nil {
			t.Fatalf("shipper %s: %v", sh.ID, err)
		}
	}
	for _, u := range []struct {
		id    string
		role  custody.Role
		org   string
		sites []string
	}{
		{"nurse.here", custody.RoleNurse, "HOSPA", []string{"COL-1"}},
		{"nurse.there", custody.RoleNurse, "HOSPB", []string{"OTH-1"}},
		{"qa.manu", custody.RoleQA, "MANU", nil},
		{"qa.other", custody.RoleQA, "MANU2", nil},
		{"courier.cour", custody.RoleCourier, "COUR", nil},
		{"courier.cour2", custody.RoleCourier, "COUR2", nil},
		{"mfg.unbound", custody.RoleManufacturing, "", nil},
	} {
		if _, err := e.svc.AddUser(ctx, u.id, "Printed "+u.id, u.role, webPassword(u.id)); err != nil {
			t.Fatalf("add user %s: %v", u.id, err)
		}
		slices.Sort(u.sites)
		if _, err := e.store.UpdateUser(ctx, u.id, func(x *custody.User) error {
			x.Organisation, x.Sites = u.org, u.sites
			return nil
		}); err != nil {
			t.Fatalf("bind user %s: %v", u.id, err)
		}
	}
}

// TestWebReadScope is the role x site x route table of the web UI's chain
// reads: the chain page, the live leg chart, the EPCIS download, the scan
// station and the QA console answer those who may read a chain and treat
// it as unknown for the others; a chain from before the network stays
// readable by all as before.
func TestWebReadScope(t *testing.T) {
	e := newWebEnv(t, false)
	ctx := context.Background()
	ch, err := e.svc.Enroll(ctx, e.users[wCoord], custody.EnrollRequest{
		Patient: custody.PHI{Name: webPatient.Name, BirthDate: webPatient.BirthDate, MRN: webPatient.MRN},
		Product: "Autologous anti-CD19 CAR-T", Sites: custody.Sites{Collection: "COL-1", Manufacturing: "MFG-1", Treatment: "TRT-1"}})
	if err != nil {
		t.Fatal(err)
	}
	net := ch.COI
	old := e.enroll()
	e.advance(net, custody.StateToManufacturing)
	e.advance(old, custody.StateToManufacturing)
	scopeNetwork(t, e)

	cases := []struct {
		user string
		coi  custody.COI
		ok   bool
	}{
		{"nurse.here", net, true}, {"nurse.there", net, false},
		{"qa.manu", net, true}, {"qa.other", net, false},
		{"courier.cour", net, true}, {"courier.cour2", net, false},
		{"mfg.unbound", net, false}, {wAdmin, net, true},
		{"nurse.there", old, true}, {"qa.other", old, true}, {"courier.cour2", old, true}, {"mfg.unbound", old, true},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%s", tc.user, tc.coi), func(t *testing.T) {
			b := e.login(tc.user)
			want := http.StatusNotFound
			if tc.ok {
				want = http.StatusOK
			}
			paths := []string{coiPath(tc.coi), coiPath(tc.coi) + "/epcis.json"}
			if !tc.ok {
				// The open leg's live stream would not end for a reader;
				// for the others it must answer 404 at once.
				paths = append(paths, coiPath(tc.coi)+"/legs/1/live")
			}
			for _, path := range paths {
				if p := b.get(path); p.Code != want {
					t.Errorf("GET %s: %d, want %d: %s", path, p.Code, want, excerpt(p.Body))
				}
			}
			b.get("/scan")
			p := b.post("/scan", url.Values{"code": {custody.LabelPayload(custody.BagID{COI: tc.coi, Kind: custody.BagApheresis, N: 1})}})
			if tc.ok && p.Code != http.StatusSeeOther || !tc.ok && p.Code != http.StatusNotFound {
				t.Errorf("scan: %d (ok %v): %s", p.Code, tc.ok, excerpt(p.Body))
			}
		})
	}

	// The QA console lists exactly the chains its user may read.
	for _, tc := range []struct {
		user     string
		net, old bool
	}{{"qa.manu", true, true}, {"qa.other", false, true}, {"mfg.unbound", false, true}, {wQA, false, true}} {
		p := e.login(tc.user).get("/qa")
		if p.Code != http.StatusOK {
			t.Fatalf("console as %s: %d", tc.user, p.Code)
		}
		if got := strings.Contains(p.Body, net.Display()); got != tc.net {
			t.Errorf("console as %s shows the network chain: %v, want %v", tc.user, got, tc.net)
		}
		if got := strings.Contains(p.Body, old.Display()); got != tc.old {
			t.Errorf("console as %s shows the chain from before the network: %v, want %v", tc.user, got, tc.old)
		}
	}
}
