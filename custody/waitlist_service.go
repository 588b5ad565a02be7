package custody

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The waiting list's service side. A coordinator puts a chain that cannot
// be booked on the list with its urgency and a reason; AllocateWaitlist
// (run when slots are freed, and on a timer) expires the offers past
// their time, passing their slots on, and offers each free manufacturing
// slot of the coming weeks by the fairness rule (AllocateSlot). Every
// change and every allocation decision is in the audit trail
// (KindWaitlist, the chain's COI as its code), with the decision as its
// new value: no patient identifier is in it (reasons are checked like a
// record's).

// DefaultOfferTTL is how long an offer stands unless configured.
const DefaultOfferTTL = 48 * time.Hour

// offerHorizon is how many days ahead AllocateWaitlist looks for free
// slots.
const offerHorizon = 42

// WaitRequest puts a chain on the waiting list.
type WaitRequest struct {
	Urgency int    `json:"urgency"`
	Reason  string `json:"reason"`
}

func decodeWait(b []byte) (WaitEntry, error) {
	var e WaitEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("stored waiting-list entry is malformed: %v: %w", err, ErrDamaged)
	}
	return e, nil
}

func (s *Service) waitAudit(actor string, coi COI, action AuditAction, reason string, v any) (AuditEntry, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return AuditEntry{}, err
	}
	if len(reason) > maxReason {
		reason = reason[:maxReason]
	}
	return AuditEntry{Time: s.Now(), Actor: actor, Kind: KindWaitlist, Code: string(coi), Action: action, Reason: reason, New: b}, nil
}

// checkReasonNoPHI refuses a reason naming the chain's patient.
func (s *Service) checkReasonNoPHI(ctx context.Context, coi COI, reason string) error {
	var phi *PHI
	switch p, err := s.store.PHI(ctx, coi); {
	case err == nil:
		phi = &p
	case !errors.Is(err, ErrNotFound):
		return err
	}
	body, err := json.Marshal(map[string]string{"reason": reason})
	if err != nil {
		return err
	}
	return checkNoPHI(StepSchedule, body, phi, s.folder)
}

