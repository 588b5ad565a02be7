package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// Quotas and the waiting list: the quotas (key -> custody.Quota JSON), the
// count of bookings per period and quota key, the quota use each chain
// holds (so a release or a rebooking frees exactly it), and the waiting
// list (COI -> entry JSON).
var (
	bucketQuota      = []byte("quota")       // plant/centre -> Quota JSON
	bucketQuotaUsed  = []byte("quota_used")  // period 0 key -> count (4 bytes BE)
	bucketQuotaChain = []byte("quota_chain") // COI -> period 0 key
	bucketWaitlist   = []byte("waitlist")    // COI -> entry JSON
	// quotaBuckets are created by Open.
	quotaBuckets = [][]byte{bucketQuota, bucketQuotaUsed, bucketQuotaChain, bucketWaitlist}
)

var _ custody.QuotaStore = (*Store)(nil)

func quotaUsedKey(u custody.QuotaUse) []byte {
	return append(append(append([]byte{}, u.Period...), 0), u.Key...)
}

// quotaTx checks and applies a draft's quota use inside the append's
// transaction.
type quotaTx struct {
	quota, used, chain *bolt.Bucket
}

func newQuotaTx(tx *bolt.Tx) *quotaTx {
	return &quotaTx{quota: tx.Bucket(bucketQuota), used: tx.Bucket(bucketQuotaUsed), chain: tx.Bucket(bucketQuotaChain)}
}

func (q *quotaTx) count(k []byte) int {
	v := q.used.Get(k)
	if len(v) != 4 {
		return 0
	}
	return int(binary.BigEndian.Uint32(v))
}

func (q *quotaTx) setCount(k []byte, n int) error {
	if n <= 0 {
		return q.used.Delete(k)
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(n))
	return q.used.Put(k, b[:])
}

// check refuses the draft's quota use without writing (ErrQuotaExhausted),
// counting the chain's own use as freed first.
func (q *quotaTx) check(d *custody.Draft) (refused, fatal error) {
	if q.quota == nil || q.used == nil || q.chain == nil {
		return nil, fmt.Errorf("quota buckets are missing: %w", custody.ErrDamaged)
	}
	if d.Quota == nil {
		return nil, nil
	}
	u := *d.Quota
	if u.Key == "" || len(u.Period) != 7 || bytes.IndexByte([]byte(u.Key+u.Period), 0) >= 0 {
		return fmt.Errorf("quota use %s %s is malformed: %w", u.Key, u.Period, custody.ErrInvalid), nil
	}
	k := quotaUsedKey(u)
	n := q.count(k)
	if bytes.Equal(q.chain.Get([]byte(d.Record.Chain)), k) {
		n-- // the chain's own use, freed by this draft
	}
	var stored *custody.Quota
	if v := q.quota.Get([]byte(u.Key)); v != nil {
		stored = new(custody.Quota)
		if err := json.Unmarshal(v, stored); err != nil {
			return nil, fmt.Errorf("quota %s: malformed: %v: %w", u.Key, err, custody.ErrDamaged)
		}
	}
	return custody.CheckQuota(stored, u, n), nil
}

// apply frees the chain's quota use and takes the draft's.
func (q *quotaTx) apply(d *custody.Draft) error {
	coi := []byte(d.Record.Chain)
	if old := q.chain.Get(coi); old != nil {
		old = bytes.Clone(old)
		if err := q.setCount(old, q.count(old)-1); err != nil {
			return err
		}
		if err := q.chain.Delete(coi); err != nil {
			return err
		}
	}
	if d.Quota == nil {
		return nil
	}
	k := quotaUsedKey(*d.Quota)
	if err := q.setCount(k, q.count(k)+1); err != nil {
		return err
	}
	return q.chain.Put(coi, k)
}

// UpdateQuota implements custody.QuotaStore.
func (s *Store) UpdateQuota(ctx context.Context, key string, fn func(old []byte) ([]byte, custody.AuditEntry, error)) error {
	if s.readOnly {
		return fmt.Errorf("quota: store opened read-only: %w", custody.ErrClosed)
	}
	if key == "" {
		return fmt.Errorf("quota: empty key: %w", custody.ErrInvalid)
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQuota)
		v, a, err := fn(bytes.Clone(b.Get([]byte(key))))
		if err != nil {
			return err
		}
		if v == nil {
			err = b.Delete([]byte(key))
		} else {
			err = b.Put([]byte(key), v)
		}
		if err != nil {
			return err
		}
		_, err = putAudit(tx, a)
		return err
	})
}

// Quotas implements custody.QuotaStore.
func (s *Store) Quotas(ctx context.Context) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQuota)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			out[string(k)] = bytes.Clone(v)
			return nil
		})
	})
	return out, err
}

