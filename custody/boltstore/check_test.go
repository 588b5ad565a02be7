package boltstore

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/storetest"
	bolt "go.etcd.io/bbolt"
)

// TestCheckFileNamesFoldedIndexEntries changes the indexes CheckFile
// checks against the chains' records (the follow-up and the access
// index), which a store opened read-only checks in a read of its own:
// the entry at fault is named whether the store is opened read-only or
// not, and an untouched file passes both ways.
func TestCheckFileNamesFoldedIndexEntries(t *testing.T) {
	enrolled := storetest.COI(4)
	for _, tc := range []struct {
		name   string
		change func(tx *bolt.Tx) error
		bucket []byte
		key    string
		want   string
	}{
		{"none", nil, nil, "", ""},
		{"a follow-up entry that does not decode", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketFollowUp).Put([]byte(enrolled), []byte{9})
		}, bucketFollowUp, string(enrolled), "malformed follow-up index entry"},
		{"a follow-up entry of a chain not infused", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketFollowUp).Put([]byte(enrolled), encodeFollowUp(&custody.FollowUpPending{Product: "p"}))
		}, bucketFollowUp, string(enrolled), "not infused"},
		{"a follow-up entry of no chain", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketFollowUp).Put([]byte(storetest.COI(99)), encodeFollowUp(&custody.FollowUpPending{Product: "p"}))
		}, bucketFollowUp, string(storetest.COI(99)), "not found"},
		{"an access entry of a chain in another state", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketAccess).Put([]byte("submitted\x00"+string(enrolled)), []byte{1})
		}, bucketAccess, string(enrolled), ""},
	} {
		for _, readOnly := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{false: "", true: " read-only"}[readOnly], func(t *testing.T) {
				dir := chainStatesStore(t, 6)
				if tc.change != nil {
					tamperDB(t, dir, tc.change)
				}
				s, err := Open(dir, Options{ReadOnly: readOnly})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				err = s.CheckFile(context.Background())
				if tc.change == nil {
					if err != nil {
						t.Fatalf("CheckFile of an untouched file = %v", err)
					}
					return
				}
				var d *FileDamage
				if !errors.As(err, &d) || !errors.Is(err, custody.ErrDamaged) {
					t.Fatalf("CheckFile = %v, want a FileDamage", err)
				}
				if d.Bucket != string(tc.bucket) || !strings.Contains(d.Key, tc.key) || !strings.Contains(d.Problem, tc.want) {
					t.Fatalf("CheckFile = %+v, want bucket %s, entry %s, %q", d, tc.bucket, tc.key, tc.want)
				}
			})
		}
	}
}

