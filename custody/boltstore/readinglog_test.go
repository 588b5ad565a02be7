package boltstore

import (
	"context"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// TestReadingLogOfAnOlderFile: a file written before the reading log
// existed (no reading_batches bucket, no batches_from) gets the log when
// opened for writing, starting at the watermark it had then. Asked from an
// older cursor the log says it is incomplete rather than list less than
// was stored; readings stored afterwards are listed, and the file checks
// clean.
func TestReadingLogOfAnOlderFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	r := func(i int) custody.Reading {
		c := -180.0
		return custody.Reading{Shipper: "SHP-OLD", Seq: uint64(i), HasSeq: true, DeviceTime: t0.Add(time.Duration(i) * time.Minute),
			ReceivedTime: t0, TempC: &c}
	}
	s := openT(t, dir)
	for i := range 2 {
		if _, err := s.AddReadings(ctx, []custody.Reading{r(2 * i), r(2*i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	// Make it the older file.
	db, err := bolt.Open(dir+"/"+FileName, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketReadingBatch); err != nil {
			return err
		}
		return tx.Bucket(bucketReadingsMeta).Delete(keyBatchesFrom)
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s = openT(t, dir)
	defer s.Close()
	p, err := s.ReadingsSince(ctx, 0, 0)
	if err != nil || !p.Incomplete || p.Through != 2 || len(p.Readings) != 0 || p.More {
		t.Fatalf("from before the log: %+v %v; want incomplete, through 2, empty", p, err)
	}
	if _, err := s.AddReadings(ctx, []custody.Reading{r(10)}); err != nil {
		t.Fatal(err)
	}
	for _, after := range []uint64{0, 2} {
		p, err := s.ReadingsSince(ctx, after, 0)
		if err != nil || p.Incomplete != (after < 2) || p.Through != 3 || len(p.Readings) != 1 || p.Readings[0].Seq != 10 {
			t.Fatalf("since %d: %+v %v", after, p, err)
		}
	}
	if err := s.CheckFile(ctx); err != nil {
		t.Fatalf("check of the upgraded file: %v", err)
	}
}
