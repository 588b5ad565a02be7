package custody

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// The service's side of scheduling. Administrators define each site's
// capacity, with a reason, audited like the registries. A coordinator
// books a chain's plan before its cells are collected: the booking is a
// signed schedule record whose append takes the apheresis chair and the
// manufacturing slot in the same store transaction (Draft.Claims), so two
// bookings never share the last slot. Rescheduling and unscheduling are
// records too, with their reason; cancelling the chain frees its booking.
//
// The collect gate: a chain of a registered product whose collection and
// manufacturing sites are registered, enrolled once its manufacturing
// site's capacity was defined (Capacity.Since), is collected only while it
// holds a booking, or after a collect-override record signed by a
// coordinator and QA with a reason. Chains enrolled before, and chains of
// free-text sites or products, are collected as they always were.

// MaySchedule reports whether role r books, moves and frees chains'
// plans: coordinators.
func MaySchedule(r Role) bool { return r == RoleCoordinator }

// BookRequest is a coordinator's booking (or rebooking) of a chain's
// plan: the apheresis day at the collection site, the reason of a
// reschedule, and the signatures.
type BookRequest struct {
	ApheresisDate string `json:"apheresis_date,omitempty"`
	// ManufacturingStart moves the slot of a chain already collected (a
	// reschedule only): the plant's day, YYYY-MM-DD.
	ManufacturingStart string             `json:"manufacturing_start,omitempty"`
	Reason             string             `json:"reason,omitempty"`
	Signatures         []SignatureRequest `json:"signatures"`
}

// ReasonRequest is a signed request that needs only its reason: an
// unschedule or a collect override.
type ReasonRequest struct {
	Reason     string             `json:"reason"`
	Signatures []SignatureRequest `json:"signatures"`
}

// Booking is what a chain's records say of its booking.
type Booking struct {
	// Current is the booking the chain holds (the last schedule or
	// reschedule record not followed by an unschedule); nil: none.
	Current *ScheduleData `json:"current,omitempty"`
	// Seq is the position of the record that made Current.
	Seq uint64 `json:"seq,omitempty"`
	// Override is the position of the collect-override record, if any.
	Override uint64 `json:"override,omitempty"`
}

// BookingOf folds the chain's scheduling records.
func BookingOf(c *Chain) Booking {
	var b Booking
	for i := range c.Records {
		r := &c.Records[i]
		switch r.Step {
		case StepSchedule, StepReschedule, StepUnschedule, StepCollectOverride:
		default:
			continue
		}
		switch x := r.Body().(type) {
		case ScheduleData:
			b.Current, b.Seq = &x, r.Seq
		case RescheduleData:
			b.Current, b.Seq = &x.ScheduleData, r.Seq
		case UnscheduleData:
			b.Current, b.Seq = nil, 0
		case CollectOverrideData:
			b.Override = r.Seq
		}
	}
	return b
}

// SiteCapacity returns a site's capacity (every user who reads the
// registries). ErrNotFound: none is defined.
func (s *Service) SiteCapacity(ctx context.Context, actor User, site string) (Capacity, error) {
	if err := requireRegistryReader("read capacity", actor); err != nil {
		return Capacity{}, err
	}
	c, err := s.capacity(ctx, site)
	if err != nil {
		return Capacity{}, fmt.Errorf("read capacity of %s: %w", site, err)
	}
	return c, nil
}

func (s *Service) capacity(ctx context.Context, site string) (Capacity, error) {
	var c Capacity
	b, err := s.store.Capacity(ctx, site)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("stored capacity of %s is malformed: %v: %w", site, err, ErrDamaged)
	}
	return c, nil
}

// SetCapacity defines or replaces a site's capacity (administrators, with
// a reason). The site must be registered; chairs need a collection site,
// slots a manufacturing site and registered products. The change and its
// audit entry are stored together.
func (s *Service) SetCapacity(ctx context.Context, actor User, site string, c Capacity, reason string) (Capacity, error) {
	if c.Site == "" {
		c.Site = site
	} else if c.Site != site {
		return Capacity{}, fmt.Errorf("set capacity of %s: the body names %s: %w", site, c.Site, ErrInvalid)
	}
	return s.changeCapacity(ctx, actor, site, AuditCapacitySet, reason, func(old *Capacity) (Capacity, error) {
		return c, nil
	})
}

