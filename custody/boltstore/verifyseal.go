package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// AppendStoredRecord implements custody.StoredRecordReader: the record's
// stored bytes copied to dst, with the hash stored before them.
func (s *Store) AppendStoredRecord(ctx context.Context, dst []byte, seq uint64) ([]byte, custody.Hash, error) {
	var h custody.Hash
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketLog).Get(u64(seq))
		switch {
		case v == nil:
			return fmt.Errorf("record %d: %w", seq, custody.ErrNotFound)
		case len(v) < custody.HashSize:
			return fmt.Errorf("record %d: truncated: %w", seq, custody.ErrChainBroken)
		}
		copy(h[:], v)
		dst = append(dst, v[custody.HashSize:]...)
		return nil
	})
	return dst, h, err
}

// errUnordered stops SealShipperReadings's read once a reading came out
// of seal order.
var errUnordered = errors.New("readings out of seal order")

// SealShipperReadings implements custody.ReadingSealer: the readings
// AppendShipperReadings would return, read the same way (the time index
// from from to to, those stored after through left out, a deleted
// reading's index entry skipped), each hashed into sh as its canonical
// encoding written straight from the stored bytes (appendStoredCanonical;
// a reading it is not sure of is decoded and encoded as a Reading).
func (s *Store) SealShipperReadings(ctx context.Context, sh *custody.SealHasher, shipper string, from, to time.Time, through uint64) (bool, error) {
	member := canonShipper(shipper)
	err := s.view(func(tx *bolt.Tx) error {
		b, idx := tx.Bucket(bucketReadings), tx.Bucket(bucketReadingTimes)
		if b == nil || idx == nil {
			return sealBlockReadings(ctx, tx, sh, shipper, from, to, through)
		}
		prefix, start, end := timeRange(shipper, from, to)
		c := idx.Cursor()
		n := 0
		rg := seqGetter{c: b.Cursor()}
		for k, _ := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if len(k) < len(prefix)+8 {
				return fmt.Errorf("reading index key %x malformed: %w", k, custody.ErrChainBroken)
			}
			if end != nil && bytes.Compare(k[:len(prefix)+8], end) > 0 {
				break
			}
			if n++; n%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			key := k[len(prefix)+8:]
			v := rg.get(key)
			if v == nil {
				continue // a deleted reading, as AppendShipperReadings skips it
			}
			enc, sr, ok := appendStoredCanonical(sh.Scratch(), shipper, member, key, v)
			if !ok {
				r, rwm, err := decodeReadingIn(shipper, key, v, nil)
				if err != nil {
					return err
				}
				enc = append(r.AppendCanonical(enc), '\n')
				sr = storedReading{wm: rwm, dev: r.DeviceTime.UnixNano(), hasSeq: r.HasSeq, seq: r.Seq, hasTemp: r.TempC != nil}
				if r.TempC != nil {
					sr.tempC = *r.TempC
				}
			}
			if through != 0 && sr.wm > through {
				continue
			}
			if !sh.Add(enc, sr.dev, sr.hasSeq, sr.seq, sr.tempC, sr.hasTemp) {
				return errUnordered
			}
		}
		return sealBlockReadings(ctx, tx, sh, shipper, from, to, through)
	})

	if errors.Is(err, errUnordered) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("readings of %s: %w", shipper, err)
	}
	return true, nil
}

// sealBlockReadings hashes into sh, after those of the per-reading layout,
// shipper's readings in the block layout that AppendShipperReadings would
// return, each encoded straight from its stored fields (appendCanonEntry),
// or, for a shipper ID JSON would escape, from its decoded Reading; errUnordered once one
// comes out of seal order (blocks overlapping in time), for the caller
// to fall back to reading them all and sorting.
func sealBlockReadings(ctx context.Context, tx *bolt.Tx, sh *custody.SealHasher, shipper string, from, to time.Time, through uint64) error {
	unordered, n := false, 0
	stop := func(int64) bool {
		n++
		return unordered || (n%64 == 0 && ctx.Err() != nil)
	}
	var err error
	if member := canonShipper(shipper); member != nil {
		// Each reading encoded straight from its stored fields.
		err = blockRangeEntries(tx, shipper, from, to, func(kind byte, e *blockEntry) {
			if unordered || (through != 0 && e.wm > through) {
				return
			}
			enc := appendCanonEntry(sh.Scratch(), member, kind, e)
			hasTemp := e.flags&flagTemp != 0
			var temp float64
			if hasTemp {
				temp = e.nums[0].x
			}
			if !sh.Add(enc, e.dev, kind == kindSeq, e.id, temp, hasTemp) {
				unordered = true
			}
		}, stop)
	} else {
		var slab valueSlab
		err = blockRange(tx, shipper, from, to, &slab, func(r *custody.Reading, wm uint64) {
			if unordered || (through != 0 && wm > through) {
				return
			}
			enc := append(r.AppendCanonical(sh.Scratch()), '\n')
			var temp float64
			if r.TempC != nil {
				temp = *r.TempC
			}
			if !sh.Add(enc, r.DeviceTime.UnixNano(), r.HasSeq, r.Seq, temp, r.TempC != nil) {
				unordered = true
			}
		}, stop)
	}
	switch {
	case err != nil:
		return err
	case unordered:
		return errUnordered
	}
	return ctx.Err()
}
