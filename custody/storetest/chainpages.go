package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/coid-project/coid/custody"
)

// testChainsPaged: ChainsAfter pages the chain summaries in COI order,
// all of them or those in one state; chains enrolled between pages after
// the cursor are listed by the later pages, those before it are not, a
// chain whose state changes between pages follows its new state, and no
// chain is listed twice.
func testChainsPaged(t *testing.T, s Store) {
	ctx := context.Background()
	records := map[custody.COI]uint64{}
	i := 0
	// add enrolls chain n, or appends to it: a collection when state is
	// collected, else a note.
	add := func(n int, state custody.State) {
		t.Helper()
		coi := COI(n)
		i++
		d := Draft(coi, i, records[coi] == 0, records[coi])
		if records[coi] > 0 && state == custody.StateCollected {
			// The journey's next state, as verification replays it.
			d.Record.Step, d.State = custody.StepCollect, state
		}
		mustAppend(t, s, d)
		records[coi]++
	}
	for n := 2; n <= 14; n += 2 {
		add(n, custody.StateEnrolled)
	}
	add(6, custody.StateCollected)
	add(12, custody.StateCollected)

	page := func(state custody.State, change func(page int)) []int {
		t.Helper()
		var got []int
		after := custody.COI("")
		for p := 0; ; p++ {
			infos, err := s.ChainsAfter(ctx, state, after, 2)
			if err != nil {
				t.Fatalf("ChainsAfter(%q, %q, 2): %v", state, after, err)
			}
			for _, ci := range infos {
				if state != "" && ci.State != state {
					t.Fatalf("ChainsAfter(%q) lists %s in state %s", state, ci.COI, ci.State)
				}
				if ci.Records != records[ci.COI] {
					t.Fatalf("ChainsAfter lists %s with %d records, want %d", ci.COI, ci.Records, records[ci.COI])
				}
				got = append(got, chainNumber(t, ci.COI))
			}
			if len(infos) < 2 {
				return got
			}
			after = infos[len(infos)-1].COI
			if change != nil {
				change(p)
			}
			if p > 20 {
				t.Fatalf("paging does not end: %v", got)
			}
		}
	}
	if got, want := page("", nil), []int{2, 4, 6, 8, 10, 12, 14}; !slices.Equal(got, want) {
		t.Fatalf("all chains paged %v, want %v", got, want)
	}
	if got, want := page(custody.StateCollected, nil), []int{6, 12}; !slices.Equal(got, want) {
		t.Fatalf("collected chains paged %v, want %v", got, want)
	}
	// Between the first two pages (2, 4 | 6, 8 | ...): chain 1 enrolled
	// before the cursor is not listed, 9 and 15 after it are; 10 leaves
	// the enrolled state and 2 (before the cursor) enters collected.
	got := page(custody.StateEnrolled, func(p int) {
		if p == 0 {
			add(1, custody.StateEnrolled)
			add(9, custody.StateEnrolled)
			add(15, custody.StateEnrolled)
			add(10, custody.StateCollected)
			add(2, custody.StateCollected)
		}
	})
	if want := []int{2, 4, 8, 9, 14, 15}; !slices.Equal(got, want) {
		t.Fatalf("enrolled chains paged while appending %v, want %v", got, want)
	}
	if got, want := page("", nil), []int{1, 2, 4, 6, 8, 9, 10, 12, 14, 15}; !slices.Equal(got, want) {
		t.Fatalf("all chains after the appends paged %v, want %v", got, want)
	}
	// A cursor that names no stored chain starts after where it would be.
	if infos, err := s.ChainsAfter(ctx, "", COI(5), 1); err != nil || len(infos) != 1 || infos[0].COI != COI(6) {
		t.Fatalf("ChainsAfter(a COI not stored) = %v, %v; want %s", infos, err, COI(6))
	}
	if infos, err := s.ChainsAfter(ctx, "", COI(15), 3); err != nil || len(infos) != 0 {
		t.Fatalf("ChainsAfter(the last COI) = %v, %v; want none", infos, err)
	}
	if _, err := s.ChainsAfter(ctx, "", "", 0); err == nil {
		t.Fatal("ChainsAfter with limit 0: no error")
	}
}

// chainNumber returns n for the suite's COI(n).
func chainNumber(t *testing.T, c custody.COI) int {
	t.Helper()
	for n := 1; n < 100; n++ {
		if COI(n) == c {
			return n
		}
	}
	t.Fatalf("%s is not one of the suite's chains", c)
	return 0
}
