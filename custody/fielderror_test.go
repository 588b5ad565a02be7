package custody_test

import (
	"errors"
	"testing"

	"github.com/coid-project/coid/custody"
)

// TestRegistryFieldErrors: each refusal of a registry entry names the
// field it concerns (as the JSON API spells it), keeps its sentinel and
// its text, so a form can show it beside the field.
func TestRegistryFieldErrors(t *testing.T) {
	e := newEnv(t)
	registryNetwork(t, e)
	admin := e.users["admin1"]
	site := func(edit func(*custody.Site)) func() error {
		return func() error {
			s := goodSite()
			edit(&s)
			_, err := e.svc.RegisterSite(e.ctx, admin, s, "new site")
			return err
		}
	}
	product := func(edit func(*custody.Product)) func() error {
		return func() error {
			p := custody.Product{Code: "CART-19", Name: "anti-CD19", ISBTCode: "S1234V00", StorageProfile: "cryogenic", ShelfLifeHours: 1}
			edit(&p)
			_, err := e.svc.RegisterProduct(e.ctx, admin, p, "new product")
			return err
		}
	}
	shipper := func(edit func(*custody.Shipper)) func() error {
		return func() error {
			s := custody.Shipper{ID: "SHP-1", Courier: "FASTCO", RequalificationDue: "2027-01-01"}
			edit(&s)
			_, err := e.svc.RegisterShipper(e.ctx, admin, s, "new shipper")
			return err
		}
	}
	cases := []struct {
		name, field string
		sentinel    error
		do          func() error
	}{
		{"organisation code", "code", custody.ErrInvalid, func() error {
			_, err := e.svc.RegisterOrganisation(e.ctx, admin, custody.Organisation{Code: "a b", Name: "X", Kind: custody.OrgHospital}, "r")
			return err
		}},
		{"organisation kind", "kind", custody.ErrInvalid, func() error {
			_, err := e.svc.RegisterOrganisation(e.ctx, admin, custody.Organisation{Code: "AB", Name: "X", Kind: "bank"}, "r")
			return err
		}},
		{"no reason", "reason", custody.ErrInvalid, func() error {
			_, err := e.svc.RegisterOrganisation(e.ctx, admin, custody.Organisation{Code: "AB", Name: "X", Kind: custody.OrgHospital}, " ")
			return err
		}},
		{"site name", "name", custody.ErrInvalid, site(func(s *custody.Site) { s.Name = "" })},
		{"site kinds", "kinds", custody.ErrInvalid, site(func(s *custody.Site) { s.Kinds = nil })},
		{"site zone", "time_zone", custody.ErrInvalid, site(func(s *custody.Site) { s.TimeZone = "Mars/Olympus" })},
		{"site address", "address", custody.ErrInvalid, site(func(s *custody.Site) { s.Address = "" })},
		{"site country", "country", custody.ErrInvalid, site(func(s *custody.Site) { s.Country = "fr" })},
		{"site FIN", "fin", custody.ErrInvalid, site(func(s *custody.Site) { s.FIN = "O1234" })},
		{"site GLN", "gln", custody.ErrInvalid, site(func(s *custody.Site) { s.GLN = "4006381333932" })},
		{"accreditation status", "accreditation.status", custody.ErrInvalid, site(func(s *custody.Site) { s.Accreditation.Status = "maybe" })},
		{"accreditation expiry", "accreditation.expiry", custody.ErrInvalid, site(func(s *custody.Site) { s.Accreditation.Expiry = "" })},
		{"qualification date", "qualification.date", custody.ErrInvalid, site(func(s *custody.Site) { s.Qualification.Date = "" })},
		{"qualification expiry", "qualification.expiry", custody.ErrInvalid, site(func(s *custody.Site) { s.Qualification.Expiry = "2025-01-01" })},
		{"unknown organisation", "organisation", custody.ErrInvalid, site(func(s *custody.Site) { s.Organisation = "NOBODY" })},
		{"organisation of the wrong kind", "organisation", custody.ErrInvalid, site(func(s *custody.Site) { s.Organisation = "CELLCO" })},
		{"ISBT code", "isbt_code", custody.ErrInvalid, product(func(p *custody.Product) { p.ISBTCode = "12345678" })},
		{"storage profile", "storage_profile", custody.ErrInvalid, product(func(p *custody.Product) { p.StorageProfile = "lukewarm" })},
		{"shelf life", "shelf_life_hours", custody.ErrInvalid, product(func(p *custody.Product) { p.ShelfLifeHours = 0 })},
		{"manufacturing days", "manufacturing_days", custody.ErrInvalid, product(func(p *custody.Product) { p.ManufacturingDays = -1 })},
		{"shipper id", "id", custody.ErrInvalid, shipper(func(s *custody.Shipper) { s.ID = "shp/1" })},
		{"courier not a courier", "courier", custody.ErrInvalid, shipper(func(s *custody.Shipper) { s.Courier = "APHP" })},
		{"requalification due", "requalification_due", custody.ErrInvalid, shipper(func(s *custody.Shipper) { s.RequalificationDue = "2027-3-1" })},
		{"mapping to no site", "site", custody.ErrInvalid, func() error {
			_, _, err := e.svc.MapSiteName(e.ctx, admin, "St Elsewhere", "NOSITE", "migration")
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.do()
			if !errors.Is(err, c.sentinel) || custody.ErrorField(err) != c.field {
				t.Fatalf("error %v names field %q, want %q and %v", err, custody.ErrorField(err), c.field, c.sentinel)
			}
			var fe *custody.FieldError
			if errors.As(err, &fe); fe.Error() != fe.Err.Error() {
				t.Errorf("a field error changes the text: %q, want %q", fe.Error(), fe.Err.Error())
			}
		})
	}
	if got := custody.ErrorField(custody.ErrInvalid); got != "" {
		t.Errorf("ErrorField of a bare sentinel = %q", got)
	}
	if rows, err := e.svc.Sites(e.ctx, admin, "", 0); err != nil || len(rows) != 0 {
		t.Errorf("refused registrations wrote sites: %v %+v", err, rows)
	}
}