// AddToWaitlist puts chain coi on its plant's waiting list (coordinators):
// the chain is enrolled, not booked, of a registered product and sites.
// ErrConflict: it is waiting already, booked, or past collection.
func (s *Service) AddToWaitlist(ctx context.Context, actor User, coi COI, req WaitRequest) (WaitEntry, error) {
	op := fmt.Sprintf("put %s on the waiting list", coi)
	if err := validReason(op, req.Reason); err != nil {
		return WaitEntry{}, err
	}
	if err := ValidateUrgency(req.Urgency); err != nil {
		return WaitEntry{}, fmt.Errorf("%s: %w", op, fieldErr("urgency", err))
	}
	c, unlock, err := s.lockedChain(ctx, op, actor, coi, MaySchedule)
	if err != nil {
		return WaitEntry{}, err
	}
	defer unlock()
	if c.State != StateEnrolled {
		return WaitEntry{}, fmt.Errorf("%s: the chain is %s; only a chain not yet collected waits: %w", op, c.State, ErrConflict)
	}
	if b := BookingOf(c); b.Current != nil {
		return WaitEntry{}, fmt.Errorf("%s: the chain is booked (record %d): %w", op, b.Seq, ErrConflict)
	}
	p, _, ps, err := s.planInputs(ctx, c)
	if err != nil {
		return WaitEntry{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.checkReasonNoPHI(ctx, coi, req.Reason); err != nil {
		return WaitEntry{}, fmt.Errorf("%s: %w", op, fieldErr("reason", err))
	}
	e := WaitEntry{COI: coi, Plant: ps[1].Code, Product: p.Code, Centre: ps[2].Code, Urgency: req.Urgency, Reason: req.Reason,
		Since: s.Now(), AddedBy: actor.ID}
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	err = s.store.UpdateWaitlist(ctx, coi, func(old []byte) ([]byte, []AuditEntry, error) {
		if old != nil {
			return nil, nil, fmt.Errorf("the chain is on the waiting list already: %w", ErrConflict)
		}
		v, err := json.Marshal(e)
		if err != nil {
			return nil, nil, err
		}
		a, err := s.waitAudit(actor.ID, coi, AuditWaitlistAdd, req.Reason, map[string]any{"plant": e.Plant, "product": e.Product,
			"centre": e.Centre, "urgency": e.Urgency})
		return v, []AuditEntry{a}, err
	})
	if err != nil {
		return WaitEntry{}, fmt.Errorf("%s: %w", op, err)
	}
	s.log.Info("waiting list add", "coi", string(coi), "plant", e.Plant, "urgency", e.Urgency, "by", actor.ID)
	return e, nil
}

// RemoveFromWaitlist takes chain coi off the waiting list with a reason
// (coordinators, or the plant's programme lead). ErrNotFound: not on it.
func (s *Service) RemoveFromWaitlist(ctx context.Context, actor User, coi COI, reason string) error {
	op := fmt.Sprintf("remove %s from the waiting list", coi)
	if err := validReason(op, reason); err != nil {
		return err
	}
	if err := s.checkReasonNoPHI(ctx, coi, reason); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	held := false
	err := s.store.UpdateWaitlist(ctx, coi, func(old []byte) ([]byte, []AuditEntry, error) {
		if old == nil {
			return nil, nil, fmt.Errorf("the chain is not on the waiting list: %w", ErrNotFound)
		}
		e, err := decodeWait(old)
		if err != nil {
			return nil, nil, err
		}
		held = e.Offer != nil
		if !MaySchedule(actor.Role) && !MaySetQuotas(actor, e.Plant) {
			return nil, nil, fmt.Errorf("coordinators and the plant's programme lead take chains off its list: %w", ErrForbidden)
		}
		a, err := s.waitAudit(actor.ID, coi, AuditWaitlistRemove, reason, map[string]any{"plant": e.Plant, "urgency": e.Urgency})
		return nil, []AuditEntry{a}, err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if held {
		// The slot its offer held is free: the next entry is offered it.
		if _, err := s.allocateLocked(ctx, actor); err != nil {
			s.log.Warn("waiting list allocation after a removal failed", "err", err.Error())
		}
	}
	return nil
}

// ChangeUrgency sets waiting chain coi's clinical urgency, with a reason
// (coordinators): the chain keeps the time it has waited, so only its
// place among the other urgencies moves; an open offer stands.
// ErrNotFound: not on the list; ErrConflict: the urgency is unchanged.
func (s *Service) ChangeUrgency(ctx context.Context, actor User, coi COI, req WaitRequest) (WaitEntry, error) {
	op := fmt.Sprintf("change the urgency of %s on the waiting list", coi)
	if !MaySchedule(actor.Role) {
		return WaitEntry{}, fmt.Errorf("%s: role %s may not do this: %w", op, actor.Role, ErrForbidden)
	}
	if err := ValidateUrgency(req.Urgency); err != nil {
		return WaitEntry{}, fmt.Errorf("%s: %w", op, fieldErr("urgency", err))
	}
	if err := validReason(op, req.Reason); err != nil {
		return WaitEntry{}, err
	}
	if err := s.checkReasonNoPHI(ctx, coi, req.Reason); err != nil {
		return WaitEntry{}, fmt.Errorf("%s: %w", op, fieldErr("reason", err))
	}
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	var e WaitEntry
	err := s.store.UpdateWaitlist(ctx, coi, func(old []byte) ([]byte, []AuditEntry, error) {
		if old == nil {
			return nil, nil, fmt.Errorf("the chain is not on the waiting list: %w", ErrNotFound)
		}
		var err error
		if e, err = decodeWait(old); err != nil {
			return nil, nil, err
		}
		if e.Urgency == req.Urgency {
			return nil, nil, fieldErr("urgency", fmt.Errorf("the urgency is %d already: %w", e.Urgency, ErrConflict))
		}
		from := e.Urgency
		e.Urgency = req.Urgency
		v, err := json.Marshal(e)
		if err != nil {
			return nil, nil, err
		}
		a, err := s.waitAudit(actor.ID, coi, AuditWaitlistUrgency, req.Reason, map[string]any{"plant": e.Plant, "from": from, "urgency": e.Urgency})
		return v, []AuditEntry{a}, err
	})
	if err != nil {
		return WaitEntry{}, fmt.Errorf("%s: %w", op, err)
	}
	s.log.Info("waiting list urgency", "coi", string(coi), "urgency", e.Urgency, "by", actor.ID)
	return e, nil
}

// Waitlist returns the waiting list of plant (empty: every plant) in
// waiting-list order, of the chains the user may read (every user who
// reads the registries), offset entries skipped, at most limit
// (0: MaxRegistryPage), and how many such entries there are in all.
func (s *Service) Waitlist(ctx context.Context, actor User, plant string, offset, limit int) ([]WaitEntry, int, error) {
	if err := requireRegistryReader("read the waiting list", actor); err != nil {
		return nil, 0, err
	}
	if offset < 0 || limit < 0 || limit > MaxRegistryPage {
		return nil, 0, fmt.Errorf("waiting list: offset must be >= 0 and limit 0-%d: %w", MaxRegistryPage, ErrInvalid)
	}
	if limit == 0 {
		limit = MaxRegistryPage
	}
	all, err := s.waitlist(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("waiting list: %w", err)
	}
	if plant != "" {
		all = slices.DeleteFunc(all, func(e WaitEntry) bool { return e.Plant != plant })
	}
	// Only the chains the user may read.
	r, vis := s.scope(), all[:0]
	for _, e := range all {
		ci, err := s.store.Chain(ctx, e.COI)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("waiting list: %w", err)
		}
		ok, err := r.visibleInfo(ctx, actor, ci)
		if err != nil {
			return nil, 0, fmt.Errorf("waiting list: %w", err)
		}
		if ok {
			vis = append(vis, e)
		}
	}
	all = vis
	n := len(all)
	all = all[min(offset, n):]
	return all[:min(limit, len(all))], n, nil
}

// waitlist reads the whole list in waiting-list order.
func (s *Service) waitlist(ctx context.Context) ([]WaitEntry, error) {
	raw, err := s.store.Waitlist(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]WaitEntry, 0, len(raw))
	for _, v := range raw {
		e, err := decodeWait(v)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	SortWaitlist(out)
	return out, nil
}

// MayAllocate reports whether u runs the waiting list's allocation:
// administrators, QA and the system.
func MayAllocate(u User) bool { return u.Role == RoleAdmin || u.Role == RoleQA || u.Role == RoleSystem }

// AllocateWaitlist expires the offers past their time (each slot passing
// to the next entry) and offers the free manufacturing slots of the
// coming weeks to the waiting chains by the fairness rule; it returns the
// decisions made, each recorded in the audit trail.
func (s *Service) AllocateWaitlist(ctx context.Context, actor User) ([]AllocationDecision, error) {
	const op = "allocate the waiting list"
	if !MayAllocate(actor) {
		return nil, fmt.Errorf("%s: administrators, QA and the system run it: %w", op, ErrForbidden)
	}
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	out, err := s.allocateLocked(ctx, actor)
	if err != nil {
		return out, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}

func (s *Service) allocateLocked(ctx context.Context, actor User) ([]AllocationDecision, error) {
	now := s.Now()
	list, err := s.waitlist(ctx)
	if err != nil {
		return nil, err
	}
	// Expired offers: the chain passes the slot.
	for i := range list {
		e := &list[i]
		if e.Offer == nil || now.Before(e.Offer.Expires) {
			continue
		}
		slot := e.Offer.Slot
		e.Passed, e.Offer = append(e.Passed, slot), nil
		if err := s.putWait(ctx, *e, actor.ID, AuditWaitlistExpire, "the offer expired unanswered",
			map[string]any{"slot": slot}); err != nil {
			return nil, err
		}
	}
	qs := QuotaState{Uses: map[string]map[string]int{}}
	if qs.Quotas, err = s.quotas(ctx); err != nil {
		return nil, err
	}
	var out []AllocationDecision
	type group struct{ plant, product string }
	seen := map[group]bool{}
	for _, e := range list {
		g := group{e.Plant, e.Product}
		if seen[g] {
			continue
		}
		seen[g] = true
		slots, err := s.freeSlots(ctx, g.plant, g.product)
		if err != nil {
			return out, err
		}
		for _, slot := range slots {
			period := QuotaPeriod(slot.Date)
			if qs.Uses[period] == nil {
				if qs.Uses[period], err = s.store.QuotaUses(ctx, period); err != nil {
					return out, err
				}
			}
			d, i := AllocateSlot(slot, list, qs)
			if i < 0 {
				continue
			}
			list[i].Offer = &Offer{Slot: slot, Made: now, Expires: now.Add(s.offerTTL)}
			switch err := s.putWait(ctx, list[i], actor.ID, AuditWaitlistOffer, d.Why, d); {
			case errors.Is(err, ErrSlotTaken):
				// Booked meanwhile by a chain not waiting: nothing to offer.
				list[i].Offer = nil
				continue
			case err != nil:
				return out, err
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// slotsFreed offers what a change just freed (an unschedule, a cancel, a
// capacity raised) to the waiting list at once, as actor. The change
// stands whatever happens here: a failure is logged, and the next
// allocation runs it again.
func (s *Service) slotsFreed(ctx context.Context, actor User) {
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	ds, err := s.allocateLocked(ctx, actor)
	if err != nil {
		s.log.Warn("waiting list allocation after freed slots failed", "err", err.Error())
		return
	}
	if len(ds) > 0 {
		s.log.Info("waiting list offers", "count", len(ds), "by", actor.ID)
	}
}

// putWait stores entry e with one audit entry, its open offer (if any)
// holding the offered slot, any other slot it held freed, in the same
// write: ErrSlotTaken if the offered slot is no longer free.
func (s *Service) putWait(ctx context.Context, e WaitEntry, actor string, action AuditAction, reason string, v any) error {
	val, err := json.Marshal(e)
	if err != nil {
		return err
	}
	a, err := s.waitAudit(actor, e.COI, action, reason, v)
	if err != nil {
		return err
	}
	var hold *Claim
	if e.Offer != nil {
		hold = &Claim{Site: e.Offer.Slot.Plant, Date: e.Offer.Slot.Date, Product: e.Offer.Slot.Product}
	}
	return s.store.UpdateWaitlistHold(ctx, e.COI, hold, func(old []byte) ([]byte, []AuditEntry, error) {
		if old == nil {
			return nil, nil, fmt.Errorf("chain %s left the waiting list meanwhile: %w", e.COI, ErrRetry)
		}
		return val, []AuditEntry{a}, nil
	})
}

// freeSlots returns the plant's free slots of product over the coming
// weeks, one per free start (the slots open offers hold are counted as
// used by the store): from the first day a chain collected today could
// start.
func (s *Service) freeSlots(ctx context.Context, plant, product string) ([]FreeSlot, error) {
	p, err := readEntry[Product](ctx, s, KindProduct, product)
	if err != nil {
		return nil, err
	}
	lt, err := p.LeadTimes()
	if err != nil {
		return nil, nil // not bookable: nothing to offer
	}
	site, err := readEntry[Site](ctx, s, KindSite, plant)
	if err != nil {
		return nil, err
	}
	today, err := time.Parse(DateLayout, siteToday(site, s.now()))
	if err != nil {
		return nil, err
	}
	from := today.AddDate(0, 0, lt.ApheresisToStart+2)
	to := from.AddDate(0, 0, offerHorizon)
	ss, err := s.store.SiteSlots(ctx, []string{plant}, "", 0, from.Format(DateLayout), to.Format(DateLayout))
	if err != nil || len(ss) == 0 {
		return nil, err
	}
	var c Capacity
	if err := json.Unmarshal(ss[0].Capacity, &c); err != nil {
		return nil, fmt.Errorf("stored capacity of %s is malformed: %v: %w", plant, err, ErrDamaged)
	}
	used := map[string]int{}
	for _, u := range ss[0].Uses {
		if u.Product == product {
			used[u.Date] = u.Used
		}
	}
	var out []FreeSlot
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		date := d.Format(DateLayout)
		n, closed := c.Count(date, product)
		for range max(0, n-used[date]) {
			if closed == "" {
				out = append(out, FreeSlot{Plant: plant, Product: product, Date: date})
			}
		}
	}
	return out, nil
}

// offerEntry returns chain coi's entry and its open offer, refusing one
// without (ErrNotFound) or expired (ErrOfferExpired).
func (s *Service) offerEntry(ctx context.Context, coi COI) (WaitEntry, error) {
	list, err := s.store.Waitlist(ctx)
	if err != nil {
		return WaitEntry{}, err
	}
	for _, v := range list {
		e, err := decodeWait(v)
		if err != nil {
			return e, err
		}
		if e.COI != coi {
			continue
		}
		if e.Offer == nil {
			return e, fmt.Errorf("the chain holds no open offer: %w", ErrNotFound)
		}
		if !s.Now().Before(e.Offer.Expires) {
			return e, fmt.Errorf("the offer of %s expired at %s: %w", e.Offer.Slot.Date, e.Offer.Expires.Format(time.RFC3339), ErrOfferExpired)
		}
		return e, nil
	}
	return WaitEntry{}, fmt.Errorf("the chain is not on the waiting list: %w", ErrNotFound)
}

// AcceptOffer books chain coi on the slot it is offered (coordinators,
// signed as a booking): the normal booking path, from the apheresis day
// whose plan starts manufacturing on the offered day. The chain leaves
// the list. ErrOfferExpired: too late; ErrSlotTaken or ErrQuotaExhausted:
// the booking was refused (the offer stands until it expires).
func (s *Service) AcceptOffer(ctx context.Context, actor User, coi COI, sigs []SignatureRequest) (Record, error) {
	op := fmt.Sprintf("accept the offer of %s", coi)
	if !MaySchedule(actor.Role) {
		return Record{}, fmt.Errorf("%s: role %s may not do this: %w", op, actor.Role, ErrForbidden)
	}
	// The list's lock is not held while booking: a chain's lock is always
	// taken before the list's, never after.
	s.waitMu.Lock()
	e, err := s.offerEntry(ctx, coi)
	s.waitMu.Unlock()
	if err != nil {
		return Record{}, fmt.Errorf("%s: %w", op, err)
	}
	date, err := s.apheresisFor(ctx, coi, e.Offer.Slot)
	if err != nil {
		return Record{}, fmt.Errorf("%s: %w", op, err)
	}
	rec, err := s.Book(ctx, actor, coi, BookRequest{ApheresisDate: date, Signatures: sigs})
	if err != nil {
		return Record{}, fmt.Errorf("%s: %w", op, err)
	}
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	err = s.store.UpdateWaitlist(ctx, coi, func(old []byte) ([]byte, []AuditEntry, error) {
		if old == nil {
			return nil, nil, nil // taken off meanwhile: nothing to record
		}
		a, err := s.waitAudit(actor.ID, coi, AuditWaitlistAccept, "offer accepted and booked",
			map[string]any{"slot": e.Offer.Slot, "record": rec.Seq})
		return nil, []AuditEntry{a}, err
	})
	if err != nil {
		return rec, fmt.Errorf("%s: booked as record %d, but the list kept the chain: %w", op, rec.Seq, err)
	}
	return rec, nil
}

// apheresisFor returns the apheresis day of chain coi whose plan starts
// manufacturing on slot's day.
func (s *Service) apheresisFor(ctx context.Context, coi COI, slot FreeSlot) (string, error) {
	info, err := s.store.Chain(ctx, coi)
	if err != nil {
		return "", err
	}
	_, lt, ps, err := s.planInputs(ctx, &Chain{COI: coi, Product: info.Product, Sites: info.Sites})
	if err != nil {
		return "", err
	}
	d, err := time.Parse(DateLayout, slot.Date)
	if err != nil {
		return "", fmt.Errorf("offered slot %q: %w", slot.Date, ErrDamaged)
	}
	for _, k := range []int{0, 1, -1} {
		date := d.AddDate(0, 0, -lt.ApheresisToStart+k).Format(DateLayout)
		if p, err := ComputePlan(date, lt, ps[0], ps[1], ps[2]); err == nil && p.ManufacturingStart.Date == slot.Date {
			return date, nil
		}
	}
	return "", fmt.Errorf("no apheresis day starts manufacturing on %s: %w", slot.Date, ErrConflict)
}

// DeclineOffer declines chain coi's open offer with a reason
// (coordinators): the slot passes to the next entry at once, and is not
// offered to this chain again; the chain keeps its place.
func (s *Service) DeclineOffer(ctx context.Context, actor User, coi COI, reason string) ([]AllocationDecision, error) {
	op := fmt.Sprintf("decline the offer of %s", coi)
	if !MaySchedule(actor.Role) {
		return nil, fmt.Errorf("%s: role %s may not do this: %w", op, actor.Role, ErrForbidden)
	}
	if err := validReason(op, reason); err != nil {
		return nil, err
	}
	if err := s.checkReasonNoPHI(ctx, coi, reason); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	e, err := s.offerEntry(ctx, coi)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	slot := e.Offer.Slot
	e.Passed, e.Offer = append(e.Passed, slot), nil
	if err := s.putWait(ctx, e, actor.ID, AuditWaitlistDecline, reason, map[string]any{"slot": slot}); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	out, err := s.allocateLocked(ctx, actor)
	if err != nil {
		return out, fmt.Errorf("%s: declined, then: %w", op, err)
	}
	return out, nil
}
