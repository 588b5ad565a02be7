package pgstore_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/custody/storetest"
)

// TestTerminalIssuesBackfillAndCheck: migration 17's backfill (what a
// database written before the waiting column gets) marks exactly the
// chains in a terminal state whose summaries count open issues or keep
// no counts; Check finds a chain marked otherwise than its summary says.
func TestTerminalIssuesBackfillAndCheck(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Schema(t)
	s := open(t, url)
	i := 0
	// add enrolls chain n and, with state, moves it there with issues.
	add := func(n int, state custody.State, issues custody.IssueCounts) {
		t.Helper()
		coi := storetest.COI(n)
		i++
		if _, err := s.Append(ctx, storetest.Draft(coi, i, true, 0)); err != nil {
			t.Fatal(err)
		}
		if state == custody.StateEnrolled {
			return
		}
		i++
		d := storetest.Draft(coi, i, false, 1)
		d.Record.Step, d.State, d.OpenIssues = custody.StepCancel, state, issues
		if _, err := s.Append(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	open := custody.IssueCounts{Kept: true, Mismatches: 1}
	add(1, custody.StateCancelled, open)
	add(2, custody.StateCancelled, custody.IssueCounts{Kept: true})
	add(3, custody.StateCancelled, custody.IssueCounts{})
	add(4, custody.StateEnrolled, open)
	add(5, custody.StateInfused, custody.IssueCounts{Kept: true, Excursions: 2})
	add(6, custody.StateInfused, custody.IssueCounts{Kept: true, SealsBroken: 1})
	want := []custody.COI{storetest.COI(1), storetest.COI(3), storetest.COI(5), storetest.COI(6)}
	listed := func(when string) {
		t.Helper()
		page, err := s.TerminalIssueChainsAfter(ctx, "", 10)
		var got []custody.COI
		for _, ci := range page {
			got = append(got, ci.COI)
		}
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("%s: TerminalIssueChainsAfter = %v, %v; want %v", when, got, err, want)
		}
		if err := s.Check(ctx); err != nil {
			t.Fatalf("%s: Check: %v", when, err)
		}
	}
	listed("as appended")

	sql, err := os.ReadFile("migrations/0017_terminal_issues.sql")
	if err != nil {
		t.Fatal(err)
	}
	_, backfill, ok := strings.Cut(string(sql), "UPDATE chains SET waiting")
	if !ok {
		t.Fatal("migration 17 has no backfill")
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE chains SET waiting = false`); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx); !errors.Is(err, custody.ErrChainBroken) {
		t.Fatalf("Check with no chain marked: %v, want ErrChainBroken", err)
	}
	if _, err := conn.Exec(ctx, "UPDATE chains SET waiting"+backfill); err != nil {
		t.Fatal(err)
	}
	listed("backfilled")

	for _, tamper := range []string{
		`UPDATE chains SET waiting = true WHERE coi = '` + string(storetest.COI(2)) + `'`,  // cancelled, none open
		`UPDATE chains SET waiting = true WHERE coi = '` + string(storetest.COI(4)) + `'`,  // in flight
		`UPDATE chains SET waiting = false WHERE coi = '` + string(storetest.COI(5)) + `'`, // infused with excursions
	} {
		if _, err := conn.Exec(ctx, tamper); err != nil {
			t.Fatal(err)
		}
		if err := s.Check(ctx); !errors.Is(err, custody.ErrChainBroken) {
			t.Errorf("Check after %s: %v, want ErrChainBroken", tamper, err)
		}
		if _, err := conn.Exec(ctx, "UPDATE chains SET waiting"+backfill); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `UPDATE chains SET waiting = false WHERE waiting AND state NOT IN ('infused', 'cancelled')`); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `UPDATE chains SET waiting = false WHERE coi = '`+string(storetest.COI(2))+`'`); err != nil {
			t.Fatal(err)
		}
		listed("restored")
	}
}
