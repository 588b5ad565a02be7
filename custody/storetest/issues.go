package storetest

import (
	"context"
	"testing"
	"time"

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

// testChainProgress: the progress a draft carries (plan, window, actual
// milestones, cancelled) is kept in its chain's summary as given,
// replaced by the next draft's, for Chain, Chains and ScanChains alike;
// a draft that carries none leaves the summary keeping none.
func testChainProgress(t *testing.T, s Store) {
	ctx := context.Background()
	coi := COI(2)
	base := time.Date(2026, 3, 29, 10, 0, 0, 0, time.UTC) // a daylight-saving change in Europe
	planned := custody.Progress{WindowEnd: custody.PlannedTime{Time: base.AddDate(0, 0, 40), Offset: 7200}}
	for k := range planned.Planned {
		planned.Planned[k] = custody.PlannedTime{Time: base.AddDate(0, 0, 5*k), Offset: 3600 * (k % 3)}
	}
	collected := planned
	collected.Actual[custody.MilestoneApheresis] = base.Add(36*time.Hour + 123456789)
	infused := collected
	infused.Actual[custody.MilestoneInfusion] = base.AddDate(0, 0, 33)
	cancelled := infused
	cancelled.Cancelled = true
	steps := []struct {
		name string
		p    *custody.Progress
	}{
		{"enroll: nothing planned", &custody.Progress{}},
		{"booked", &planned},
		{"collected", &collected},
		{"a draft that kept none", nil},
		{"infused", &infused},
		{"cancelled", &cancelled},
	}
	same := func(got *custody.Progress, want *custody.Progress) bool {
		if got == nil || want == nil {
			return got == want
		}
		for k := range want.Planned {
			if !got.Planned[k].Time.Equal(want.Planned[k].Time) || got.Planned[k].Offset != want.Planned[k].Offset ||
				!got.Actual[k].Equal(want.Actual[k]) {
				return false
			}
		}
		return got.WindowEnd.Time.Equal(want.WindowEnd.Time) && got.WindowEnd.Offset == want.WindowEnd.Offset &&
			got.Cancelled == want.Cancelled
	}
	for i, st := range steps {
		d := Draft(coi, i+1, i == 0, uint64(i))
		d.Progress = st.p
		mustAppend(t, s, d)
		ci, err := s.Chain(ctx, coi)
		if err != nil || !same(ci.Progress, st.p) {
			t.Fatalf("%s: Chain keeps %+v, %v; want %+v", st.name, ci.Progress, err, st.p)
		}
		list, err := s.Chains(ctx, "")
		if err != nil || len(list) != 1 || !same(list[0].Progress, st.p) {
			t.Fatalf("%s: Chains lists %+v, %v; want one chain keeping %+v", st.name, list, err, st.p)
		}
		n := 0
		err = s.ScanChains(ctx, func(ci custody.ChainInfo) error {
			n++
			if !same(ci.Progress, st.p) {
				t.Errorf("%s: ScanChains gives %+v; want %+v", st.name, ci.Progress, st.p)
			}
			return nil
		})
		if err != nil || n != 1 {
			t.Fatalf("%s: ScanChains: %d chains, %v", st.name, n, err)
		}
	}
}
