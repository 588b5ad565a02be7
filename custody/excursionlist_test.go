package custody_test

import (
	"slices"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// TestExcursionsPage pages the excursion list one excursion at a time
// while excursions are recorded between pages, and checks the order
// (newest chain first, a chain's excursions newest first), that no
// excursion is listed twice or missed, that a new chain above the cursor
// waits for the next listing, and the filters.
func TestExcursionsPage(t *testing.T) {
	e := newTeleEnv(t)
	type made struct {
		coi   custody.COI
		start time.Time
	}
	var chains []custody.COI
	record := func(coi custody.COI, minute int) custody.Excursion {
		t.Helper()
		c, err := e.svc.Chain(e.ctx, coi)
		if err != nil {
			t.Fatal(err)
		}
		start := c.Legs[0].ShippedAt.Add(time.Duration(minute) * time.Minute)
		x := custody.Excursion{ID: custody.ExcursionID(custody.ExcursionTemperature, start), Kind: custody.ExcursionTemperature,
			Start: start, End: start.Add(time.Minute), Duration: time.Minute, Breach: time.Minute}
		if _, added, err := e.svc.RecordExcursion(e.ctx, coi, 1, x); err != nil || !added {
			t.Fatalf("record excursion on %s: %v %v", coi, added, err)
		}
		return x
	}
	newChain := func() custody.COI {
		coi := e.enroll()
		e.advance(coi, custody.StateToManufacturing)
		chains = append(chains, coi)
		return coi
	}
	for i := range 4 {
		coi := newChain()
		if i == 1 {
			continue // no excursion: never listed
		}
		record(coi, 10)
		if i != 3 {
			record(coi, 30)
		}
	}
	qa := e.users["qa1"]
	all, err := e.svc.Excursions(e.ctx, false)
	if err != nil || len(all) != 5 {
		t.Fatalf("Excursions: %d, %v; want 5", len(all), err)
	}
	key := func(x custody.ExcursionEntry) string { return string(x.COI) + "/" + x.ID }

	var got []custody.ExcursionEntry
	var before custody.COI
	for page := 0; ; page++ {
		p, err := e.svc.ExcursionsPage(e.ctx, qa, custody.ExcursionQuery{Before: before, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p.Excursions...)
		if page == 0 {
			record(newChain(), 5) // above the cursor: not in this listing
			record(chains[0], 50) // below it: listed with its chain
		}
		if p.Next == "" {
			break
		}
		if page > 10 {
			t.Fatalf("paging does not end: %v", got)
		}
		before = p.Next
	}
	// Every excursion of the chains listed when the first page was read,
	// the one recorded meanwhile on chain 0 included, and none of the
	// chain enrolled above the cursor.
	now, err := e.svc.Excursions(e.ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, coi := range []custody.COI{chains[3], chains[2], chains[0]} {
		var mine []string
		for _, x := range now {
			if x.COI == coi {
				mine = append(mine, key(x))
			}
		}
		slices.Reverse(mine)
		want = append(want, mine...)
	}
	if len(want) != 6 {
		t.Fatalf("want %d excursions listed, the test expects 6: %v", len(want), want)
	}
	keys := make([]string, len(got))
	for i, x := range got {
		keys[i] = key(x)
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("paged listing:\n%v\nwant\n%v", keys, want)
	}

	// Filters: the period of the start, the site, open; and a bad limit.
	first, err := e.svc.ExcursionsPage(e.ctx, qa, custody.ExcursionQuery{Limit: 100})
	if err != nil || len(first.Excursions) != 7 || first.Next != "" {
		t.Fatalf("one page of all: %d, next %q, %v; want 7 and no next", len(first.Excursions), first.Next, err)
	}
	c0, _ := e.svc.Chain(e.ctx, chains[0])
	from := got[2].Start
	since := 0
	for _, x := range first.Excursions {
		if !x.Start.Before(from) {
			since++
		}
	}
	if since == 0 || since == len(first.Excursions) {
		t.Fatalf("the period filter test needs excursions on both sides of %s", from)
	}
	for _, tt := range []struct {
		name string
		q    custody.ExcursionQuery
		want int
	}{
		{"from", custody.ExcursionQuery{From: from, Limit: 100}, since},
		{"to", custody.ExcursionQuery{To: from, Limit: 100}, 7 - since},
		{"site by name", custody.ExcursionQuery{Site: c0.Sites.Collection, Limit: 100}, 7},
		{"unknown site", custody.ExcursionQuery{Site: "NOWHERE-9", Limit: 100}, 0},
		{"open", custody.ExcursionQuery{Open: true, Limit: 100}, 7},
	} {
		p, err := e.svc.ExcursionsPage(e.ctx, qa, tt.q)
		if err != nil || len(p.Excursions) != tt.want {
			t.Errorf("%s: %d excursions, %v; want %d", tt.name, len(p.Excursions), err, tt.want)
		}
	}
	for _, q := range []custody.ExcursionQuery{{Limit: 0}, {Limit: custody.MaxExcursionPage + 1}, {From: from, To: from, Limit: 1}} {
		if _, err := e.svc.ExcursionsPage(e.ctx, qa, q); err == nil {
			t.Errorf("query %+v: no error", q)
		}
	}
}
