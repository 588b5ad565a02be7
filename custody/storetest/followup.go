package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// followUpEntries lists the follow-up index after the chain after, at
// most n entries (0: all).
func followUpEntries(t *testing.T, idx custody.FollowUpIndex, after custody.COI, n int) []custody.FollowUpPending {
	t.Helper()
	var out []custody.FollowUpPending
	err := idx.FollowUpPending(context.Background(), after, func(p custody.FollowUpPending) bool {
		out = append(out, p)
		return n == 0 || len(out) < n
	})
	if err != nil {
		t.Fatalf("FollowUpPending: %v", err)
	}
	return out
}

// testFollowUpIndex: the entry a draft leading to the infused state
// carries is stored with the record and replaced by the next one's; a
// refused draft changes nothing; entries come back in COI order after a
// cursor, until the callback stops. (The default journey has no way out
// of the infused state, so the removal of an entry is not exercised on a
// ledger that must verify.)
func testFollowUpIndex(t *testing.T, s Store) {
	ctx := context.Background()
	idx, ok := s.(custody.FollowUpIndex)
	if !ok {
		t.Fatalf("%T does not keep the follow-up index (custody.FollowUpIndex)", s)
	}
	sites := custody.Sites{Collection: "COL-1", Manufacturing: "MFG-1", Treatment: "PAR-1"}
	entry := func(n int, done ...int) *custody.FollowUpPending {
		return &custody.FollowUpPending{COI: COI(n), Product: "CAR-T", Sites: sites, Infused: t0.Add(time.Duration(n) * time.Hour), Done: done}
	}
	// toInfused walks chain n through the default journey to its infuse
	// record, which carries entry w, from record time i.
	path := infusedPath()
	toInfused := func(n, i int, w *custody.FollowUpPending) {
		for k, tr := range path {
			d := Draft(COI(n), i+k, k == 0, uint64(k))
			d.Record.Step, d.State, d.Sites = tr.Step, tr.To, sites
			if tr.To == custody.StateInfused {
				d.FollowUp = w
			}
			mustAppend(t, s, d)
		}
	}
	followUp := func(n, i int, expect uint64, w *custody.FollowUpPending) custody.Draft {
		d := Draft(COI(n), i, false, expect)
		d.Record.Step, d.State, d.Sites, d.FollowUp = custody.StepFollowUp, custody.StateInfused, sites, w
		return d
	}
	cois := func(ps []custody.FollowUpPending) []custody.COI {
		var out []custody.COI
		for _, p := range ps {
			out = append(out, p.COI)
		}
		return out
	}
	// Infused out of COI order: listed in COI order.
	for i, n := range []int{3, 1, 2} {
		toInfused(n, 100*i, entry(n))
	}
	mustAppend(t, s, Draft(COI(4), 400, true, 0)) // enrolled, not infused: no entry
	got := followUpEntries(t, idx, "", 0)
	if want := []custody.COI{COI(1), COI(2), COI(3)}; !slices.Equal(cois(got), want) {
		t.Fatalf("entries %v, want %v", cois(got), want)
	}
	if w := got[1]; w.Product != "CAR-T" || w.Sites != sites || !w.Infused.Equal(entry(2).Infused) || len(w.Done) != 0 {
		t.Fatalf("entry %+v, want %+v", w, *entry(2))
	}
	// A follow-up record replaces the entry.
	mustAppend(t, s, followUp(2, 500, uint64(len(path)), entry(2, 7, 14)))
	if got := followUpEntries(t, idx, COI(1), 1); len(got) != 1 || got[0].COI != COI(2) || !slices.Equal(got[0].Done, []int{7, 14}) {
		t.Fatalf("first entry after %s: %+v, want %s with days 7 and 14", COI(1), got, COI(2))
	}
	// A refused draft changes nothing.
	if _, err := s.Append(ctx, followUp(3, 501, 1, entry(3, 28))); !errors.Is(err, custody.ErrRetry) {
		t.Fatalf("stale draft: %v, want ErrRetry", err)
	}
	if got := followUpEntries(t, idx, COI(2), 0); len(got) != 1 || got[0].COI != COI(3) || len(got[0].Done) != 0 {
		t.Fatalf("entries after %s after a refused draft: %+v", COI(2), got)
	}
}

// infusedPath is the default journey's way from no chain to an infused
// one: from each state, its first transition to another state.
func infusedPath() []custody.Transition {
	var path []custody.Transition
	var at custody.State
	trs := custody.DefaultJourney().Transitions
	for range trs {
		if at == custody.StateInfused {
			break
		}
		for _, tr := range trs {
			if tr.From == at && tr.To != at {
				path, at = append(path, tr), tr.To
				break
			}
		}
	}
	return path
}
