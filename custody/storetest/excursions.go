package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/coid-project/coid/custody"
)

// excursionChains is one test's view of a store's chains: it appends
// records and keeps each chain's record count.
type excursionChains struct {
	t       *testing.T
	s       Store
	records map[custody.COI]uint64
	i       int
}

// add appends a record to chain n (enrolling it first if new): an
// excursion record when excursion, else a note; open is how many of its
// excursions the draft counts as open (-1: the draft keeps no counts).
func (c *excursionChains) add(n int, excursion bool, open int) {
	coi := COI(n)
	if _, ok := c.records[coi]; !ok {
		c.i++
		mustAppend(c.t, c.s, Draft(coi, c.i, true, 0))
		c.records[coi] = 1
	}
	c.i++
	d := Draft(coi, c.i, false, c.records[coi])
	if excursion {
		d.Record.Step = custody.StepExcursion
		d.Record.SubmittedBy, d.Record.Signatures = custody.SystemUser, nil
	}
	if open >= 0 {
		d.OpenIssues = custody.IssueCounts{Kept: true, Excursions: open}
	}
	mustAppend(c.t, c.s, d)
	c.records[coi]++
}

// testExcursionIndex: ExcursionChains lists the chains holding an
// excursion record, greatest COI first, paged by the COI before; the open
// list holds those whose latest summary counts open excursions or keeps no
// counts, and follows each append at once. Pages read while records are
// appended between them never list a chain twice nor miss one that was
// indexed when the first page was read.
func testExcursionIndex(t *testing.T, s Store) {
	ctx := context.Background()
	c := &excursionChains{t: t, s: s, records: map[custody.COI]uint64{}}
	list := func(open bool, before custody.COI, limit int) []custody.COI {
		t.Helper()
		got, err := s.ExcursionChains(ctx, open, before, limit)
		if err != nil {
			t.Fatalf("ExcursionChains(open %v, before %q, limit %d): %v", open, before, limit, err)
		}
		return got
	}
	cois := func(ns ...int) []custody.COI {
		out := []custody.COI{}
		for _, n := range ns {
			out = append(out, COI(n))
		}
		return out
	}
	same := func(got, want []custody.COI) bool {
		return len(got) == len(want) && (len(got) == 0 || slices.Equal(got, want))
	}

	for n := 1; n <= 9; n++ {
		c.add(n, false, 0) // chains without excursions are never listed
	}
	c.add(2, true, 1)
	c.add(3, true, 1)
	c.add(5, true, 1)
	c.add(5, false, 0)  // decided: still listed, no longer open
	c.add(7, true, 1)   // open ...
	c.add(7, false, -1) // ... then a draft that keeps no counts: still open
	c.add(4, false, -1) // no excursion record: never listed
	c.add(8, true, 2)
	c.add(8, true, 2) // twice: listed once
	for _, tt := range []struct {
		name   string
		open   bool
		before custody.COI
		limit  int
		want   []custody.COI
	}{
		{"all", false, "", 100, cois(8, 7, 5, 3, 2)},
		{"open", true, "", 100, cois(8, 7, 3, 2)},
		{"first page", false, "", 2, cois(8, 7)},
		{"after an indexed chain", false, COI(7), 2, cois(5, 3)},
		{"after a chain not indexed", false, COI(6), 10, cois(5, 3, 2)},
		{"open after a chain not open", true, COI(5), 10, cois(3, 2)},
		{"past the greatest", false, COI(99), 1, cois(8)},
		{"past the least", false, COI(2), 5, nil},
	} {
		if got := list(tt.open, tt.before, tt.limit); !same(got, tt.want) {
			t.Errorf("%s: ExcursionChains = %v, want %v", tt.name, got, tt.want)
		}
	}
	if _, err := s.ExcursionChains(ctx, false, "", 0); err == nil {
		t.Error("ExcursionChains with limit 0: no error")
	}

	// Paging one chain at a time while appends land between pages: an
	// excursion on a chain above the cursor (9) is not listed by the
	// later pages, one below it (1, 6) is; a chain decided between pages
	// (3, 7) leaves the open list; none is listed twice.
	var pages [2][]custody.COI
	for k, open := range []bool{false, true} {
		before := custody.COI("")
		for step := 0; ; step++ {
			page := list(open, before, 1)
			if len(page) == 0 {
				break
			}
			pages[k] = append(pages[k], page...)
			before = page[0]
			switch {
			case !open && step == 0:
				c.add(9, true, 1)
				c.add(1, true, 1)
			case !open && step == 1:
				c.add(3, false, 0)
			case open && step == 0:
				c.add(7, false, 0)
				c.add(6, true, 1)
			}
			if step > 20 {
				t.Fatalf("paging does not end: %v", pages[k])
			}
		}
	}
	if want := cois(8, 7, 5, 3, 2, 1); !same(pages[0], want) {
		t.Errorf("all, paged while appending: %v, want %v", pages[0], want)
	}
	if want := cois(9, 8, 6, 2, 1); !same(pages[1], want) {
		t.Errorf("open, paged while appending: %v, want %v", pages[1], want)
	}
	if got, want := list(true, "", 100), cois(9, 8, 6, 2, 1); !same(got, want) {
		t.Errorf("open at the end: %v, want %v", got, want)
	}
}
