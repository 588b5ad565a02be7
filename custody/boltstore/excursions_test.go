package boltstore

import (
	"context"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/storetest"
)

// TestExcursionIndexBuiltForOldFile: a file written before the excursion
// index was kept (its buckets removed here) gets the index at its next
// open for writing, from the log: the chains with an excursion record,
// open when their summary counts open excursions or keeps no counts.
func TestExcursionIndexBuiltForOldFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir)
	i := 0
	add := func(n int, step custody.Step, open custody.IssueCounts) {
		t.Helper()
		coi := storetest.COI(n)
		ci, err := s.Chain(ctx, coi)
		if err != nil {
			i++
			if _, err := s.Append(ctx, storetest.Draft(coi, i, true, 0)); err != nil {
				t.Fatal(err)
			}
			ci.Records = 1
		}
		i++
		d := storetest.Draft(coi, i, false, ci.Records)
		d.Record.Step, d.OpenIssues = step, open
		if _, err := s.Append(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	add(1, custody.StepExcursion, custody.IssueCounts{Kept: true, Excursions: 1})
	add(2, custody.StepExcursion, custody.IssueCounts{Kept: true})
	add(3, custody.StepNote, custody.IssueCounts{})
	add(4, custody.StepExcursion, custody.IssueCounts{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(dir+"/"+FileName, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketExcursionChains); err != nil {
			return err
		}
		return tx.DeleteBucket(bucketOpenExcursions)
	})
	if cerr := db.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	s = openT(t, dir)
	defer s.Close()
	for _, tt := range []struct {
		open bool
		want []custody.COI
	}{
		{false, []custody.COI{storetest.COI(4), storetest.COI(2), storetest.COI(1)}},
		{true, []custody.COI{storetest.COI(4), storetest.COI(1)}},
	} {
		got, err := s.ExcursionChains(ctx, tt.open, "", 10)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("rebuilt index, open %v: %v, %v; want %v", tt.open, got, err, tt.want)
		}
	}
}
