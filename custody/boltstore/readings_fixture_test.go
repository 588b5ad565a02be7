package boltstore_test

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
)

// perReadingFile copies testdata/readings-layout-v2.db.gz, a file written
// by the code before the block layout (three chains whose two legs were
// received with the seals of their readings, made by generateVerifyStore
// with 10 readings a leg), into a new directory.
func perReadingFile(t *testing.T) string {
	t.Helper()
	f, err := os.Open("testdata/readings-layout-v2.db.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	db, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, boltstore.FileName), db, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestFileOfThePerReadingLayout: in a file written before the block
// layout the seals verify (and a reading deleted from it is caught), the
// readings read back by shipper and from the reading log, redeliveries
// are duplicates, a new reading goes to a block beside them, the seals
// still verify and the file checks clean.
func TestFileOfThePerReadingLayout(t *testing.T) {
	ctx := context.Background()
	dir := perReadingFile(t)
	svc, s := verifyService(t, dir)
	if rep, err := svc.VerifyLedger(ctx); err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	n, err := s.ReadingsCount(ctx)
	if err != nil || n != 3*2*10 {
		t.Fatalf("count %d, %v", n, err)
	}
	var old []custody.Reading
	for i := range 3 {
		for _, leg := range []string{"A", "B"} {
			rs, _, err := s.ShipperReadings(ctx, fmt.Sprintf("SHP-%s%06d", leg, i), time.Time{}, time.Time{}, 0)
			if err != nil || len(rs) != 10 {
				t.Fatalf("leg %s of chain %d: %d readings, %v", leg, i, len(rs), err)
			}
			old = append(old, rs...)
		}
	}
	p, err := s.ReadingsSince(ctx, 0, 0)
	if err != nil || len(p.Readings) != n || p.More {
		t.Fatalf("log: %d readings, %+v %v", len(p.Readings), p.More, err)
	}
	if res, err := s.AddReadings(ctx, old); err != nil || res.Duplicates != len(old) {
		t.Fatalf("redelivery: %+v %v", res, err)
	}
	last := old[len(old)-1]
	fresh := last
	fresh.Seq += 100
	fresh.DeviceTime = fresh.DeviceTime.Add(time.Hour)
	if res, err := s.AddReadings(ctx, []custody.Reading{fresh}); err != nil || res.Stored != 1 {
		t.Fatalf("new reading: %+v %v", res, err)
	}
	rs, _, err := s.ShipperReadings(ctx, last.Shipper, time.Time{}, time.Time{}, 0)
	if err != nil || len(rs) != 11 || !rs[10].DeviceTime.Equal(fresh.DeviceTime) || rs[10].Seq != fresh.Seq {
		t.Fatalf("the new reading beside the old: %d readings, %v", len(rs), err)
	}
	if q, err := s.ReadingsSince(ctx, p.Through, 0); err != nil || len(q.Readings) != 1 || q.Readings[0].Seq != fresh.Seq {
		t.Fatalf("log after the old batches: %+v %v", q, err)
	}
	if err := s.CheckFile(ctx); err != nil {
		t.Fatal(err)
	}
	// The new reading came after the leg was received: the leg's seal
	// covers what it held then.
	if rep, err := svc.VerifyLedger(ctx); err != nil || !rep.OK {
		t.Fatalf("verify after a new reading: %+v %v", rep, err)
	}
	s.Close()

	// The seals are checked against the old layout's readings.
	boltstore.DeleteReadingForTest(t, dir, old[3].Shipper, old[3].Seq)
	svc, _ = verifyService(t, dir)
	if rep, err := svc.VerifyLedger(ctx); err != nil || rep.OK {
		t.Fatalf("verify with a reading deleted: %+v %v", rep, err)
	}
}
