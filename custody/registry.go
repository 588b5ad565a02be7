package custody

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The registries: the organisations of a programme's network, their sites,
// the products made for patients and the couriers' shippers. An entry is
// registered once by an administrator and never deleted, because chains
// and other entries refer to it: it is suspended instead. This file holds
// the entries and the rules each must keep on its own; registry_service.go
// holds the rules that read the other entries (references) and the
// administration.

// RegistryKind names one registry.
type RegistryKind string

// The registries.
const (
	KindOrganisation RegistryKind = "organisation"
	KindSite         RegistryKind = "site"
	KindProduct      RegistryKind = "product"
	KindShipper      RegistryKind = "shipper"
	// KindSiteMapping holds the administrators' mappings of the free-text
	// site names of chains from before the network to registered sites
	// (SiteMapping), keyed by the name.
	KindSiteMapping RegistryKind = "site_mapping"
)

// RegistryKinds lists the registries.
func RegistryKinds() []RegistryKind {
	return []RegistryKind{KindOrganisation, KindSite, KindProduct, KindShipper, KindSiteMapping, KindJurisdiction}
}

// Valid reports whether k names a registry.
func (k RegistryKind) Valid() bool { return slices.Contains(RegistryKinds(), k) }

// OrganisationKind says what an organisation does in the network.
type OrganisationKind string

// The kinds of organisation.
const (
	OrgManufacturer OrganisationKind = "manufacturer"
	OrgHospital     OrganisationKind = "hospital"
	OrgCourier      OrganisationKind = "courier"
)

// AccreditationStatus is where a site's accreditation (FACT-JACIE, say)
// stands.
type AccreditationStatus string

// The accreditation statuses.
const (
	AccreditationAccredited AccreditationStatus = "accredited"
	AccreditationPending    AccreditationStatus = "pending"
	AccreditationWithdrawn  AccreditationStatus = "withdrawn"
	// AccreditationNone is a site without accreditation (a community
	// site joining the programme); it has no expiry.
	AccreditationNone AccreditationStatus = "none"
)

// DateLayout is the layout of the registries' calendar dates (expiry and
// due dates): ISO 8601, YYYY-MM-DD.
const DateLayout = time.DateOnly

// Organisation is a manufacturer, hospital or courier of the network.
type Organisation struct {
	Code      string           `json:"code"`
	Name      string           `json:"name"`
	Kind      OrganisationKind `json:"kind"`
	Suspended bool             `json:"suspended"`
}

// Accreditation is a site's accreditation and when it expires
// (YYYY-MM-DD; required unless the status is pending or withdrawn).
type Accreditation struct {
	Status AccreditationStatus `json:"status"`
	Expiry string              `json:"expiry,omitempty"`
}

// Qualification is a site's qualification by the manufacturer: whether
// its staff training is done, when it was qualified and when the
// qualification expires (YYYY-MM-DD; both required once training is done).
type Qualification struct {
	TrainingDone bool   `json:"training_done"`
	Date         string `json:"date,omitempty"`
	Expiry       string `json:"expiry,omitempty"`
}

// Site is a place of an organisation where cells are collected,
// manufactured or infused.
type Site struct {
	Code string `json:"code"`
	Name string `json:"name"`
	// Kinds are the roles the site plays in chains (SiteCollection,
	// SiteManufacturing, SiteTreatment).
	Kinds        []SiteRole `json:"kinds"`
	Organisation string     `json:"organisation"`
	// TimeZone is the site's IANA time zone ("Europe/Paris").
	TimeZone string `json:"time_zone"`
	Address  string `json:"address"`
	// Country is the ISO 3166-1 alpha-2 code of the site's country.
	Country string `json:"country"`
	// FIN is the site's ISBT 128 facility identification number, where
	// the site issues ISBT 128 identifiers; empty otherwise.
	FIN string `json:"fin,omitempty"`
	// GLN is the site's GS1 global location number (13 digits, the last
	// a check digit), where it has one; empty otherwise.
	GLN string `json:"gln,omitempty"`
	// LabelSymbol is the 2-D symbol the site prints on its bag labels:
	// LabelSymbolQR (also the empty value), LabelSymbolDataMatrix or
	// LabelSymbolBoth.
	LabelSymbol   string        `json:"label_symbol,omitempty"`
	Accreditation Accreditation `json:"accreditation"`
	Qualification Qualification `json:"qualification"`
	Suspended     bool          `json:"suspended"`
}

