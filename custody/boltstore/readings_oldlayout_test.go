package boltstore

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// addOldLayout stores rs, as one batch, in the closed store in dir the way
// the writer of the per-reading layout did before the block layout: each
// reading under its Key in readings (encoded by enc: encodeReading or
// encodeReadingV1), in the time index reading_times and in the reading log
// reading_batches, under the next watermark.
func addOldLayout(t testing.TB, dir string, rs []custody.Reading, enc func([]byte, *custody.Reading, uint64) []byte) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error {
		b, idx, meta := tx.Bucket(bucketReadings), tx.Bucket(bucketReadingTimes), tx.Bucket(bucketReadingsMeta)
		batches := tx.Bucket(bucketReadingBatch)
		wm := readWatermark(tx) + 1
		if err := meta.Put(keyWatermark, u64(wm)); err != nil {
			return err
		}
		for i := range rs {
			k := rs[i].Key()
			if err := b.Put(k, enc(nil, &rs[i], wm)); err != nil {
				return err
			}
			if err := idx.Put(timeIndexKey(rs[i].Shipper, rs[i].DeviceTime, k), nil); err != nil {
				return err
			}
			if err := batches.Put(append(u64(wm), k...), nil); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// DeleteReadingForTest deletes shipper's reading seq from the closed store
// in dir, as someone editing the file would, from whichever layout holds
// it, leaving its index entries.
func DeleteReadingForTest(t testing.TB, dir, shipper string, seq uint64) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key := custody.Reading{Shipper: shipper, Seq: seq, HasSeq: true}.Key()
	err = db.Update(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketReadings); b.Get(key) != nil {
			return b.Delete(key)
		}
		e, ok, err := lookupShipper(tx, shipper)
		if err != nil || !ok {
			return fmt.Errorf("no reading %q: %v", key, err)
		}
		blocks := tx.Bucket(bucketReadingBlocks)
		k := bytes.Clone(findBlock(blocks.Cursor(), e.no, kindSeq, seq))
		if k == nil {
			return fmt.Errorf("no reading %q", key)
		}
		_, _, first, _ := splitBlockKey(k)
		rs, err := decodeBlock(nil, shipper, kindSeq, first, blocks.Get(k), nil)
		if err != nil {
			return err
		}
		var kept []blockReading
		for _, r := range rs {
			if r.r.Seq != seq {
				kept = append(kept, r)
			}
		}
		if len(kept) == len(rs) {
			return fmt.Errorf("no reading %q", key)
		}
		// Rewrite the block without it, and its time index entry.
		times := tx.Bucket(bucketReadingBlockTimes)
		lo, _ := blockTimes(rs)
		if err := times.Delete(blockTimeKey(e.no, lo, kindSeq, first)); err != nil {
			return err
		}
		if err := blocks.Delete(k); err != nil || len(kept) == 0 {
			return err
		}
		_, first = readingID(&kept[0].r)
		lo, hi := blockTimes(kept)
		if err := times.Put(blockTimeKey(e.no, lo, kindSeq, first), u64(uint64(hi)^(1<<63))); err != nil {
			return err
		}
		return blocks.Put(blockKey(e.no, kindSeq, first), encodeBlock(nil, kindSeq, kept))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// EditReadingForTest rewrites shipper's reading seq in the closed store
// in dir, as someone editing the file would, with edit applied to its
// stored value: in the per-reading layout the value itself; in a block
// the reading's version-2 encoding (encodeReading), whose result must
// still decode, is put back in the block in its place.
func EditReadingForTest(t testing.TB, dir, shipper string, seq uint64, edit func(v []byte) []byte) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key := custody.Reading{Shipper: shipper, Seq: seq, HasSeq: true}.Key()
	err = db.Update(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketReadings); b.Get(key) != nil {
			return b.Put(key, edit(bytes.Clone(b.Get(key))))
		}
		e, ok, err := lookupShipper(tx, shipper)
		if err != nil || !ok {
			return fmt.Errorf("no reading %q: %v", key, err)
		}
		blocks := tx.Bucket(bucketReadingBlocks)
		k := bytes.Clone(findBlock(blocks.Cursor(), e.no, kindSeq, seq))
		if k == nil {
			return fmt.Errorf("no reading %q", key)
		}
		_, _, first, _ := splitBlockKey(k)
		rs, err := decodeBlock(nil, shipper, kindSeq, first, blocks.Get(k), nil)
		if err != nil {
			return err
		}
		br := findIn(rs, seq)
		if br == nil {
			return fmt.Errorf("no reading %q", key)
		}
		r, wm, err := decodeReading(shipper, key, edit(encodeReading(nil, &br.r, br.wm)))
		if err != nil {
			return fmt.Errorf("the edited reading does not decode: %w", err)
		}
		br.r, br.wm = r, wm
		return blocks.Put(k, encodeBlock(nil, kindSeq, rs))
	})
	if err != nil {
		t.Fatal(err)
	}
}
