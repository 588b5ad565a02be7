package custody_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// TestAllocateSlotRule: the fairness rule on small lists, one case per
// clause.
func TestAllocateSlotRule(t *testing.T) {
	t0 := time.Date(2027, 1, 1, 9, 0, 0, 0, time.UTC)
	slot := custody.FreeSlot{Plant: "P", Product: "K", Date: "2027-02-10"}
	e := func(coi string, urgency int, centre string, hours int) custody.WaitEntry {
		return custody.WaitEntry{COI: custody.COI(coi), Plant: "P", Product: "K", Centre: centre, Urgency: urgency,
			Since: t0.Add(time.Duration(hours) * time.Hour)}
	}
	quota := custody.QuotaState{Quotas: map[string]custody.Quota{"P/C1": {Plant: "P", Centre: "C1", Slots: 1}},
		Uses: map[string]map[string]int{"2027-02": {"P/C1": 1}}}
	offered := e("O", 1, "C2", 0)
	offered.Offer = &custody.Offer{Slot: custody.FreeSlot{Plant: "P", Product: "K", Date: "2027-02-03"}}
	passed := e("D", 1, "C2", 1)
	passed.Passed = []custody.FreeSlot{slot}
	other := e("X", 1, "C2", -5)
	other.Plant = "Q"
	cases := []struct {
		name    string
		list    []custody.WaitEntry
		qs      custody.QuotaState
		want    string
		skipped []string
	}{
		{"urgency before time", []custody.WaitEntry{e("A", 2, "C2", 0), e("B", 1, "C2", 5)}, custody.QuotaState{}, "B", nil},
		{"first in first out within urgency", []custody.WaitEntry{e("A", 2, "C2", 5), e("B", 2, "C2", 1)}, custody.QuotaState{}, "B", nil},
		{"other plant and open offer are no candidates", []custody.WaitEntry{other, offered, e("B", 3, "C2", 9)}, custody.QuotaState{}, "B", nil},
		{"declined slot passes to the next", []custody.WaitEntry{passed, e("B", 2, "C2", 9)}, custody.QuotaState{}, "B", []string{"D"}},
		{"centre at quota skipped", []custody.WaitEntry{e("A", 1, "C1", 0), e("B", 3, "C2", 9)}, quota, "B", []string{"A"}},
		{"open offer counts against the quota", []custody.WaitEntry{
			func() custody.WaitEntry { x := offered; x.Centre = "C1"; return x }(), e("A", 1, "C1", 1), e("B", 1, "C2", 2)},
			custody.QuotaState{Quotas: quota.Quotas}, "B", []string{"A"}},
		{"nobody eligible", []custody.WaitEntry{e("A", 1, "C1", 0)}, quota, "", []string{"A"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, i := custody.AllocateSlot(slot, tc.list, tc.qs)
			if string(d.Offered) != tc.want || (i >= 0) != (tc.want != "") || i >= 0 && tc.list[i].COI != d.Offered {
				t.Fatalf("offered %q (index %d), want %q; decision %+v", d.Offered, i, tc.want, d)
			}
			var sk []string
			for _, s := range d.Skipped {
				if s.Why == "" {
					t.Errorf("skipped %s without a reason", s.COI)
				}
				sk = append(sk, string(s.COI))
			}
			if !slices.Equal(sk, tc.skipped) {
				t.Errorf("skipped %v, want %v", sk, tc.skipped)
			}
			if d.Why == "" {
				t.Error("decision without a reason")
			}
		})
	}
}