// The 2-D symbols a site may print on its bag labels (Site.LabelSymbol).
// Every symbol carries the same ISBT 128 data.
const (
	// LabelSymbolQR is a QR code, what phones read; the default.
	LabelSymbolQR = "qr"
	// LabelSymbolDataMatrix is a Data Matrix (ECC 200), the symbol ICCBBA
	// names for container labels.
	LabelSymbolDataMatrix = "datamatrix"
	// LabelSymbolBoth is a QR code and a Data Matrix side by side.
	LabelSymbolBoth = "both"
)

// ValidateLabelSymbol checks a site's label symbol: empty (QR), "qr",
// "datamatrix" or "both".
func ValidateLabelSymbol(sym string) error {
	switch sym {
	case "", LabelSymbolQR, LabelSymbolDataMatrix, LabelSymbolBoth:
		return nil
	}
	return fmt.Errorf("label_symbol %q: must be qr, datamatrix or both: %w", sym, ErrInvalid)
}

// Product is a therapy the programme makes.
type Product struct {
	Code string `json:"code"`
	Name string `json:"name"`
	// ISBTCode is the ISBT 128 product code (Data Structure 003): the
	// product description code, the type of donation and the divisions.
	ISBTCode string `json:"isbt_code"`
	// StorageProfile is the temperature profile its shipments keep; one
	// of the service's configured profiles.
	StorageProfile string `json:"storage_profile"`
	// ShelfLifeHours is how long the product keeps after release.
	ShelfLifeHours int `json:"shelf_life_hours"`
	// ManufacturingDays is the planned duration of manufacturing, from
	// its start to its end (the plan's LeadTimes.Manufacturing); QA
	// release follows ReleaseDays later.
	ManufacturingDays int `json:"manufacturing_days"`
	// The other lead times of the plan (LeadTimes), in calendar days;
	// zero: not set, and a chain of the product cannot be booked.
	ApheresisToStartDays int  `json:"apheresis_to_start_days,omitempty"`
	ReleaseDays          int  `json:"release_days,omitempty"`
	ShippingDays         int  `json:"shipping_days,omitempty"`
	InfusionWindowDays   int  `json:"infusion_window_days,omitempty"`
	Suspended            bool `json:"suspended"`
	// FollowUpDays are the post-infusion follow-up time points, in
	// increasing days after infusion; empty: 7, 14, 28 and 90.
	FollowUpDays []int `json:"follow_up_days,omitempty"`
	// FollowUpGraceDays is how many days past its due date a follow-up
	// is listed overdue; zero: DefaultFollowUpGraceDays.
	FollowUpGraceDays int `json:"follow_up_grace_days,omitempty"`
}

// Shipper is a courier's temperature-controlled shipping container.
type Shipper struct {
	// ID is the shipper's ID, as its telemetry names it.
	ID string `json:"id"`
	// Courier is the code of the courier organisation that owns it.
	Courier string `json:"courier"`
	// RequalificationDue is the date (YYYY-MM-DD) by which it must be
	// requalified.
	RequalificationDue string `json:"requalification_due"`
	Suspended          bool   `json:"suspended"`
	// GIAI is the shipper's GS1 global individual asset identifier, where
	// its courier gives one (see ValidateGIAI); empty otherwise. EPCIS
	// exports name the shipper by it.
	GIAI string `json:"giai,omitempty"`
}

// Limits of the registries' text fields, in bytes.
const (
	maxRegistryName    = 200
	maxRegistryAddress = 500
	maxRegistryCode    = 32
	maxShelfLifeHours  = 10 * 365 * 24
	maxManufacturing   = 365
)

