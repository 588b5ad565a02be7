package boltstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

func f64(v float64) *float64 { return &v }
func bp(v bool) *bool        { return &v }

// reading returns reading i of shipper: seq-numbered when seq, else
// identified by device time.
func reading(shipper string, i int, seq bool) custody.Reading {
	r := custody.Reading{Shipper: shipper, DeviceTime: t0.Add(time.Duration(i) * time.Minute),
		ReceivedTime: t0.Add(time.Hour), TempC: f64(-180 + float64(i%7)*0.25)}
	if seq {
		r.Seq, r.HasSeq = uint64(i), true
	}
	if i%3 == 0 {
		r.TiltDeg, r.LidOpen, r.Light = f64(3.5), bp(false), bp(i%2 == 0)
		r.BatteryPct, r.LN2Pct, r.Lat, r.Lon = f64(88), f64(71), f64(40.71), f64(-74.01)
	}
	return r
}

func canon(rs []custody.Reading) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r.AppendCanonical(nil))
	}
	return out
}

func TestReadingEncodingRoundTrip(t *testing.T) {
	for i, r := range []custody.Reading{reading("SHP-1", 0, true), reading("SHP-1", 1, false), reading("A", 3, false),
		{Shipper: "B", DeviceTime: t0, ReceivedTime: t0}} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			v := encodeReading(nil, &r, 42)
			got, wm, err := decodeReading(r.Shipper, r.Key(), v)
			if err != nil {
				t.Fatal(err)
			}
			if wm != 42 || string(got.AppendCanonical(nil)) != string(r.AppendCanonical(nil)) || !got.ReceivedTime.Equal(r.ReceivedTime) {
				t.Fatalf("round trip: got %s wm %d", got.AppendCanonical(nil), wm)
			}
			// Any truncation or extension is detected.
			for n := 0; n < len(v); n++ {
				if _, _, err := decodeReading(r.Shipper, r.Key(), v[:n]); err == nil {
					t.Fatalf("truncated to %d accepted", n)
				}
			}
			if _, _, err := decodeReading(r.Shipper, r.Key(), append(v, 0)); err == nil {
				t.Fatal("extended value accepted")
			}
		})
	}
}

