package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/coid-project/coid/custody"
)

// putQuota stores q with its audit entry.
func putQuota(t *testing.T, s Store, q custody.Quota) {
	t.Helper()
	v, err := json.Marshal(q)
	if err != nil {
		t.Fatal(err)
	}
	err = s.UpdateQuota(context.Background(), q.Key(), func(old []byte) ([]byte, custody.AuditEntry, error) {
		return v, custody.AuditEntry{Time: t0, Actor: "qa1", Kind: custody.KindQuota, Code: q.Key(),
			Action: custody.AuditQuotaSet, Reason: "share the plant", Old: old, New: v}, nil
	})
	if err != nil {
		t.Fatalf("quota %s: %v", q.Key(), err)
	}
}

// quotaDraft is a note on chain n (which holds records records) counting
// against use (nil: none) and freeing the chain's use when release.
func quotaDraft(n int, records uint64, use *custody.QuotaUse, release bool) custody.Draft {
	d := Draft(COI(n), 2000+n, false, records)
	d.Quota, d.QuotaRelease = use, release
	return d
}

func quotaUsed(t *testing.T, s Store, period, key string) int {
	t.Helper()
	m, err := s.QuotaUses(context.Background(), period)
	if err != nil {
		t.Fatalf("QuotaUses %s: %v", period, err)
	}
	return m[key]
}

// testQuota checks the quota contract: a quota is stored with its audit
// entry and deleted with another; a draft's quota use is taken with its
// record only while the stored quota allows it (else ErrQuotaExhausted,
// nothing written); a pair without a quota is counted but not limited; a
// rebooking frees the chain's use before taking the new one; a release
// frees it.
func testQuota(t *testing.T, s Store) {
	ctx := context.Background()
	key := custody.QuotaKey("PLANT-1", "CENTRE-1")
	putQuota(t, s, custody.Quota{Plant: "PLANT-1", Centre: "CENTRE-1", Slots: 2})
	if q, err := s.Quotas(ctx); err != nil || len(q) != 1 || q[key] == nil {
		t.Fatalf("Quotas: %v, %v", q, err)
	}
	enrollN(t, s, 5)
	dec := &custody.QuotaUse{Key: key, Period: "2026-12"}
	jan := &custody.QuotaUse{Key: key, Period: "2027-01"}
	free := &custody.QuotaUse{Key: custody.QuotaKey("PLANT-1", "CENTRE-2"), Period: "2026-12"}
	mustAppend(t, s, quotaDraft(1, 1, dec, false))
	mustAppend(t, s, quotaDraft(2, 1, dec, false))
	refused(t, s, quotaDraft(3, 1, dec, false), custody.ErrQuotaExhausted)
	if n := quotaUsed(t, s, "2026-12", key); n != 2 {
		t.Fatalf("uses after a refusal: %d, want 2", n)
	}
	// Chain 2 rebooks in the same month: its own use is not counted twice.
	mustAppend(t, s, quotaDraft(2, 2, dec, false))
	// Another month, and a pair without a quota, are free.
	mustAppend(t, s, quotaDraft(3, 1, jan, false))
	for n := 4; n <= 5; n++ {
		mustAppend(t, s, quotaDraft(n, 1, free, false))
	}
	if n := quotaUsed(t, s, "2026-12", free.Key); n != 2 {
		t.Fatalf("uses of a pair without quota: %d, want 2", n)
	}
	// Chain 1 moves to January: December has room again.
	mustAppend(t, s, quotaDraft(1, 2, jan, false))
	if n, m := quotaUsed(t, s, "2026-12", key), quotaUsed(t, s, "2027-01", key); n != 1 || m != 2 {
		t.Fatalf("uses after a move: December %d, January %d; want 1 and 2", n, m)
	}
	// Chain 3 frees its January use; chain 4 takes December's last.
	mustAppend(t, s, quotaDraft(3, 2, nil, true))
	if m := quotaUsed(t, s, "2027-01", key); m != 1 {
		t.Fatalf("January after a release: %d, want 1", m)
	}
	mustAppend(t, s, quotaDraft(4, 2, dec, false))
	if n := quotaUsed(t, s, "2026-12", free.Key); n != 1 {
		t.Fatalf("the pair chain 4 left: %d, want 1", n)
	}
	refused(t, s, quotaDraft(5, 2, dec, false), custody.ErrQuotaExhausted)
	refused(t, s, quotaDraft(5, 2, &custody.QuotaUse{Key: key, Period: "bad\x00"}, false), custody.ErrInvalid)

	// A refused change writes nothing; a delete removes the quota.
	boom := errors.New("boom")
	if err := s.UpdateQuota(ctx, key, func(old []byte) ([]byte, custody.AuditEntry, error) { return nil, custody.AuditEntry{}, boom }); !errors.Is(err, boom) {
		t.Fatalf("UpdateQuota with fn's error: %v", err)
	}
	if err := s.UpdateQuota(ctx, key, func(old []byte) ([]byte, custody.AuditEntry, error) {
		return nil, custody.AuditEntry{Time: t0, Actor: "qa1", Kind: custody.KindQuota, Code: key, Action: custody.AuditQuotaDelete,
			Reason: "no longer scarce", Old: old, New: json.RawMessage(`{}`)}, nil
	}); err != nil {
		t.Fatalf("delete quota: %v", err)
	}
	if q, _ := s.Quotas(ctx); len(q) != 0 {
		t.Fatalf("quotas after delete: %v", q)
	}
	mustAppend(t, s, quotaDraft(5, 2, dec, false))
	if a, err := s.AuditEntries(ctx, custody.AuditFilter{Kind: custody.KindQuota}); err != nil || len(a) != 2 {
		t.Fatalf("audit entries of quotas: %d, %v; want 2", len(a), err)
	}
}

