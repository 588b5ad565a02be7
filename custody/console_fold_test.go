package custody_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// TestConsoleAgreesWithFold: over random stores (chains in every state,
// open excursions on chains in transit and on chains cancelled with them
// open), the console's counts, in-flight total, chains with open issues
// and attention agree with a fold of every chain, and its pages (the
// chains in flight, and each state's) list each chain of the table once,
// in the table's order, whatever the page size.
func TestConsoleAgreesWithFold(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 19))
			e := newTeleEnv(t)
			for range 14 {
				coi := e.enroll()
				switch k := rng.IntN(5); k {
				case 0: // stays enrolled
				case 1, 2: // an excursion in transit, left open or cancelled with it
					e.advance(coi, custody.StateToManufacturing)
					c, _ := e.svc.Chain(e.ctx, coi)
					start := c.Legs[0].ShippedAt.Add(10 * time.Minute)
					if _, _, err := e.svc.RecordExcursion(e.ctx, coi, 1, custody.Excursion{ID: custody.ExcursionID(custody.ExcursionTemperature, start),
						Kind: custody.ExcursionTemperature, Start: start, Duration: 5 * time.Minute}); err != nil {
						t.Fatal(err)
					}
					if k == 2 {
						e.must(coi, "coord", custody.StepCancel, map[string]any{"reason": "product lost"}, sig("coord", custody.MeaningApproved))
					}
				case 3:
					e.advance(coi, custody.States[rng.IntN(len(custody.States)-1)]) // any state but cancelled
				case 4:
					e.must(coi, "coord", custody.StepCancel, map[string]any{"reason": "patient withdrew consent"}, sig("coord", custody.MeaningApproved))
				}
			}
			// The fold: every chain, read in full.
			all, err := e.store.Chains(e.ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			counts, inFlight := map[custody.State]int{}, 0
			var issues []custody.COI
			for _, ci := range all {
				counts[ci.State]++
				if !ci.State.Terminal() {
					inFlight++
				}
				c, err := e.svc.Chain(e.ctx, ci.COI)
				if err != nil {
					t.Fatal(err)
				}
				if len(c.OpenIssues()) > 0 {
					issues = append(issues, ci.COI)
				}
			}
			slices.Sort(issues)
			t.Logf("counts %v, open issues on %d chains", counts, len(issues))
			for _, state := range append([]custody.State{""}, custody.States...) {
				limit := 1 + rng.IntN(4)
				var listed []custody.ConsoleRow
				after := ""
				for pages := 0; ; pages++ {
					v, err := e.svc.ConsoleFor(e.ctx, e.users["qa1"], state, after, limit)
					if err != nil {
						t.Fatal(err)
					}
					if !mapsEqual(v.Counts, counts) || v.InFlight != inFlight {
						t.Fatalf("state %q: counts %v, in flight %d; the fold says %v, %d", state, v.Counts, v.InFlight, counts, inFlight)
					}
					var got []custody.COI
					for _, c := range v.Issues {
						got = append(got, c.COI)
					}
					if !slices.Equal(got, issues) {
						t.Fatalf("state %q: chains with open issues %v; the fold says %v", state, got, issues)
					}
					if len(v.Chains) > limit || pages > len(all) {
						t.Fatalf("state %q: a page of %d (limit %d), page %d", state, len(v.Chains), limit, pages)
					}
					want := counts[state]
					if state == "" {
						want = inFlight
					}
					if v.Listed != want {
						t.Fatalf("state %q: listed %d, want %d", state, v.Listed, want)
					}
					listed = append(listed, v.Chains...)
					if after = v.Next; after == "" {
						break
					}
				}
				var want []custody.COI
				for _, ci := range all {
					if (state == "" && !ci.State.Terminal()) || ci.State == state {
						want = append(want, ci.COI)
					}
				}
				var got []custody.COI
				for i, r := range listed {
					got = append(got, r.COI)
					if i > 0 && !state.Terminal() && r.Updated.After(listed[i-1].Updated) {
						t.Errorf("state %q: %s updated after the row before it", state, r.COI)
					}
					if i > 0 && state.Terminal() && strings.Compare(string(r.COI), string(listed[i-1].COI)) <= 0 {
						t.Errorf("state %q: %s out of COI order", state, r.COI)
					}
					if open := slices.Contains(issues, r.COI); open != (r.OpenIssues > 0) {
						t.Errorf("state %q: %s has %d open issues in the table; the fold says open %v", state, r.COI, r.OpenIssues, open)
					}
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("state %q (pages of %d): listed %v, want each of %v once", state, limit, got, want)
				}
			}
		})
	}
}

func mapsEqual(a, b map[custody.State]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}