// AddClosure closes a site from cl.From to cl.To for cl.Reason
// (administrators): bookings already held those days stay, new ones are
// refused. ErrNotFound: the site has no capacity defined.
func (s *Service) AddClosure(ctx context.Context, actor User, site string, cl Closure) (Capacity, error) {
	if err := cl.Validate(); err != nil {
		return Capacity{}, fmt.Errorf("close %s: %w", site, err)
	}
	return s.changeCapacity(ctx, actor, site, AuditCapacityClose, cl.Reason, func(old *Capacity) (Capacity, error) {
		if old == nil {
			return Capacity{}, fmt.Errorf("site %s has no capacity defined: %w", site, ErrNotFound)
		}
		n := *old
		n.Closures = append(slices.Clone(old.Closures), cl)
		return n, nil
	})
}

// closureAt returns the index in c of the closure from from to to;
// ErrNotFound when c has none.
func closureAt(site string, c *Capacity, from, to string) (int, error) {
	if c == nil {
		return -1, fmt.Errorf("site %s has no capacity defined: %w", site, ErrNotFound)
	}
	i := slices.IndexFunc(c.Closures, func(cl Closure) bool { return cl.From == from && cl.To == to })
	if i < 0 {
		return -1, fmt.Errorf("site %s has no closure from %s to %s: %w", site, from, to, ErrNotFound)
	}
	return i, nil
}

// ChangeClosure replaces site's closure from from to to with cl, for
// cl.Reason (administrators): its new days are refused to new bookings,
// the days it no longer covers take them again (offered at once to the
// waiting list); bookings already held stay. ErrNotFound: no such
// closure.
func (s *Service) ChangeClosure(ctx context.Context, actor User, site, from, to string, cl Closure) (Capacity, error) {
	if err := cl.Validate(); err != nil {
		return Capacity{}, fmt.Errorf("change a closure of %s: %w", site, err)
	}
	return s.changeCapacity(ctx, actor, site, AuditCapacityCloseChange, cl.Reason, func(old *Capacity) (Capacity, error) {
		i, err := closureAt(site, old, from, to)
		if err != nil {
			return Capacity{}, err
		}
		n := *old
		n.Closures = slices.Clone(old.Closures)
		n.Closures[i] = cl
		return n, nil
	})
}

// RemoveClosure removes site's closure from from to to, with a reason
// (administrators): its days take bookings again, offered at once to the
// waiting list. ErrNotFound: no such closure.
func (s *Service) RemoveClosure(ctx context.Context, actor User, site, from, to, reason string) (Capacity, error) {
	return s.changeCapacity(ctx, actor, site, AuditCapacityReopen, reason, func(old *Capacity) (Capacity, error) {
		i, err := closureAt(site, old, from, to)
		if err != nil {
			return Capacity{}, err
		}
		n := *old
		n.Closures = slices.Delete(slices.Clone(old.Closures), i, i+1)
		return n, nil
	})
}

func (s *Service) changeCapacity(ctx context.Context, actor User, site string, action AuditAction, reason string,
	change func(old *Capacity) (Capacity, error)) (Capacity, error) {
	op := fmt.Sprintf("%s %s", action, site)
	if !MayAdminister(actor.Role) {
		return Capacity{}, fmt.Errorf("%s: only an administrator may change a site's capacity (you are %s): %w", op, actor.Role, ErrForbidden)
	}
	if err := validReason(op, reason); err != nil {
		return Capacity{}, err
	}
	reg, err := readEntry[Site](ctx, s, KindSite, site)
	if errors.Is(err, ErrNotFound) {
		return Capacity{}, fmt.Errorf("%s: no such site is registered: %w", op, ErrNotFound)
	}
	if err != nil {
		return Capacity{}, fmt.Errorf("%s: %w", op, err)
	}
	var out Capacity
	err = s.store.UpdateCapacity(ctx, site, func(stored []byte) ([]byte, AuditEntry, error) {
		var old *Capacity
		if stored != nil {
			old = new(Capacity)
			if err := json.Unmarshal(stored, old); err != nil {
				return nil, AuditEntry{}, fmt.Errorf("stored capacity is malformed: %v: %w", err, ErrDamaged)
			}
		}
		c, err := change(old)
		if err != nil {
			return nil, AuditEntry{}, err
		}
		c.Site = site
		if c.Since = s.Now(); old != nil && !old.Since.IsZero() {
			c.Since = old.Since
		}
		if err := c.Validate(); err != nil {
			return nil, AuditEntry{}, err
		}
		if err := s.checkCapacityRefs(ctx, reg, c); err != nil {
			return nil, AuditEntry{}, err
		}
		val, err := json.Marshal(c)
		if err != nil {
			return nil, AuditEntry{}, err
		}
		out = c
		return val, AuditEntry{Time: s.Now(), Actor: actor.ID, Kind: KindCapacity, Code: site, Action: action, Reason: reason,
			Old: stored, New: val}, nil
	})
	if err != nil {
		return Capacity{}, fmt.Errorf("%s: %w", op, err)
	}
	s.log.Info("capacity changed", "site", site, "action", action, "by", actor.ID)
	s.slotsFreed(ctx, actor)
	return out, nil
}

