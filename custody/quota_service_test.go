package custody_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

func (e *env) tick(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

func (e *env) auditCount(kind custody.ObjectKind, action custody.AuditAction) int {
	e.t.Helper()
	a, err := e.store.AuditEntries(e.ctx, custody.AuditFilter{Kind: kind})
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, x := range a {
		if x.Action == action {
			n++
		}
	}
	return n
}

// TestQuotaRefusesBooking: the plant's programme lead sets a centre's
// monthly quota; a booking past it is refused with ErrQuotaExhausted
// naming the quota and month, writing nothing; another month is free;
// unscheduling gives the month back.
func TestQuotaRefusesBooking(t *testing.T) {
	e := newEnv(t)
	scheduleNetwork(t, e, 2, 2)
	q := custody.Quota{Plant: "MFG-1", Centre: "HOSP-2", Slots: 1}
	for _, c := range []struct {
		name string
		user string
		q    custody.Quota
		want error
	}{
		{"coordinator", "coord", q, custody.ErrForbidden},
		{"QA of another plant", "qa1", custody.Quota{Plant: "PAR-1", Centre: "HOSP-2", Slots: 1}, custody.ErrForbidden},
		{"plant is no plant", "admin1", custody.Quota{Plant: "PAR-1", Centre: "HOSP-2", Slots: 1}, custody.ErrInvalid},
		{"negative", "qa1", custody.Quota{Plant: "MFG-1", Centre: "HOSP-2", Slots: -1}, custody.ErrInvalid},
	} {
		if _, err := e.svc.SetQuota(e.ctx, e.users[c.user], c.q, "share the plant"); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := e.svc.SetQuota(e.ctx, e.users["qa1"], q, "share the plant among centres"); err != nil {
		t.Fatal(err)
	}
	a, b := e.enrollNet(), e.enrollNet()
	if _, err := e.book(a, "2026-12-01"); err != nil {
		t.Fatal(err)
	}
	before := e.records()
	_, err := e.book(b, "2026-12-05")
	if !errors.Is(err, custody.ErrQuotaExhausted) || !strings.Contains(err.Error(), "MFG-1/HOSP-2") || !strings.Contains(err.Error(), "2026-12") {
		t.Fatalf("booking past the quota: %v", err)
	}
	if e.records() != before || e.free("MFG-1", "CART-19", "2026-12-06") != 2 {
		t.Fatal("a booking refused by quota wrote something")
	}
	if _, err := e.book(b, "2027-01-05"); err != nil {
		t.Fatalf("another month: %v", err)
	}
	if _, err := e.svc.Unschedule(e.ctx, e.users["coord"], a, custody.ReasonRequest{Reason: "patient not fit",
		Signatures: []custody.SignatureRequest{sig("coord", custody.MeaningAuthored)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Reschedule(e.ctx, e.users["coord"], b, custody.BookRequest{ApheresisDate: "2026-12-07", Reason: "earlier slot",
		Signatures: []custody.SignatureRequest{sig("coord", custody.MeaningAuthored)}}); err != nil {
		t.Fatalf("December after unschedule: %v", err)
	}
	if u, err := e.svc.QuotaUses(e.ctx, e.users["coord"], "2026-12"); err != nil || u["MFG-1/HOSP-2"] != 1 {
		t.Fatalf("December uses: %v %v", u, err)
	}
	if u, _ := e.svc.QuotaUses(e.ctx, e.users["coord"], "2027-01"); u["MFG-1/HOSP-2"] != 0 {
		t.Fatalf("January uses after the move: %v", u)
	}
	if n := e.auditCount(custody.KindQuota, custody.AuditQuotaSet); n != 1 {
		t.Errorf("quota audit entries: %d, want 1", n)
	}
	if err := e.svc.DeleteQuota(e.ctx, e.users["qa1"], "MFG-1", "HOSP-2", "capacity doubled"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.book(a, "2026-12-03"); err != nil {
		t.Fatalf("after the quota is deleted: %v", err)
	}
}

// TestWaitlistOffers: chains wait with their urgency; the allocation
// offers free slots by the rule, within the quota; a decline passes the
// slot on; an offer expires on the injected clock and its slot passes;
// accepting books the offered slot; every step is in the audit trail.
func TestWaitlistOffers(t *testing.T) {
	e := newEnv(t)
	scheduleNetwork(t, e, 1, 1)
	if _, err := e.svc.SetQuota(e.ctx, e.users["qa1"], custody.Quota{Plant: "MFG-1", Centre: "HOSP-2", Slots: 1}, "scarce slots"); err != nil {
		t.Fatal(err)
	}
	a, b, c := e.enrollNet(), e.enrollNet(), e.enrollNet()
	if _, err := e.book(a, "2026-12-01"); err != nil {
		t.Fatal(err)
	}
	wait := func(coi custody.COI, u int) {
		t.Helper()
		if _, err := e.svc.AddToWaitlist(e.ctx, e.users["coord"], coi, custody.WaitRequest{Urgency: u, Reason: "no slot this month"}); err != nil {
			t.Fatal(err)
		}
	}
	wait(b, custody.UrgencyMedium)
	wait(c, custody.UrgencyHigh)
	for _, x := range []struct {
		name string
		run  func() error
		want error
	}{
		{"twice", func() error {
			_, err := e.svc.AddToWaitlist(e.ctx, e.users["coord"], b, custody.WaitRequest{Urgency: 1, Reason: "x"})
			return err
		}, custody.ErrConflict},
		{"booked chain", func() error {
			_, err := e.svc.AddToWaitlist(e.ctx, e.users["coord"], a, custody.WaitRequest{Urgency: 1, Reason: "x"})
			return err
		}, custody.ErrConflict},
		{"urgency 4", func() error {
			_, err := e.svc.AddToWaitlist(e.ctx, e.users["coord"], a, custody.WaitRequest{Urgency: 4, Reason: "x"})
			return err
		}, custody.ErrInvalid},
		{"nurse", func() error {
			_, err := e.svc.AddToWaitlist(e.ctx, e.users["nurse1"], b, custody.WaitRequest{Urgency: 1, Reason: "x"})
			return err
		}, custody.ErrForbidden},
		{"reason naming the patient", func() error { return e.svc.RemoveFromWaitlist(e.ctx, e.users["coord"], b, "Jane Doe is better") }, custody.ErrInvalid},
		{"coordinator allocates", func() error { _, err := e.svc.AllocateWaitlist(e.ctx, e.users["coord"]); return err }, custody.ErrForbidden},
	} {
		if err := x.run(); !errors.Is(err, x.want) {
			t.Errorf("%s: %v, want %v", x.name, err, x.want)
		}
	}
	list, n, err := e.svc.Waitlist(e.ctx, e.users["nurse1"], "MFG-1", 0, 0)
	if err != nil || n != 2 || list[0].COI != c || list[1].COI != b {
		t.Fatalf("waiting list: %+v %d %v; want c (urgent) then b", list, n, err)
	}
	if list, n, err := e.svc.Waitlist(e.ctx, e.users["courier1"], "", 0, 0); err != nil || n != 0 || len(list) != 0 {
		t.Fatalf("waiting list as a courier who carries none of them: %+v %d %v", list, n, err)
	}
	if list, n, _ := e.svc.Waitlist(e.ctx, e.users["nurse1"], "MFG-1", 1, 1); n != 2 || len(list) != 1 || list[0].COI != b {
		t.Fatalf("second page of one: %+v %d", list, n)
	}
	// Today is 23 November: November's quota is free, December's is used
	// by a, January's is free. c (urgent) gets November's first slot; b
	// is skipped for November (c's open offer takes the quota) and
	// December, and gets January's first.
	ds, err := e.svc.AllocateWaitlist(e.ctx, e.users["qa1"])
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].Offered != c || ds[0].Slot.Date != "2026-11-26" || ds[1].Offered != b || ds[1].Slot.Date != "2027-01-01" {
		t.Fatalf("decisions %+v", ds)
	}
	if n := e.auditCount(custody.KindWaitlist, custody.AuditWaitlistOffer); n != 2 {
		t.Fatalf("offers recorded: %d, want 2", n)
	}
	// c declines: the slot passes on (nobody else can take November), and
	// c is offered the next November day.
	ds, err = e.svc.DeclineOffer(e.ctx, e.users["coord"], c, "patient needs a few more days")
	if err != nil || len(ds) != 1 || ds[0].Offered != c || ds[0].Slot.Date != "2026-11-27" {
		t.Fatalf("after decline: %+v %v", ds, err)
	}
	// Both offers expire on the clock; the slots pass on.
	e.tick(49 * time.Hour)
	if _, err := e.svc.AcceptOffer(e.ctx, e.users["coord"], b, []custody.SignatureRequest{sig("coord", custody.MeaningAuthored)}); !errors.Is(err, custody.ErrOfferExpired) {
		t.Fatalf("accepting an expired offer: %v", err)
	}
	ds, err = e.svc.AllocateWaitlist(e.ctx, e.users["qa1"])
	if err != nil || len(ds) != 2 || ds[0].Offered != c || ds[0].Slot.Date != "2026-11-28" || ds[1].Offered != b || ds[1].Slot.Date != "2027-01-02" {
		t.Fatalf("after expiry: %+v %v", ds, err)
	}
	if n := e.auditCount(custody.KindWaitlist, custody.AuditWaitlistExpire); n != 2 {
		t.Fatalf("expiries recorded: %d, want 2", n)
	}
	rec, err := e.svc.AcceptOffer(e.ctx, e.users["coord"], c, []custody.SignatureRequest{sig("coord", custody.MeaningAuthored)})
	if err != nil {
		t.Fatal(err)
	}
	x, _ := rec.Parsed()
	if sd, ok := x.(custody.ScheduleData); !ok || sd.Plan.ManufacturingStart.Date != "2026-11-28" {
		t.Fatalf("accepted booking %+v", x)
	}
	list, n, _ = e.svc.Waitlist(e.ctx, e.users["coord"], "", 0, 1)
	if n != 1 || len(list) != 1 || list[0].COI != b {
		t.Fatalf("list after accept: %+v %d", list, n)
	}
	if err := e.svc.RemoveFromWaitlist(e.ctx, e.users["coord"], b, "booked elsewhere"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.RemoveFromWaitlist(e.ctx, e.users["coord"], b, "again"); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("removing twice: %v", err)
	}
	for _, act := range []custody.AuditAction{custody.AuditWaitlistAdd, custody.AuditWaitlistDecline, custody.AuditWaitlistAccept, custody.AuditWaitlistRemove} {
		if e.auditCount(custody.KindWaitlist, act) == 0 {
			t.Errorf("no %s in the audit trail", act)
		}
	}
	if v, err := e.svc.VerifyLedger(e.ctx); err != nil || !v.OK {
		t.Fatalf("ledger: %+v %v", v, err)
	}
}

// TestUnscheduleOffersFreedSlot: the plant's only open day is booked; a
// chain waits; unscheduling the booking offers the freed slot to it at
// once, recorded in the audit trail; the offer holds the slot, so another
// chain's booking of it is refused, and accepting books it.
func TestUnscheduleOffersFreedSlot(t *testing.T) {
	e := newEnv(t)
	scheduleNetwork(t, e, 1, 1)
	for _, cl := range []custody.Closure{{From: "2026-11-23", To: "2026-12-01", Reason: "validation runs"},
		{From: "2026-12-03", To: "2027-03-01", Reason: "refit"}} {
		if _, err := e.svc.AddClosure(e.ctx, e.users["admin1"], "MFG-1", cl); err != nil {
			t.Fatal(err)
		}
	}
	a, b, c := e.enrollNet(), e.enrollNet(), e.enrollNet()
	if _, err := e.book(a, "2026-12-01"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AddToWaitlist(e.ctx, e.users["coord"], b, custody.WaitRequest{Urgency: custody.UrgencyHigh, Reason: "plant full"}); err != nil {
		t.Fatal(err)
	}
	if ds, err := e.svc.AllocateWaitlist(e.ctx, e.users["qa1"]); err != nil || len(ds) != 0 {
		t.Fatalf("allocation with no free slot: %+v %v", ds, err)
	}
	if _, err := e.svc.Unschedule(e.ctx, e.users["coord"], a, custody.ReasonRequest{Reason: "patient not fit",
		Signatures: []custody.SignatureRequest{sig("coord", custody.MeaningAuthored)}}); err != nil {
		t.Fatal(err)
	}
	list, _, err := e.svc.Waitlist(e.ctx, e.users["coord"], "", 0, 0)
	if err != nil || len(list) != 1 || list[0].Offer == nil || list[0].Offer.Slot.Date != "2026-12-02" {
		t.Fatalf("after the unschedule: %+v %v", list, err)
	}
	if n := e.auditCount(custody.KindWaitlist, custody.AuditWaitlistOffer); n != 1 {
		t.Fatalf("offers recorded: %d, want 1", n)
	}
	if _, err := e.book(c, "2026-12-01"); !errors.Is(err, custody.ErrSlotTaken) {
		t.Fatalf("booking the slot an offer holds: %v, want ErrSlotTaken", err)
	}
	if _, err := e.svc.AcceptOffer(e.ctx, e.users["coord"], b, []custody.SignatureRequest{sig("coord", custody.MeaningAuthored)}); err != nil {
		t.Fatal(err)
	}
}

// TestQuotaConcurrentBookings: twelve coordinators' bookings of one
// centre race for a plant with room for all of them and a quota of three:
// exactly three are booked, the others refused with ErrQuotaExhausted.
func TestQuotaConcurrentBookings(t *testing.T) {
	e := newEnv(t)
	scheduleNetwork(t, e, 50, 50)
	if _, err := e.svc.SetQuota(e.ctx, e.users["qa1"], custody.Quota{Plant: "MFG-1", Centre: "HOSP-2", Slots: 3}, "scarce slots"); err != nil {
		t.Fatal(err)
	}
	const n = 12
	cois := make([]custody.COI, n)
	for i := range cois {
		cois[i] = e.enrollNet()
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, coi := range cois {
		wg.Go(func() { _, errs[i] = e.book(coi, "2026-12-01") })
	}
	wg.Wait()
	ok, out := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, custody.ErrQuotaExhausted):
			out++
		default:
			t.Errorf("booking %d: %v", i, err)
		}
	}
	if ok != 3 || out != n-3 {
		t.Fatalf("%d booked, %d refused by quota; want 3 and %d", ok, out, n-3)
	}
	if u, _ := e.svc.QuotaUses(e.ctx, e.users["coord"], "2026-12"); u["MFG-1/HOSP-2"] != 3 {
		t.Fatalf("uses %v, want 3", u)
	}
}