// TestCheckFileReadsBesideNameEntries: the tree's hashes, which a store
// opened read-only checks in a read of their own, and the folded indexes
// checked by CheckFileBesideLedger (which leaves the records' hashes to
// the ledger's verification) name the entry at fault as CheckFile on a
// writable store does, and a problem is reported in CheckFile's order
// when two are found at once.
func TestCheckFileReadsBesideNameEntries(t *testing.T) {
	enrolled := storetest.COI(4)
	treeHash := func(tx *bolt.Tx) error {
		// The tree's last group is kept in meta: its first hash, the node
		// of records 1 to 16.
		v := bytes.Clone(tx.Bucket(bucketMeta).Get(keyTreeTail))
		v[8] ^= 1
		return tx.Bucket(bucketMeta).Put(keyTreeTail, v)
	}
	for _, tc := range []struct {
		name   string
		change func(tx *bolt.Tx) error
		bucket []byte
		key    string
		want   string
	}{
		{"none", nil, nil, "", ""},
		{"a follow-up entry that does not decode", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketFollowUp).Put([]byte(enrolled), []byte{9})
		}, bucketFollowUp, string(enrolled), "malformed follow-up index entry"},
		{"an access entry of a chain in another state", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketAccess).Put([]byte("submitted\x00"+string(enrolled)), []byte{1})
		}, bucketAccess, string(enrolled), ""},
		{"a tree hash changed", treeHash, bucketTree, "16", "do not match"},
		{"a follow-up entry and a tree hash changed: the entry is named", func(tx *bolt.Tx) error {
			if err := treeHash(tx); err != nil {
				return err
			}
			return tx.Bucket(bucketFollowUp).Put([]byte(enrolled), []byte{9})
		}, bucketFollowUp, string(enrolled), "malformed follow-up index entry"},
	} {
		for _, mode := range []string{"", " read-only", " read-only beside the ledger"} {
			t.Run(tc.name+mode, func(t *testing.T) {
				dir := chainStatesStore(t, 14) // 18 records: one kept tree hash
				if tc.change != nil {
					tamperDB(t, dir, tc.change)
				}
				s, err := Open(dir, Options{ReadOnly: mode != ""})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				check := s.CheckFile
				if strings.Contains(mode, "beside") {
					check = s.CheckFileBesideLedger
				}
				err = check(context.Background())
				if tc.change == nil {
					if err != nil {
						t.Fatalf("CheckFile of an untouched file = %v", err)
					}
					return
				}
				var d *FileDamage
				if !errors.As(err, &d) || !errors.Is(err, custody.ErrDamaged) {
					t.Fatalf("CheckFile = %v, want a FileDamage", err)
				}
				if d.Bucket != string(tc.bucket) || !strings.Contains(d.Key, tc.key) || !strings.Contains(d.Problem, tc.want) {
					t.Fatalf("CheckFile = %+v, want bucket %s, entry %s, %q", d, tc.bucket, tc.key, tc.want)
				}
			})
		}
	}
}

// infusedStore returns a store of n chains, the first infused chains
// holding an infusion record and their follow-up entries.
func infusedStore(t *testing.T, n, infused int) string {
	t.Helper()
	dir := t.TempDir()
	s := openT(t, dir)
	ctx := context.Background()
	for i := 1; i <= n; i++ {
		coi := storetest.COI(i)
		if _, err := s.Append(ctx, storetest.Draft(coi, i, true, 0)); err != nil {
			t.Fatal(err)
		}
		if i <= infused {
			d := storetest.Draft(coi, 1000+i, false, 1)
			d.Record.Step, d.State = custody.StepInfuse, custody.StateInfused
			d.FollowUp = &custody.FollowUpPending{COI: coi, Product: d.Product, Infused: d.Record.Time, Done: []int{}}
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

// TestCheckFileFollowUpComplete: an infused chain whose follow-up entry
// was removed is named, whether the store is opened read-only or not;
// the untouched file passes.
func TestCheckFileFollowUpComplete(t *testing.T) {
	infused := storetest.COI(2)
	for _, remove := range []bool{false, true} {
		for _, mode := range []string{"", " read-only", " read-only beside the ledger"} {
			t.Run(map[bool]string{false: "untouched", true: "entry removed"}[remove]+mode, func(t *testing.T) {
				dir := infusedStore(t, 5, 3)
				if remove {
					tamperDB(t, dir, func(tx *bolt.Tx) error { return tx.Bucket(bucketFollowUp).Delete([]byte(infused)) })
				}
				s, err := Open(dir, Options{ReadOnly: mode != ""})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				check := s.CheckFile
				if strings.Contains(mode, "beside") {
					check = s.CheckFileBesideLedger
				}
				err = check(context.Background())
				if !remove {
					if err != nil {
						t.Fatalf("CheckFile of an untouched file = %v", err)
					}
					return
				}
				var d *FileDamage
				if !errors.As(err, &d) || d.Bucket != string(bucketFollowUp) || !strings.Contains(d.Key, string(infused)) ||
					!strings.Contains(d.Problem, "has no follow-up entry") {
					t.Fatalf("CheckFile = %v, want the follow-up index's entry %s named missing", err, infused)
				}
			})
		}
	}
}