// checkCapacityRefs checks a capacity against its registered site:
// chairs at a collection site, slots at a manufacturing site, of
// registered products.
func (s *Service) checkCapacityRefs(ctx context.Context, site Site, c Capacity) error {
	chairs, products := c.Chairs > 0, slices.Collect(maps.Keys(c.Slots))
	for _, e := range c.Exceptions {
		if e.Product == "" {
			chairs = true
		} else if !slices.Contains(products, e.Product) {
			products = append(products, e.Product)
		}
	}
	if chairs && !site.HasKind(SiteCollection) {
		return fmt.Errorf("site %s is not a collection site and has no apheresis chairs: %w", site.Code, ErrInvalid)
	}
	if len(products) > 0 && !site.HasKind(SiteManufacturing) {
		return fmt.Errorf("site %s is not a manufacturing site and has no manufacturing slots: %w", site.Code, ErrInvalid)
	}
	for _, p := range products {
		if _, err := readEntry[Product](ctx, s, KindProduct, p); errors.Is(err, ErrNotFound) {
			return fmt.Errorf("slots: product %s is not registered: %w", p, ErrInvalid)
		} else if err != nil {
			return err
		}
	}
	return nil
}

// AvailabilityQuery asks for the free capacity of sites over days From
// to To (YYYY-MM-DD, both included, at most MaxAvailabilityDays): of
// manufacturing slots for Product, or of apheresis chairs when Product is
// empty. Sites empty: every site with a capacity of that kind, in code
// order after After, at most Limit sites (0: MaxRegistryPage).
type AvailabilityQuery struct {
	Sites   []string
	Product string
	From    string
	To      string
	After   string
	Limit   int
}

// DayAvailability is one site's capacity on one of its days.
type DayAvailability struct {
	Date     string `json:"date"`
	Capacity int    `json:"capacity"`
	Used     int    `json:"used"`
	Free     int    `json:"free"`
	Closed   string `json:"closed,omitempty"`
}

// SiteAvailability is one site's days.
type SiteAvailability struct {
	Site string            `json:"site"`
	Days []DayAvailability `json:"days"`
}

