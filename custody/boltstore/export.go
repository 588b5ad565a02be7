package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// exportBatch is how many readings Export hands over at a time.
const exportBatch = 4096

// Export calls fn with the whole store as coid migrate copies it
// (custody.Export), inside one read transaction: what fn reads through it
// is one consistent state of the store, and the slices it is handed are
// valid only until fn returns. Use it on a store no other process writes
// (opened ReadOnly, which the directory lock refuses while one does).
func (s *Store) Export(ctx context.Context, fn func(*custody.Export) error) error {
	return s.viewLong(func(tx *bolt.Tx) error {
		e, err := exportTx(tx)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		return fn(e)
	})
}

// exportTx reads what custody.Export holds from tx; the records and
// readings are read when the export's functions are called.
func exportTx(tx *bolt.Tx) (*custody.Export, error) {
	e := &custody.Export{
		PHI: map[custody.COI][]byte{}, COISequences: map[string]uint64{}, Users: map[string][]byte{},
		Capacity: map[string][]byte{}, Quotas: map[string][]byte{}, Waitlist: map[custody.COI][]byte{},
		Holds: map[custody.COI]custody.Claim{}, QuotaChains: map[custody.COI]custody.QuotaUse{},
	}
	e.HeadSeq, e.HeadHash = readHead(tx.Bucket(bucketMeta))
	e.Records = func(fn func(custody.LogEntry) error) error {
		c := tx.Bucket(bucketLog).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			key, h, body := splitEntry(k, v)
			if err := fn(custody.LogEntry{Key: key, Hash: h, Body: body}); err != nil {
				return err
			}
		}
		return nil
	}
	e.Readings = func(fn func([]custody.Reading) error) error { return exportReadings(tx, fn) }
	if err := scanChains(tx, func(ci custody.ChainInfo) error {
		e.Chains = append(e.Chains, ci)
		return nil
	}); err != nil {
		return nil, err
	}
	raw := func(name []byte, fn func(k, v []byte) error) error {
		b := tx.Bucket(name)
		if b == nil {
			return nil // a file written before the bucket existed
		}
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return nil // a nested bucket
			}
			return fn(k, bytes.Clone(v))
		})
	}
	if b := tx.Bucket(bucketCOISeq); b != nil {
		if err := b.ForEachBucket(func(k []byte) error {
			e.COISequences[string(k)] = b.Bucket(k).Sequence()
			return nil
		}); err != nil {
			return nil, err
		}
	}
	meta := map[string]tokenMeta{}
	steps := []struct {
		name []byte
		fn   func(k, v []byte) error
	}{
		{bucketPHI, func(k, v []byte) error { e.PHI[custody.COI(k)] = v; return nil }},
		{bucketUsers, func(k, v []byte) error { e.Users[string(k)] = v; return nil }},
		{bucketTokenInfo, func(k, v []byte) error {
			var m tokenMeta
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("token metadata: %v: %w", err, custody.ErrDamaged)
			}
			meta[string(k)] = m
			return nil
		}},
		{bucketTokens, func(k, v []byte) error {
			if len(k) != custody.HashSize {
				return fmt.Errorf("token hash of %d bytes: %w", len(k), custody.ErrDamaged)
			}
			t := custody.ExportToken{UserID: string(v)}
			copy(t.Hash[:], k)
			e.Tokens = append(e.Tokens, t)
			return nil
		}},
		{bucketAudit, func(k, v []byte) error {
			var a custody.AuditEntry
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("audit entry %s: %v: %w", seqName(k), err, custody.ErrDamaged)
			}
			e.Audit = append(e.Audit, a)
			return nil
		}},
		{bucketCapacity, func(k, v []byte) error { e.Capacity[string(k)] = v; return nil }},
		{bucketQuota, func(k, v []byte) error { e.Quotas[string(k)] = v; return nil }},
		{bucketWaitlist, func(k, v []byte) error { e.Waitlist[custody.COI(k)] = v; return nil }},
		{bucketSlotClaims, func(k, v []byte) error {
			p := bytes.Split(k, []byte{0})
			if len(p) != 4 || len(v) != 8 {
				return fmt.Errorf("slot claim %q: %w", k, custody.ErrDamaged)
			}
			e.Claims = append(e.Claims, custody.HeldClaim{Claim: custody.Claim{Site: string(p[0]), Date: string(p[1]), Product: string(p[2])},
				COI: custody.COI(p[3]), Seq: binary.BigEndian.Uint64(v)})
			return nil
		}},
		{bucketSlotHolds, func(k, v []byte) error {
			p := bytes.Split(v, []byte{0})
			if len(p) != 3 {
				return fmt.Errorf("slot hold of %s: %w", k, custody.ErrDamaged)
			}
			e.Holds[custody.COI(k)] = custody.Claim{Site: string(p[0]), Date: string(p[1]), Product: string(p[2])}
			return nil
		}},
		{bucketQuotaChain, func(k, v []byte) error {
			p := bytes.SplitN(v, []byte{0}, 2)
			if len(p) != 2 {
				return fmt.Errorf("quota use of %s: %w", k, custody.ErrDamaged)
			}
			e.QuotaChains[custody.COI(k)] = custody.QuotaUse{Period: string(p[0]), Key: string(p[1])}
			return nil
		}},
		{bucketCosignatures, func(k, v []byte) error {
			c, err := decodeCosignature(k, v)
			e.Cosignatures = append(e.Cosignatures, c)
			return err
		}},
	}
	for kind, name := range registryBucketNames {
		steps = append(steps, struct {
			name []byte
			fn   func(k, v []byte) error
		}{name, func(k, v []byte) error {
			e.Registry = append(e.Registry, custody.ExportEntry{Kind: kind, Code: string(k), Value: v})
			return nil
		}})
	}
	for _, st := range steps {
		if err := raw(st.name, st.fn); err != nil {
			return nil, fmt.Errorf("bucket %s: %w", st.name, err)
		}
	}
	for i, t := range e.Tokens {
		m := meta[string(tokenInfoKey(t.UserID, t.Hash[:]))]
		e.Tokens[i].Created, e.Tokens[i].LastUsed = nanosOrZero(m.Created), nanosOrZero(m.LastUsed)
	}
	return e, nil
}

// exportReadings hands the stored readings to fn, exportBatch at a time.
func exportReadings(tx *bolt.Tx, fn func([]custody.Reading) error) error {
	batch := make([]custody.Reading, 0, exportBatch)
	var c *bolt.Cursor
	if b := tx.Bucket(bucketReadings); b != nil {
		c = b.Cursor()
	}
	for k, v := cursorFirst(c); k != nil; k, v = c.Next() {
		r, _, err := decodeStoredReading(k, v)
		if err != nil {
			return err
		}
		if batch = append(batch, r); len(batch) == exportBatch {
			if err := fn(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if blocks := tx.Bucket(bucketReadingBlocks); blocks != nil {
		br := newBlockReader(tx, nil)
		c := blocks.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			rs, err := br.decode(k, v)
			if err != nil {
				return err
			}
			for i := range rs {
				if batch = append(batch, rs[i].r); len(batch) == exportBatch {
					if err := fn(batch); err != nil {
						return err
					}
					batch = batch[:0]
				}
			}
		}
	}
	if len(batch) > 0 {
		return fn(batch)
	}
	return nil
}

// cursorFirst is c.First(), nothing when c is nil.
func cursorFirst(c *bolt.Cursor) ([]byte, []byte) {
	if c == nil {
		return nil, nil
	}
	return c.First()
}

// nanosOrZero is t in Unix nanoseconds, zero for the zero time.
func nanosOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
