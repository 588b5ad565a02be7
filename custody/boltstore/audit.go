package boltstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// The one administrative audit trail (custody.AuditLog): audit seq, 8
// bytes big-endian -> custody.AuditEntry JSON, sealed into one hash chain.
// The registries' and the accounts' changes write their entries with
// putAudit in the transaction of the change. The bucket keeps the name it
// had when it held the registries' entries only, so a file written then
// keeps its trail. Open creates it (registryBuckets).
var bucketAudit = []byte("registry_audit")

var _ custody.AuditLog = (*Store)(nil)

// putAudit validates a, seals it as the trail's next entry, linked to its
// last, and stores it inside tx; it returns a as stored.
func putAudit(tx *bolt.Tx, a custody.AuditEntry) (custody.AuditEntry, error) {
	if err := a.Validate(); err != nil {
		return a, err
	}
	b := tx.Bucket(bucketAudit)
	if b == nil {
		return a, fmt.Errorf("audit trail: the bucket is missing: %w", custody.ErrDamaged)
	}
	var prev *custody.AuditEntry
	if k, v := b.Cursor().Last(); k != nil {
		prev = new(custody.AuditEntry)
		if err := json.Unmarshal(v, prev); err != nil {
			return a, fmt.Errorf("audit entry %s: malformed: %v: %w", seqName(k), err, custody.ErrDamaged)
		}
	}
	seq, err := b.NextSequence()
	if err != nil {
		return a, err
	}
	if err := custody.SealAuditEntry(&a, seq, prev); err != nil {
		return a, err
	}
	v, err := json.Marshal(a)
	if err != nil {
		return a, err
	}
	return a, b.Put(u64(seq), v)
}

// AppendAudit implements custody.AuditLog.
func (s *Store) AppendAudit(ctx context.Context, e custody.AuditEntry) (custody.AuditEntry, error) {
	var out custody.AuditEntry
	err := s.update(func(tx *bolt.Tx) error {
		var err error
		out, err = putAudit(tx, e)
		return err
	})
	return out, err
}

// AuditEntries implements custody.AuditLog.
func (s *Store) AuditEntries(ctx context.Context, f custody.AuditFilter) ([]custody.AuditEntry, error) {
	out := []custody.AuditEntry{}
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		if b == nil {
			return nil // a file opened read-only before the trail existed
		}
		c := b.Cursor()
		for k, v := c.Seek(u64(f.After + 1)); k != nil; k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			var a custody.AuditEntry
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("audit entry %s: malformed: %v: %w", seqName(k), err, custody.ErrDamaged)
			}
			if f.Past(a) {
				break // the trail is in time order: nothing later is in the period
			}
			if !f.Match(a) {
				continue
			}
			out = append(out, a)
			if f.Limit > 0 && len(out) > f.Limit && f.Newest {
				out = append(out[:0], out[1:]...)
			}
			if f.Limit > 0 && len(out) == f.Limit && !f.Newest {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// auditCheck is the whole-file check's decoding of the audit trail: each
// entry matches its hash and links to the entry before it, so coid verify
// finds a changed, removed or reordered entry of any kind.
func auditCheck() bucketCheck {
	return bucketCheck{name: seqName, entry: func(tx *bolt.Tx, k, v []byte) error {
		var a custody.AuditEntry
		if len(k) != 8 || json.Unmarshal(v, &a) != nil {
			return errors.New("the entry is not an audit entry")
		}
		if a.Seq != binary.BigEndian.Uint64(k) {
			return fmt.Errorf("the audit entry under key %s says it is number %d", seqName(k), a.Seq)
		}
		var prev *custody.AuditEntry
		if a.Seq > 1 {
			pv := tx.Bucket(bucketAudit).Get(u64(a.Seq - 1))
			prev = new(custody.AuditEntry)
			if pv == nil || json.Unmarshal(pv, prev) != nil {
				return fmt.Errorf("audit entry %d has no readable entry before it", a.Seq)
			}
		}
		return custody.VerifyAuditEntry(a, prev)
	}}
}