// ValidateRegistryCode checks the code of an organisation, site or
// product: 1-32 characters of upper-case letters, digits and '-',
// starting with a letter or digit. Upper case only, so two codes never
// differ by case alone.
func ValidateRegistryCode(code string) error {
	if code == "" || len(code) > maxRegistryCode {
		return fmt.Errorf("code must be 1-%d characters: %w", maxRegistryCode, ErrInvalid)
	}
	for i := 0; i < len(code); i++ {
		c := code[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' && i > 0) {
			return fmt.Errorf("code %q: only upper-case letters, digits and - (not first): %w", code, ErrInvalid)
		}
	}
	return nil
}

// ValidateGLN checks a GS1 global location number: 13 digits whose last
// is the GS1 mod-10 check digit of the first 12.
func ValidateGLN(gln string) error {
	if len(gln) != 13 || !isDigits(gln) {
		return fmt.Errorf("gln %q must be 13 digits: %w", gln, ErrInvalid)
	}
	if c := GS1CheckDigit(gln[:12]); c != gln[12] {
		return fmt.Errorf("gln %s: check digit is %c, not %c: %w", gln, c, gln[12], ErrInvalid)
	}
	return nil
}

// GS1CheckDigit returns the GS1 mod-10 check digit of digits: weights 3
// and 1 alternate from the rightmost digit, and the check digit brings
// the weighted sum up to a multiple of 10. digits must be digits only.
func GS1CheckDigit(digits string) byte {
	sum := 0
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if (len(digits)-1-i)%2 == 0 {
			d *= 3
		}
		sum += d
	}
	return byte('0' + (10-sum%10)%10)
}

// ValidateISBTProductCode checks an ISBT 128 product code (Data
// Structure 003, 8 characters αooootds): the product description code (an
// upper-case letter and 4 upper-case letters or digits: S1234, YA000,
// DAX12), the type of collection t (a digit or a letter of either case:
// Table 7 of ST-001 has r, s and d) and the division code ds (d a digit or
// an upper-case letter, s a digit or a lower-case letter).
func ValidateISBTProductCode(code string) error {
	upper := func(c byte) bool { return c >= 'A' && c <= 'Z' }
	lower := func(c byte) bool { return c >= 'a' && c <= 'z' }
	digit := func(c byte) bool { return c >= '0' && c <= '9' }
	bad := len(code) != 8
	for i := 0; !bad && i < 8; i++ {
		c := code[i]
		switch {
		case i == 0:
			bad = !upper(c)
		case i < 5:
			bad = !upper(c) && !digit(c)
		case i == 5:
			bad = !upper(c) && !lower(c) && !digit(c)
		case i == 6:
			bad = !upper(c) && !digit(c)
		default:
			bad = !lower(c) && !digit(c)
		}
	}
	if bad {
		return fmt.Errorf("isbt_code %q is not an ISBT 128 product code (a letter and 4 letters or digits, the type of collection, 2 division characters: S1234V00): %w", code, ErrInvalid)
	}
	return nil
}

// ValidateTimeZone checks an IANA time zone name and returns its location.
// "Local" and the empty name are refused: a site's zone never depends on
// the server's.
func ValidateTimeZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("time_zone must be an IANA time zone name (Europe/Paris): %w", ErrInvalid)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time_zone %q is not an IANA time zone: %w", name, ErrInvalid)
	}
	return loc, nil
}

// validDate checks a YYYY-MM-DD calendar date, required or not.
func validDate(field, s string, required bool) error {
	if s == "" {
		if required {
			return fmt.Errorf("%s is required (YYYY-MM-DD): %w", field, ErrInvalid)
		}
		return nil
	}
	if _, err := time.Parse(DateLayout, s); err != nil {
		return fmt.Errorf("%s %q is not a date (YYYY-MM-DD): %w", field, s, ErrInvalid)
	}
	return nil
}

