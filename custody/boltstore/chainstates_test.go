package boltstore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/storetest"
	bolt "go.etcd.io/bbolt"
)

// chainStatesStore makes a file of n chains, every third collected, the
// rest enrolled, and returns its directory, closed.
func chainStatesStore(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	s := openT(t, dir)
	ctx := context.Background()
	for i := 1; i <= n; i++ {
		if _, err := s.Append(ctx, storetest.Draft(storetest.COI(i), i, true, 0)); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			d := storetest.Draft(storetest.COI(i), 1000+i, false, 1)
			d.Record.Step, d.State = custody.StepCollect, custody.StateCollected
			if _, err := s.Append(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// stateIndex lists the chain-state index's keys as "state COI".
func stateIndex(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	db, err := bolt.Open(dir+"/"+FileName, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketChainStates)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			st, coi, ok := splitChainStateKey(k)
			if !ok {
				t.Fatalf("index key %q", k)
			}
			out = append(out, string(st)+" "+string(coi))
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// dropChainStates makes the file look like one written before the index
// was kept.
func dropChainStates(t *testing.T, dir string) {
	t.Helper()
	tamperDB(t, dir, func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketChainStates); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Delete(keyChainStatesBuilt)
	})
}

func tamperDB(t *testing.T, dir string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(dir+"/"+FileName, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// The append keeps the index; a file without it gets the same index at
// its first open for writing, in transactions of a bounded number of
// chains, resuming after a build cut short; read-only, the old file still
// pages by state (over the summaries).
func TestChainStateIndexBuild(t *testing.T) {
	ctx := context.Background()
	dir := chainStatesStore(t, 20)
	want := stateIndex(t, dir)
	if len(want) != 20 {
		t.Fatalf("index after appends: %d entries, want 20: %v", len(want), want)
	}
	if n := strings.Count(strings.Join(want, "\n"), string(custody.StateCollected)+" "); n != 6 {
		t.Fatalf("index after appends: %d collected, want 6: %v", n, want)
	}
	dropChainStates(t, dir)

	// Read-only before a writer built it: the summaries answer.
	ro, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	infos, err := ro.ChainsAfter(ctx, custody.StateCollected, storetest.COI(3), 2)
	if err != nil || len(infos) != 2 || infos[0].COI != storetest.COI(6) || infos[1].COI != storetest.COI(9) {
		t.Fatalf("read-only ChainsAfter(collected) without the index = %v, %v", infos, err)
	}
	if _, err := ro.CountChainsInState(ctx, custody.StateCollected); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("CountChainsInState without the index: %v, want ErrUnsupported", err)
	}
	if err := ro.CheckFile(ctx); err != nil {
		t.Fatalf("CheckFile of a file without the index: %v", err)
	}
	ro.Close()

	// A build cut short after 7 chains, then resumed 4 at a time.
	s := openT(t, dir) // builds it whole
	s.Close()
	if got := stateIndex(t, dir); !slices.Equal(got, want) {
		t.Fatalf("built index:\n%v\nwant\n%v", got, want)
	}
	dropChainStates(t, dir)
	tamperDB(t, dir, func(tx *bolt.Tx) error {
		idx, err := tx.CreateBucket(bucketChainStates)
		if err != nil {
			return err
		}
		c := tx.Bucket(bucketChains).Cursor()
		k, v := c.First()
		for range 7 {
			ce, err := decodeChain(v)
			if err != nil {
				return err
			}
			if err := idx.Put(chainStateKey(ce.State, ce.COI), nil); err != nil {
				return err
			}
			if err := tx.Bucket(bucketMeta).Put(keyChainStatesFrom, k); err != nil {
				return err
			}
			k, v = c.Next()
		}
		return nil
	})
	// Mid-build, read-only: pages from the summaries, and the check
	// passes (the index is not complete yet, so it is not held to it).
	ro, err = Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := ro.CheckFile(ctx); err != nil {
		t.Fatalf("CheckFile mid-build: %v", err)
	}
	ro.Close()
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if got := stateIndex(t, dir); !slices.Equal(got, want) {
		t.Fatalf("resumed index:\n%v\nwant\n%v", got, want)
	}

	// A small bound: the same index, several transactions.
	dropChainStates(t, dir)
	s = openT(t, dir)
	defer s.Close()
	if err := s.update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketChainStates); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Delete(keyChainStatesBuilt)
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.buildChainStateIndex(4); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckFile(ctx); err != nil {
		t.Fatalf("CheckFile after a build of 4 a transaction: %v", err)
	}
	if n, err := s.CountChainsInState(ctx, custody.StateCollected); err != nil || n != 6 {
		t.Fatalf("CountChainsInState(collected) = %d, %v; want 6", n, err)
	}
	if n, err := s.CountChainsInState(ctx, custody.StateEnrolled); err != nil || n != 14 {
		t.Fatalf("CountChainsInState(enrolled) = %d, %v; want 14", n, err)
	}
	// A state change moves the entry in the append's transaction.
	d := storetest.Draft(storetest.COI(1), 5000, false, 1)
	d.Record.Step, d.State = custody.StepCollect, custody.StateCollected
	if _, err := s.Append(ctx, d); err != nil {
		t.Fatal(err)
	}
	infos, err = s.ChainsAfter(ctx, custody.StateCollected, "", 3)
	if err != nil || len(infos) != 3 || infos[0].COI != storetest.COI(1) || infos[1].COI != storetest.COI(3) || infos[2].COI != storetest.COI(6) {
		t.Fatalf("ChainsAfter(collected) after chain 1's collection = %v, %v", infos, err)
	}
	if infos, err = s.ChainsAfter(ctx, custody.StateEnrolled, "", 1); err != nil || len(infos) != 1 || infos[0].COI != storetest.COI(2) {
		t.Fatalf("ChainsAfter(enrolled) after chain 1's collection = %v, %v", infos, err)
	}
	if err := s.CheckFile(ctx); err != nil {
		t.Fatalf("CheckFile after a state change: %v", err)
	}
}

// CheckFile names a missing, an extra and a wrong entry of the
// chain-state index.
func TestChainStateIndexTamper(t *testing.T) {
	collected, enrolled := storetest.COI(3), storetest.COI(4)
	for _, tc := range []struct {
		name   string
		change func(idx *bolt.Bucket) error
		key    custody.COI
		want   string
	}{
		{"missing", func(idx *bolt.Bucket) error { return idx.Delete(chainStateKey(custody.StateCollected, collected)) },
			collected, "missing from the index"},
		{"extra", func(idx *bolt.Bucket) error {
			return idx.Put(chainStateKey(custody.StateEnrolled, storetest.COI(99)), nil)
		},
			storetest.COI(99), "not found"},
		{"wrong state", func(idx *bolt.Bucket) error {
			if err := idx.Delete(chainStateKey(custody.StateEnrolled, enrolled)); err != nil {
				return err
			}
			return idx.Put(chainStateKey(custody.StateReleased, enrolled), nil)
		}, enrolled, `listed in state "released" but is "enrolled"`},
		{"both states", func(idx *bolt.Bucket) error { return idx.Put(chainStateKey(custody.StateEnrolled, collected), nil) },
			collected, `listed in state "enrolled" but is "collected"`},
		{"a value", func(idx *bolt.Bucket) error {
			return idx.Put(chainStateKey(custody.StateEnrolled, enrolled), []byte{1})
		},
			enrolled, "has a value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := chainStatesStore(t, 6)
			tamperDB(t, dir, func(tx *bolt.Tx) error { return tc.change(tx.Bucket(bucketChainStates)) })
			s, err := Open(dir, Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = s.CheckFile(context.Background())
			var d *FileDamage
			if !errors.As(err, &d) || !errors.Is(err, custody.ErrDamaged) {
				t.Fatalf("CheckFile = %v, want a FileDamage", err)
			}
			if d.Bucket != string(bucketChainStates) || !strings.Contains(d.Key, string(tc.key)) || !strings.Contains(d.Problem, tc.want) {
				t.Fatalf("CheckFile = %+v, want the index, %s, %q", d, tc.key, tc.want)
			}
		})
	}
}

// The chain-state counts: appends keep them; a file without them counts
// the index (read-only) and gets them at its first open for writing; a
// wrong or missing count is damage CheckFile names.
func TestChainStateCounts(t *testing.T) {
	ctx := context.Background()
	count := func(dir string, readOnly bool) (enrolled, collected int) {
		t.Helper()
		s, err := Open(dir, Options{ReadOnly: readOnly})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if enrolled, err = s.CountChainsInState(ctx, custody.StateEnrolled); err != nil {
			t.Fatal(err)
		}
		if collected, err = s.CountChainsInState(ctx, custody.StateCollected); err != nil {
			t.Fatal(err)
		}
		if err := s.CheckFile(ctx); err != nil {
			t.Fatalf("CheckFile: %v", err)
		}
		return enrolled, collected
	}
	dir := chainStatesStore(t, 20)
	if e, c := count(dir, true); e != 14 || c != 6 {
		t.Fatalf("counts kept by the appends: %d enrolled, %d collected, want 14, 6", e, c)
	}
	tamperDB(t, dir, func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketChainStateCounts) })
	if e, c := count(dir, true); e != 14 || c != 6 {
		t.Fatalf("counted from the index: %d enrolled, %d collected, want 14, 6", e, c)
	}
	if e, c := count(dir, false); e != 14 || c != 6 {
		t.Fatalf("counted at open: %d enrolled, %d collected, want 14, 6", e, c)
	}
	if stateIndex(t, dir) == nil {
		t.Fatal("no index")
	}
	for _, tc := range []struct {
		name   string
		change func(b *bolt.Bucket) error
	}{
		{"wrong", func(b *bolt.Bucket) error {
			return b.Put([]byte(custody.StateEnrolled), []byte{0, 0, 0, 0, 0, 0, 0, 13})
		}},
		{"missing", func(b *bolt.Bucket) error { return b.Delete([]byte(custody.StateCollected)) }},
		{"extra", func(b *bolt.Bucket) error {
			return b.Put([]byte(custody.StateReleased), []byte{0, 0, 0, 0, 0, 0, 0, 1})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := chainStatesStore(t, 6)
			tamperDB(t, dir, func(tx *bolt.Tx) error { return tc.change(tx.Bucket(bucketChainStateCounts)) })
			s, err := Open(dir, Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = s.CheckFile(ctx)
			var d *FileDamage
			if !errors.As(err, &d) || d.Bucket != string(bucketChainStateCounts) {
				t.Fatalf("CheckFile = %v, want damage to the counts", err)
			}
		})
	}
}