// Availability returns the free capacity q asks for (every user who reads
// the registries).
func (s *Service) Availability(ctx context.Context, actor User, q AvailabilityQuery) ([]SiteAvailability, error) {
	const op = "availability"
	if err := requireRegistryReader(op, actor); err != nil {
		return nil, err
	}
	from, err := time.Parse(DateLayout, q.From)
	if err != nil {
		return nil, fmt.Errorf("%s: from %q is not a date (YYYY-MM-DD): %w", op, q.From, ErrInvalid)
	}
	to, err := time.Parse(DateLayout, q.To)
	if err != nil {
		return nil, fmt.Errorf("%s: to %q is not a date (YYYY-MM-DD): %w", op, q.To, ErrInvalid)
	}
	days := int(to.Sub(from).Hours()/24) + 1
	if days < 1 || days > MaxAvailabilityDays {
		return nil, fmt.Errorf("%s: from %s to %s must cover 1-%d days: %w", op, q.From, q.To, MaxAvailabilityDays, ErrInvalid)
	}
	if q.Limit < 0 || q.Limit > MaxRegistryPage || len(q.Sites) > MaxRegistryPage {
		return nil, fmt.Errorf("%s: limit %d and sites must be at most %d: %w", op, q.Limit, MaxRegistryPage, ErrInvalid)
	}
	if q.Limit == 0 {
		q.Limit = MaxRegistryPage
	}
	if q.Product != "" {
		if err := ValidateRegistryCode(q.Product); err != nil {
			return nil, fmt.Errorf("%s: product: %w", op, err)
		}
	}
	raw, err := s.store.SiteSlots(ctx, q.Sites, q.After, q.Limit, q.From, q.To)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	dates, weekdays := make([]string, days), make([]time.Weekday, days)
	for i := range dates {
		d := from.AddDate(0, 0, i)
		dates[i], weekdays[i] = d.Format(DateLayout), d.Weekday()
	}
	out := make([]SiteAvailability, 0, len(raw))
	for _, ss := range raw {
		var c Capacity
		if err := json.Unmarshal(ss.Capacity, &c); err != nil {
			return nil, fmt.Errorf("%s: stored capacity of %s is malformed: %v: %w", op, ss.Site, err, ErrDamaged)
		}
		if len(q.Sites) == 0 && !c.offers(q.Product) {
			continue
		}
		// The uses come in date order: walk them beside the days.
		sa := SiteAvailability{Site: ss.Site, Days: make([]DayAvailability, days)}
		uses := ss.Uses
		for i, d := range dates {
			u := 0
			for len(uses) > 0 && uses[0].Date <= d {
				if uses[0].Date == d && uses[0].Product == q.Product {
					u = uses[0].Used
				}
				uses = uses[1:]
			}
			n, closed := c.countOn(d, weekdays[i], q.Product)
			sa.Days[i] = DayAvailability{Date: d, Capacity: n, Used: u, Free: max(n-u, 0), Closed: closed}
		}
		out = append(out, sa)
	}
	return out, nil
}

// offers reports whether the capacity has any of product's slots
// (empty: apheresis chairs), usually or by exception.
func (c Capacity) offers(product string) bool {
	if product == "" && c.Chairs > 0 || product != "" && c.Slots[product] > 0 {
		return true
	}
	return slices.ContainsFunc(c.Exceptions, func(e CapacityException) bool { return e.Product == product && e.Count > 0 })
}

// planInputs reads what chain c's plan is made of: its product, which
// must be registered with its lead times set, and its three sites, which
// must be registered (collection, manufacturing, treatment, in order).
func (s *Service) planInputs(ctx context.Context, c *Chain) (Product, LeadTimes, [3]PlanSite, error) {
	var ps [3]PlanSite
	p, err := readEntry[Product](ctx, s, KindProduct, c.Product)
	if errors.Is(err, ErrNotFound) {
		return p, LeadTimes{}, ps, fmt.Errorf("product %q is not a registered product; only chains of registered products are booked: %w", c.Product, ErrConflict)
	}
	if err != nil {
		return p, LeadTimes{}, ps, err
	}
	if p.Suspended {
		return p, LeadTimes{}, ps, fmt.Errorf("product %s is suspended: %w", p.Code, ErrConflict)
	}
	lt, err := p.LeadTimes()
	if err != nil {
		return p, lt, ps, err
	}
	for i, r := range []SiteRole{SiteCollection, SiteManufacturing, SiteTreatment} {
		site, ok, err := s.registeredSite(ctx, c.Sites.name(r))
		if err != nil {
			return p, lt, ps, err
		}
		if !ok {
			return p, lt, ps, fmt.Errorf("the %s site %q is not a registered site; only chains of registered sites are booked: %w", r, c.Sites.name(r), ErrConflict)
		}
		if site.Suspended {
			return p, lt, ps, fmt.Errorf("the %s site %s is suspended: %w", r, site.Code, ErrConflict)
		}
		loc, err := ValidateTimeZone(site.TimeZone)
		if err != nil {
			return p, lt, ps, fmt.Errorf("site %s: %w", site.Code, err)
		}
		ps[i] = PlanSite{Code: site.Code, Loc: loc}
	}
	return p, lt, ps, nil
}

