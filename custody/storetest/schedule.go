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

// putCapacity stores c as site's capacity with its audit entry.
func putCapacity(t *testing.T, s Store, c custody.Capacity) {
	t.Helper()
	v, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	err = s.UpdateCapacity(context.Background(), c.Site, func(old []byte) ([]byte, custody.AuditEntry, error) {
		return v, custody.AuditEntry{Time: t0, Actor: "admin1", Kind: custody.KindCapacity, Code: c.Site,
			Action: custody.AuditCapacitySet, Reason: "plant opens", Old: old, New: v}, nil
	})
	if err != nil {
		t.Fatalf("capacity of %s: %v", c.Site, err)
	}
}

// enrollN enrolls chains 1..n.
// raceAppends appends draft(i) for clients 1..n at once and checks that
// exactly want succeed and every other is refused with refused: no
// interleaving of concurrent appends lets more through, and no append
// fails any other way.
func raceAppends(t *testing.T, s Store, n, want int, refused error, draft func(i int) custody.Draft) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Append(context.Background(), draft(i+1))
		}()
	}
	wg.Wait()
	ok, out := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, refused):
			out++
		default:
			t.Errorf("client %d: %v", i+1, err)
		}
	}
	if ok != want || out != n-want {
		t.Fatalf("%d booked and %d refused, want %d and %d", ok, out, want, n-want)
	}
}

func enrollN(t *testing.T, s Store, n int) {
	for i := 1; i <= n; i++ {
		mustAppend(t, s, Draft(COI(i), i, true, 0))
	}
}

// claimDraft is a note on chain n (which holds records records) taking
// and freeing claims.
func claimDraft(n int, records uint64, take, free []custody.Claim) custody.Draft {
	d := Draft(COI(n), 1000+n, false, records)
	d.Claims, d.Releases = take, free
	return d
}

// used returns the claims site holds on date for product.
func used(t *testing.T, s Store, site, date, product string) int {
	t.Helper()
	ss, err := s.SiteSlots(context.Background(), []string{site}, "", 0, date, date)
	if err != nil {
		t.Fatalf("SiteSlots %s: %v", site, err)
	}
	for _, x := range ss {
		for _, u := range x.Uses {
			if u.Date == date && u.Product == product {
				return u.Used
			}
		}
	}
	return 0
}

