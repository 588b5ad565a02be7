package custody

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Scheduling: a manufacturing site makes a fixed number of products a day
// (slots, by product) and a collection site has a fixed number of
// apheresis chairs a day; a chain is booked before its cells are
// collected, and the booking holds one chair and one slot. Days are the
// site's own calendar days, in its IANA time zone. This file holds the
// capacity, the claims a booking holds and the plan's arithmetic;
// schedule_service.go holds the service's side.

// KindCapacity is the object kind of a site's capacity in the audit trail.
const KindCapacity ObjectKind = "capacity"

// Audit actions on a site's capacity.
const (
	// AuditCapacitySet is the definition or replacement of a site's
	// capacity.
	AuditCapacitySet AuditAction = "capacity.set"
	// AuditCapacityClose adds a closure to a site's capacity.
	AuditCapacityClose AuditAction = "capacity.close"
	// AuditCapacityCloseChange changes a closure's days or reason.
	AuditCapacityCloseChange AuditAction = "capacity.close-change"
	// AuditCapacityReopen removes a closure: its days take bookings
	// again.
	AuditCapacityReopen AuditAction = "capacity.reopen"
)

// Bounds of a capacity definition.
const (
	maxPerDay             = 1000
	maxClosures           = 1000
	maxCapacityExceptions = 10000
	// MaxAvailabilityDays bounds the days one availability query covers.
	MaxAvailabilityDays = 366
)

// Closure is a period a site takes no bookings: From to To, both
// included (YYYY-MM-DD, the site's calendar days), and why.
type Closure struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Reason string `json:"reason"`
}

// CapacityException is a day on which a site has another count than its
// usual one: of apheresis chairs (Product empty) or of manufacturing slots
// for Product.
type CapacityException struct {
	Date    string `json:"date"`
	Product string `json:"product,omitempty"`
	Count   int    `json:"count"`
	Reason  string `json:"reason"`
}

// Capacity is what a site can take a day: apheresis chairs at a
// collection site, manufacturing slots by product at a manufacturing site,
// with the weekdays it is closed, its closures and its exceptions.
type Capacity struct {
	Site string `json:"site"`
	// Chairs is the number of apheresis chairs a day (collection sites).
	Chairs int `json:"chairs,omitempty"`
	// Slots is the number of manufacturing starts a day by product code
	// (manufacturing sites).
	Slots map[string]int `json:"slots,omitempty"`
	// ClosedWeekdays are the days of the week the site takes no booking
	// (0 Sunday to 6 Saturday).
	ClosedWeekdays []time.Weekday      `json:"closed_weekdays,omitempty"`
	Closures       []Closure           `json:"closures,omitempty"`
	Exceptions     []CapacityException `json:"exceptions,omitempty"`
	// Since is when the site's capacity was first defined (set by the
	// service): chains enrolled before it are not held to a booking.
	Since time.Time `json:"since"`
}

// Claim is one unit of capacity a booking holds: an apheresis chair
// (Product empty) or a manufacturing slot for Product, at Site on Date
// (the site's calendar day, YYYY-MM-DD).
type Claim struct {
	Site    string `json:"site"`
	Date    string `json:"date"`
	Product string `json:"product,omitempty"`
}

// ID names the claim: site/date/product, or site/date/chair.
func (c Claim) ID() string {
	p := c.Product
	if p == "" {
		p = "chair"
	}
	return c.Site + "/" + c.Date + "/" + p
}

// SlotUse is how many claims a site holds on a day for a product (empty:
// apheresis chairs).
type SlotUse struct {
	Date    string `json:"date"`
	Product string `json:"product,omitempty"`
	Used    int    `json:"used"`
}

// HeldClaim is a claim a chain holds, with the record that took it.
type HeldClaim struct {
	Claim
	COI COI    `json:"coi"`
	Seq uint64 `json:"seq"`
}

// SiteSlots is one site's stored capacity (as custody encodes it) and
// the claims it holds over a range of days, as a ScheduleStore reads them.
type SiteSlots struct {
	Site     string
	Capacity []byte
	Uses     []SlotUse
}

