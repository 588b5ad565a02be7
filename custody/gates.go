package custody

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The qualification gates: a site takes part in a chain only while its
// accreditation and its qualification by the manufacturer hold, and a
// shipper carries cells only until its requalification is due. Expiry
// and due dates are calendar dates: a date is good through its whole day
// in the site's time zone, and lapsed from the next day on.

// siteToday is the calendar date (YYYY-MM-DD) it is at now in the site's
// zone (UTC if the zone cannot be loaded; Validate refuses such a site).
func siteToday(site Site, now time.Time) string {
	loc, err := time.LoadLocation(site.TimeZone)
	if err != nil || site.TimeZone == "" {
		loc = time.UTC
	}
	return now.In(loc).Format(DateLayout)
}

// siteLapse says what of the site's standing has lapsed at now ("its
// accreditation expired on 2026-11-30"), or "" if nothing has.
func siteLapse(site Site, now time.Time) string {
	today := siteToday(site, now)
	a, q := site.Accreditation, site.Qualification
	switch {
	case a.Status == AccreditationWithdrawn && a.Expiry != "":
		return "accreditation was withdrawn (it ran to " + a.Expiry + ")"
	case a.Status == AccreditationWithdrawn:
		return "accreditation was withdrawn"
	case a.Status == AccreditationAccredited && a.Expiry < today:
		return "accreditation expired on " + a.Expiry
	case !q.TrainingDone:
		return "qualification is not complete: its staff training is not done"
	case q.Expiry != "" && q.Expiry < today:
		return "qualification expired on " + q.Expiry
	}
	return ""
}

// shipperLapse says why the shipper may not carry cells at today (a
// YYYY-MM-DD date), or "" if it may.
func shipperLapse(sh Shipper, today string) string {
	switch {
	case sh.Suspended:
		return "is suspended"
	case sh.RequalificationDue < today:
		return "was due for requalification on " + sh.RequalificationDue
	}
	return ""
}

// enrollSite checks one site code given at enrollment once sites are
// registered: registered, not suspended, of an organisation not
// suspended, of the role's kind, and in good standing (siteLapse).
func (s *Service) enrollSite(ctx context.Context, field string, role SiteRole, code string, now time.Time) error {
	site, err := readEntry[Site](ctx, s, KindSite, code)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%s %q is not a registered site's code; choose one of the registered %s sites: %w", field, code, role, ErrInvalid)
	}
	if err != nil {
		return err
	}
	if site.Suspended {
		return fmt.Errorf("%s: site %s is suspended: %w", field, code, ErrInvalid)
	}
	if !site.HasKind(role) {
		return fmt.Errorf("%s: site %s is not a %s site (its kinds: %v): %w", field, code, role, site.Kinds, ErrInvalid)
	}
	o, err := readEntry[Organisation](ctx, s, KindOrganisation, site.Organisation)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if err != nil || o.Suspended {
		return fmt.Errorf("%s: site %s's organisation %s is suspended or not registered: %w", field, code, site.Organisation, ErrInvalid)
	}
	if lapse := siteLapse(site, now); lapse != "" {
		return fmt.Errorf("%s: %s site %s's %s: %w", field, role, code, lapse, ErrConflict)
	}
	return nil
}

// checkEnrollRegistry checks the sites and product of an enrollment
// against the registries, once they hold any site (product); while they
// hold none, free text stands as it always has. It returns the
// registered product's name ("" for a free-text product).
func (s *Service) checkEnrollRegistry(ctx context.Context, sites Sites, product string, now time.Time) (productName string, err error) {
	anySite, err := s.anyEntry(ctx, KindSite)
	if err != nil {
		return "", err
	}
	if anySite {
		for _, f := range []struct {
			field string
			role  SiteRole
			code  string
		}{{"sites.collection", SiteCollection, sites.Collection}, {"sites.manufacturing", SiteManufacturing, sites.Manufacturing},
			{"sites.treatment", SiteTreatment, sites.Treatment}} {
			if err := s.enrollSite(ctx, f.field, f.role, f.code, now); err != nil {
				return "", err
			}
		}
	}
	anyProduct, err := s.anyEntry(ctx, KindProduct)
	if err != nil || !anyProduct {
		return "", err
	}
	p, err := readEntry[Product](ctx, s, KindProduct, product)
	if errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("product %q is not a registered product's code: %w", product, ErrInvalid)
	}
	if err != nil {
		return "", err
	}
	if p.Suspended {
		return "", fmt.Errorf("product %s is suspended: %w", product, ErrInvalid)
	}
	return p.Name, nil
}

// shipDestination returns the role of the site the ship step from state
// leads to: the site of the receive that follows it in the journey table.
func (s *Service) shipDestination(from State) (SiteRole, bool) {
	t, err := s.journey.Rule(from, StepShip)
	if err != nil {
		return "", false
	}
	r, err := s.journey.Rule(t.To, StepReceive)
	if err != nil || r.Site == "" {
		return "", false
	}
	return r.Site, true
}

