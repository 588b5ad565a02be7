package boltstore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// TestExpiryIndexBuiltAndChecked: a file whose registries were written
// before the expiry index was kept gets it at its first open for
// writing; CheckFile names an entry missing from the index and one that
// no registry entry gives.
func TestExpiryIndexBuiltAndChecked(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir)
	v := []byte(`{"code":"S-1","time_zone":"Europe/Paris","accreditation":{"status":"accredited","expiry":"2027-03-01"},"qualification":{"expiry":"2027-01-15"}}`)
	if err := s.CreateEntry(ctx, custody.KindSite, "S-1", v, custody.AuditEntry{Time: time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC), Actor: "admin1",
		Kind: custody.ObjectKind(custody.KindSite), Code: "S-1", Action: custody.AuditCreate, Reason: "registered", New: v}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	tamperDB(t, dir, func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketExpiries); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Delete(keyExpiriesBuilt)
	})
	ro, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.QualificationExpiries(ctx, "9999-12-31", custody.QualificationExpiry{}, 10); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("QualificationExpiries before the index is built: %v, want ErrUnsupported", err)
	}
	ro.Close()
	s = openT(t, dir)
	page, err := s.QualificationExpiries(ctx, "9999-12-31", custody.QualificationExpiry{}, 10)
	if err != nil || len(page) != 2 || page[0].Cursor() != "2027-01-15/site/S-1/qualification" || page[1].TimeZone != "Europe/Paris" {
		t.Fatalf("the built index: %+v, %v", page, err)
	}
	if err := s.CheckFile(ctx); err != nil {
		t.Fatalf("CheckFile of the built index: %v", err)
	}
	s.Close()
	for _, tc := range []struct {
		name   string
		change func(idx *bolt.Bucket) error
		want   string
	}{
		{"missing", func(idx *bolt.Bucket) error {
			return idx.Delete(expiryKey(custody.QualificationExpiry{Date: "2027-03-01", Kind: custody.KindSite, Code: "S-1", What: "accreditation"}))
		}, "accreditation on 2027-03-01 is missing"},
		{"extra", func(idx *bolt.Bucket) error {
			return idx.Put(expiryKey(custody.QualificationExpiry{Date: "2027-04-01", Kind: custody.KindSite, Code: "S-9", What: "qualification"}), nil)
		}, "site S-9 is not registered"},
		{"wrong zone", func(idx *bolt.Bucket) error {
			return idx.Put(expiryKey(custody.QualificationExpiry{Date: "2027-01-15", Kind: custody.KindSite, Code: "S-1", What: "qualification"}), []byte("UTC"))
		}, `zone "UTC") is not in its registry entry`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, dir) // rebuilds nothing: the index is built
			s.Close()
			tamperDB(t, dir, func(tx *bolt.Tx) error { return tc.change(tx.Bucket(bucketExpiries)) })
			defer tamperDB(t, dir, func(tx *bolt.Tx) error {
				// The next open builds the index again.
				if err := tx.DeleteBucket(bucketExpiries); err != nil {
					return err
				}
				return tx.Bucket(bucketMeta).Delete(keyExpiriesBuilt)
			})
			ro, err := Open(dir, Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			err = ro.CheckFile(ctx)
			var d *FileDamage
			if !errors.As(err, &d) || d.Bucket != string(bucketExpiries) || !strings.Contains(d.Problem, tc.want) {
				t.Fatalf("CheckFile = %v, want damage of the expiry index: %q", err, tc.want)
			}
		})
	}
}