// Count returns how many claims of product (empty: apheresis chairs) the
// site takes on date (YYYY-MM-DD), and, when it is closed that day, why.
func (c Capacity) Count(date, product string) (int, string) {
	wd := time.Weekday(-1)
	if len(c.ClosedWeekdays) > 0 {
		if d, err := time.Parse(DateLayout, date); err == nil {
			wd = d.Weekday()
		}
	}
	return c.countOn(date, wd, product)
}

// countOn is Count for a date whose weekday the caller knows (-1: none).
func (c Capacity) countOn(date string, wd time.Weekday, product string) (int, string) {
	for _, cl := range c.Closures {
		if cl.From <= date && date <= cl.To {
			return 0, "closed from " + cl.From + " to " + cl.To + ": " + cl.Reason
		}
	}
	if wd >= 0 && slices.Contains(c.ClosedWeekdays, wd) {
		return 0, "closed on " + wd.String() + "s"
	}
	for _, e := range c.Exceptions {
		if e.Date == date && e.Product == product {
			return e.Count, ""
		}
	}
	if product == "" {
		return c.Chairs, ""
	}
	return c.Slots[product], ""
}

// Validate checks the capacity's own fields: the site and products are
// checked against the registries by the service.
func (c Capacity) Validate() error {
	if err := ValidateRegistryCode(c.Site); err != nil {
		return fmt.Errorf("capacity: site: %w", err)
	}
	if c.Chairs < 0 || c.Chairs > maxPerDay {
		return fmt.Errorf("capacity %s: chairs %d must be 0-%d: %w", c.Site, c.Chairs, maxPerDay, ErrInvalid)
	}
	for _, p := range slices.Sorted(maps.Keys(c.Slots)) {
		if err := ValidateRegistryCode(p); err != nil {
			return fmt.Errorf("capacity %s: slots: product: %w", c.Site, err)
		}
		if n := c.Slots[p]; n < 0 || n > maxPerDay {
			return fmt.Errorf("capacity %s: slots of %s %d must be 0-%d: %w", c.Site, p, n, maxPerDay, ErrInvalid)
		}
	}
	for i, d := range c.ClosedWeekdays {
		if d < time.Sunday || d > time.Saturday || slices.Contains(c.ClosedWeekdays[:i], d) {
			return fmt.Errorf("capacity %s: closed_weekdays must be distinct days 0 (Sunday) to 6 (Saturday): %w", c.Site, ErrInvalid)
		}
	}
	if len(c.Closures) > maxClosures || len(c.Exceptions) > maxCapacityExceptions {
		return fmt.Errorf("capacity %s: at most %d closures and %d exceptions: %w", c.Site, maxClosures, maxCapacityExceptions, ErrInvalid)
	}
	for i, cl := range c.Closures {
		if err := cl.Validate(); err != nil {
			return fmt.Errorf("capacity %s: closure %d: %w", c.Site, i+1, err)
		}
	}
	seen := map[[2]string]bool{}
	for i, e := range c.Exceptions {
		if err := validDate("exception date", e.Date, true); err != nil {
			return fmt.Errorf("capacity %s: exception %d: %w", c.Site, i+1, err)
		}
		if e.Product != "" {
			if err := ValidateRegistryCode(e.Product); err != nil {
				return fmt.Errorf("capacity %s: exception %d: product: %w", c.Site, i+1, err)
			}
		}
		if e.Count < 0 || e.Count > maxPerDay {
			return fmt.Errorf("capacity %s: exception %d: count %d must be 0-%d: %w", c.Site, i+1, e.Count, maxPerDay, ErrInvalid)
		}
		if err := validText("exception reason", e.Reason, true, maxReason); err != nil {
			return fmt.Errorf("capacity %s: exception %d: %w", c.Site, i+1, err)
		}
		k := [2]string{e.Date, e.Product}
		if seen[k] {
			return fmt.Errorf("capacity %s: two exceptions for %s %s: %w", c.Site, e.Date, e.Product, ErrInvalid)
		}
		seen[k] = true
	}
	return nil
}

// Validate checks a closure: two dates in order and a reason.
func (cl Closure) Validate() error {
	if err := validDate("closure from", cl.From, true); err != nil {
		return err
	}
	if err := validDate("closure to", cl.To, true); err != nil {
		return err
	}
	if cl.To < cl.From {
		return fmt.Errorf("closure to %s is before its from %s: %w", cl.To, cl.From, ErrInvalid)
	}
	return validText("closure reason", cl.Reason, true, maxReason)
}

