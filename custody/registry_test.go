package custody_test

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	_ "time/tzdata" // the zone table does not depend on the host's zoneinfo

	"github.com/coid-project/coid/custody"
)

func TestValidateGLN(t *testing.T) {
	for _, c := range []struct {
		gln string
		ok  bool
	}{
		{"4006381333931", true}, // EAN-13 and GLN share the GS1 mod-10 check digit
		{"5412345000013", true},
		{"0614141000012", true},
		{"0000000000000", true},
		{"4006381333932", false}, // wrong check digit
		{"3012345678901", false}, // check digit should be 2
		{"5412345000031", false}, // two digits swapped
		{"400638133393", false},  // 12 digits
		{"40063813339310", false},
		{"40063813339A1", false},
		{" 4006381333931", false},
		{"", false},
	} {
		err := custody.ValidateGLN(c.gln)
		if (err == nil) != c.ok || err != nil && !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("ValidateGLN(%q) = %v, want ok %v", c.gln, err, c.ok)
		}
	}
	if err := custody.ValidateGLN("4006381333932"); err == nil || !strings.Contains(err.Error(), "check digit is 1") {
		t.Errorf("a wrong check digit's error should name the right one: %v", err)
	}
}

func TestValidateISBTProductCode(t *testing.T) {
	for _, c := range []struct {
		code string
		ok   bool
	}{
		{"S1234V00", true}, {"E0001000", true}, {"A0000Aa0", false}, {"S1234V0a", true}, {"T0042Z9z", true},
		// ST-001: oooo alphanumeric (clinical trials YA000, local DAX12); t of either case (r, s, d paid).
		{"S12A4V00", true}, {"YA000100", true}, {"DAX12000", true}, {"E0001r00", true}, {"S1234d00", true},
		{"s1234V00", false}, {"S12a4V00", false}, {"S1234VaA", false}, {"S1234V0A", false}, {"11234V00", false},
		{"S1234V0", false}, {"S1234V000", false}, {"", false}, {"S1234-00", false},
	} {
		err := custody.ValidateISBTProductCode(c.code)
		if (err == nil) != c.ok || err != nil && !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("ValidateISBTProductCode(%q) = %v, want ok %v", c.code, err, c.ok)
		}
	}
}

func TestValidateTimeZone(t *testing.T) {
	for _, c := range []struct {
		zone string
		ok   bool
	}{
		{"Europe/Paris", true}, {"America/New_York", true}, {"Asia/Kolkata", true}, {"UTC", true},
		{"", false}, {"Local", false}, {"Europe/Atlantis", false}, {"CET+1", false}, {"../etc/passwd", false}, {"europe/paris ", false},
	} {
		_, err := custody.ValidateTimeZone(c.zone)
		if (err == nil) != c.ok || err != nil && !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("ValidateTimeZone(%q) = %v, want ok %v", c.zone, err, c.ok)
		}
	}
}

func TestValidateRegistryCode(t *testing.T) {
	for _, c := range []struct {
		code string
		ok   bool
	}{
		{"PARIS-1", true}, {"A", true}, {strings.Repeat("A", 32), true},
		{"", false}, {strings.Repeat("A", 33), false}, {"-PARIS", false}, {"paris", false}, {"PAR IS", false}, {"PARÍS", false}, {"PAR_IS", false},
	} {
		err := custody.ValidateRegistryCode(c.code)
		if (err == nil) != c.ok || err != nil && !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("ValidateRegistryCode(%q) = %v, want ok %v", c.code, err, c.ok)
		}
	}
}

func goodSite() custody.Site {
	return custody.Site{Code: "PAR-1", Name: "Hôpital Saint-Louis", Kinds: []custody.SiteRole{custody.SiteCollection, custody.SiteTreatment},
		Organisation: "APHP", TimeZone: "Europe/Paris", Address: "1 avenue Claude Vellefaux, 75010 Paris", Country: "FR",
		FIN: "F1234", GLN: "4006381333931",
		Accreditation: custody.Accreditation{Status: custody.AccreditationAccredited, Expiry: "2027-06-30"},
		Qualification: custody.Qualification{TrainingDone: true, Date: "2026-01-15", Expiry: "2027-01-15"}}
}

func TestSiteValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*custody.Site)
		want string // "" valid
	}{
		{"valid", func(*custody.Site) {}, ""},
		{"bad code", func(s *custody.Site) { s.Code = "par 1" }, "code"},
		{"no name", func(s *custody.Site) { s.Name = " " }, "site name is required"},
		{"control character in name", func(s *custody.Site) { s.Name = "A\x07B" }, "control character"},
		{"no kinds", func(s *custody.Site) { s.Kinds = nil }, "kinds must name"},
		{"unknown kind", func(s *custody.Site) { s.Kinds = []custody.SiteRole{"storage"} }, `kind "storage"`},
		{"kind twice", func(s *custody.Site) { s.Kinds = []custody.SiteRole{"treatment", "treatment"} }, "given twice"},
		{"no organisation", func(s *custody.Site) { s.Organisation = "" }, "organisation"},
		{"no zone", func(s *custody.Site) { s.TimeZone = "" }, "time_zone"},
		{"unknown zone", func(s *custody.Site) { s.TimeZone = "Mars/Olympus" }, "not an IANA time zone"},
		{"Local zone", func(s *custody.Site) { s.TimeZone = "Local" }, "time_zone"},
		{"no FIN: a site that issues no ISBT 128 identifiers", func(s *custody.Site) { s.FIN = "" }, ""},
		{"no GLN: a site without one", func(s *custody.Site) { s.GLN = "" }, ""},
		{"GLN check digit wrong", func(s *custody.Site) { s.GLN = "4006381333932" }, "check digit"},
		{"not accredited (community site)", func(s *custody.Site) { s.Accreditation = custody.Accreditation{Status: custody.AccreditationNone} }, ""},
		{"not accredited, with an expiry", func(s *custody.Site) {
			s.Accreditation = custody.Accreditation{Status: custody.AccreditationNone, Expiry: "2027-01-01"}
		}, "no accreditation expiry"},
		{"no accreditation status", func(s *custody.Site) { s.Accreditation = custody.Accreditation{} }, "accreditation status"},
		{"no address", func(s *custody.Site) { s.Address = "" }, "address is required"},
		{"country lower case", func(s *custody.Site) { s.Country = "fr" }, "ISO 3166-1"},
		{"country three letters", func(s *custody.Site) { s.Country = "FRA" }, "ISO 3166-1"},
		{"FIN with O", func(s *custody.Site) { s.FIN = "O1234" }, "not an ISBT 128 FIN"},
		{"FIN too short", func(s *custody.Site) { s.FIN = "F123" }, "not an ISBT 128 FIN"},
		{"FIN lower case", func(s *custody.Site) { s.FIN = "f1234" }, "not an ISBT 128 FIN"},
		{"GLN check digit", func(s *custody.Site) { s.GLN = "4006381333932" }, "check digit"},
		{"GLN letters", func(s *custody.Site) { s.GLN = "40063813339X1" }, "13 digits"},
		{"accredited without expiry", func(s *custody.Site) { s.Accreditation.Expiry = "" }, "accreditation expiry is required"},
		{"accreditation expiry not a date", func(s *custody.Site) { s.Accreditation.Expiry = "30/06/2027" }, "not a date"},
		{"accreditation pending without expiry", func(s *custody.Site) { s.Accreditation = custody.Accreditation{Status: custody.AccreditationPending} }, ""},
		{"accreditation status unknown", func(s *custody.Site) { s.Accreditation.Status = "maybe" }, "accreditation status"},
		{"trained without date", func(s *custody.Site) { s.Qualification.Date = "" }, "qualification date is required"},
		{"trained without expiry", func(s *custody.Site) { s.Qualification.Expiry = "" }, "qualification expiry is required"},
		{"qualification expiry before its date", func(s *custody.Site) { s.Qualification.Expiry = "2025-01-15" }, "is not after"},
		{"not trained yet", func(s *custody.Site) { s.Qualification = custody.Qualification{} }, ""},
		{"impossible date", func(s *custody.Site) { s.Qualification.Expiry = "2027-02-30" }, "not a date"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := goodSite()
			c.edit(&s)
			err := s.Validate()
			if c.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, custody.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate = %v, want ErrInvalid saying %q", err, c.want)
			}
		})
	}
}

