package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// The index of registry expiry dates (custody.QualificationExpiryIndex):
// one entry per date a site or shipper runs out on, keyed by the date,
// the kind, the code and what expires, separated by zero bytes, so the
// keys sort in the index's order; the value is the site's time zone.
// CreateEntry and UpdateEntry keep it in the registry write's
// transaction (indexExpiries); a file written before it was kept gets it
// at its first open for writing (buildExpiryIndex).
var (
	bucketExpiries = []byte("qualification_expiries") // date 0 kind 0 code 0 what -> time zone
	// keyExpiriesBuilt in the meta bucket says every site and shipper
	// has its entries.
	keyExpiriesBuilt = []byte("qualification_expiries_built")
)

var _ custody.QualificationExpiryIndex = (*Store)(nil)

func expiryKey(e custody.QualificationExpiry) []byte {
	k := make([]byte, 0, len(e.Date)+len(e.Kind)+len(e.Code)+len(e.What)+3)
	for i, p := range []string{e.Date, string(e.Kind), e.Code, e.What} {
		if i > 0 {
			k = append(k, 0)
		}
		k = append(k, p...)
	}
	return k
}

func splitExpiryKey(k, v []byte) (custody.QualificationExpiry, bool) {
	p := bytes.Split(k, []byte{0})
	if len(p) != 4 || len(p[0]) == 0 || len(p[2]) == 0 || len(p[3]) == 0 {
		return custody.QualificationExpiry{}, false
	}
	return custody.QualificationExpiry{Date: string(p[0]), Kind: custody.RegistryKind(p[1]), Code: string(p[2]), What: string(p[3]), TimeZone: string(v)}, true
}

// indexExpiries replaces the expiry entries of the registry entry of kind
// and code that held old (nil: a new entry) with those of value.
func indexExpiries(tx *bolt.Tx, kind custody.RegistryKind, old, value []byte) error {
	if kind != custody.KindSite && kind != custody.KindShipper {
		return nil
	}
	idx := tx.Bucket(bucketExpiries)
	if idx == nil {
		return nil // a file opened before the index: built at the next open for writing
	}
	was, err := custody.QualificationExpiriesOf(kind, old)
	if err != nil {
		return err
	}
	now, err := custody.QualificationExpiriesOf(kind, value)
	if err != nil {
		return err
	}
	for _, e := range was {
		if err := idx.Delete(expiryKey(e)); err != nil {
			return err
		}
	}
	for _, e := range now {
		if err := idx.Put(expiryKey(e), []byte(e.TimeZone)); err != nil {
			return err
		}
	}
	return nil
}

// buildExpiryIndex gives every site and shipper its entries when the
// file keeps no index yet: one pass over the two registries, which hold
// thousands of entries, not millions, in one transaction.
func (s *Store) buildExpiryIndex() error {
	return s.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta.Get(keyExpiriesBuilt) != nil {
			return nil
		}
		if _, err := tx.CreateBucketIfNotExists(bucketExpiries); err != nil {
			return err
		}
		for _, kind := range []custody.RegistryKind{custody.KindSite, custody.KindShipper} {
			b := tx.Bucket(registryBucketNames[kind])
			if b == nil {
				continue
			}
			if err := b.ForEach(func(k, v []byte) error {
				if err := indexExpiries(tx, kind, nil, v); err != nil {
					return fmt.Errorf("expiry index: %s %s: %w", kind, k, err)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return meta.Put(keyExpiriesBuilt, []byte{1})
	})
}

// QualificationExpiries implements custody.QualificationExpiryIndex.
func (s *Store) QualificationExpiries(ctx context.Context, until string, after custody.QualificationExpiry, limit int) ([]custody.QualificationExpiry, error) {
	if limit < 1 {
		return nil, fmt.Errorf("qualification expiries: limit %d must be 1 or more: %w", limit, custody.ErrInvalid)
	}
	out := []custody.QualificationExpiry{}
	err := s.view(func(tx *bolt.Tx) error {
		idx := tx.Bucket(bucketExpiries)
		if idx == nil || tx.Bucket(bucketMeta).Get(keyExpiriesBuilt) == nil {
			return fmt.Errorf("qualification expiries: this file has no expiry index yet; open it for writing once (coid serve) to build it: %w", errors.ErrUnsupported)
		}
		c := idx.Cursor()
		k, v := c.First()
		if after.Date != "" {
			from := expiryKey(after)
			if k, v = c.Seek(from); k != nil && bytes.Equal(k, from) {
				k, v = c.Next()
			}
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			e, ok := splitExpiryKey(k, v)
			if !ok {
				return fmt.Errorf("qualification expiries: entry %q is malformed: %w", k, custody.ErrDamaged)
			}
			if e.Date > until {
				break
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// expiryBucketChecks checks each entry of the expiry index against its
// registry entry (an extra or a wrong entry); checkExpiriesComplete
// finds the missing ones.
func expiryBucketChecks() map[string]bucketCheck {
	return map[string]bucketCheck{
		string(bucketExpiries): {name: func(k []byte) string { return fmt.Sprintf("%q", k) }, entry: func(tx *bolt.Tx, k, v []byte) error {
			e, ok := splitExpiryKey(k, v)
			if !ok {
				return errors.New("the key is not a date, a kind, a code and what expires")
			}
			name, ok := registryBucketNames[e.Kind]
			if !ok || (e.Kind != custody.KindSite && e.Kind != custody.KindShipper) {
				return fmt.Errorf("kind %q keeps no expiry dates", e.Kind)
			}
			var val []byte
			if b := tx.Bucket(name); b != nil {
				val = b.Get([]byte(e.Code))
			}
			if val == nil {
				return fmt.Errorf("%s %s is not registered", e.Kind, e.Code)
			}
			want, err := custody.QualificationExpiriesOf(e.Kind, val)
			if err != nil {
				return err
			}
			if !slices.Contains(want, e) {
				return fmt.Errorf("%s %s's %s on %s (zone %q) is not in its registry entry", e.Kind, e.Code, e.What, e.Date, e.TimeZone)
			}
			return nil
		}},
	}
}

// checkExpiriesComplete checks that every site's and shipper's expiry
// dates are in the index, when the file keeps a complete one.
func checkExpiriesComplete(tx *bolt.Tx) error {
	idx := tx.Bucket(bucketExpiries)
	if idx == nil || tx.Bucket(bucketMeta).Get(keyExpiriesBuilt) == nil {
		return nil
	}
	for _, kind := range []custody.RegistryKind{custody.KindSite, custody.KindShipper} {
		b := tx.Bucket(registryBucketNames[kind])
		if b == nil {
			continue
		}
		if err := b.ForEach(func(k, v []byte) error {
			list, err := custody.QualificationExpiriesOf(kind, v)
			if err != nil {
				return &FileDamage{Bucket: string(registryBucketNames[kind]), Key: strName(k), Problem: err.Error()}
			}
			for _, e := range list {
				if got := idx.Get(expiryKey(e)); got == nil || string(got) != e.TimeZone {
					return &FileDamage{Bucket: string(bucketExpiries), Key: fmt.Sprintf("%q", expiryKey(e)),
						Problem: fmt.Sprintf("%s %s's %s on %s is missing from the index", kind, k, e.What, e.Date)}
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}
