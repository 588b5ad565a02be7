package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/coid-project/coid/custody"
)

// scopeNet is a small registered network: hospital HOSPA (sites COL-1 and
// TRT-1), manufacturer MANU (site MFG-1), another hospital HOSPB (OTH-1),
// a second manufacturer MANU2 and two couriers, COUR owning shipper
// SHP-0042 (the first leg of the test journey) and COUR2.
func scopeNet(tb testing.TB, e *env) {
	tb.Helper()
	ctx := context.Background()
	adm, err := e.svc.User(ctx, admin)
	if err != nil {
		tb.Fatal(err)
	}
	for _, o := range []custody.Organisation{
		{Code: "HOSPA", Name: "Hospital A", Kind: custody.OrgHospital},
		{Code: "HOSPB", Name: "Hospital B", Kind: custody.OrgHospital},
		{Code: "MANU", Name: "Manufacturer", Kind: custody.OrgManufacturer},
		{Code: "MANU2", Name: "Other manufacturer", Kind: custody.OrgManufacturer},
		{Code: "COUR", Name: "Courier", Kind: custody.OrgCourier},
		{Code: "COUR2", Name: "Other courier", Kind: custody.OrgCourier},
	} {
		if _, err := e.svc.RegisterOrganisation(ctx, adm, o, "network setup"); err != nil {
			tb.Fatalf("organisation %s: %v", o.Code, err)
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
			tb.Fatalf("site %s: %v", s.code, err)
		}
	}
	for _, sh := range []custody.Shipper{{ID: "SHP-0042", Courier: "COUR", RequalificationDue: "2027-03-01"},
		{ID: "SHP-0777", Courier: "COUR2", RequalificationDue: "2027-03-01"}} {
		if _, err := e.svc.RegisterShipper(ctx, adm, sh, "network setup"); err != nil {
			tb.Fatalf("shipper %s: %v", sh.ID, err)
		}
	}
}

// scopeUser adds a user bound to an organisation and sites.
func scopeUser(tb testing.TB, e *env, id string, role custody.Role, org string, sites ...string) {
	tb.Helper()
	ctx := context.Background()
	tok, err := e.svc.AddUser(ctx, id, "Printed "+id, role, password(id))
	if err != nil {
		tb.Fatalf("add user %s: %v", id, err)
	}
	slices.Sort(sites)
	if _, err := e.store.UpdateUser(ctx, id, func(u *custody.User) error {
		u.Organisation, u.Sites = org, sites
		return nil
	}); err != nil {
		tb.Fatalf("bind user %s: %v", id, err)
	}
	e.tokens[id] = tok
}

// scopeChain enrolls a chain at the sites named and records its
// collection and first shipment (shipper SHP-0042) while those names
// resolve to no registered site yet.
func scopeChain(tb testing.TB, e *env, mrn string, sites custody.Sites) custody.COI {
	tb.Helper()
	ctx := context.Background()
	co, err := e.svc.User(ctx, coord)
	if err != nil {
		tb.Fatal(err)
	}
	ch, err := e.svc.Enroll(ctx, co, custody.EnrollRequest{
		Patient: custody.PHI{Name: "Jane Roe", BirthDate: "1971-03-02", MRN: mrn},
		Product: "autologous anti-CD19 CAR-T", Sites: sites})
	if err != nil {
		tb.Fatalf("enroll: %v", err)
	}
	e.advance(tb, ch.COI, mrn, 2)
	return ch.COI
}