func TestProductAndShipperValidate(t *testing.T) {
	good := custody.Product{Code: "CART-19", Name: "anti-CD19 CAR-T", ISBTCode: "S1234V00", StorageProfile: "cryogenic", ShelfLifeHours: 8760, ManufacturingDays: 21}
	products := []struct {
		name string
		edit func(*custody.Product)
		want string
	}{
		{"valid", func(*custody.Product) {}, ""},
		{"bad ISBT code", func(p *custody.Product) { p.ISBTCode = "12345678" }, "ISBT 128 product code"},
		{"regenerated tissue code", func(p *custody.Product) { p.ISBTCode = "P0001100" }, ""},
		{"blood component code", func(p *custody.Product) { p.ISBTCode = "E0001V00" }, "product divisions"},
		{"tissue code", func(p *custody.Product) { p.ISBTCode = "T1295000" }, "product divisions"},
		{"no profile", func(p *custody.Product) { p.StorageProfile = "" }, "storage_profile"},
		{"no shelf life", func(p *custody.Product) { p.ShelfLifeHours = 0 }, "shelf_life_hours"},
		{"negative lead time", func(p *custody.Product) { p.ManufacturingDays = -1 }, "manufacturing_days"},
	}
	for _, c := range products {
		p := good
		c.edit(&p)
		err := p.Validate()
		if c.want == "" && err != nil || c.want != "" && (!errors.Is(err, custody.ErrInvalid) || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("product %s: Validate = %v, want %q", c.name, err, c.want)
		}
	}
	sh := custody.Shipper{ID: "SHP-001", Courier: "FASTCO", RequalificationDue: "2027-03-01"}
	shippers := []struct {
		name string
		edit func(*custody.Shipper)
		want string
	}{
		{"valid", func(*custody.Shipper) {}, ""},
		{"bad id", func(s *custody.Shipper) { s.ID = "shp/1" }, "shipper id"},
		{"no courier", func(s *custody.Shipper) { s.Courier = "" }, "courier"},
		{"no due date", func(s *custody.Shipper) { s.RequalificationDue = "" }, "requalification_due is required"},
		{"due date malformed", func(s *custody.Shipper) { s.RequalificationDue = "2027-3-1" }, "not a date"},
		{"GIAI", func(s *custody.Shipper) { s.GIAI = "0614141SHP-001" }, ""},
		{"GIAI of 30 with every GS1 special character", func(s *custody.Shipper) { s.GIAI = `0614141!"%&'()*+,-./:;<=>?_aZ9` }, ""},
		{"GIAI of 31", func(s *custody.Shipper) { s.GIAI = "0614141234567890123456789012345" }, "1-30 characters"},
		{"GIAI with a space", func(s *custody.Shipper) { s.GIAI = "0614141 SHP" }, "character set 82"},
		{"GIAI with #", func(s *custody.Shipper) { s.GIAI = "0614141#1" }, "character set 82"},
		{"GIAI with non-ASCII", func(s *custody.Shipper) { s.GIAI = "0614141ü" }, "character set 82"},
		{"GIAI not starting with its company prefix", func(s *custody.Shipper) { s.GIAI = "SHP-001" }, "company prefix"},
	}
	for _, c := range shippers {
		s := sh
		c.edit(&s)
		err := s.Validate()
		if c.want == "" && err != nil || c.want != "" && (!errors.Is(err, custody.ErrInvalid) || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("shipper %s: Validate = %v, want %q", c.name, err, c.want)
		}
	}
}

