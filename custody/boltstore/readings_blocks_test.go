package boltstore

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// readingKey names a reading with its receive time, to compare what is
// read with what was stored.
func readingKey(r custody.Reading) string {
	return string(r.AppendCanonical(nil)) + "@" + r.ReceivedTime.Format(time.RFC3339Nano)
}

func readingKeys(rs []custody.Reading) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = readingKey(r)
	}
	return out
}

// modelPage is what ShipperReadingsPage must answer from the readings
// all: those of shipper within from and to in device-time order, up to
// limit and the others at the last one's instant.
func modelPage(all []custody.Reading, shipper string, from, to time.Time, limit int) []custody.Reading {
	var out []custody.Reading
	for _, r := range all {
		if r.Shipper == shipper && !r.DeviceTime.Before(from) && (to.IsZero() || !r.DeviceTime.After(to)) {
			out = append(out, r)
		}
	}
	custody.SortReadings(out)
	if limit > 0 && len(out) > limit {
		n := limit
		for n < len(out) && out[n].DeviceTime.Equal(out[limit-1].DeviceTime) {
			n++
		}
		out = out[:n]
	}
	return out
}

// TestReadingsInBothLayouts: readings stored in the per-reading layout
// (by main's writer) and then in blocks (in batches of random size, seq
// numbers arriving out of order, late readings whose device time lies
// hours before their neighbours', readings without seq, a seq reading far
// in the past) read back from both layouts as one set: by shipper and
// time range, page after page by device time with every limit, through a
// watermark, from the reading log, and by the export; redeliveries are
// duplicates, a changed reading a conflict, and the file checks clean.
func TestReadingsInBothLayouts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	shippers := []string{"SHP-A", "SHP-B", "SHP-C"}
	var all []custody.Reading
	next := map[string]int{}
	mk := func(sh string) custody.Reading {
		i := next[sh]
		next[sh]++
		r := reading(sh, i, rng.IntN(5) != 0)
		if r.HasSeq {
			r.Seq = uint64(i)
			if rng.IntN(10) == 0 {
				r.DeviceTime = r.DeviceTime.Add(-time.Duration(rng.IntN(300)) * time.Minute) // late
			}
			if rng.IntN(60) == 0 {
				r.DeviceTime = r.DeviceTime.Add(-90 * 24 * time.Hour) // a clock that was off
			}
		}
		r.ReceivedTime = r.DeviceTime.Add(time.Duration(rng.IntN(5000)) * time.Millisecond)
		return r
	}
	s := openT(t, dir)
	s.Close()
	var oldN int
	var wms []int // the number of readings of each batch, in watermark order
	for range 3 {
		var batch []custody.Reading
		for range 40 {
			batch = append(batch, mk(shippers[rng.IntN(len(shippers))]))
		}
		addOldLayout(t, dir, batch, encodeReading)
		all = append(all, batch...)
		oldN += len(batch)
		wms = append(wms, len(batch))
	}
	s = openT(t, dir)
	defer s.Close()
	for range 25 {
		var batch []custody.Reading
		for range 1 + rng.IntN(150) {
			batch = append(batch, mk(shippers[rng.IntN(len(shippers))]))
		}
		rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		// Deliver some in two messages of one commit, the rest after.
		if res, err := s.AddReadings(ctx, batch); err != nil || res.Stored != len(batch) {
			t.Fatalf("add: %+v %v", res, err)
		}
		all = append(all, batch...)
		wms = append(wms, len(batch))
	}
	if n, err := s.ReadingsCount(ctx); err != nil || n != len(all) {
		t.Fatalf("count %d, %v; want %d", n, err, len(all))
	}
	for _, sh := range shippers {
		got, _, err := s.ShipperReadings(ctx, sh, time.Time{}, time.Time{}, 0)
		if err != nil || !slices.Equal(readingKeys(got), readingKeys(modelPage(all, sh, time.Time{}, time.Time{}, 0))) {
			t.Fatalf("%s: all readings differ (%d, %v)", sh, len(got), err)
		}
		for range 20 {
			from := t0.Add(time.Duration(rng.IntN(400)-100) * time.Minute)
			to := from.Add(time.Duration(rng.IntN(300)) * time.Minute)
			got, _, err := s.ShipperReadings(ctx, sh, from, to, 0)
			if err != nil || !slices.Equal(readingKeys(got), readingKeys(modelPage(all, sh, from, to, 0))) {
				t.Fatalf("%s %s..%s: readings differ (%d, %v)", sh, from, to, len(got), err)
			}
		}
		for _, limit := range []int{1, 2, 7, 64, 1000} {
			from, to := time.Time{}, t0.Add(250*time.Minute)
			var walked []custody.Reading
			for {
				p, err := s.ShipperReadingsPage(ctx, sh, from, to, limit)
				if err != nil {
					t.Fatal(err)
				}
				if want := modelPage(all, sh, from, to, limit); !slices.Equal(readingKeys(p), readingKeys(want)) {
					t.Fatalf("%s limit %d from %s: page of %d, want %d", sh, limit, from, len(p), len(want))
				}
				if len(p) == 0 {
					break
				}
				walked = append(walked, p...)
				from = p[len(p)-1].DeviceTime.Add(1)
			}
			if want := modelPage(all, sh, time.Time{}, to, 0); !slices.Equal(readingKeys(walked), readingKeys(want)) {
				t.Fatalf("%s limit %d: pages hold %d readings, want %d", sh, limit, len(walked), len(want))
			}
		}
		// Through a watermark: the old layout's batches and the first
		// five in blocks.
		through := uint64(3 + 5)
		got, _, err = s.ShipperReadings(ctx, sh, time.Time{}, time.Time{}, through)
		n := 0
		for _, c := range wms[:through] {
			n += c
		}
		if want := modelPage(all[:n], sh, time.Time{}, time.Time{}, 0); err != nil || !slices.Equal(readingKeys(got), readingKeys(want)) {
			t.Fatalf("%s through %d: %d readings, want %d (%v)", sh, through, len(got), len(want), err)
		}
	}
	// The reading log, in pages of every size, lists each batch whole.
	for _, limit := range []int{1, 50, 100000} {
		var got []custody.Reading
		var after uint64
		for {
			p, err := s.ReadingsSince(ctx, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, p.Readings...)
			after = p.Through
			if !p.More {
				break
			}
		}
		g, w := readingKeys(got), readingKeys(all)
		slices.Sort(g)
		slices.Sort(w)
		if after != uint64(len(wms)) || !slices.Equal(g, w) {
			t.Fatalf("log in pages of %d: %d readings through %d, want %d through %d", limit, len(got), after, len(all), len(wms))
		}
	}
	p, err := s.ReadingsSince(ctx, 3, 0)
	if err != nil || len(p.Readings) != len(all)-oldN {
		t.Fatalf("log after the old layout's batches: %d readings, %v", len(p.Readings), err)
	}
	var exported []custody.Reading
	if err := s.view(func(tx *bolt.Tx) error {
		return exportReadings(tx, func(rs []custody.Reading) error { exported = append(exported, rs...); return nil })
	}); err != nil || len(exported) != len(all) {
		t.Fatalf("export: %d readings, %v", len(exported), err)
	}
	// Redeliveries, from both layouts, are duplicates; a changed one of
	// each a conflict, and nothing of its message is stored.
	if res, err := s.AddReadings(ctx, all); err != nil || res.Duplicates != len(all) || res.Stored != 0 {
		t.Fatalf("redelivery: %+v %v", res, err)
	}
	for _, i := range []int{5, oldN + 5, len(all) - 1} {
		changed := all[i]
		changed.TempC = f64(*changed.TempC + 0.01)
		fresh := mk("SHP-A")
		if _, err := s.AddReadings(ctx, []custody.Reading{fresh, changed}); !errors.Is(err, custody.ErrReadingConflict) ||
			!strings.Contains(err.Error(), "temp_c") {
			t.Fatalf("changed reading %d: %v", i, err)
		}
		if n, _ := s.ReadingsCount(ctx); n != len(all) {
			t.Fatalf("a refused message stored readings: %d, want %d", n, len(all))
		}
	}
	if err := s.CheckFile(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedBlock: a block that no longer decodes is named by CheckFile,
// fails the reads of its shipper rather than answer less, and a
// redelivery of a reading it held is refused as unreadable, not taken for
// a duplicate.
func TestDamagedBlock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir)
	r := reading("S", 1, true)
	if _, err := s.AddReadings(ctx, []custody.Reading{r, reading("S", 2, true)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := bolt.Open(dir+"/"+FileName, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketReadingBlocks)
		k, v := b.Cursor().First()
		return b.Put(bytes.Clone(k), v[:len(v)-1])
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s = openT(t, dir)
	defer s.Close()
	var d *FileDamage
	if err := s.CheckFile(ctx); !errors.As(err, &d) || d.Bucket != string(bucketReadingBlocks) {
		t.Fatalf("check: %v", err)
	}
	if _, _, err := s.ShipperReadings(ctx, "S", time.Time{}, time.Time{}, 0); !errors.Is(err, custody.ErrChainBroken) {
		t.Fatalf("read of a damaged block: %v", err)
	}
	if _, err := s.AddReadings(ctx, []custody.Reading{r}); !errors.Is(err, custody.ErrReadingConflict) || !strings.Contains(err.Error(), "unreadable") {
		t.Fatalf("redelivery over a damaged block: %v", err)
	}
}

// TestEditReadingForTest: the test helper that edits a reading in a
// block changes that reading alone, and restoring its bytes restores the
// block exactly.
func TestEditReadingForTest(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir)
	var rs []custody.Reading
	for i := range 10 {
		rs = append(rs, reading("S", i, true))
	}
	if _, err := s.AddReadings(ctx, rs); err != nil {
		t.Fatal(err)
	}
	s.Close()
	var orig []byte
	EditReadingForTest(t, dir, "S", 4, func(v []byte) []byte { orig = bytes.Clone(v); v[len(v)-1] ^= 1 << 2; return v })
	s = openT(t, dir)
	got, _, err := s.ShipperReadings(ctx, "S", time.Time{}, time.Time{}, 0)
	s.Close()
	for i := range got {
		if changed := readingKey(got[i]) != readingKey(rs[i]); err != nil || changed != (i == 4) {
			t.Fatalf("reading %d changed %v (%v)", i, changed, err)
		}
	}
	EditReadingForTest(t, dir, "S", 4, func([]byte) []byte { return orig })
	s = openT(t, dir)
	defer s.Close()
	got, _, err = s.ShipperReadings(ctx, "S", time.Time{}, time.Time{}, 0)
	if err != nil || !slices.Equal(readingKeys(got), readingKeys(rs)) {
		t.Fatalf("restored: %v", err)
	}
}