// notPast refuses a day (YYYY-MM-DD) of field that is not one, or is past
// at site.
func (s *Service) notPast(field, date string, site PlanSite) error {
	if err := validDate(field, date, true); err != nil {
		return err
	}
	if today := s.now().In(site.Loc).Format(DateLayout); date < today {
		return fmt.Errorf("%s %s is past at %s (today is %s there): %w", field, date, site.Code, today, ErrInvalid)
	}
	return nil
}

// planFor plans chain c from the apheresis day date, which may not be
// past at the collection site.
func (s *Service) planFor(ctx context.Context, c *Chain, date string) (Plan, Product, error) {
	p, lt, ps, err := s.planInputs(ctx, c)
	if err != nil {
		return Plan{}, p, err
	}
	if err := s.notPast("apheresis_date", date, ps[0]); err != nil {
		return Plan{}, p, err
	}
	plan, err := ComputePlan(date, lt, ps[0], ps[1], ps[2])
	return plan, p, err
}

// scheduleRecord signs and appends one scheduling record of chain c
// (whose lock the caller holds), taking and freeing claims with it.
func (s *Service) scheduleRecord(ctx context.Context, actor User, c *Chain, step Step, data StepData, sigReqs []SignatureRequest,
	claims, releases []Claim, quota *QuotaUse) (Record, error) {
	now := s.now().UTC()
	rule, err := s.journey.Rule(c.State, step)
	if err != nil {
		return Record{}, err
	}
	body, err := json.Marshal(data)
	if err != nil {
		return Record{}, err
	}
	if body, err = Canonicalize(body); err != nil {
		return Record{}, err
	}
	// A reason is the person's free text, and goes into the ledger.
	var phi *PHI
	switch p, err := s.store.PHI(ctx, c.COI); {
	case err == nil:
		phi = &p
	case !errors.Is(err, ErrNotFound):
		return Record{}, err
	}
	if err := checkNoPHI(step, body, phi, s.folder); err != nil {
		return Record{}, err
	}
	place, err := s.signerPlaceFor(ctx, c.Sites, rule, step, nil)
	if err != nil {
		return Record{}, err
	}
	sigs, err := s.sign(ctx, Caller{User: actor.ID}, step, rule.Signatures, sigReqs, place, now)
	if err != nil {
		return Record{}, err
	}
	rec := Record{V: EncodingVersion, Chain: c.COI, Step: step, Time: now, SubmittedBy: actor.ID, Data: body, Signatures: sigs}
	stored, err := s.store.Append(ctx, s.withIssues(c, Draft{Record: rec, ExpectRecords: uint64(len(c.Records)), State: rule.To,
		Claims: claims, Releases: releases, Quota: quota, QuotaRelease: step == StepUnschedule}))
	if err != nil {
		return Record{}, err
	}
	s.log.Info("record appended", "coi", string(c.COI), "step", string(step), "seq", stored.Seq, "user", actor.ID)
	return stored, nil
}