// testSchedule checks the scheduling contract: a capacity is stored with
// its audit entry; a draft's claims are taken with its record only while
// the site's capacity that day exceeds the claims held (else
// ErrSlotTaken, nothing written), on a day the site is open; a release
// frees only a claim the chain holds; SiteSlots reads the counts of a
// range of days, per site, with paging over the sites.
func testSchedule(t *testing.T, s Store) {
	ctx := context.Background()
	if _, err := s.Capacity(ctx, "PLANT-1"); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("capacity of a site without one: %v, want ErrNotFound", err)
	}
	putCapacity(t, s, custody.Capacity{Site: "PLANT-1", Slots: map[string]int{"KYM": 2},
		Closures:   []custody.Closure{{From: "2026-12-24", To: "2026-12-26", Reason: "holidays"}},
		Exceptions: []custody.CapacityException{{Date: "2026-12-02", Product: "KYM", Count: 1, Reason: "maintenance"}}})
	putCapacity(t, s, custody.Capacity{Site: "APH-1", Chairs: 1})
	if a, err := s.AuditEntries(ctx, custody.AuditFilter{Kind: custody.KindCapacity}); err != nil || len(a) != 2 {
		t.Fatalf("audit entries of capacity: %d, %v; want 2", len(a), err)
	}
	// A refused capacity change writes nothing.
	boom := errors.New("boom")
	if err := s.UpdateCapacity(ctx, "PLANT-1", func(old []byte) ([]byte, custody.AuditEntry, error) {
		if old == nil {
			t.Error("UpdateCapacity gave no stored value")
		}
		return nil, custody.AuditEntry{}, boom
	}); !errors.Is(err, boom) {
		t.Fatalf("UpdateCapacity with fn's error: %v", err)
	}
	enrollN(t, s, 4)
	slot := func(date string) custody.Claim { return custody.Claim{Site: "PLANT-1", Date: date, Product: "KYM"} }
	chair := custody.Claim{Site: "APH-1", Date: "2026-12-01"}

	mustAppend(t, s, claimDraft(1, 1, []custody.Claim{chair, slot("2026-12-01")}, nil))
	mustAppend(t, s, claimDraft(2, 1, []custody.Claim{slot("2026-12-01")}, nil))
	// The chair is taken, and the third slot does not exist: all or nothing.
	refused(t, s, claimDraft(3, 1, []custody.Claim{chair}, nil), custody.ErrSlotTaken)
	refused(t, s, claimDraft(3, 1, []custody.Claim{slot("2026-12-01")}, nil), custody.ErrSlotTaken)
	refused(t, s, claimDraft(3, 1, []custody.Claim{{Site: "APH-1", Date: "2026-12-03"}, slot("2026-12-01")}, nil), custody.ErrSlotTaken)
	if n := used(t, s, "APH-1", "2026-12-03", ""); n != 0 {
		t.Fatalf("a refused draft left a claim: %d", n)
	}
	// An exception lowers a day's count; a closure and a site without
	// capacity give none; a product the plant does not make has none.
	mustAppend(t, s, claimDraft(3, 1, []custody.Claim{slot("2026-12-02")}, nil))
	refused(t, s, claimDraft(4, 1, []custody.Claim{slot("2026-12-02")}, nil), custody.ErrSlotTaken)
	refused(t, s, claimDraft(4, 1, []custody.Claim{slot("2026-12-25")}, nil), custody.ErrSlotTaken)
	refused(t, s, claimDraft(4, 1, []custody.Claim{{Site: "PLANT-9", Date: "2026-12-05", Product: "KYM"}}, nil), custody.ErrSlotTaken)
	refused(t, s, claimDraft(4, 1, []custody.Claim{{Site: "PLANT-1", Date: "2026-12-05", Product: "OTHER"}}, nil), custody.ErrSlotTaken)
	// A chain holds a claim once; frees only what it holds.
	refused(t, s, claimDraft(1, 2, []custody.Claim{slot("2026-12-01")}, nil), custody.ErrConflict)
	refused(t, s, claimDraft(4, 1, nil, []custody.Claim{slot("2026-12-01")}), custody.ErrConflict)
	refused(t, s, claimDraft(4, 1, []custody.Claim{{Site: "PLANT-1", Date: "bad\x00", Product: "KYM"}}, nil), custody.ErrInvalid)

	// Chain 1 moves its slot to the 3rd: the 1st has room again.
	mustAppend(t, s, claimDraft(1, 2, []custody.Claim{slot("2026-12-03")}, []custody.Claim{slot("2026-12-01")}))
	if n := used(t, s, "PLANT-1", "2026-12-01", "KYM"); n != 1 {
		t.Fatalf("slots used on the 1st after a move: %d, want 1", n)
	}
	mustAppend(t, s, claimDraft(4, 1, []custody.Claim{slot("2026-12-01")}, nil))

	ss, err := s.SiteSlots(ctx, nil, "", 0, "2026-12-01", "2026-12-31")
	if err != nil || len(ss) != 2 || ss[0].Site != "APH-1" || ss[1].Site != "PLANT-1" {
		t.Fatalf("SiteSlots of every site: %+v, %v", ss, err)
	}
	var c custody.Capacity
	if err := json.Unmarshal(ss[1].Capacity, &c); err != nil || c.Slots["KYM"] != 2 {
		t.Fatalf("SiteSlots capacity %s: %v", ss[1].Capacity, err)
	}
	want := "[{2026-12-01 KYM 2} {2026-12-02 KYM 1} {2026-12-03 KYM 1}]"
	if got := fmt.Sprint(ss[1].Uses); got != want {
		t.Fatalf("PLANT-1 uses %s, want %s", got, want)
	}
	held, err := s.SiteClaims(ctx, "PLANT-1", "2026-12-01", "2026-12-02", 0)
	if err != nil || len(held) != 3 || held[0].Date != "2026-12-01" || held[2].COI != COI(3) || held[2].Product != "KYM" || held[2].Seq == 0 {
		t.Fatalf("SiteClaims of PLANT-1 on the 1st and 2nd: %+v, %v", held, err)
	}
	if held, _ := s.SiteClaims(ctx, "PLANT-1", "2026-12-01", "2026-12-31", 1); len(held) != 1 {
		t.Fatalf("SiteClaims limit 1: %+v", held)
	}
	if held, _ := s.SiteClaims(ctx, "APH-1", "2026-12-01", "2026-12-01", 0); len(held) != 1 || held[0].COI != COI(1) || held[0].Product != "" {
		t.Fatalf("SiteClaims of APH-1: %+v", held)
	}
	if ss, _ := s.SiteSlots(ctx, nil, "APH-1", 1, "2026-12-02", "2026-12-02"); len(ss) != 1 || ss[0].Site != "PLANT-1" ||
		fmt.Sprint(ss[0].Uses) != "[{2026-12-02 KYM 1}]" {
		t.Fatalf("SiteSlots after APH-1, one day: %+v", ss)
	}
}

// testConcurrentBooking: 64 chains book one of 10 slots at once; exactly
// 10 succeed, the others are refused with ErrSlotTaken, and the count
// says 10.
func testConcurrentBooking(t *testing.T, s Store) {
	const clients, slots = 64, 10
	putCapacity(t, s, custody.Capacity{Site: "PLANT-1", Slots: map[string]int{"KYM": slots}})
	enrollN(t, s, clients)
	claim := []custody.Claim{{Site: "PLANT-1", Date: "2026-12-01", Product: "KYM"}}
	raceAppends(t, s, clients, slots, custody.ErrSlotTaken, func(i int) custody.Draft { return claimDraft(i, 1, claim, nil) })
	if n := used(t, s, "PLANT-1", "2026-12-01", "KYM"); n != slots {
		t.Fatalf("slots used %d, want %d", n, slots)
	}
}
