package custody_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// The registered network the enrollment, mapping and gate tests use: a
// hospital (APHP) with a collection-and-treatment site PAR-1 in Paris and
// a treatment site HOSP-2 in Tokyo, a manufacturer (CELLCO) with its
// plant MFG-1 in New York, a courier (FASTCO) with the shippers the
// default journey uses, and the product CART-19.
func netSite(code string, org string, zone string, kinds ...custody.SiteRole) custody.Site {
	s := goodSite()
	s.Code, s.Organisation, s.TimeZone, s.Kinds, s.FIN, s.GLN = code, org, zone, kinds, "", ""
	return s
}

func registerNetwork(t *testing.T, e *env) {
	t.Helper()
	registryNetwork(t, e)
	admin := e.users["admin1"]
	for _, s := range []custody.Site{
		netSite("PAR-1", "APHP", "Europe/Paris", custody.SiteCollection, custody.SiteTreatment),
		netSite("HOSP-2", "APHP", "Asia/Tokyo", custody.SiteTreatment),
		netSite("MFG-1", "CELLCO", "America/New_York", custody.SiteManufacturing),
	} {
		if _, err := e.svc.RegisterSite(e.ctx, admin, s, "network set-up"); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"SHP-0042", "SHP-0043"} {
		if _, err := e.svc.RegisterShipper(e.ctx, admin, custody.Shipper{ID: id, Courier: "FASTCO", RequalificationDue: "2027-03-01"}, "network set-up"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.RegisterProduct(e.ctx, admin, custody.Product{Code: "CART-19", Name: "anti-CD19 CAR-T", ISBTCode: "S1234V00",
		StorageProfile: "cryogenic", ShelfLifeHours: 8760}, "network set-up"); err != nil {
		t.Fatal(err)
	}
	// People belong to their organisations and sites, so the signer
	// rules, where they apply, let them sign.
	for id, b := range map[string]struct {
		org   string
		sites []string
	}{
		"coord": {"APHP", []string{"HOSP-2", "PAR-1"}}, "nurse1": {"APHP", []string{"HOSP-2", "PAR-1"}}, "nurse2": {"APHP", []string{"HOSP-2", "PAR-1"}},
		"courier1": {"FASTCO", nil}, "mfg1": {"CELLCO", []string{"MFG-1"}}, "mfg2": {"CELLCO", []string{"MFG-1"}}, "qa1": {"CELLCO", []string{"MFG-1"}},
	} {
		u, err := e.store.UpdateUser(e.ctx, id, func(u *custody.User) error { u.Organisation, u.Sites = b.org, b.sites; return nil })
		if err != nil {
			t.Fatal(err)
		}
		e.users[id] = u
	}
}

var netSites = custody.Sites{Collection: "PAR-1", Manufacturing: "MFG-1", Treatment: "HOSP-2"}

func (e *env) enrollNet() custody.COI {
	e.t.Helper()
	c, err := e.svc.Enroll(e.ctx, e.users["coord"], custody.EnrollRequest{Patient: patient, Product: "CART-19", Sites: netSites})
	if err != nil {
		e.t.Fatal(err)
	}
	return c.COI
}

func TestEnrollFromRegistries(t *testing.T) {
	e := newEnv(t)
	// Before the network is registered, free text stands.
	old := e.enroll()
	registerNetwork(t, e)
	admin := e.users["admin1"]
	for _, s := range []custody.Site{
		netSite("SUSP-1", "APHP", "Europe/Paris", custody.SiteCollection),
		netSite("GONE-1", "GONE", "Europe/Paris", custody.SiteCollection),
		func() custody.Site {
			s := netSite("EXP-1", "APHP", "Europe/Paris", custody.SiteCollection)
			s.Qualification = custody.Qualification{TrainingDone: true, Date: "2025-11-01", Expiry: "2026-11-01"}
			return s
		}(),
		func() custody.Site {
			s := netSite("EXP-2", "APHP", "Europe/Paris", custody.SiteTreatment)
			s.Accreditation.Expiry = "2026-10-31"
			return s
		}(),
	} {
		if s.Organisation == "GONE" {
			if _, err := e.svc.RegisterOrganisation(e.ctx, admin, custody.Organisation{Code: "GONE", Name: "Gone Hospital", Kind: custody.OrgHospital}, "x"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.svc.RegisterSite(e.ctx, admin, s, "x"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.SuspendSite(e.ctx, admin, "SUSP-1", true, "audit finding"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SuspendOrganisation(e.ctx, admin, "GONE", true, "left the programme"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RegisterProduct(e.ctx, admin, custody.Product{Code: "CART-OLD", Name: "old", ISBTCode: "S1234V00", StorageProfile: "cryogenic", ShelfLifeHours: 1}, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SuspendProduct(e.ctx, admin, "CART-OLD", true, "withdrawn"); err != nil {
		t.Fatal(err)
	}
	with := func(edit func(*custody.EnrollRequest)) custody.EnrollRequest {
		r := custody.EnrollRequest{Patient: patient, Product: "CART-19", Sites: netSites}
		edit(&r)
		return r
	}
	for _, c := range []struct {
		name string
		req  custody.EnrollRequest
		want error
		text string
	}{
		{"free-text site once sites are registered", with(func(r *custody.EnrollRequest) { r.Sites.Collection = "St Elsewhere Apheresis" }), custody.ErrInvalid, `sites.collection "St Elsewhere Apheresis" is not a registered site's code`},
		{"unknown site code", with(func(r *custody.EnrollRequest) { r.Sites.Treatment = "NOPE-9" }), custody.ErrInvalid, `sites.treatment "NOPE-9" is not a registered site's code`},
		{"suspended site", with(func(r *custody.EnrollRequest) { r.Sites.Collection = "SUSP-1" }), custody.ErrInvalid, "sites.collection: site SUSP-1 is suspended"},
		{"suspended organisation", with(func(r *custody.EnrollRequest) { r.Sites.Collection = "GONE-1" }), custody.ErrInvalid, "organisation GONE is suspended"},
		{"wrong kind", with(func(r *custody.EnrollRequest) { r.Sites.Manufacturing = "PAR-1" }), custody.ErrInvalid, "sites.manufacturing: site PAR-1 is not a manufacturing site"},
		{"wrong kind, treatment", with(func(r *custody.EnrollRequest) { r.Sites.Treatment = "MFG-1" }), custody.ErrInvalid, "not a treatment site"},
		{"unknown product", with(func(r *custody.EnrollRequest) { r.Product = "Autologous CAR-T cells" }), custody.ErrInvalid, `product "Autologous CAR-T cells" is not a registered product's code`},
		{"suspended product", with(func(r *custody.EnrollRequest) { r.Product = "CART-OLD" }), custody.ErrInvalid, "product CART-OLD is suspended"},
		{"expired qualification", with(func(r *custody.EnrollRequest) { r.Sites.Collection = "EXP-1" }), custody.ErrConflict, "collection site EXP-1's qualification expired on 2026-11-01"},
		{"expired accreditation", with(func(r *custody.EnrollRequest) { r.Sites.Treatment = "EXP-2" }), custody.ErrConflict, "treatment site EXP-2's accreditation expired on 2026-10-31"},
	} {
		before := e.records()
		_, err := e.svc.Enroll(e.ctx, e.users["coord"], c.req)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: %v, want %v naming %q", c.name, err, c.want, c.text)
		}
		if e.records() != before {
			t.Errorf("%s: a refused enrollment wrote a record", c.name)
		}
	}
	coi := e.enrollNet()
	c, err := e.svc.Chain(e.ctx, coi)
	if err != nil {
		t.Fatal(err)
	}
	if c.Product != "CART-19" || c.Sites != netSites {
		t.Errorf("chain: product %q sites %+v", c.Product, c.Sites)
	}
	d, err := c.Records[0].Parsed()
	if err != nil {
		t.Fatal(err)
	}
	if ed := d.(custody.EnrollData); ed.ProductName != "anti-CD19 CAR-T" || ed.Product != "CART-19" {
		t.Errorf("enroll data %+v: want the product's code and name", ed)
	}
	// The chain from before the network still reads as it was enrolled,
	// without a product name.
	oc, err := e.svc.Chain(e.ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if oc.Sites.Collection != "St Elsewhere Apheresis" || oc.Product != "Autologous CAR-T cells" || strings.Contains(string(oc.Records[0].Data), "product_name") {
		t.Errorf("old chain reads %+v / %s", oc.Sites, oc.Records[0].Data)
	}
	if rep, err := custody.VerifyLog(e.ctx, e.store); err != nil || !rep.OK {
		t.Errorf("verify: %+v %v", rep, err)
	}
}

func TestFreeTextProductWhileNoProductRegistered(t *testing.T) {
	e := newEnv(t)
	registryNetwork(t, e)
	// Organisations alone do not make sites or products registered.
	e.enroll()
	if ok, err := e.svc.HasRegistered(e.ctx, custody.KindSite); ok || err != nil {
		t.Errorf("HasRegistered(site) = %v, %v", ok, err)
	}
	if ok, err := e.svc.HasRegistered(e.ctx, custody.KindOrganisation); !ok || err != nil {
		t.Errorf("HasRegistered(organisation) = %v, %v", ok, err)
	}
}

// ship returns the data of the journey's first (leg 1) or second ship.
func shipStep(coi custody.COI, leg int) journeyStep {
	n := 0
	for _, js := range journey(coi) {
		if js.step == custody.StepShip {
			if n++; n == leg {
				return js
			}
		}
	}
	panic("no such leg")
}

func TestShipGates(t *testing.T) {
	expire := func(code string, edit func(*custody.Site)) func(*env) {
		return func(e *env) {
			s, err := e.svc.Site(e.ctx, e.users["admin1"], code)
			if err != nil {
				e.t.Fatal(err)
			}
			edit(&s)
			if _, err := e.svc.UpdateSite(e.ctx, e.users["admin1"], code, s, "lapsed"); err != nil {
				e.t.Fatal(err)
			}
		}
	}
	shipper := func(id string, edit func(*custody.Shipper)) func(*env) {
		return func(e *env) {
			s, err := e.svc.Shipper(e.ctx, e.users["admin1"], id)
			if err != nil {
				e.t.Fatal(err)
			}
			edit(&s)
			if s.Suspended {
				_, err = e.svc.SuspendShipper(e.ctx, e.users["admin1"], id, true, "failed its check")
			} else {
				_, err = e.svc.UpdateShipper(e.ctx, e.users["admin1"], id, s, "lapsed")
			}
			if err != nil {
				e.t.Fatal(err)
			}
		}
	}
	for _, c := range []struct {
		name    string
		leg     int
		lapse   func(*env)
		shipper string // "" the journey's
		text    string // "" the ship passes the gates
	}{
		{"all in good standing, first leg", 1, func(*env) {}, "", ""},
		{"all in good standing, second leg", 2, func(*env) {}, "", ""},
		{"expired accreditation", 1, expire("MFG-1", func(s *custody.Site) { s.Accreditation.Expiry = "2026-11-20" }), "",
			"manufacturing site MFG-1's accreditation expired on 2026-11-20"},
		{"withdrawn accreditation", 2, expire("HOSP-2", func(s *custody.Site) {
			s.Accreditation = custody.Accreditation{Status: custody.AccreditationWithdrawn}
		}), "", "treatment site HOSP-2's accreditation was withdrawn"},
		{"training not done", 1, expire("MFG-1", func(s *custody.Site) { s.Qualification = custody.Qualification{} }), "",
			"manufacturing site MFG-1's qualification is not complete: its staff training is not done"},
		{"qualification expired", 2, expire("HOSP-2", func(s *custody.Site) { s.Qualification.Expiry = "2026-11-22" }), "",
			"treatment site HOSP-2's qualification expired on 2026-11-22"},
		{"lapse at the origin does not stop the ship to a good site", 2, expire("MFG-1", func(s *custody.Site) { s.Qualification.Expiry = "2026-11-22" }), "", ""},
		{"destination suspended", 2, func(e *env) {
			if _, err := e.svc.SuspendSite(e.ctx, e.users["admin1"], "HOSP-2", true, "inspection finding"); err != nil {
				e.t.Fatal(err)
			}
		}, "", "treatment site HOSP-2 is suspended"},
		{"shipper past its requalification", 1, shipper("SHP-0042", func(s *custody.Shipper) { s.RequalificationDue = "2026-11-22" }), "",
			"shipper SHP-0042 was due for requalification on 2026-11-22"},
		{"shipper suspended", 2, shipper("SHP-0043", func(s *custody.Shipper) { s.Suspended = true }), "", "shipper SHP-0043 is suspended"},
		{"unregistered shipper", 1, func(*env) {}, "SHP-9999", "shipper SHP-9999 is not registered"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			registerNetwork(t, e)
			coi := e.enrollNet()
			state := custody.State("collected")
			if c.leg == 2 {
				state = "released"
			}
			e.advance(coi, state)
			c.lapse(e)
			js := shipStep(coi, c.leg)
			data := js.data.(map[string]any)
			if c.shipper != "" {
				data["shipper"] = c.shipper
			}
			before := e.records()
			_, err := e.step(coi, "nurse1", custody.StepShip, data, js.sigs...)
			if c.text == "" {
				if err != nil {
					t.Fatalf("ship: %v", err)
				}
				return
			}
			if !errors.Is(err, custody.ErrConflict) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("ship: %v, want ErrConflict naming %q", err, c.text)
			}
			if e.records() != before {
				t.Error("a refused ship wrote a record")
			}
		})
	}
}

// A qualification is good through its expiry day in the site's zone:
// 23:30 UTC on its last day is already the next day in Paris.
func TestShipGateDayBoundaryInSiteZone(t *testing.T) {
	e := newEnv(t)
	registerNetwork(t, e)
	s, _ := e.svc.Site(e.ctx, e.users["admin1"], "MFG-1")
	s.TimeZone = "Europe/Paris"
	s.Qualification.Expiry = "2026-11-30"
	if _, err := e.svc.UpdateSite(e.ctx, e.users["admin1"], "MFG-1", s, "moved to Paris"); err != nil {
		t.Fatal(err)
	}
	a, b := e.enrollNet(), e.enrollNet()
	e.advance(a, "collected")
	e.advance(b, "collected")
	js := shipStep(a, 1)
	e.setNow(time.Date(2026, 11, 30, 22, 28, 0, 0, time.UTC)) // 23:29 in Paris, its last day
	if _, err := e.step(a, "nurse1", custody.StepShip, js.data, js.sigs...); err != nil {
		t.Fatalf("ship on the last day of the qualification: %v", err)
	}
	e.setNow(time.Date(2026, 11, 30, 23, 29, 0, 0, time.UTC)) // still Nov 30 in UTC, Dec 1 in Paris
	_, err := e.step(b, "nurse1", custody.StepShip, js.data, js.sigs...)
	if !errors.Is(err, custody.ErrConflict) || !strings.Contains(err.Error(), "manufacturing site MFG-1's qualification expired on 2026-11-30") {
		t.Fatalf("ship the day after in Paris: %v, want ErrConflict", err)
	}
}

func TestSiteMappingForOldChains(t *testing.T) {
	e := newEnv(t)
	old := e.enroll() // St Elsewhere Apheresis, CellWorks NJ, St Elsewhere BMT
	registerNetwork(t, e)
	admin := e.users["admin1"]
	e.advance(old, "released")
	// Unmapped, the old chain is from before the network: no gate, even
	// for a shipper the network does not know.
	js := shipStep(old, 2)
	// Lapse HOSP-2, then map the old chain's treatment site to it.
	s, _ := e.svc.Site(e.ctx, admin, "HOSP-2")
	s.Qualification.Expiry = "2026-11-20"
	if _, err := e.svc.UpdateSite(e.ctx, admin, "HOSP-2", s, "lapsed"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name           string
		actor          string
		siteName, code string
		reason         string
		want           error
		text           string
	}{
		{"not an administrator", "qa1", "St Elsewhere BMT", "HOSP-2", "x", custody.ErrForbidden, "administrator"},
		{"no reason", "admin1", "St Elsewhere BMT", "HOSP-2", " ", custody.ErrInvalid, "reason"},
		{"unknown site", "admin1", "St Elsewhere BMT", "NOPE-1", "x", custody.ErrInvalid, "no site NOPE-1 is registered"},
		{"a code maps to itself", "admin1", "PAR-1", "HOSP-2", "x", custody.ErrInvalid, "registered site's code"},
		{"empty name", "admin1", "", "HOSP-2", "x", custody.ErrInvalid, "site name is required"},
		{"padded name", "admin1", " St Elsewhere BMT", "HOSP-2", "x", custody.ErrInvalid, "leading or trailing"},
	} {
		if _, _, err := e.svc.MapSiteName(e.ctx, e.users[c.actor], c.siteName, c.code, c.reason); !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: %v, want %v naming %q", c.name, err, c.want, c.text)
		}
	}
	if m, _ := e.svc.SiteMappings(e.ctx, admin, "", 0); len(m) != 0 {
		t.Fatalf("refused mappings stored: %+v", m)
	}
	m, created, err := e.svc.MapSiteName(e.ctx, admin, "St Elsewhere BMT", "PAR-1", "migration: the BMT unit is at Saint-Louis")
	if err != nil || !created || m.Site != "PAR-1" {
		t.Fatalf("map: %+v %v %v", m, created, err)
	}
	// A mapping changes, audited with its old and new values.
	if _, created, err = e.svc.MapSiteName(e.ctx, admin, "St Elsewhere BMT", "HOSP-2", "correction: the BMT unit is HOSP-2"); err != nil || created {
		t.Fatalf("remap: %v %v", created, err)
	}
	trail, err := e.svc.AuditTrail(e.ctx, e.users["qa1"], custody.AuditFilter{Kind: custody.ObjectKind(custody.KindSiteMapping)})
	if err != nil || len(trail) != 2 {
		t.Fatalf("audit trail: %+v %v", trail, err)
	}
	if a := trail[0]; a.Action != custody.AuditCreate || a.Code != "St Elsewhere BMT" || a.Old != nil || !strings.Contains(string(a.New), `"site":"PAR-1"`) {
		t.Errorf("create entry %+v", a)
	}
	if a := trail[1]; a.Action != custody.AuditUpdate || !strings.Contains(string(a.Old), `"site":"PAR-1"`) || !strings.Contains(string(a.New), `"site":"HOSP-2"`) ||
		a.Reason != "correction: the BMT unit is HOSP-2" || a.Actor != "admin1" {
		t.Errorf("update entry %+v", a)
	}
	if got, err := e.svc.SiteMappingEntry(e.ctx, e.users["qa1"], "St Elsewhere BMT"); err != nil || got.Site != "HOSP-2" {
		t.Errorf("read mapping: %+v %v", got, err)
	}
	if _, err := e.svc.SiteMappings(e.ctx, e.users["nurse1"], "", 0); !errors.Is(err, custody.ErrForbidden) {
		t.Errorf("a nurse lists mappings: %v", err)
	}
	// What is left to map: the old chain's other two names.
	if names, err := e.svc.UnmappedSiteNames(e.ctx, admin, "", 0); err != nil || strings.Join(names, "|") != "CellWorks NJ|St Elsewhere Apheresis" {
		t.Errorf("unmapped names: %q, %v", names, err)
	}
	if names, err := e.svc.UnmappedSiteNames(e.ctx, admin, "CellWorks NJ", 1); err != nil || strings.Join(names, "|") != "St Elsewhere Apheresis" {
		t.Errorf("unmapped names, second page: %q, %v", names, err)
	}
	if _, err := e.svc.UnmappedSiteNames(e.ctx, e.users["coord"], "", 0); !errors.Is(err, custody.ErrForbidden) {
		t.Errorf("a coordinator lists unmapped names: %v", err)
	}
	// The old chain's treatment site now resolves to HOSP-2, whose
	// qualification has lapsed: its second ship is refused.
	_, err = e.step(old, "nurse1", custody.StepShip, js.data, js.sigs...)
	if !errors.Is(err, custody.ErrConflict) || !strings.Contains(err.Error(), "treatment site HOSP-2's qualification expired on 2026-11-20") {
		t.Fatalf("ship on the mapped old chain: %v, want the gate", err)
	}
	// The ledger was not rewritten: the chain reads as enrolled.
	c, err := e.svc.Chain(e.ctx, old)
	if err != nil || c.Sites.Treatment != "St Elsewhere BMT" {
		t.Fatalf("old chain: %+v %v", c, err)
	}
	b, _ := json.Marshal(c.Sites)
	if strings.Contains(string(b), "HOSP-2") {
		t.Errorf("the chain's sites changed: %s", b)
	}
}

func TestShipGateSkipsChainsFromBeforeTheNetwork(t *testing.T) {
	e := newEnv(t)
	old := e.enroll()
	registerNetwork(t, e)
	e.advance(old, "collected")
	js := shipStep(old, 1)
	data := js.data.(map[string]any)
	data["shipper"] = "SHP-9999" // unknown to the network, as before it
	e.must(old, "nurse1", custody.StepShip, data, js.sigs...)
}

func TestExpiringQualifications(t *testing.T) {
	e := newEnv(t)
	registerNetwork(t, e)
	admin := e.users["admin1"]
	s, _ := e.svc.Site(e.ctx, admin, "HOSP-2")
	s.Qualification.Expiry = "2026-12-10"
	if _, err := e.svc.UpdateSite(e.ctx, admin, "HOSP-2", s, "due soon"); err != nil {
		t.Fatal(err)
	}
	sh, _ := e.svc.Shipper(e.ctx, admin, "SHP-0043")
	sh.RequalificationDue = "2026-11-20"
	if _, err := e.svc.UpdateShipper(e.ctx, admin, "SHP-0043", sh, "overdue"); err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.ExpiringQualifications(e.ctx, e.users["qa1"], 30)
	if err != nil {
		t.Fatal(err)
	}
	want := []custody.Expiring{
		{Kind: custody.KindShipper, Code: "SHP-0043", What: "requalification", Date: "2026-11-20", Days: -3},
		{Kind: custody.KindSite, Code: "HOSP-2", What: "qualification", Date: "2026-12-10", Days: 17},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("expiring: %+v, want %+v", got, want)
	}
	if got, _ := e.svc.ExpiringQualifications(e.ctx, e.users["qa1"], 10); len(got) != 1 {
		t.Errorf("within 10 days: %+v", got)
	}
	if _, err := e.svc.ExpiringQualifications(e.ctx, e.users["nurse1"], 30); !errors.Is(err, custody.ErrForbidden) {
		t.Errorf("nurse: %v", err)
	}
	if _, err := e.svc.ExpiringQualifications(e.ctx, e.users["qa1"], -1); !errors.Is(err, custody.ErrInvalid) {
		t.Errorf("negative days: %v", err)
	}
}