// registryNetwork registers a manufacturer, a hospital and a courier.
func registryNetwork(t *testing.T, e *env) {
	t.Helper()
	admin := e.users["admin1"]
	for _, o := range []custody.Organisation{
		{Code: "APHP", Name: "AP-HP", Kind: custody.OrgHospital},
		{Code: "CELLCO", Name: "CellCo", Kind: custody.OrgManufacturer},
		{Code: "FASTCO", Name: "FastCo Logistics", Kind: custody.OrgCourier},
	} {
		if _, err := e.svc.RegisterOrganisation(e.ctx, admin, o, "network set-up"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRegistryReferencesAndDuplicates(t *testing.T) {
	e := newEnv(t)
	registryNetwork(t, e)
	admin := e.users["admin1"]
	site := goodSite()
	mfgSite := goodSite()
	mfgSite.Code, mfgSite.Kinds, mfgSite.Organisation = "CELL-1", []custody.SiteRole{custody.SiteManufacturing}, "CELLCO"
	cases := []struct {
		name    string
		do      func() error
		wantErr error
		want    string
	}{
		{"site", func() error { _, err := e.svc.RegisterSite(e.ctx, admin, site, "new hospital"); return err }, nil, ""},
		{"manufacturing site", func() error { _, err := e.svc.RegisterSite(e.ctx, admin, mfgSite, "plant"); return err }, nil, ""},
		{"duplicate site", func() error { _, err := e.svc.RegisterSite(e.ctx, admin, site, "again"); return err }, custody.ErrConflict, "already registered"},
		{"site of an unknown organisation", func() error {
			s := goodSite()
			s.Code, s.Organisation = "PAR-2", "NOBODY"
			_, err := e.svc.RegisterSite(e.ctx, admin, s, "x")
			return err
		}, custody.ErrInvalid, "no such organisation"},
		{"treatment site of a manufacturer", func() error {
			s := goodSite()
			s.Code, s.Organisation = "PAR-3", "CELLCO"
			_, err := e.svc.RegisterSite(e.ctx, admin, s, "x")
			return err
		}, custody.ErrInvalid, "belongs to a hospital"},
		{"site of a courier", func() error {
			s := goodSite()
			s.Code, s.Organisation = "PAR-4", "FASTCO"
			_, err := e.svc.RegisterSite(e.ctx, admin, s, "x")
			return err
		}, custody.ErrInvalid, "belongs to a hospital"},
		{"duplicate organisation", func() error {
			_, err := e.svc.RegisterOrganisation(e.ctx, admin, custody.Organisation{Code: "APHP", Name: "Other", Kind: custody.OrgHospital}, "x")
			return err
		}, custody.ErrConflict, "already registered"},
		{"shipper", func() error {
			_, err := e.svc.RegisterShipper(e.ctx, admin, custody.Shipper{ID: "SHP-001", Courier: "FASTCO", RequalificationDue: "2027-03-01"}, "new shipper")
			return err
		}, nil, ""},
		{"shipper of a hospital", func() error {
			_, err := e.svc.RegisterShipper(e.ctx, admin, custody.Shipper{ID: "SHP-002", Courier: "APHP", RequalificationDue: "2027-03-01"}, "x")
			return err
		}, custody.ErrInvalid, "not a courier"},
		{"shipper of an unknown courier", func() error {
			_, err := e.svc.RegisterShipper(e.ctx, admin, custody.Shipper{ID: "SHP-003", Courier: "SLOWCO", RequalificationDue: "2027-03-01"}, "x")
			return err
		}, custody.ErrInvalid, "no such organisation"},
		{"product", func() error {
			_, err := e.svc.RegisterProduct(e.ctx, admin, custody.Product{Code: "CART-19", Name: "anti-CD19", ISBTCode: "S1234V00", StorageProfile: "cryogenic", ShelfLifeHours: 8760}, "new product")
			return err
		}, nil, ""},
		{"product with an unconfigured profile", func() error {
			_, err := e.svc.RegisterProduct(e.ctx, admin, custody.Product{Code: "CART-20", Name: "x", ISBTCode: "S1234V00", StorageProfile: "tepid", ShelfLifeHours: 1}, "x")
			return err
		}, custody.ErrInvalid, "configured temperature profiles"},
		{"no reason", func() error {
			_, err := e.svc.RegisterOrganisation(e.ctx, admin, custody.Organisation{Code: "NEW", Name: "New", Kind: custody.OrgHospital}, "  ")
			return err
		}, custody.ErrInvalid, "reason is required"},
		{"created suspended", func() error {
			_, err := e.svc.RegisterOrganisation(e.ctx, admin, custody.Organisation{Code: "NEW", Name: "New", Kind: custody.OrgHospital, Suspended: true}, "x")
			return err
		}, custody.ErrInvalid, "cannot be suspended"},
	}
	for _, c := range cases {
		err := c.do()
		if c.wantErr == nil && err != nil || c.wantErr != nil && (!errors.Is(err, c.wantErr) || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %v saying %q", c.name, err, c.wantErr, c.want)
		}
	}
	// Refused changes left no audit entry: 3 organisations, 2 sites, the
	// shipper and the product.
	trail, err := e.svc.AuditTrail(e.ctx, e.users["qa1"], custody.AuditFilter{})
	if err != nil || len(trail) != 7 {
		t.Fatalf("audit trail: %d entries, %v; want 7", len(trail), err)
	}
}

func TestRegistryPolicy(t *testing.T) {
	e := newEnv(t)
	registryNetwork(t, e)
	for _, u := range testUsers {
		actor := e.users[u.id]
		_, err := e.svc.RegisterOrganisation(e.ctx, actor, custody.Organisation{Code: "ORG-" + strings.ToUpper(u.id), Name: "x", Kind: custody.OrgHospital}, "x")
		if want := u.role == custody.RoleAdmin; (err == nil) != want || err != nil && !errors.Is(err, custody.ErrForbidden) {
			t.Errorf("%s registers: %v", u.id, err)
		}
		if _, err := e.svc.SuspendOrganisation(e.ctx, actor, "APHP", true, "x"); u.role != custody.RoleAdmin && !errors.Is(err, custody.ErrForbidden) {
			t.Errorf("%s suspends: %v, want ErrForbidden", u.id, err)
		}
		if _, err := e.svc.Organisation(e.ctx, actor, "APHP"); err != nil {
			t.Errorf("%s reads: %v", u.id, err)
		}
		if _, err := e.svc.Organisations(e.ctx, actor, "", 10); err != nil {
			t.Errorf("%s lists: %v", u.id, err)
		}
		_, err = e.svc.AuditTrail(e.ctx, actor, custody.AuditFilter{})
		if want := u.role == custody.RoleAdmin || u.role == custody.RoleQA; (err == nil) != want {
			t.Errorf("%s reads the audit trail: %v", u.id, err)
		}
	}
	if _, err := e.svc.Organisation(e.ctx, custody.User{}, "APHP"); !errors.Is(err, custody.ErrForbidden) {
		t.Errorf("a user without a role reads: %v, want ErrForbidden", err)
	}
}

func TestRegistrySuspendUpdateAudit(t *testing.T) {
	e := newEnv(t)
	registryNetwork(t, e)
	admin := e.users["admin1"]
	site := goodSite()
	if _, err := e.svc.RegisterSite(e.ctx, admin, site, "new hospital"); err != nil {
		t.Fatal(err)
	}
	// Suspend, twice, resume, twice.
	if s, err := e.svc.SuspendSite(e.ctx, admin, "PAR-1", true, "qualification lapsed"); err != nil || !s.Suspended {
		t.Fatalf("suspend: %+v, %v", s, err)
	}
	if _, err := e.svc.SuspendSite(e.ctx, admin, "PAR-1", true, "again"); !errors.Is(err, custody.ErrConflict) || !strings.Contains(err.Error(), "already suspended") {
		t.Errorf("second suspend: %v, want ErrConflict", err)
	}
	if got, _ := e.svc.Site(e.ctx, e.users["nurse1"], "PAR-1"); !got.Suspended {
		t.Error("read after suspend: not suspended")
	}
	// An update must keep the flag: suspend and resume change it.
	up := goodSite()
	up.Name = "Hôpital Saint-Louis (AP-HP)"
	if _, err := e.svc.UpdateSite(e.ctx, admin, "PAR-1", up, "rename"); !errors.Is(err, custody.ErrInvalid) || !strings.Contains(err.Error(), "suspend and resume") {
		t.Errorf("update clearing suspended: %v, want ErrInvalid", err)
	}
	if _, err := e.svc.SuspendSite(e.ctx, admin, "PAR-1", false, "requalified"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SuspendSite(e.ctx, admin, "PAR-1", false, "again"); !errors.Is(err, custody.ErrConflict) {
		t.Errorf("second resume: %v, want ErrConflict", err)
	}
	up.Code = ""
	got, err := e.svc.UpdateSite(e.ctx, admin, "PAR-1", up, "rename")
	if err != nil || got.Name != up.Name || got.Code != "PAR-1" {
		t.Fatalf("update: %+v, %v", got, err)
	}
	// An update that changes nothing records nothing; a code change is refused.
	if _, err := e.svc.UpdateSite(e.ctx, admin, "PAR-1", up, "same again"); err != nil {
		t.Errorf("unchanged update: %v", err)
	}
	up.Code = "PAR-9"
	if _, err := e.svc.UpdateSite(e.ctx, admin, "PAR-1", up, "recode"); !errors.Is(err, custody.ErrInvalid) {
		t.Errorf("code change: %v, want ErrInvalid", err)
	}
	if _, err := e.svc.UpdateSite(e.ctx, admin, "NOPE", custody.Site{Name: "x"}, "x"); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("update of an unknown site: %v, want ErrNotFound", err)
	}
	if _, err := e.svc.SuspendSite(e.ctx, admin, "NOPE", true, "x"); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("suspend of an unknown site: %v, want ErrNotFound", err)
	}
	// A suspended organisation takes no new site, but its sites can still
	// be updated.
	if _, err := e.svc.SuspendOrganisation(e.ctx, admin, "APHP", true, "contract ended"); err != nil {
		t.Fatal(err)
	}
	s2 := goodSite()
	s2.Code = "PAR-2"
	if _, err := e.svc.RegisterSite(e.ctx, admin, s2, "x"); !errors.Is(err, custody.ErrConflict) || !strings.Contains(err.Error(), "suspended") {
		t.Errorf("site of a suspended organisation: %v, want ErrConflict", err)
	}
	up.Code, up.Address = "PAR-1", "2 avenue Claude Vellefaux, 75010 Paris"
	if _, err := e.svc.UpdateSite(e.ctx, admin, "PAR-1", up, "address"); err != nil {
		t.Errorf("update of a site of a suspended organisation: %v", err)
	}

	trail, err := e.svc.AuditTrail(e.ctx, admin, custody.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range trail {
		actions = append(actions, string(a.Kind)+" "+a.Code+" "+string(a.Action))
		if a.Actor != "admin1" || a.Reason == "" || a.Time.IsZero() || a.Seq == 0 {
			t.Errorf("audit entry without who, why or when: %+v", a)
		}
	}
	want := []string{
		"organisation APHP create", "organisation CELLCO create", "organisation FASTCO create",
		"site PAR-1 create", "site PAR-1 suspend", "site PAR-1 resume", "site PAR-1 update",
		"organisation APHP suspend", "site PAR-1 update",
	}
	if strings.Join(actions, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit trail:\n%s\nwant:\n%s", strings.Join(actions, "\n"), strings.Join(want, "\n"))
	}
	var old, new custody.Site
	rename := trail[6]
	if err := json.Unmarshal(rename.Old, &old); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(rename.New, &new); err != nil {
		t.Fatal(err)
	}
	if old.Name != "Hôpital Saint-Louis" || new.Name != "Hôpital Saint-Louis (AP-HP)" || rename.Reason != "rename" {
		t.Errorf("rename's audit entry: old %q, new %q, reason %q", old.Name, new.Name, rename.Reason)
	}
	if sus := trail[4]; !strings.Contains(string(sus.Old), `"suspended":false`) || !strings.Contains(string(sus.New), `"suspended":true`) {
		t.Errorf("suspend's audit entry: old %s new %s", sus.Old, sus.New)
	}
}

func TestRegistryPaging(t *testing.T) {
	e := newEnv(t)
	admin := e.users["admin1"]
	for _, c := range []string{"D", "B", "A", "C", "E"} {
		if _, err := e.svc.RegisterOrganisation(e.ctx, admin, custody.Organisation{Code: c, Name: c, Kind: custody.OrgCourier}, "x"); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for after := ""; ; {
		page, err := e.svc.Organisations(e.ctx, e.users["courier1"], after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, o := range page {
			got = append(got, o.Code)
		}
		after = page[len(page)-1].Code
	}
	if strings.Join(got, "") != "ABCDE" {
		t.Errorf("paged codes %v", got)
	}
	if _, err := e.svc.Organisations(e.ctx, admin, "", custody.MaxRegistryPage+1); !errors.Is(err, custody.ErrInvalid) {
		t.Errorf("limit over the maximum: %v", err)
	}
}

// TestRegistryConcurrentUpdates checks that concurrent changes of one
// entry each either land with their audit entry or are refused (retry):
// the trail's old values chain from the create to the final value.
func TestRegistryConcurrentUpdates(t *testing.T) {
	e := newEnv(t)
	admin := e.users["admin1"]
	if _, err := e.svc.RegisterOrganisation(e.ctx, admin, custody.Organisation{Code: "X", Name: "n0", Kind: custody.OrgCourier}, "x"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.svc.UpdateOrganisation(e.ctx, admin, "X", custody.Organisation{Name: "n" + string(rune('1'+i)), Kind: custody.OrgCourier}, "rename")
			if err != nil && !errors.Is(err, custody.ErrRetry) {
				t.Errorf("concurrent update: %v", err)
			}
		}()
	}
	wg.Wait()
	trail, err := e.svc.AuditTrail(e.ctx, admin, custody.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(trail); i++ {
		if string(trail[i].Old) != string(trail[i-1].New) {
			t.Errorf("audit entry %d's old value %s is not entry %d's new value %s", i+1, trail[i].Old, i, trail[i-1].New)
		}
	}
	final, err := e.svc.Organisation(e.ctx, admin, "X")
	if err != nil {
		t.Fatal(err)
	}
	if last, _ := json.Marshal(final); string(last) != string(trail[len(trail)-1].New) {
		t.Errorf("stored %s is not the last audit entry's new value %s", last, trail[len(trail)-1].New)
	}
}