// TestReadScope is the role x site x route table of chain reads: every
// read route answers 200 to those who may read the chain and 404 (never
// 403, which would reveal the chain) to the others; a chain from before
// the network stays readable as it always was.
func TestReadScope(t *testing.T) {
	e := newEnv(t)
	net := scopeChain(t, e, "MRN-SCOPE-1", custody.Sites{Collection: "COL-1", Manufacturing: "MFG-1", Treatment: "TRT-1"})
	old := scopeChain(t, e, "MRN-SCOPE-2", custody.Sites{Collection: "St. Mary Apheresis", Manufacturing: "Plant 9", Treatment: "Ward 4"})
	scopeNet(t, e)
	scopeUser(t, e, "nurse.here", custody.RoleNurse, "HOSPA", "COL-1")
	scopeUser(t, e, "nurse.there", custody.RoleNurse, "HOSPB", "OTH-1")
	scopeUser(t, e, "qa.manu", custody.RoleQA, "MANU")
	scopeUser(t, e, "qa.other", custody.RoleQA, "MANU2")
	scopeUser(t, e, "courier.cour", custody.RoleCourier, "COUR")
	scopeUser(t, e, "courier.cour2", custody.RoleCourier, "COUR2")
	scopeUser(t, e, "mfg.unbound", custody.RoleManufacturing, "")

	routes := func(coi custody.COI) []struct{ name, method, path string } {
		return []struct{ name, method, path string }{
			{"chain", http.MethodGet, chainPath(coi)},
			{"verify", http.MethodGet, chainPath(coi, "/verify")},
			{"legs", http.MethodGet, chainPath(coi, "/legs")},
			{"leg readings", http.MethodGet, chainPath(coi, "/legs/1/readings")},
			{"epcis", http.MethodGet, chainPath(coi, "/epcis")},
			{"scan", http.MethodPost, "/api/v1/scan"},
		}
	}
	cases := []struct {
		user string
		coi  custody.COI
		want int
	}{
		{"nurse.here", net, http.StatusOK},
		{"nurse.there", net, http.StatusNotFound},
		{"qa.manu", net, http.StatusOK},
		{"qa.other", net, http.StatusNotFound},
		{"courier.cour", net, http.StatusOK},
		{"courier.cour2", net, http.StatusNotFound},
		{"mfg.unbound", net, http.StatusNotFound},
		{admin, net, http.StatusOK},
		{"nurse.there", old, http.StatusOK},
		{"qa.other", old, http.StatusOK},
		{"courier.cour2", old, http.StatusOK},
		{"mfg.unbound", old, http.StatusOK},
	}
	for _, tc := range cases {
		for _, rt := range routes(tc.coi) {
			t.Run(fmt.Sprintf("%s/%s/%s", tc.user, tc.coi, rt.name), func(t *testing.T) {
				var body any
				if rt.method == http.MethodPost {
					body = map[string]string{"code": custody.LabelPayload(custody.BagID{COI: tc.coi, Kind: custody.BagApheresis, N: 1})}
				}
				want := tc.want
				if rt.name == "leg readings" && want == http.StatusOK {
					// Past the read scope, this environment has no reading
					// store: the answer says so (400), where a chain out
					// of scope answers 404.
					want = http.StatusBadRequest
				}
				r := e.do(t, rt.method, rt.path, tc.user, body)
				if r.Code != want {
					t.Fatalf("%s %s as %s: %s, want %d", rt.method, rt.path, tc.user, r, want)
				}
			})
		}
	}

	// The custody report (QA and admin) and the labels (no courier, no
	// admin) keep their role rules on top of the read scope.
	for _, tc := range []struct {
		user, route string
		coi         custody.COI
		want        int
	}{
		{"qa.manu", "/report.pdf", net, http.StatusOK}, {"qa.other", "/report.pdf", net, http.StatusNotFound},
		{admin, "/report.pdf", net, http.StatusOK}, {"qa.other", "/report.pdf", old, http.StatusOK},
		{"nurse.here", "/report.pdf", net, http.StatusForbidden},
		{"nurse.here", "/labels.pdf", net, http.StatusOK}, {"nurse.there", "/labels.pdf", net, http.StatusNotFound},
		{"qa.manu", "/labels.pdf", net, http.StatusOK}, {"qa.other", "/labels.pdf", net, http.StatusNotFound},
		{"mfg.unbound", "/labels.pdf", net, http.StatusNotFound}, {"mfg.unbound", "/labels.pdf", old, http.StatusOK},
		{"nurse.there", "/labels.pdf", old, http.StatusOK},
	} {
		if r := e.do(t, http.MethodGet, chainPath(tc.coi, tc.route), tc.user, nil); r.Code != tc.want {
			t.Errorf("%s of %s as %s: %s, want %d", tc.route, tc.coi, tc.user, r, tc.want)
		}
	}

	// Lists hold exactly the chains the user may read, page by page.
	for _, tc := range []struct {
		user string
		want []custody.COI
	}{
		{"nurse.here", []custody.COI{net, old}},
		{"nurse.there", []custody.COI{old}},
		{"qa.manu", []custody.COI{net, old}},
		{"courier.cour", []custody.COI{net, old}},
		{"courier.cour2", []custody.COI{old}},
		{admin, []custody.COI{net, old}},
	} {
		slices.Sort(tc.want)
		var got []custody.COI
		after := ""
		for pages := 0; ; pages++ {
			if pages > 3 {
				t.Fatalf("%s: list does not end", tc.user)
			}
			path := "/api/v1/chains?limit=1"
			if after != "" {
				path += "&after=" + after
			}
			r := e.do(t, http.MethodGet, path, tc.user, nil)
			if r.Code != http.StatusOK {
				t.Fatalf("list as %s: %s", tc.user, r)
			}
			var out struct {
				Chains []custody.ChainInfo `json:"chains"`
				Next   string              `json:"next"`
			}
			if err := json.Unmarshal(r.Body, &out); err != nil {
				t.Fatal(err)
			}
			for _, ci := range out.Chains {
				got = append(got, ci.COI)
			}
			if out.Next == "" {
				break
			}
			after = out.Next
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("list as %s = %v, want %v", tc.user, got, tc.want)
		}
	}
}