func TestReadingsStoredOnceAndQueriedInOrder(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	ctx := context.Background()
	// 40 concurrent callers each add an overlapping slice of the same 200
	// readings of two shippers (one numbered, one by time), out of order and
	// with duplicates inside batches.
	var want []custody.Reading
	for i := 0; i < 100; i++ {
		want = append(want, reading("SHP-A", i, true), reading("SHP-B", i, false))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored, dups := 0, 0
	for c := 0; c < 40; c++ {
		wg.Go(func() {
			var batch []custody.Reading
			for j := 0; j < 30; j++ {
				batch = append(batch, want[(c*17+j*31)%len(want)])
			}
			batch = append(batch, batch[0])
			res, err := s.AddReadings(ctx, batch)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			stored, dups = stored+res.Stored, dups+res.Duplicates
			mu.Unlock()
		})
	}
	wg.Wait()
	res, err := s.AddReadings(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	stored += res.Stored
	if stored != len(want) || res.Stored+res.Duplicates != len(want) || dups != 40*31-(stored-res.Stored) {
		t.Fatalf("stored %d (want %d), last batch %+v, dups %d", stored, len(want), res, dups)
	}
	if n, _ := s.ReadingsCount(ctx); n != len(want) {
		t.Fatalf("count %d, want %d", n, len(want))
	}
	// A batch of duplicates only commits nothing and keeps the watermark.
	again, err := s.AddReadings(ctx, want[:10])
	if err != nil || again.Stored != 0 || again.Duplicates != 10 || again.Watermark != res.Watermark {
		t.Fatalf("duplicates: %+v %v (watermark before %d)", again, err, res.Watermark)
	}
	s.Close()
	s = openT(t, dir)
	defer s.Close()
	for _, sh := range []string{"SHP-A", "SHP-B"} {
		var exp []custody.Reading
		for _, r := range want {
			if r.Shipper == sh && !r.DeviceTime.Before(t0.Add(10*time.Minute)) && !r.DeviceTime.After(t0.Add(20*time.Minute)) {
				exp = append(exp, r)
			}
		}
		custody.SortReadings(exp)
		got, wm, err := s.ShipperReadings(ctx, sh, t0.Add(10*time.Minute), t0.Add(20*time.Minute), 0)
		if err != nil {
			t.Fatal(err)
		}
		if wm != res.Watermark || fmt.Sprint(canon(got)) != fmt.Sprint(canon(exp)) || len(got) != 11 {
			t.Fatalf("%s: got %d readings wm %d, want %d wm %d", sh, len(got), wm, len(exp), res.Watermark)
		}
		all, _, _ := s.ShipperReadings(ctx, sh, time.Time{}, time.Time{}, 0)
		if len(all) != 100 {
			t.Fatalf("%s: %d readings, want 100", sh, len(all))
		}
	}
	// Shipper prefixes do not leak: "SHP-A" does not see "SHP-AB".
	if _, err := s.AddReadings(ctx, []custody.Reading{reading("SHP-AB", 1, true)}); err != nil {
		t.Fatal(err)
	}
	if all, _, _ := s.ShipperReadings(ctx, "SHP-A", time.Time{}, time.Time{}, 0); len(all) != 100 {
		t.Fatalf("SHP-A sees %d readings", len(all))
	}
	if rep := verify(t, s); !rep.OK {
		t.Fatal(rep.Problem)
	}
}

func TestReadingsWatermark(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	r1, err := s.AddReadings(ctx, []custody.Reading{reading("S", 1, true), reading("S", 2, true)})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.AddReadings(ctx, []custody.Reading{reading("S", 0, true), reading("S", 3, true)})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Watermark <= r1.Watermark {
		t.Fatalf("watermarks %d then %d", r1.Watermark, r2.Watermark)
	}
	got, _, _ := s.ShipperReadings(ctx, "S", time.Time{}, time.Time{}, r1.Watermark)
	if len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 2 {
		t.Fatalf("through %d: %s", r1.Watermark, canon(got))
	}
}

func TestQuarantineBounded(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	small := make([]byte, 100)
	var wg sync.WaitGroup
	for i := 0; i < MaxQuarantine+20; i++ {
		wg.Go(func() {
			if err := s.Quarantine(ctx, custody.QuarantineEntry{Topic: "shippers/X/telemetry", Received: t0,
				Reason: fmt.Sprintf("bad %d", i), Size: len(small), Payload: small}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	list, err := s.QuarantineList(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != MaxQuarantine || list[0].ID != MaxQuarantine+20 || list[len(list)-1].ID != 21 || len(list[0].Payload) != len(small) {
		t.Fatalf("%d entries, ids %d..%d, payload %d", len(list), list[len(list)-1].ID, list[0].ID, len(list[0].Payload))
	}
	if l, _ := s.QuarantineList(ctx, 0, 5); len(l) != 5 {
		t.Fatalf("limit 5: %d", len(l))
	}
}

// TestTamperedReadingDetected: a bit flipped in a stored reading, in
// either layout, reads back as the changed reading (for the seals to
// tell), not as the one stored.
func TestTamperedReadingDetected(t *testing.T) {
	for _, layout := range []struct {
		name   string
		bucket []byte
	}{{"blocks", bucketReadingBlocks}, {"per-reading", bucketReadings}} {
		t.Run(layout.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir)
			ctx := context.Background()
			if layout.name == "blocks" {
				if _, err := s.AddReadings(ctx, []custody.Reading{reading("S", 1, true)}); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			if layout.name != "blocks" {
				addOldLayout(t, dir, []custody.Reading{reading("S", 1, true)}, encodeReading)
			}
			db, err := bolt.Open(dir+"/"+FileName, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			_ = db.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket(layout.bucket)
				k, v := b.Cursor().First()
				v = append([]byte(nil), v...)
				v[len(v)-1] ^= 1 // flip a bit of the temperature
				return b.Put(append([]byte(nil), k...), v)
			})
			db.Close()
			s = openT(t, dir)
			defer s.Close()
			got, _, err := s.ShipperReadings(ctx, "S", time.Time{}, time.Time{}, 0)
			if err != nil || len(got) != 1 || *got[0].TempC == *reading("S", 1, true).TempC {
				t.Fatalf("tampered reading: %v %v", got, err)
			}
		})
	}
}

func TestClosedStoreRefusesReadings(t *testing.T) {
	s := openT(t, t.TempDir())
	s.Close()
	if _, err := s.AddReadings(context.Background(), []custody.Reading{reading("S", 1, true)}); err == nil {
		t.Fatal("closed store accepted readings")
	}
}

func BenchmarkAddReadings64Callers(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	b.SetParallelism(64)
	var n sync.Mutex
	i := 0
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n.Lock()
			i++
			j := i
			n.Unlock()
			if _, err := s.AddReadings(ctx, []custody.Reading{reading(fmt.Sprintf("SHP-%d", j%50), j, true)}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "readings/s")
}