// checkShipGates refuses a ship whose destination site is suspended or
// its accreditation or qualification has lapsed, or whose shipper is suspended, past its
// requalification date or, on a chain of registered sites, not
// registered at all: ErrConflict naming what lapsed and when. A chain
// none of whose sites is registered (from before the network) passes
// unchecked, as it always has.
func (s *Service) checkShipGates(ctx context.Context, c *Chain, data *stepData, now time.Time) error {
	var registered []Site
	for _, name := range []string{c.Sites.Collection, c.Sites.Manufacturing, c.Sites.Treatment} {
		site, ok, err := s.registeredSite(ctx, name)
		if err != nil {
			return err
		}
		if ok {
			registered = append(registered, site)
		}
	}
	if len(registered) == 0 {
		return nil
	}
	zone := registered[0]
	if role, ok := s.shipDestination(c.State); ok {
		site, ok, err := s.registeredSite(ctx, c.Sites.name(role))
		if err != nil {
			return err
		}
		if ok {
			zone = site
			if site.Suspended {
				return fmt.Errorf("%s site %s is suspended: %w", role, site.Code, ErrConflict)
			}
			if lapse := siteLapse(site, now); lapse != "" {
				return fmt.Errorf("%s site %s's %s: %w", role, site.Code, lapse, ErrConflict)
			}
		}
	}
	var ship ShipData
	if v, err := data.typed(StepShip, stepMembers(StepShip)); err == nil {
		ship, _ = v.(ShipData)
	}
	if ship.Shipper == "" {
		return nil // the data's own check reports a missing shipper
	}
	sh, err := readEntry[Shipper](ctx, s, KindShipper, ship.Shipper)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("shipper %s is not registered; the network ships only in its registered shippers: %w", ship.Shipper, ErrConflict)
	}
	if err != nil {
		return err
	}
	if lapse := shipperLapse(sh, siteToday(zone, now)); lapse != "" {
		return fmt.Errorf("shipper %s %s: %w", sh.ID, lapse, ErrConflict)
	}
	return nil
}

// Expiring is one site's accreditation or qualification, or one
// shipper's requalification, that expires within the days asked, or has
// expired.
type Expiring struct {
	// Kind is KindSite or KindShipper; Code the site's code or the
	// shipper's ID.
	Kind RegistryKind `json:"kind"`
	Code string       `json:"code"`
	// What is "accreditation", "qualification" or "requalification".
	What string `json:"what"`
	// Date is the expiry or due date (YYYY-MM-DD).
	Date string `json:"date"`
	// Days is the number of days from today (in the site's zone; UTC for
	// a shipper) to Date: negative once it has passed.
	Days int `json:"days"`
}

// DefaultQualificationWarningDays is how many days before an expiry the
// console warns of it, unless configured otherwise.
const DefaultQualificationWarningDays = 30

// MaySeeExpiringQualifications reports whether role r is warned of
// expiring qualifications: QA, coordinators (who plan the shipments) and
// administrators (who renew them).
func MaySeeExpiringQualifications(r Role) bool {
	return r == RoleQA || r == RoleCoordinator || r == RoleAdmin
}

// MaxQualificationWarningDays bounds the days ExpiringQualifications
// looks ahead.
const MaxQualificationWarningDays = 3650

// ExpiringQualifications lists the accreditations and qualifications of
// unsuspended sites and the requalification dates of unsuspended
// shippers that expire within days from today, or have expired, soonest
// first (QA, coordinators and administrators).
func (s *Service) ExpiringQualifications(ctx context.Context, actor User, days int) ([]Expiring, error) {
	if !MaySeeExpiringQualifications(actor.Role) {
		return nil, fmt.Errorf("expiring qualifications: QA, coordinators and administrators see them (you are %s): %w", actor.Role, ErrForbidden)
	}
	if days < 0 || days > MaxQualificationWarningDays {
		return nil, fmt.Errorf("expiring qualifications: days %d must be 0-%d: %w", days, MaxQualificationWarningDays, ErrInvalid)
	}
	now := s.now()
	out := []Expiring{}
	add := func(kind RegistryKind, code, what, date, today string) {
		d, err := time.Parse(DateLayout, date)
		t, err2 := time.Parse(DateLayout, today)
		if err != nil || err2 != nil {
			return
		}
		n := int(d.Sub(t).Hours() / 24)
		if n <= days {
			out = append(out, Expiring{Kind: kind, Code: code, What: what, Date: date, Days: n})
		}
	}
	todays := map[string]string{} // time zone -> today there: each zone is loaded once
	for after := ""; ; {
		sites, err := listEntries[Site](ctx, s, actor, after, MaxRegistryPage)
		if err != nil {
			return nil, err
		}
		for _, site := range sites {
			if site.Suspended {
				continue
			}
			today, ok := todays[site.TimeZone]
			if !ok {
				today = siteToday(site, now)
				todays[site.TimeZone] = today
			}
			if site.Accreditation.Status == AccreditationAccredited {
				add(KindSite, site.Code, "accreditation", site.Accreditation.Expiry, today)
			}
			if site.Qualification.Expiry != "" {
				add(KindSite, site.Code, "qualification", site.Qualification.Expiry, today)
			}
		}
		if len(sites) < MaxRegistryPage {
			break
		}
		after = sites[len(sites)-1].Code
	}
	today := now.UTC().Format(DateLayout)
	for after := ""; ; {
		shippers, err := listEntries[Shipper](ctx, s, actor, after, MaxRegistryPage)
		if err != nil {
			return nil, err
		}
		for _, sh := range shippers {
			if !sh.Suspended {
				add(KindShipper, sh.ID, "requalification", sh.RequalificationDue, today)
			}
		}
		if len(shippers) < MaxRegistryPage {
			break
		}
		after = shippers[len(shippers)-1].ID
	}
	slices.SortStableFunc(out, func(a, b Expiring) int {
		if a.Date != b.Date {
			if a.Date < b.Date {
				return -1
			}
			return 1
		}
		return 0
	})
	return out, nil
}