// LeadTimes are a product's planned durations, in calendar days, from
// apheresis to the end of the infusion window.
type LeadTimes struct {
	// ApheresisToStart: from apheresis to manufacturing start.
	ApheresisToStart int `json:"apheresis_to_start_days"`
	// Manufacturing: from manufacturing start to its end.
	Manufacturing int `json:"manufacturing_days"`
	// Release: from manufacturing end to QA release.
	Release int `json:"release_days"`
	// Shipping: from release to arrival at the treatment site.
	Shipping int `json:"shipping_days"`
	// InfusionWindow: the days from arrival within which the product is
	// to be infused (arrival day + InfusionWindow is the window's last).
	InfusionWindow int `json:"infusion_window_days"`
}

// LeadTimes returns the product's lead times, or an ErrConflict naming
// the first that is not set (zero).
func (p Product) LeadTimes() (LeadTimes, error) {
	lt := LeadTimes{ApheresisToStart: p.ApheresisToStartDays, Manufacturing: p.ManufacturingDays, Release: p.ReleaseDays,
		Shipping: p.ShippingDays, InfusionWindow: p.InfusionWindowDays}
	for _, f := range []struct {
		n string
		v int
	}{{"apheresis_to_start_days", lt.ApheresisToStart}, {"manufacturing_days", lt.Manufacturing},
		{"release_days", lt.Release}, {"shipping_days", lt.Shipping}, {"infusion_window_days", lt.InfusionWindow}} {
		if f.v <= 0 {
			return lt, fmt.Errorf("product %s has no %s set; an administrator sets its lead times before chains of it are booked: %w",
				p.Code, f.n, ErrConflict)
		}
	}
	return lt, nil
}

// Milestone is one planned event of a chain: at a site, on the site's
// calendar day Date, at Time (noon that day in the site's zone, UTC).
type Milestone struct {
	Site string    `json:"site"`
	Date string    `json:"date"`
	Time time.Time `json:"time"`
}

// Plan is a chain's planned vein-to-vein journey, each milestone on the
// calendar of the site where it happens.
type Plan struct {
	Apheresis          Milestone `json:"apheresis"`
	ManufacturingStart Milestone `json:"manufacturing_start"`
	ManufacturingEnd   Milestone `json:"manufacturing_end"`
	Release            Milestone `json:"release"`
	Shipment           Milestone `json:"shipment"`
	Arrival            Milestone `json:"arrival"`
	InfusionFrom       Milestone `json:"infusion_from"`
	InfusionTo         Milestone `json:"infusion_to"`
}

// PlanSite is a site as the plan needs it: its code and time zone.
type PlanSite struct {
	Code string
	Loc  *time.Location
}

// plannedHour is the local hour a milestone is planned at: noon, away
// from the hours a daylight-saving change skips or repeats.
const plannedHour = 12

// milestone is the site's calendar day date (y, m, d) plus days, at noon
// in its zone: calendar days added in the site's location, so a
// daylight-saving change moves no milestone off its day.
func milestone(site PlanSite, y int, m time.Month, d, days int) Milestone {
	t := time.Date(y, m, d+days, plannedHour, 0, 0, 0, site.Loc)
	return Milestone{Site: site.Code, Date: t.Format(DateLayout), Time: t.UTC()}
}

// after is the milestone days calendar days after prev, on the calendar
// of site: prev's instant read as a day in site's zone, plus days.
func after(prev Milestone, site PlanSite, days int) Milestone {
	y, m, d := prev.Time.In(site.Loc).Date()
	return milestone(site, y, m, d, days)
}

// ComputePlan plans a chain's milestones from its apheresis on date
// (YYYY-MM-DD, the collection site's day) with the product's lead times:
// manufacturing starts lt.ApheresisToStart days after apheresis, on the
// manufacturing site's calendar; it ends lt.Manufacturing days later and
// is released lt.Release days after; the product ships on its release day
// and arrives lt.Shipping days later, on the treatment site's calendar;
// the infusion window runs from arrival to lt.InfusionWindow days after.
// Days are added to dates in each site's zone, never as multiples of 24
// hours.
func ComputePlan(date string, lt LeadTimes, collection, manufacturing, treatment PlanSite) (Plan, error) {
	d, err := time.Parse(DateLayout, date)
	if err != nil {
		return Plan{}, fmt.Errorf("apheresis date %q is not a date (YYYY-MM-DD): %w", date, ErrInvalid)
	}
	for _, s := range []PlanSite{collection, manufacturing, treatment} {
		if s.Loc == nil {
			return Plan{}, fmt.Errorf("site %s has no time zone: %w", s.Code, ErrInvalid)
		}
	}
	var p Plan
	p.Apheresis = milestone(collection, d.Year(), d.Month(), d.Day(), 0)
	p.ManufacturingStart = after(p.Apheresis, manufacturing, lt.ApheresisToStart)
	p.planAfterStart(lt, manufacturing, treatment)
	return p, nil
}