// Validate checks the organisation's own fields.
func (o Organisation) Validate() error {
	if err := ValidateRegistryCode(o.Code); err != nil {
		return fmt.Errorf("organisation: %w", fieldErr("code", err))
	}
	if err := validText("organisation name", o.Name, true, maxRegistryName); err != nil {
		return fieldErr("name", err)
	}
	switch o.Kind {
	case OrgManufacturer, OrgHospital, OrgCourier:
		return nil
	}
	return fieldErr("kind", fmt.Errorf("organisation kind %q: must be manufacturer, hospital or courier: %w", o.Kind, ErrInvalid))
}

// Validate checks the site's own fields: the references to its
// organisation are checked by the service.
func (s Site) Validate() error {
	if err := ValidateRegistryCode(s.Code); err != nil {
		return fmt.Errorf("site: %w", fieldErr("code", err))
	}
	if err := validText("site name", s.Name, true, maxRegistryName); err != nil {
		return fieldErr("name", err)
	}
	if len(s.Kinds) == 0 {
		return fieldErr("kinds", fmt.Errorf("site %s: kinds must name at least one of collection, manufacturing, treatment: %w", s.Code, ErrInvalid))
	}
	for i, k := range s.Kinds {
		switch k {
		case SiteCollection, SiteManufacturing, SiteTreatment:
		default:
			return fieldErr("kinds", fmt.Errorf("site %s: kind %q: must be collection, manufacturing or treatment: %w", s.Code, k, ErrInvalid))
		}
		if slices.Contains(s.Kinds[:i], k) {
			return fieldErr("kinds", fmt.Errorf("site %s: kind %s given twice: %w", s.Code, k, ErrInvalid))
		}
	}
	if err := ValidateRegistryCode(s.Organisation); err != nil {
		return fmt.Errorf("site %s: organisation: %w", s.Code, fieldErr("organisation", err))
	}
	if _, err := ValidateTimeZone(s.TimeZone); err != nil {
		return fmt.Errorf("site %s: %w", s.Code, fieldErr("time_zone", err))
	}
	if err := validText("site address", s.Address, true, maxRegistryAddress); err != nil {
		return fieldErr("address", err)
	}
	if len(s.Country) != 2 || !isUpperAlpha(s.Country) {
		return fieldErr("country", fmt.Errorf("site %s: country %q must be an ISO 3166-1 alpha-2 code (FR): %w", s.Code, s.Country, ErrInvalid))
	}
	if s.FIN != "" && !ValidFIN(s.FIN) {
		return fieldErr("fin", fmt.Errorf("site %s: fin %q is not an ISBT 128 FIN (A-N, P-Z or 1-9; two of A-N, P-Z, 0-9; two digits): %w", s.Code, s.FIN, ErrInvalid))
	}
	if s.GLN != "" {
		if err := ValidateGLN(s.GLN); err != nil {
			return fmt.Errorf("site %s: %w", s.Code, fieldErr("gln", err))
		}
	}
	if err := ValidateLabelSymbol(s.LabelSymbol); err != nil {
		return fmt.Errorf("site %s: %w", s.Code, fieldErr("label_symbol", err))
	}
	switch s.Accreditation.Status {
	case AccreditationAccredited:
		if err := validDate("accreditation expiry", s.Accreditation.Expiry, true); err != nil {
			return fmt.Errorf("site %s: %w", s.Code, fieldErr("accreditation.expiry", err))
		}
	case AccreditationNone:
		if s.Accreditation.Expiry != "" {
			return fieldErr("accreditation.expiry", fmt.Errorf("site %s: a site without accreditation has no accreditation expiry: %w", s.Code, ErrInvalid))
		}
	case AccreditationPending, AccreditationWithdrawn:
		if err := validDate("accreditation expiry", s.Accreditation.Expiry, false); err != nil {
			return fmt.Errorf("site %s: %w", s.Code, fieldErr("accreditation.expiry", err))
		}
	default:
		return fieldErr("accreditation.status", fmt.Errorf("site %s: accreditation status %q: must be accredited, pending, withdrawn or none: %w", s.Code, s.Accreditation.Status, ErrInvalid))
	}
	q := s.Qualification
	if err := validDate("qualification date", q.Date, q.TrainingDone); err != nil {
		return fmt.Errorf("site %s: %w", s.Code, fieldErr("qualification.date", err))
	}
	if err := validDate("qualification expiry", q.Expiry, q.TrainingDone); err != nil {
		return fmt.Errorf("site %s: %w", s.Code, fieldErr("qualification.expiry", err))
	}
	if q.Date != "" && q.Expiry != "" && q.Expiry <= q.Date {
		return fieldErr("qualification.expiry", fmt.Errorf("site %s: qualification expiry %s is not after its date %s: %w", s.Code, q.Expiry, q.Date, ErrInvalid))
	}
	return nil
}

