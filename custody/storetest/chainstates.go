package storetest

import (
	"context"
	"testing"

	"github.com/coid-project/coid/custody"
)

// testChainStateCounts: a store that counts its chains by state
// (custody.ChainStateCounter) counts what Chains lists in each state, as
// chains are enrolled and move from state to state.
func testChainStateCounts(t *testing.T, s Store) {
	ctx := context.Background()
	counter, ok := s.(custody.ChainStateCounter)
	if !ok {
		t.Skip("the store does not count its chains by state")
	}
	check := func(when string) {
		t.Helper()
		for _, st := range custody.States {
			list, err := s.Chains(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			n, err := counter.CountChainsInState(ctx, st)
			if err != nil {
				t.Fatalf("%s: CountChainsInState(%s): %v", when, st, err)
			}
			if n != len(list) {
				t.Fatalf("%s: %d chains counted in state %s, %d listed", when, n, st, len(list))
			}
		}
	}
	check("empty store")
	records := map[custody.COI]uint64{}
	for n := 1; n <= 5; n++ {
		coi := COI(n)
		mustAppend(t, s, Draft(coi, n, true, 0))
		records[coi]++
	}
	check("five chains enrolled")
	for i, n := range []int{2, 4} {
		coi := COI(n)
		d := Draft(coi, 10+i, false, records[coi])
		d.Record.Step, d.State = custody.StepCollect, custody.StateCollected
		mustAppend(t, s, d)
		records[coi]++
	}
	check("two chains collected")
}
