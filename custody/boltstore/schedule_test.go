package boltstore

import (
	"context"
	"errors"
	"testing"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// TestCheckFileFindsBrokenSlotIndex: the whole-file check finds a slot
// count that does not match the claims held, and a claim not counted.
func TestCheckFileFindsBrokenSlotIndex(t *testing.T) {
	claim := custody.Claim{Site: "PLANT-1", Date: "2026-12-01", Product: "KYM"}
	count := func(n byte) []byte { return []byte{0, 0, 0, n} }
	for _, tc := range []struct {
		name   string
		counts map[string][]byte
		claims []custody.COI
		bucket []byte // nil: no damage
	}{
		{"consistent", map[string][]byte{string(slotKey(claim)): count(2)}, []custody.COI{"CHA999926000001", "CHA999926000002"}, nil},
		{"count too high", map[string][]byte{string(slotKey(claim)): count(2)}, []custody.COI{"CHA999926000001"}, bucketSlotUsed},
		{"claim not counted", nil, []custody.COI{"CHA999926000001"}, bucketSlotClaims},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			openT(t, dir).Close()
			rawUpdate(t, dir, func(tx *bolt.Tx) error {
				for k, v := range tc.counts {
					if err := tx.Bucket(bucketSlotUsed).Put([]byte(k), v); err != nil {
						return err
					}
				}
				for _, coi := range tc.claims {
					if err := tx.Bucket(bucketSlotClaims).Put(claimKey(claim, coi), u64(7)); err != nil {
						return err
					}
				}
				return nil
			})
			ro, err := Open(dir, Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			err = ro.CheckFile(context.Background())
			if tc.bucket == nil {
				if err != nil {
					t.Fatalf("CheckFile: %v", err)
				}
				return
			}
			var fd *FileDamage
			if !errors.As(err, &fd) || fd.Bucket != string(tc.bucket) || !errors.Is(err, custody.ErrDamaged) {
				t.Fatalf("CheckFile: %v, want damage in %s", err, tc.bucket)
			}
		})
	}
}