// lockedChain checks the actor may schedule, locks the chain and folds it;
// the caller runs unlock.
func (s *Service) lockedChain(ctx context.Context, op string, actor User, coi COI, may func(Role) bool) (*Chain, func(), error) {
	if !may(actor.Role) {
		return nil, nil, fmt.Errorf("%s: role %s may not do this: %w", op, actor.Role, ErrForbidden)
	}
	unlock := s.lock(coi)
	c, err := s.chainLocked(ctx, coi)
	if err != nil {
		unlock()
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	return c, unlock, nil
}

// quotaUseOf returns the quota use of a plan: its plant's quota for its
// treatment centre (the arrival site) in the month of its manufacturing
// start.
func quotaUseOf(p Plan) *QuotaUse {
	u := QuotaUseOf(p, p.Arrival.Site)
	return &u
}

// Book books chain coi's plan from its apheresis day (coordinators,
// signed by a coordinator of one of the chain's sites): it computes the
// plan and appends the schedule record, taking the apheresis chair and
// the manufacturing slot in the same transaction, and counting the
// booking against its centre's quota (ErrQuotaExhausted: the centre has
// booked all of its plant's slots that month). ErrSlotTaken: one is
// not free (nothing written); ErrConflict: the chain is past collection,
// already booked, or its product or sites are not registered.
func (s *Service) Book(ctx context.Context, actor User, coi COI, req BookRequest) (Record, error) {
	op := fmt.Sprintf("book %s", coi)
	c, unlock, err := s.lockedChain(ctx, op, actor, coi, MaySchedule)
	if err != nil {
		return Record{}, err
	}
	defer unlock()
	if c.State != StateEnrolled {
		return Record{}, fmt.Errorf("%s: a chain is booked before its cells are collected; it is %s: %w", op, c.State, ErrConflict)
	}
	if b := BookingOf(c); b.Current != nil {
		return Record{}, fmt.Errorf("%s: the chain is booked already (record %d); reschedule it instead: %w", op, b.Seq, ErrConflict)
	}
	plan, p, err := s.planFor(ctx, c, req.ApheresisDate)
	if err != nil {
		return Record{}, fmt.Errorf("%s: %w", op, err)
	}
	claims := plan.Claims(p.Code)
	rec, err := s.scheduleRecord(ctx, actor, c, StepSchedule, ScheduleData{Product: p.Code, Plan: plan, Claims: claims}, req.Signatures, claims, nil,
		quotaUseOf(plan))
	if err != nil {
		return Record{}, fmt.Errorf("%s: %w", op, err)
	}
	return rec, nil
}

// Reschedule moves chain coi's booking, with a reason (coordinators):
// before collection to the plan of another apheresis day; once the cells
// are collected, and until the product is recorded as manufactured, to
// another manufacturing start (the apheresis and its chair stay). The
// claims the new plan does not share with the old are freed and taken in
// the same transaction as the reschedule record.
func (s *Service) Reschedule(ctx context.Context, actor User, coi COI, req BookRequest) (Record, error) {
	op := fmt.Sprintf("reschedule %s", coi)
	if err := validReason(op, req.Reason); err != nil {
		return Record{}, err
	}
	c, unlock, err := s.lockedChain(ctx, op, actor, coi, MaySchedule)
	if err != nil {
		return Record{}, err
	}
	defer unlock()
	b := BookingOf(c)
	if b.Current == nil {
		return Record{}, fmt.Errorf("%s: the chain holds no booking; book it instead: %w", op, ErrConflict)
	}
	var plan Plan
	var p Product
	switch c.State {
	case StateEnrolled:
		if req.ManufacturingStart != "" {
			return Record{}, fmt.Errorf("%s: before collection the plan moves by its apheresis_date; manufacturing_start is for collected cells: %w", op, ErrInvalid)
		}
		plan, p, err = s.planFor(ctx, c, req.ApheresisDate)
	case StateCollected, StateToManufacturing, StateAtManufacturing:
		// The cells are collected: the apheresis stays, the slot moves.
		if req.ApheresisDate != "" && req.ApheresisDate != b.Current.Plan.Apheresis.Date {
			return Record{}, fmt.Errorf("%s: the cells were collected; only the manufacturing_start moves: %w", op, ErrInvalid)
		}
		var lt LeadTimes
		var ps [3]PlanSite
		if p, lt, ps, err = s.planInputs(ctx, c); err != nil {
			break
		}
		if err = s.notPast("manufacturing_start", req.ManufacturingStart, ps[1]); err != nil {
			break
		}
		plan, err = ReplanFromStart(b.Current.Plan, req.ManufacturingStart, lt, ps[1], ps[2])
	default:
		return Record{}, fmt.Errorf("%s: the product is made (the chain is %s); the booking no longer moves: %w", op, c.State, ErrConflict)
	}
	if err != nil {
		return Record{}, fmt.Errorf("%s: %w", op, err)
	}
	claims := plan.Claims(p.Code)
	release, take := claimDiff(b.Current.Claims, claims)
	if len(release) == 0 && len(take) == 0 {
		return Record{}, fmt.Errorf("%s: the chain is booked on that plan already: %w", op, ErrConflict)
	}
	data := RescheduleData{ScheduleData: ScheduleData{Product: p.Code, Plan: plan, Claims: claims}, Reason: req.Reason}
	rec, err := s.scheduleRecord(ctx, actor, c, StepReschedule, data, req.Signatures, take, release, quotaUseOf(plan))
	if err != nil {
		return Record{}, fmt.Errorf("%s: %w", op, err)
	}
	return rec, nil
}

// Unschedule frees chain coi's booking, with a reason (coordinators).
func (s *Service) Unschedule(ctx context.Context, actor User, coi COI, req ReasonRequest) (Record, error) {
	op := fmt.Sprintf("unschedule %s", coi)
	if err := validReason(op, req.Reason); err != nil {
		return Record{}, err
	}
	c, unlock, err := s.lockedChain(ctx, op, actor, coi, MaySchedule)
	if err != nil {
		return Record{}, err
	}
	defer unlock()
	b := BookingOf(c)
	if b.Current == nil {
		return Record{}, fmt.Errorf("%s: the chain holds no booking: %w", op, ErrConflict)
	}
	data := UnscheduleData{Claims: b.Current.Claims, Reason: req.Reason}
	rec, err := s.scheduleRecord(ctx, actor, c, StepUnschedule, data, req.Signatures, nil, b.Current.Claims, nil)
	if err != nil {
		return Record{}, fmt.Errorf("%s: %w", op, err)
	}
	s.slotsFreed(ctx, actor)
	return rec, nil
}

// MayOverrideCollectGate reports whether role r submits the override of
// the collect gate (coordinators and QA, who both sign it).
func MayOverrideCollectGate(r Role) bool { return r == RoleCoordinator || r == RoleQA }

// OverrideCollectGate lets chain coi's cells be collected without a
// booking: a collect-override record signed by a coordinator and QA with
// its reason (submitted by either).
func (s *Service) OverrideCollectGate(ctx context.Context, actor User, coi COI, req ReasonRequest) (Record, error) {
	op := fmt.Sprintf("override the collect gate of %s", coi)
	if err := validReason(op, req.Reason); err != nil {
		return Record{}, err
	}
	c, unlock, err := s.lockedChain(ctx, op, actor, coi, MayOverrideCollectGate)
	if err != nil {
		return Record{}, err
	}
	defer unlock()
	if c.State != StateEnrolled {
		return Record{}, fmt.Errorf("%s: the chain is %s; the gate is at collection: %w", op, c.State, ErrConflict)
	}
	b := BookingOf(c)
	if b.Override != 0 {
		return Record{}, fmt.Errorf("%s: overridden already (record %d): %w", op, b.Override, ErrConflict)
	}
	rec, err := s.scheduleRecord(ctx, actor, c, StepCollectOverride, CollectOverrideData{Reason: req.Reason}, req.Signatures, nil, nil, nil)
	if err != nil {
		return Record{}, fmt.Errorf("%s: %w", op, err)
	}
	return rec, nil
}

// bookingRequired reports whether chain c is collected only with a
// booking: its product is registered, its collection and manufacturing
// sites too, and the manufacturing site's capacity was defined before the
// chain was enrolled.
func (s *Service) bookingRequired(ctx context.Context, c *Chain) (bool, error) {
	if _, err := readEntry[Product](ctx, s, KindProduct, c.Product); errors.Is(err, ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if _, ok, err := s.registeredSite(ctx, c.Sites.Collection); err != nil || !ok {
		return false, err
	}
	mfg, ok, err := s.registeredSite(ctx, c.Sites.Manufacturing)
	if err != nil || !ok {
		return false, err
	}
	cp, err := s.capacity(ctx, mfg.Code)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !c.Created.Before(cp.Since), nil
}

// checkCollectGate refuses the collection of a chain that must hold a
// booking and holds none, nor an override (ErrNotBooked).
func (s *Service) checkCollectGate(ctx context.Context, c *Chain) error {
	b := BookingOf(c)
	if b.Current != nil || b.Override != 0 {
		return nil
	}
	required, err := s.bookingRequired(ctx, c)
	if err != nil || !required {
		return err
	}
	return fmt.Errorf("the chain holds no booked slot at %s; book its plan first, or a coordinator and QA record an override with its reason: %w",
		c.Sites.Manufacturing, ErrNotBooked)
}

// releasesOn returns the claims a record of step on chain c frees: a
// cancel frees the chain's booking.
func releasesOn(c *Chain, step Step) []Claim {
	if step != StepCancel {
		return nil
	}
	if b := BookingOf(c); b.Current != nil {
		return b.Current.Claims
	}
	return nil
}

// SiteBooking is one claim a site holds, as its plan of the days shows
// it: Moved says the booking must move (the site is closed that day, or
// holds more than its capacity, the latest bookings first), and Proposals
// are the nearest days, before or after, on which the site has a free
// chair or slot for it, each handed to one booking only.
type SiteBooking struct {
	HeldClaim
	Moved     string   `json:"moved,omitempty"`
	Proposals []string `json:"proposals,omitempty"`
}

// Bounds of SiteBookings: the bookings one answer lists, the days around
// a booking its proposals are looked for in, and how many it gets.
const (
	maxSiteBookings = 5000
	proposalDays    = 14
	maxProposals    = 3
)

// MaySeeSiteBookings reports whether u sees which chains hold a site's
// chairs or slots: administrators, QA, and the people who work there.
func MaySeeSiteBookings(u User, site string) bool {
	return u.Role == RoleAdmin || u.Role == RoleQA || u.WorksAt(site)
}

// SiteBookings lists the claims site holds from day from to day to (both
// included, at most MaxAvailabilityDays), in day order, and proposes for
// each booking that must move (a closure, a lowered count) the nearest
// free days: what a plant closure hits, and where its chains could go.
func (s *Service) SiteBookings(ctx context.Context, actor User, site, from, to string) ([]SiteBooking, error) {
	op := "bookings of " + site
	if !MaySeeSiteBookings(actor, site) {
		return nil, fmt.Errorf("%s: administrators, QA and the people who work there see them: %w", op, ErrForbidden)
	}
	f, err1 := time.Parse(DateLayout, from)
	t, err2 := time.Parse(DateLayout, to)
	if err1 != nil || err2 != nil || t.Before(f) || t.Sub(f).Hours()/24 >= MaxAvailabilityDays {
		return nil, fmt.Errorf("%s: from and to must be dates (YYYY-MM-DD) covering 1-%d days: %w", op, MaxAvailabilityDays, ErrInvalid)
	}
	reg, err := readEntry[Site](ctx, s, KindSite, site)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	c, err := s.capacity(ctx, site)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	held, err := s.store.SiteClaims(ctx, site, from, to, maxSiteBookings+1)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if len(held) > maxSiteBookings {
		return nil, fmt.Errorf("%s: more than %d bookings; ask for fewer days: %w", op, maxSiteBookings, ErrInvalid)
	}
	// By day, then in booking order: the latest bookings of an over-full
	// day are the ones to move.
	slices.SortStableFunc(held, func(a, b HeldClaim) int {
		if a.Date != b.Date {
			return strings.Compare(a.Date, b.Date)
		}
		if a.Product != b.Product {
			return strings.Compare(a.Product, b.Product)
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	today := siteToday(reg, s.now())
	lo, hi := f.AddDate(0, 0, -proposalDays).Format(DateLayout), t.AddDate(0, 0, proposalDays).Format(DateLayout)
	slots, err := s.store.SiteSlots(ctx, []string{site}, "", 0, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	// free[product][date] is what the site can still give.
	used := map[[2]string]int{}
	for _, ss := range slots {
		for _, u := range ss.Uses {
			used[[2]string{u.Product, u.Date}] = u.Used
		}
	}
	free := func(product, date string) int {
		n, closed := c.Count(date, product)
		if closed != "" {
			return 0
		}
		return n - used[[2]string{product, date}]
	}
	out := make([]SiteBooking, len(held))
	seen := map[[2]string]int{}
	for i, h := range held {
		out[i].HeldClaim = h
		k := [2]string{h.Product, h.Date}
		seen[k]++
		n, closed := c.Count(h.Date, h.Product)
		switch {
		case closed != "":
			out[i].Moved = closed
		case seen[k] > n:
			out[i].Moved = fmt.Sprintf("the site takes %d that day and holds %d", n, used[k])
		default:
			continue
		}
		d, _ := time.Parse(DateLayout, h.Date)
		for step := 1; step <= proposalDays && len(out[i].Proposals) < maxProposals; step++ {
			for _, cand := range []string{d.AddDate(0, 0, step).Format(DateLayout), d.AddDate(0, 0, -step).Format(DateLayout)} {
				if cand < today || cand < lo || cand > hi || len(out[i].Proposals) >= maxProposals || free(h.Product, cand) <= 0 {
					continue
				}
				out[i].Proposals = append(out[i].Proposals, cand)
				used[[2]string{h.Product, cand}]++ // handed to this booking only
			}
		}
	}
	return out, nil
}