// testConcurrentQuota: 64 chains count against a quota of 10 at once;
// exactly 10 succeed, the others are refused with ErrQuotaExhausted, and
// the count says 10.
func testConcurrentQuota(t *testing.T, s Store) {
	const clients, slots = 64, 10
	putQuota(t, s, custody.Quota{Plant: "PLANT-1", Centre: "CENTRE-1", Slots: slots})
	enrollN(t, s, clients)
	use := &custody.QuotaUse{Key: custody.QuotaKey("PLANT-1", "CENTRE-1"), Period: "2026-12"}
	raceAppends(t, s, clients, slots, custody.ErrQuotaExhausted, func(i int) custody.Draft { return quotaDraft(i, 1, use, false) })
	if n := quotaUsed(t, s, "2026-12", use.Key); n != slots {
		t.Fatalf("quota used %d, want %d", n, slots)
	}
}

// testWaitlist checks the waiting list's store: an entry is stored,
// replaced and removed, each change with its audit entries, and a refused
// change writes nothing.
func testWaitlist(t *testing.T, s Store) {
	ctx := context.Background()
	put := func(coi custody.COI, v []byte, actions ...custody.AuditAction) error {
		return s.UpdateWaitlist(ctx, coi, func(old []byte) ([]byte, []custody.AuditEntry, error) {
			var as []custody.AuditEntry
			for _, a := range actions {
				as = append(as, custody.AuditEntry{Time: t0, Actor: "coord1", Kind: custody.KindWaitlist, Code: string(coi),
					Action: a, Reason: "no slot", New: json.RawMessage(`{"urgency":1}`)})
			}
			return v, as, nil
		})
	}
	if err := put(COI(2), []byte(`{"coi":"2"}`), custody.AuditWaitlistAdd); err != nil {
		t.Fatal(err)
	}
	if err := put(COI(1), []byte(`{"coi":"1"}`), custody.AuditWaitlistAdd); err != nil {
		t.Fatal(err)
	}
	if err := put(COI(1), []byte(`{"coi":"1","offer":{}}`), custody.AuditWaitlistExpire, custody.AuditWaitlistOffer); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := s.UpdateWaitlist(ctx, COI(2), func(old []byte) ([]byte, []custody.AuditEntry, error) {
		if string(old) != `{"coi":"2"}` {
			t.Errorf("UpdateWaitlist gave %s", old)
		}
		return nil, nil, boom
	}); !errors.Is(err, boom) {
		t.Fatalf("UpdateWaitlist with fn's error: %v", err)
	}
	if l, err := s.Waitlist(ctx); err != nil || len(l) != 2 || string(l[0]) != `{"coi":"1","offer":{}}` {
		t.Fatalf("Waitlist: %q, %v", l, err)
	}
	if err := put(COI(2), nil, custody.AuditWaitlistRemove); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.Waitlist(ctx); len(l) != 1 {
		t.Fatalf("Waitlist after a removal: %q", l)
	}
	if a, err := s.AuditEntries(ctx, custody.AuditFilter{Kind: custody.KindWaitlist}); err != nil || len(a) != 5 {
		t.Fatalf("audit entries of the waiting list: %d, %v; want 5", len(a), err)
	}
}

