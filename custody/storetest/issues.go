package storetest

import (
	"context"
	"testing"

	"github.com/coid-project/coid/custody"
)

// testChainOpenIssues: the open issue counts a draft carries are kept in
// its chain's summary, replaced by the next draft's, for Chain and Chains
// alike; a draft that carries none (Kept false) leaves the summary saying
// it keeps none, so readers fold the chain.
func testChainOpenIssues(t *testing.T, s Store) {
	ctx := context.Background()
	coi := COI(1)
	steps := []struct {
		name string
		n    custody.IssueCounts
	}{
		{"enroll: none open", custody.IssueCounts{Kept: true}},
		{"an excursion and a broken seal", custody.IssueCounts{Kept: true, Excursions: 1, SealsBroken: 1}},
		{"a mismatch too", custody.IssueCounts{Kept: true, Excursions: 1, SealsBroken: 1, Mismatches: 1}},
		{"a draft that did not count them", custody.IssueCounts{}},
		{"counted again", custody.IssueCounts{Kept: true, Excursions: 2}},
		{"all decided", custody.IssueCounts{Kept: true}},
	}
	for i, st := range steps {
		d := Draft(coi, i+1, i == 0, uint64(i))
		d.OpenIssues = st.n
		mustAppend(t, s, d)
		ci, err := s.Chain(ctx, coi)
		if err != nil || ci.OpenIssues != st.n {
			t.Fatalf("%s: Chain keeps %+v, %v; want %+v", st.name, ci.OpenIssues, err, st.n)
		}
		list, err := s.Chains(ctx, "")
		if err != nil || len(list) != 1 || list[0].OpenIssues != st.n {
			t.Fatalf("%s: Chains lists %+v, %v; want one chain keeping %+v", st.name, list, err, st.n)
		}
	}
}
