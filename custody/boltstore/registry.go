package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// The registries: one bucket per registry (code -> the entry's JSON, as
// custody encodes it); each change's audit entry goes into the one audit
// trail (audit.go), in the same transaction as the change. Open creates the buckets; a file written
// before the registries existed has none, and reads it for verification
// as empty registries.
var (
	registryBucketNames = map[custody.RegistryKind][]byte{
		custody.KindOrganisation: []byte("registry_organisations"),
		custody.KindSite:         []byte("registry_sites"),
		custody.KindProduct:      []byte("registry_products"),
		custody.KindShipper:      []byte("registry_shippers"),
		custody.KindSiteMapping:  []byte("registry_site_mappings"),
		custody.KindJurisdiction: []byte("registry_jurisdictions"),
	}
	// registryBuckets are created by Open.
	registryBuckets = [][]byte{
		registryBucketNames[custody.KindOrganisation], registryBucketNames[custody.KindSite],
		registryBucketNames[custody.KindProduct], registryBucketNames[custody.KindShipper],
		registryBucketNames[custody.KindSiteMapping], registryBucketNames[custody.KindJurisdiction], bucketAudit,
	}
)

var _ custody.RegistryStore = (*Store)(nil)

func registryBucket(kind custody.RegistryKind) ([]byte, error) {
	name, ok := registryBucketNames[kind]
	if !ok {
		return nil, fmt.Errorf("registry %q: no such registry: %w", kind, custody.ErrInvalid)
	}
	return name, nil
}

// CreateEntry implements custody.RegistryStore.
func (s *Store) CreateEntry(ctx context.Context, kind custody.RegistryKind, code string, value []byte, a custody.AuditEntry) error {
	name, err := registryBucket(kind)
	if err != nil {
		return err
	}
	if code == "" || len(value) == 0 {
		return fmt.Errorf("%s: empty code or value: %w", kind, custody.ErrInvalid)
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(name)
		if b.Get([]byte(code)) != nil {
			return fmt.Errorf("%s %s is already registered: %w", kind, code, custody.ErrConflict)
		}
		if err := indexExpiries(tx, kind, nil, value); err != nil {
			return err
		}
		if err := b.Put([]byte(code), value); err != nil {
			return err
		}
		_, err := putAudit(tx, a)
		return err
	})
}

// UpdateEntry implements custody.RegistryStore.
func (s *Store) UpdateEntry(ctx context.Context, kind custody.RegistryKind, code string, fn func(old []byte) ([]byte, custody.AuditEntry, error)) error {
	name, err := registryBucket(kind)
	if err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(name)
		old := b.Get([]byte(code))
		if old == nil {
			return fmt.Errorf("%s %s is not registered: %w", kind, code, custody.ErrNotFound)
		}
		// fn may keep what it is given: bbolt's slice is valid only
		// inside the transaction.
		v, a, err := fn(bytes.Clone(old))
		if err != nil {
			return err
		}
		if len(v) == 0 {
			return fmt.Errorf("%s %s: empty value: %w", kind, code, custody.ErrInvalid)
		}
		if err := indexExpiries(tx, kind, old, v); err != nil {
			return err
		}
		if err := b.Put([]byte(code), v); err != nil {
			return err
		}
		_, err = putAudit(tx, a)
		return err
	})
}

// Entry implements custody.RegistryStore.
func (s *Store) Entry(ctx context.Context, kind custody.RegistryKind, code string) ([]byte, error) {
	name, err := registryBucket(kind)
	if err != nil {
		return nil, err
	}
	var out []byte
	err = s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(name); b != nil {
			out = bytes.Clone(b.Get([]byte(code)))
		}
		if out == nil {
			return fmt.Errorf("%s %s is not registered: %w", kind, code, custody.ErrNotFound)
		}
		return nil
	})
	return out, err
}

// Entries implements custody.RegistryStore.
func (s *Store) Entries(ctx context.Context, kind custody.RegistryKind, after string, limit int) ([][]byte, error) {
	name, err := registryBucket(kind)
	if err != nil {
		return nil, err
	}
	out := [][]byte{}
	err = s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(name)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		k, v := c.First()
		if after != "" {
			k, v = c.Seek([]byte(after))
			if k != nil && string(k) == after {
				k, v = c.Next()
			}
		}
		for ; k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			out = append(out, bytes.Clone(v))
		}
		return nil
	})
	return out, err
}

// registryBucketChecks returns the whole-file check's decoding of the
// registries' buckets: every entry is a JSON object under its code, and
// the audit trail's (audit.go).
func registryBucketChecks() map[string]bucketCheck {
	checks := map[string]bucketCheck{}
	for kind, name := range registryBucketNames {
		checks[string(name)] = bucketCheck{name: strName, entry: func(_ *bolt.Tx, k, v []byte) error {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(v, &m); err != nil || m == nil {
				return fmt.Errorf("the %s entry is not a JSON object", kind)
			}
			return nil
		}}
	}
	checks[string(bucketAudit)] = auditCheck()
	return checks
}