// HasKind reports whether the site does k.
func (s Site) HasKind(k SiteRole) bool { return slices.Contains(s.Kinds, k) }

// Validate checks the product's own fields: the storage profile is
// checked against the configured ones by the service.
func (p Product) Validate() error {
	if err := ValidateRegistryCode(p.Code); err != nil {
		return fmt.Errorf("product: %w", fieldErr("code", err))
	}
	if err := validText("product name", p.Name, true, maxRegistryName); err != nil {
		return fieldErr("name", err)
	}
	if err := ValidateISBTProductCode(p.ISBTCode); err != nil {
		return fmt.Errorf("product %s: %w", p.Code, fieldErr("isbt_code", err))
	}
	if !DivisionsProductCode(p.ISBTCode) {
		return fieldErr("isbt_code", fmt.Errorf("product %s: isbt_code %s: labels name each bag by ISBT 128 product divisions, which go only with cellular therapy (S...) or regenerated tissue (P...) product codes: %w", p.Code, p.ISBTCode, ErrInvalid))
	}
	if p.StorageProfile == "" {
		return fieldErr("storage_profile", fmt.Errorf("product %s: storage_profile is required: %w", p.Code, ErrInvalid))
	}
	if p.ShelfLifeHours <= 0 || p.ShelfLifeHours > maxShelfLifeHours {
		return fieldErr("shelf_life_hours", fmt.Errorf("product %s: shelf_life_hours %d must be 1-%d: %w", p.Code, p.ShelfLifeHours, maxShelfLifeHours, ErrInvalid))
	}
	if p.ManufacturingDays < 0 || p.ManufacturingDays > maxManufacturing {
		return fieldErr("manufacturing_days", fmt.Errorf("product %s: manufacturing_days %d must be 0-%d: %w", p.Code, p.ManufacturingDays, maxManufacturing, ErrInvalid))
	}
	for _, f := range []struct {
		n string
		v int
	}{{"apheresis_to_start_days", p.ApheresisToStartDays}, {"release_days", p.ReleaseDays},
		{"shipping_days", p.ShippingDays}, {"infusion_window_days", p.InfusionWindowDays}} {
		if f.v < 0 || f.v > maxManufacturing {
			return fieldErr(f.n, fmt.Errorf("product %s: %s %d must be 0-%d (0: not set): %w", p.Code, f.n, f.v, maxManufacturing, ErrInvalid))
		}
	}
	return p.validateFollowUp()
}

// Validate checks the shipper's own fields: its courier is checked by the
// service.
func (s Shipper) Validate() error {
	if err := ValidateShipperID(s.ID); err != nil {
		return fmt.Errorf("shipper: %w", fieldErr("id", err))
	}
	if err := ValidateRegistryCode(s.Courier); err != nil {
		return fmt.Errorf("shipper %s: courier: %w", s.ID, fieldErr("courier", err))
	}
	if s.GIAI != "" {
		if err := ValidateGIAI(s.GIAI); err != nil {
			return fmt.Errorf("shipper %s: %w", s.ID, fieldErr("giai", err))
		}
	}
	return fieldErr("requalification_due", validDate("shipper requalification_due", s.RequalificationDue, true))
}

func isUpperAlpha(s string) bool {
	return s != "" && strings.IndexFunc(s, func(r rune) bool { return r < 'A' || r > 'Z' }) < 0
}
