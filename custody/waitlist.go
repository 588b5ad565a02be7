package custody

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The waiting list: a chain that cannot be booked (no slot free, or its
// centre's quota of the month used up) waits for a slot of its plant and
// product, with a clinical urgency and a reason.
//
// The fairness rule, applied to each freed slot (AllocateSlot):
//
//  1. Only entries of the slot's plant and product, holding no open
//     offer, are candidates.
//  2. Candidates are taken in waiting-list order: urgency first (1, the
//     most urgent, before 2 before 3), then the time the chain has waited
//     (the earliest added first), then the COI, so the order is total and
//     within one urgency the list is first in, first out.
//  3. A candidate that declined this slot, or let its offer of it
//     expire, is skipped, with that reason.
//  4. A candidate whose centre has used its quota of the plant's slots in
//     the slot's month (the bookings counted, plus the offers already
//     open) is skipped, with that reason: a centre never holds more than
//     its quota, and a centre under its share is served before one at it
//     whatever their order.
//  5. The first candidate left is offered the slot. The decision names
//     the slot, who was offered it and why, and each entry skipped and
//     why; the service records it in the audit trail.
//
// An open offer holds its slot: the store counts it as taken, so no
// booking by another chain can take it while the chain decides; the hold
// is freed in the same write as the offer's decline, expiry or the
// chain's removal from the list. An offer expires after the configured
// time; the slot then passes to the next entry by the same rule. Accepting books the chain by the normal
// booking path; the entry leaves the list.

// KindWaitlist is the object kind of a waiting-list entry (and its
// allocation decisions) in the audit trail; the code is the chain's COI.
const KindWaitlist ObjectKind = "waitlist"

// Audit actions on the waiting list.
const (
	// AuditWaitlistAdd puts a chain on the list.
	AuditWaitlistAdd AuditAction = "waitlist.add"
	// AuditWaitlistRemove takes a chain off the list, with a reason.
	AuditWaitlistRemove AuditAction = "waitlist.remove"
	// AuditWaitlistUrgency changes a waiting chain's urgency, with a
	// reason.
	AuditWaitlistUrgency AuditAction = "waitlist.urgency"
	// AuditWaitlistOffer is an allocation decision: its new value is the
	// AllocationDecision (the slot, who was offered it, who was skipped).
	AuditWaitlistOffer AuditAction = "waitlist.offer"
	// AuditWaitlistExpire records an offer that expired unanswered.
	AuditWaitlistExpire AuditAction = "waitlist.expire"
	// AuditWaitlistAccept records an accepted offer and its booking.
	AuditWaitlistAccept AuditAction = "waitlist.accept"
	// AuditWaitlistDecline records a declined offer, with its reason.
	AuditWaitlistDecline AuditAction = "waitlist.decline"
)

// Clinical urgency on the waiting list: 1 is the most urgent.
const (
	// UrgencyHigh: the patient's disease is progressing; every day counts.
	UrgencyHigh = 1
	// UrgencyMedium: stable, but with a limited bridging option.
	UrgencyMedium = 2
	// UrgencyLow: stable on bridging therapy.
	UrgencyLow = 3
)

// WaitEntry is one chain on the waiting list.
type WaitEntry struct {
	COI     COI    `json:"coi"`
	Plant   string `json:"plant"`
	Product string `json:"product"`
	Centre  string `json:"centre"`
	// Urgency is 1 (most urgent) to 3.
	Urgency int       `json:"urgency"`
	Reason  string    `json:"reason"`
	Since   time.Time `json:"since"`
	AddedBy string    `json:"added_by"`
	// Offer is the slot offered to the chain and not yet answered.
	Offer *Offer `json:"offer,omitempty"`
	// Passed are the slots the chain declined or let expire: they pass
	// to the next entry, and are not offered to it again.
	Passed []FreeSlot `json:"passed,omitempty"`
}

// Offer is a freed manufacturing slot offered to a waiting chain until
// Expires.
type Offer struct {
	Slot    FreeSlot  `json:"slot"`
	Made    time.Time `json:"made"`
	Expires time.Time `json:"expires"`
}

// FreeSlot is one manufacturing start free to offer: at Plant, of
// Product, on the plant's day Date (YYYY-MM-DD).
type FreeSlot struct {
	Plant   string `json:"plant"`
	Product string `json:"product"`
	Date    string `json:"date"`
}

// Skipped is a waiting entry passed over by an allocation, and why.
type Skipped struct {
	COI COI    `json:"coi"`
	Why string `json:"why"`
}

// AllocationDecision is the record of one freed slot's allocation: who
// was offered it and why, and who was skipped and why.
type AllocationDecision struct {
	Slot    FreeSlot  `json:"slot"`
	Offered COI       `json:"offered,omitempty"`
	Why     string    `json:"why"`
	Skipped []Skipped `json:"skipped,omitempty"`
}

// ValidateUrgency checks an urgency: 1 to 3.
func ValidateUrgency(u int) error {
	if u < UrgencyHigh || u > UrgencyLow {
		return fmt.Errorf("urgency %d must be 1 (most urgent) to 3: %w", u, ErrInvalid)
	}
	return nil
}

// WaitlistLess orders the waiting list: urgency, then time waited, then
// COI (a negative result puts a first).
func WaitlistLess(a, b WaitEntry) int {
	if c := cmp.Compare(a.Urgency, b.Urgency); c != 0 {
		return c
	}
	if c := a.Since.Compare(b.Since); c != 0 {
		return c
	}
	return strings.Compare(string(a.COI), string(b.COI))
}

// SortWaitlist sorts entries in waiting-list order.
func SortWaitlist(entries []WaitEntry) { slices.SortFunc(entries, WaitlistLess) }

// QuotaState is what an allocation knows of the quotas: the quotas by key,
// and the bookings counted against each key by period (YYYY-MM).
type QuotaState struct {
	Quotas map[string]Quota
	Uses   map[string]map[string]int
}

// used returns the uses of key in period.
func (q QuotaState) used(key, period string) int { return q.Uses[period][key] }

// AllocateSlot applies the fairness rule to one free slot: it returns the
// decision, and the index in list of the entry offered (-1: none). Open
// offers in list of the same quota and month count as uses.
func AllocateSlot(slot FreeSlot, list []WaitEntry, qs QuotaState) (AllocationDecision, int) {
	d := AllocationDecision{Slot: slot}
	period := QuotaPeriod(slot.Date)
	order := make([]int, 0, len(list))
	pending := map[string]int{}
	for i, e := range list {
		if e.Plant != slot.Plant || e.Product != slot.Product {
			continue
		}
		if e.Offer != nil {
			if QuotaPeriod(e.Offer.Slot.Date) == period {
				pending[QuotaKey(e.Plant, e.Centre)]++
			}
			continue
		}
		order = append(order, i)
	}
	slices.SortFunc(order, func(a, b int) int { return WaitlistLess(list[a], list[b]) })
	for _, i := range order {
		e := list[i]
		if slices.Contains(e.Passed, slot) {
			d.Skipped = append(d.Skipped, Skipped{COI: e.COI, Why: "declined this slot or let its offer expire"})
			continue
		}
		key := QuotaKey(e.Plant, e.Centre)
		if q, ok := qs.Quotas[key]; ok {
			if n := qs.used(key, period) + pending[key]; n >= q.Slots {
				d.Skipped = append(d.Skipped, Skipped{COI: e.COI,
					Why: fmt.Sprintf("centre %s has used its quota at %s for %s (%d of %d)", e.Centre, e.Plant, period, n, q.Slots)})
				continue
			}
		}
		d.Offered = e.COI
		d.Why = fmt.Sprintf("first eligible by urgency %d, waiting since %s", e.Urgency, e.Since.UTC().Format(time.RFC3339))
		return d, i
	}
	d.Why = "no waiting chain of this plant and product is eligible"
	return d, -1
}