// QuotasAfter implements custody.QuotaStore: a cursor on the quota
// bucket from after.
func (s *Store) QuotasAfter(ctx context.Context, after string, limit int) ([]custody.StoredValue, error) {
	if limit < 1 {
		return nil, fmt.Errorf("quotas: limit %d must be 1 or more: %w", limit, custody.ErrInvalid)
	}
	out := []custody.StoredValue{}
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQuota)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		k, v := c.First()
		if after != "" {
			if k, v = c.Seek([]byte(after)); k != nil && string(k) == after {
				k, v = c.Next()
			}
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			out = append(out, custody.StoredValue{Key: string(k), Value: bytes.Clone(v)})
		}
		return nil
	})
	return out, err
}

// QuotaUses implements custody.QuotaStore: one range of the counts.
func (s *Store) QuotaUses(ctx context.Context, period string) (map[string]int, error) {
	out := map[string]int{}
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQuotaUsed)
		if b == nil {
			return nil
		}
		prefix := append([]byte(period), 0)
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(v) == 4 {
				out[string(k[len(prefix):])] = int(binary.BigEndian.Uint32(v))
			}
		}
		return nil
	})
	return out, err
}

// UpdateWaitlist implements custody.QuotaStore.
func (s *Store) UpdateWaitlist(ctx context.Context, coi custody.COI, fn func(old []byte) ([]byte, []custody.AuditEntry, error)) error {
	return s.updateWaitlist(coi, false, nil, fn)
}

// UpdateWaitlistHold implements custody.QuotaStore.
func (s *Store) UpdateWaitlistHold(ctx context.Context, coi custody.COI, hold *custody.Claim,
	fn func(old []byte) ([]byte, []custody.AuditEntry, error)) error {
	return s.updateWaitlist(coi, true, hold, fn)
}

// updateWaitlist stores fn's entry of chain coi and its audit entries,
// and, when setHold, replaces the slot the chain's offer holds with hold;
// an entry removed frees its hold.
func (s *Store) updateWaitlist(coi custody.COI, setHold bool, hold *custody.Claim,
	fn func(old []byte) ([]byte, []custody.AuditEntry, error)) error {
	if s.readOnly {
		return fmt.Errorf("waiting list: store opened read-only: %w", custody.ErrClosed)
	}
	if coi == "" {
		return fmt.Errorf("waiting list: empty chain: %w", custody.ErrInvalid)
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWaitlist)
		v, as, err := fn(bytes.Clone(b.Get([]byte(coi))))
		if err != nil {
			return err
		}
		if v == nil {
			if hold != nil {
				return fmt.Errorf("waiting list: a slot held for a chain off the list: %w", custody.ErrInvalid)
			}
			setHold = true
		}
		if setHold {
			refused, fatal := newClaimsTx(tx).setHold(coi, hold)
			if fatal != nil {
				return fatal
			}
			if refused != nil {
				return refused
			}
		}
		if v == nil {
			err = b.Delete([]byte(coi))
		} else {
			err = b.Put([]byte(coi), v)
		}
		if err != nil {
			return err
		}
		for _, a := range as {
			if _, err := putAudit(tx, a); err != nil {
				return err
			}
		}
		return nil
	})
}

// Waitlist implements custody.QuotaStore.
func (s *Store) Waitlist(ctx context.Context) ([][]byte, error) {
	out := [][]byte{}
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWaitlist)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			out = append(out, bytes.Clone(v))
			return nil
		})
	})
	return out, err
}

// quotaBucketChecks returns the whole-file check's decoding of the quota
// buckets.
func quotaBucketChecks() map[string]bucketCheck {
	obj := func(what string) bucketCheck {
		return bucketCheck{name: strName, entry: func(_ *bolt.Tx, k, v []byte) error {
			var m map[string]json.RawMessage
			if json.Unmarshal(v, &m) != nil || m == nil {
				return errors.New("the " + what + " is not a JSON object")
			}
			return nil
		}}
	}
	return map[string]bucketCheck{
		string(bucketQuota):    obj("quota"),
		string(bucketWaitlist): obj("waiting-list entry"),
		string(bucketQuotaUsed): {name: strName, entry: func(_ *bolt.Tx, k, v []byte) error {
			if len(v) != 4 {
				return errors.New("the count is not 4 bytes")
			}
			return nil
		}},
		string(bucketQuotaChain): {name: strName, entry: func(tx *bolt.Tx, k, v []byte) error {
			if b := tx.Bucket(bucketQuotaUsed); b == nil || b.Get(v) == nil {
				return errors.New("the chain's quota use is not counted")
			}
			return nil
		}},
	}
}
