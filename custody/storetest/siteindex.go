package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

// testChainSiteIndex: a store that indexes its chains by site names and
// state (custody.ChainSiteIndex) counts and pages exactly what Chains
// lists for each pair, as chains are enrolled with different sites
// (and with none) and move from state to state, including between two
// pages of one walk; a limit below 1 is ErrInvalid.
func testChainSiteIndex(t *testing.T, s Store) {
	ctx := context.Background()
	idx, ok := s.(custody.ChainSiteIndex)
	if !ok {
		t.Skip("the store keeps no index of its chains by sites")
	}
	routes := []custody.Sites{
		{Collection: "Hospital A", Manufacturing: "Plant 1", Treatment: "Hospital A"},
		{Collection: "Hospital B", Manufacturing: "Plant 1", Treatment: "Hospital B"},
		{Collection: "Hospital A", Manufacturing: "Plant 2", Treatment: "Hospital C"},
		{}, // a chain enrolled without site names
		// Names that a careless key encoding would run together.
		{Collection: "Hospital A", Manufacturing: "", Treatment: "Plant 1Hospital A"},
		{Collection: "Hospital A\x00Plant 1", Manufacturing: "", Treatment: "Hospital A"},
	}
	records := map[custody.COI]uint64{}
	i := 0
	add := func(n int, route int, state custody.State) {
		t.Helper()
		coi := COI(n)
		i++
		d := Draft(coi, i, records[coi] == 0, records[coi])
		if records[coi] == 0 {
			d.Sites = routes[route]
		} else {
			d.Record.Step, d.State = custody.StepCollect, state
		}
		mustAppend(t, s, d)
		records[coi]++
	}
	type key struct {
		sites custody.Sites
		state custody.State
	}
	// check compares the index with what Chains lists.
	check := func(when string) {
		t.Helper()
		all, err := s.Chains(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		want := map[key][]custody.COI{}
		for _, ci := range all {
			k := key{ci.Sites, ci.State}
			want[k] = append(want[k], ci.COI)
		}
		counts, err := idx.SiteStateCounts(ctx)
		if err != nil {
			t.Fatalf("%s: SiteStateCounts: %v", when, err)
		}
		got := map[key]int{}
		for _, c := range counts {
			k := key{c.Sites, c.State}
			if _, dup := got[k]; dup {
				t.Fatalf("%s: SiteStateCounts lists %+v twice", when, k)
			}
			got[k] = c.N
		}
		for k, cois := range want {
			if got[k] != len(cois) {
				t.Fatalf("%s: SiteStateCounts counts %d chains for %+v, Chains lists %d", when, got[k], k, len(cois))
			}
		}
		for k, n := range got {
			if len(want[k]) != n {
				t.Fatalf("%s: SiteStateCounts counts %d chains for %+v, Chains lists %d", when, n, k, len(want[k]))
			}
		}
		// Every route and state, the empty ones too, paged two at a time.
		for _, sites := range routes {
			for _, st := range custody.States {
				k := key{sites, st}
				var listed []custody.COI
				after := custody.COI("")
				for {
					page, err := idx.ChainsOfSitesAfter(ctx, sites, st, after, 2)
					if err != nil {
						t.Fatalf("%s: ChainsOfSitesAfter(%+v, %s, %q): %v", when, sites, st, after, err)
					}
					for _, ci := range page {
						if ci.Sites != sites || ci.State != st || ci.Records != records[ci.COI] {
							t.Fatalf("%s: ChainsOfSitesAfter(%+v, %s) lists %s with sites %+v, state %s, %d records",
								when, sites, st, ci.COI, ci.Sites, ci.State, ci.Records)
						}
						listed = append(listed, ci.COI)
					}
					if len(page) < 2 {
						break
					}
					after = page[len(page)-1].COI
				}
				wantCOIs := slices.Clone(want[k])
				slices.Sort(wantCOIs)
				if !slices.Equal(listed, wantCOIs) {
					t.Fatalf("%s: ChainsOfSitesAfter(%+v, %s) lists %v, want %v", when, sites, st, listed, wantCOIs)
				}
			}
		}
	}
	check("empty store")
	for n := 1; n <= 18; n++ {
		add(n, n%len(routes), custody.StateEnrolled)
	}
	check("eighteen chains enrolled")
	for n := 1; n <= 18; n += 3 {
		add(n, 0, custody.StateCollected)
	}
	check("six chains collected")

	// A walk of one route's enrolled chains, two at a time, while a chain
	// ahead of the cursor is collected and a new one is enrolled: the
	// walk lists the new one, not the collected one, and none twice.
	route := routes[0]
	page, err := idx.ChainsOfSitesAfter(ctx, route, custody.StateEnrolled, "", 2)
	if err != nil || len(page) != 2 {
		t.Fatalf("first page: %d chains, %v", len(page), err)
	}
	seen := []custody.COI{page[0].COI, page[1].COI}
	add(18, 0, custody.StateCollected) // 18 is route 0, enrolled, after the first page
	add(24, 0, custody.StateEnrolled)  // a new chain of route 0
	after := page[1].COI
	for {
		page, err := idx.ChainsOfSitesAfter(ctx, route, custody.StateEnrolled, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, ci := range page {
			seen = append(seen, ci.COI)
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].COI
	}
	var names []string
	for _, c := range seen {
		names = append(names, fmt.Sprint(chainNumber(t, c)))
	}
	if got := strings.Join(names, " "); got != "6 12 24" {
		t.Fatalf("a walk of route 0's enrolled chains while 18 is collected and 24 enrolled lists %s, want 6 12 24", got)
	}
	check("after the walk")

	for _, limit := range []int{0, -1} {
		if _, err := idx.ChainsOfSitesAfter(ctx, route, custody.StateEnrolled, "", limit); !errors.Is(err, custody.ErrInvalid) {
			t.Fatalf("ChainsOfSitesAfter with limit %d: %v, want ErrInvalid", limit, err)
		}
	}
}

// testTerminalIssueIndex: a store that indexes its ended chains that wait
// for QA (custody.TerminalIssueIndex) lists, in COI order and in pages,
// exactly the chains Chains shows in a terminal state with open issues
// counted or no counts kept, as chains are cancelled with issues open,
// without, or by a draft that counted nothing, while chains in flight
// with issues open are not listed; a limit below 1 is ErrInvalid.
func testTerminalIssueIndex(t *testing.T, s Store) {
	ctx := context.Background()
	idx, ok := s.(custody.TerminalIssueIndex)
	if !ok {
		t.Skip("the store keeps no index of its ended chains that wait for QA")
	}
	records := map[custody.COI]uint64{}
	i := 0
	// add enrolls chain n, or cancels it.
	add := func(n int, issues custody.IssueCounts) {
		t.Helper()
		coi := COI(n)
		i++
		d := Draft(coi, i, records[coi] == 0, records[coi])
		if records[coi] > 0 {
			d.Record.Step, d.State = custody.StepCancel, custody.StateCancelled
		}
		d.OpenIssues = issues
		mustAppend(t, s, d)
		records[coi]++
	}
	check := func(when string) {
		t.Helper()
		all, err := s.Chains(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		var want []custody.COI
		for _, ci := range all {
			if custody.WaitsInTerminalState(&ci) {
				want = append(want, ci.COI)
			}
		}
		slices.Sort(want)
		var got []custody.COI
		for after := custody.COI(""); ; {
			page, err := idx.TerminalIssueChainsAfter(ctx, after, 2)
			if err != nil {
				t.Fatalf("%s: TerminalIssueChainsAfter(%q, 2): %v", when, after, err)
			}
			for _, ci := range page {
				got = append(got, ci.COI)
			}
			if len(page) < 2 {
				break
			}
			after = page[len(page)-1].COI
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: TerminalIssueChainsAfter lists %v, want %v", when, got, want)
		}
	}
	none := custody.IssueCounts{Kept: true}
	open := custody.IssueCounts{Kept: true, SealsBroken: 1}
	for n := 1; n <= 9; n++ {
		add(n, open) // in flight with an issue open: not listed
	}
	check("nine chains in flight")
	add(2, open)
	add(3, none)
	add(5, custody.IssueCounts{}) // counted nothing
	add(6, open)
	add(8, open)
	check("five cancelled")
	if _, err := idx.TerminalIssueChainsAfter(ctx, "", 0); !errors.Is(err, custody.ErrInvalid) {
		t.Fatalf("TerminalIssueChainsAfter with limit 0: %v, want ErrInvalid", err)
	}
}
