package pgstore_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/custody/storetest"
)

// TestExcursionIndexBackfill runs migration 6's backfill (what a database
// written before the excursion index gets) on chains appended with the
// index emptied, and checks it lists the chains with an excursion record,
// open when their summary counts open excursions or keeps no counts.
func TestExcursionIndexBackfill(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Schema(t)
	s := open(t, url)
	i := 0
	add := func(n int, step custody.Step, open custody.IssueCounts) {
		t.Helper()
		coi := storetest.COI(n)
		i++
		if _, err := s.Append(ctx, storetest.Draft(coi, i, true, 0)); err != nil {
			t.Fatal(err)
		}
		i++
		d := storetest.Draft(coi, i, false, 1)
		d.Record.Step, d.OpenIssues = step, open
		if _, err := s.Append(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	add(1, custody.StepExcursion, custody.IssueCounts{Kept: true, Excursions: 1})
	add(2, custody.StepExcursion, custody.IssueCounts{Kept: true})
	add(3, custody.StepNote, custody.IssueCounts{})
	add(4, custody.StepExcursion, custody.IssueCounts{})
	sql, err := os.ReadFile("migrations/0009_excursion_index.sql")
	if err != nil {
		t.Fatal(err)
	}
	_, backfill, ok := strings.Cut(string(sql), "INSERT INTO excursion_chains")
	if !ok {
		t.Fatal("migration 6 has no backfill")
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DELETE FROM excursion_chains`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO excursion_chains"+backfill); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		open bool
		want []custody.COI
	}{
		{false, []custody.COI{storetest.COI(4), storetest.COI(2), storetest.COI(1)}},
		{true, []custody.COI{storetest.COI(4), storetest.COI(1)}},
	} {
		got, err := s.ExcursionChains(ctx, tt.open, "", 10)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("backfilled index, open %v: %v, %v; want %v", tt.open, got, err, tt.want)
		}
	}
}