// TestWaitlistSimulatedYear runs the waiting list over a simulated year:
// chains of three centres with random urgencies arrive at random (a fixed
// seed), the plant frees slots at random, offers are accepted, declined or
// left to expire. It checks what the programme lead relies on: no centre
// books more than its quota in any month; the more urgent wait no longer
// on average; within an urgency and centre, first in is first offered;
// every offer, and every entry passed over, is in a recorded decision.
func TestWaitlistSimulatedYear(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 3))
	start := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	centres := []string{"C1", "C2", "C3"}
	quotas := map[string]custody.Quota{
		"P/C1": {Plant: "P", Centre: "C1", Slots: 6},
		"P/C2": {Plant: "P", Centre: "C2", Slots: 4},
		"P/C3": {Plant: "P", Centre: "C3", Slots: 3},
	}
	qs := custody.QuotaState{Quotas: quotas, Uses: map[string]map[string]int{}}
	var list []custody.WaitEntry
	var decisions []custody.AllocationDecision
	firstOffer := map[custody.COI]time.Time{}
	booked := map[custody.COI]time.Time{}
	all := map[custody.COI]custody.WaitEntry{}
	offers, n := 0, 0
	type pending struct {
		slot    custody.FreeSlot
		expires time.Time
	}
	var open []pending

	allocate := func(now time.Time, slot custody.FreeSlot) {
		// A snapshot of the list as the decision saw it, to check it.
		snap := slices.Clone(list)
		d, i := custody.AllocateSlot(slot, list, qs)
		decisions = append(decisions, d)
		checkDecision(t, d, snap, qs)
		if i < 0 {
			return
		}
		offers++
		list[i].Offer = &custody.Offer{Slot: slot, Made: now, Expires: now.Add(48 * time.Hour)}
		if _, ok := firstOffer[list[i].COI]; !ok {
			firstOffer[list[i].COI] = now
		}
		open = append(open, pending{slot, now.Add(48 * time.Hour)})
	}
	answer := func(now time.Time) {
		for i := 0; i < len(list); i++ {
			o := list[i].Offer
			if o == nil || now.Before(o.Expires) && rng.IntN(4) != 0 {
				continue // not answered yet
			}
			if rng.IntN(5) == 0 || !now.Before(o.Expires) { // declined, or expired
				list[i].Passed = append(list[i].Passed, o.Slot)
				list[i].Offer = nil
				allocate(now, o.Slot) // the slot passes on
				continue
			}
			key, period := custody.QuotaKey(list[i].Plant, list[i].Centre), custody.QuotaPeriod(o.Slot.Date)
			if qs.Uses[period] == nil {
				qs.Uses[period] = map[string]int{}
			}
			qs.Uses[period][key]++
			booked[list[i].COI] = now
			list = slices.Delete(list, i, i+1)
			i--
		}
	}
	for day := range 365 {
		for h := range 24 {
			now := start.AddDate(0, 0, day).Add(time.Duration(h) * time.Hour)
			if rng.IntN(10) == 0 { // about 2.4 arrivals a day
				n++
				e := custody.WaitEntry{COI: custody.COI(fmt.Sprintf("W%05d", n)), Plant: "P", Product: "K",
					Centre: centres[rng.IntN(len(centres))], Urgency: 1 + rng.IntN(3), Since: now}
				list = append(list, e)
				all[e.COI] = e
			}
			if rng.IntN(12) == 0 { // about 2 slots freed a day, two weeks ahead
				allocate(now, custody.FreeSlot{Plant: "P", Product: "K", Date: now.AddDate(0, 0, 14).Format(custody.DateLayout)})
			}
			answer(now)
		}
	}
	end := start.AddDate(1, 0, 0)

	// No centre above its quota in any month.
	for period, uses := range qs.Uses {
		for key, u := range uses {
			if u > quotas[key].Slots {
				t.Errorf("%s booked %d in %s, quota %d", key, u, period, quotas[key].Slots)
			}
		}
	}
	// The more urgent wait no longer on average (to first offer, or to
	// the year's end for those never offered one).
	var sum [4]time.Duration
	var cnt [4]int
	for coi, e := range all {
		w := end.Sub(e.Since)
		if f, ok := firstOffer[coi]; ok {
			w = f.Sub(e.Since)
		}
		sum[e.Urgency] += w
		cnt[e.Urgency]++
	}
	var mean [4]time.Duration
	for u := 1; u <= 3; u++ {
		if cnt[u] == 0 {
			t.Fatalf("no chain of urgency %d arrived", u)
		}
		mean[u] = sum[u] / time.Duration(cnt[u])
	}
	t.Logf("%d chains, %d offers, %d booked; mean wait by urgency: %v %v %v", n, offers, len(booked), mean[1], mean[2], mean[3])
	if mean[1] > mean[2] || mean[2] > mean[3] {
		t.Errorf("mean waits by urgency 1..3: %v %v %v; the more urgent waited longer", mean[1], mean[2], mean[3])
	}
	if len(booked) < 100 || offers <= len(booked) {
		t.Fatalf("the year booked %d chains with %d offers: the simulation exercised too little", len(booked), offers)
	}
	// First in, first offered within an urgency and centre, for the
	// chains offered a slot.
	for _, a := range all {
		for _, b := range all {
			fa, oka := firstOffer[a.COI]
			fb, okb := firstOffer[b.COI]
			if a.Urgency == b.Urgency && a.Centre == b.Centre && a.Since.Before(b.Since) && okb && (!oka || fb.Before(fa)) {
				t.Fatalf("%s (urgency %d, %s, since %s) was offered a slot after %s (since %s)", a.COI, a.Urgency, a.Centre, a.Since, b.COI, b.Since)
			}
		}
	}
	// Every offer is a recorded decision.
	recorded := 0
	for _, d := range decisions {
		if d.Offered != "" {
			recorded++
		}
	}
	if recorded != offers {
		t.Errorf("%d offers, %d recorded", offers, recorded)
	}
}

// checkDecision checks that a decision offered the slot to the first
// candidate of list in waiting-list order that the rule allows, and names
// every candidate before it as skipped with a reason.
func checkDecision(t *testing.T, d custody.AllocationDecision, list []custody.WaitEntry, qs custody.QuotaState) {
	t.Helper()
	var cands []custody.WaitEntry
	for _, e := range list {
		if e.Plant == d.Slot.Plant && e.Product == d.Slot.Product && e.Offer == nil {
			cands = append(cands, e)
		}
	}
	custody.SortWaitlist(cands)
	skipped := map[custody.COI]string{}
	for _, s := range d.Skipped {
		skipped[s.COI] = s.Why
	}
	for _, e := range cands {
		if e.COI == d.Offered {
			return
		}
		if skipped[e.COI] == "" {
			t.Fatalf("decision %+v passed over %s (urgency %d, since %s) without a recorded reason", d, e.COI, e.Urgency, e.Since)
		}
	}
	if d.Offered != "" {
		t.Fatalf("decision offered %s, who is no candidate", d.Offered)
	}
}