// ReplanFromStart moves plan p's manufacturing start to date (YYYY-MM-DD,
// the manufacturing site's day), keeping its apheresis, and plans the
// milestones after it as ComputePlan does: a plant's lost day moves the
// slot of cells already collected. The start may not precede the
// apheresis.
func ReplanFromStart(p Plan, date string, lt LeadTimes, manufacturing, treatment PlanSite) (Plan, error) {
	d, err := time.Parse(DateLayout, date)
	if err != nil {
		return Plan{}, fmt.Errorf("manufacturing start %q is not a date (YYYY-MM-DD): %w", date, ErrInvalid)
	}
	if manufacturing.Loc == nil || treatment.Loc == nil {
		return Plan{}, fmt.Errorf("a site has no time zone: %w", ErrInvalid)
	}
	p.ManufacturingStart = milestone(manufacturing, d.Year(), d.Month(), d.Day(), 0)
	if p.ManufacturingStart.Time.Before(p.Apheresis.Time) {
		return Plan{}, fmt.Errorf("manufacturing start %s at %s is before the apheresis (%s at %s): %w", date, manufacturing.Code,
			p.Apheresis.Date, p.Apheresis.Site, ErrInvalid)
	}
	p.planAfterStart(lt, manufacturing, treatment)
	return p, nil
}

// planAfterStart plans the milestones after the manufacturing start.
func (p *Plan) planAfterStart(lt LeadTimes, manufacturing, treatment PlanSite) {
	p.ManufacturingEnd = after(p.ManufacturingStart, manufacturing, lt.Manufacturing)
	p.Release = after(p.ManufacturingEnd, manufacturing, lt.Release)
	p.Shipment = p.Release
	p.Arrival = after(p.Shipment, treatment, lt.Shipping)
	p.InfusionFrom = p.Arrival
	p.InfusionTo = after(p.Arrival, treatment, lt.InfusionWindow)
}

// Claims returns what booking the plan holds: the apheresis chair at the
// collection site on the apheresis day, and the manufacturing slot for
// product on the manufacturing start day.
func (p Plan) Claims(product string) []Claim {
	return []Claim{{Site: p.Apheresis.Site, Date: p.Apheresis.Date},
		{Site: p.ManufacturingStart.Site, Date: p.ManufacturingStart.Date, Product: product}}
}

// claimDiff returns the claims of old that next does not hold (to
// release) and those of next that old does not (to take).
func claimDiff(old, next []Claim) (release, take []Claim) {
	for _, c := range old {
		if !slices.Contains(next, c) {
			release = append(release, c)
		}
	}
	for _, c := range next {
		if !slices.Contains(old, c) {
			take = append(take, c)
		}
	}
	return release, take
}

// slotTaken is ErrSlotTaken naming the claim refused and why.
func slotTaken(c Claim, why string) error {
	return fmt.Errorf("%s: %s: %w", c.ID(), why, ErrSlotTaken)
}

// CheckClaim says whether the site whose capacity is cap (nil: none
// defined) can take claim c when it already holds used claims of its
// kind that day: nil, or an error wrapping ErrSlotTaken. Stores call it
// inside the transaction that takes the claim.
func CheckClaim(cap *Capacity, c Claim, used int) error {
	if cap == nil {
		return slotTaken(c, "the site has no capacity defined")
	}
	n, closed := cap.Count(c.Date, c.Product)
	switch {
	case closed != "":
		return slotTaken(c, closed)
	case n == 0:
		return slotTaken(c, "the site takes none that day")
	case used >= n:
		return slotTaken(c, fmt.Sprintf("all %d are booked", n))
	}
	return nil
}