// putHold stores chain coi's waiting-list entry v and sets the slot its
// offer holds (nil: none).
func putHold(s Store, coi custody.COI, hold *custody.Claim, v string) error {
	return s.UpdateWaitlistHold(context.Background(), coi, hold, func(old []byte) ([]byte, []custody.AuditEntry, error) {
		return []byte(v), []custody.AuditEntry{{Time: t0, Actor: "qa1", Kind: custody.KindWaitlist, Code: string(coi),
			Action: custody.AuditWaitlistOffer, Reason: "first eligible", New: json.RawMessage(`{"urgency":1}`)}}, nil
	})
}

// testOfferHold checks an open offer's hold: it is counted as a taken
// slot, so another chain's booking of it is refused while the chain's
// own takes it (the count unchanged); it is taken only while the site
// has room, is freed by a change of offer and by the entry's removal,
// and a refused change writes nothing.
func testOfferHold(t *testing.T, s Store) {
	ctx := context.Background()
	putCapacity(t, s, custody.Capacity{Site: "PLANT-1", Slots: map[string]int{"KYM": 1}})
	enrollN(t, s, 3)
	slot := custody.Claim{Site: "PLANT-1", Date: "2026-12-01", Product: "KYM"}
	other := custody.Claim{Site: "PLANT-1", Date: "2026-12-03", Product: "KYM"}
	if err := putHold(s, COI(1), &slot, `{"offer":1}`); err != nil {
		t.Fatalf("hold: %v", err)
	}
	if n := used(t, s, "PLANT-1", slot.Date, "KYM"); n != 1 {
		t.Fatalf("a held slot counts %d, want 1", n)
	}
	// Another chain can neither book nor hold it.
	refused(t, s, claimDraft(2, 1, []custody.Claim{slot}, nil), custody.ErrSlotTaken)
	if err := putHold(s, COI(2), &slot, `{"offer":2}`); !errors.Is(err, custody.ErrSlotTaken) {
		t.Fatalf("a second hold of a full slot: %v, want ErrSlotTaken", err)
	}
	if l, _ := s.Waitlist(ctx); len(l) != 1 {
		t.Fatalf("a refused hold wrote the entry: %q", l)
	}
	// A changed offer frees the first slot and holds the other.
	if err := putHold(s, COI(1), &other, `{"offer":3}`); err != nil {
		t.Fatal(err)
	}
	if n, m := used(t, s, "PLANT-1", slot.Date, "KYM"), used(t, s, "PLANT-1", other.Date, "KYM"); n != 0 || m != 1 {
		t.Fatalf("after moving the hold: %d and %d, want 0 and 1", n, m)
	}
	// A plain update keeps the hold; the chain's own booking takes it.
	if err := s.UpdateWaitlist(ctx, COI(1), func([]byte) ([]byte, []custody.AuditEntry, error) { return []byte(`{"offer":4}`), nil, nil }); err != nil {
		t.Fatal(err)
	}
	refused(t, s, claimDraft(2, 1, []custody.Claim{other}, nil), custody.ErrSlotTaken)
	mustAppend(t, s, claimDraft(1, 1, []custody.Claim{other}, nil))
	if n := used(t, s, "PLANT-1", other.Date, "KYM"); n != 1 {
		t.Fatalf("a hold become a claim counts %d, want 1", n)
	}
	// Freeing the claim frees the slot: the hold is gone.
	mustAppend(t, s, claimDraft(1, 2, nil, []custody.Claim{other}))
	if n := used(t, s, "PLANT-1", other.Date, "KYM"); n != 0 {
		t.Fatalf("after the release: %d, want 0", n)
	}
	// Declining (no hold) and removing free the slot.
	if err := putHold(s, COI(3), &slot, `{"offer":5}`); err != nil {
		t.Fatal(err)
	}
	if err := putHold(s, COI(3), nil, `{"declined":5}`); err != nil {
		t.Fatal(err)
	}
	if n := used(t, s, "PLANT-1", slot.Date, "KYM"); n != 0 {
		t.Fatalf("after a decline: %d, want 0", n)
	}
	if err := putHold(s, COI(3), &slot, `{"offer":6}`); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateWaitlist(ctx, COI(3), func([]byte) ([]byte, []custody.AuditEntry, error) { return nil, nil, nil }); err != nil {
		t.Fatal(err)
	}
	if n := used(t, s, "PLANT-1", slot.Date, "KYM"); n != 0 {
		t.Fatalf("after a removal: %d, want 0", n)
	}
	mustAppend(t, s, claimDraft(2, 1, []custody.Claim{slot}, nil))
	// A hold of a chair, or with an entry removed, is refused.
	if err := putHold(s, COI(3), &custody.Claim{Site: "PLANT-1", Date: slot.Date}, `{}`); !errors.Is(err, custody.ErrInvalid) {
		t.Fatalf("a chair held: %v, want ErrInvalid", err)
	}
}

// testConcurrentOfferHold races an offer's hold against many bookings of
// the same slots by other chains: exactly as many succeed, hold included,
// as the slots, and a hold that lost the race writes nothing.
func testConcurrentOfferHold(t *testing.T, s Store) {
	const clients, slots = 16, 3
	putCapacity(t, s, custody.Capacity{Site: "PLANT-1", Slots: map[string]int{"KYM": slots}})
	enrollN(t, s, clients)
	records := make([]uint64, clients)
	won := 0
	for round := range 4 {
		date := fmt.Sprintf("2026-12-%02d", round+1)
		c := custody.Claim{Site: "PLANT-1", Date: date, Product: "KYM"}
		holder := COI(clients + 1 + round)
		var wg sync.WaitGroup
		errs := make([]error, clients)
		var holdErr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			holdErr = putHold(s, holder, &c, `{"offer":"`+date+`"}`)
		}()
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = s.Append(context.Background(), claimDraft(i+1, 1+records[i], []custody.Claim{c}, nil))
			}()
		}
		wg.Wait()
		ok := 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
				records[i]++
			case errors.Is(err, custody.ErrSlotTaken):
			default:
				t.Fatalf("round %d client %d: %v", round, i+1, err)
			}
		}
		held := 0
		switch {
		case holdErr == nil:
			held = 1
		case !errors.Is(holdErr, custody.ErrSlotTaken):
			t.Fatalf("round %d hold: %v", round, holdErr)
		}
		if ok+held != slots {
			t.Fatalf("round %d: %d booked and %d held of %d slots", round, ok, held, slots)
		}
		if n := used(t, s, "PLANT-1", date, "KYM"); n != slots {
			t.Fatalf("round %d: %d counted, want %d", round, n, slots)
		}
		won += held
		if l, err := s.Waitlist(context.Background()); err != nil || len(l) != won {
			t.Fatalf("round %d: %d entries, %v; want %d (a hold refused writes nothing)", round, len(l), err, won)
		}
	}
}
