package boltstore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// TestReadingConflicts: a redelivery of the same reading is a silent
// duplicate, but a different reading under a stored identity (a logger that
// restarted its seq, two readings with the same device time and no seq)
// refuses the caller's whole batch with ErrReadingConflict and a reason
// naming the shipper, the identity and what differs.
func TestReadingConflicts(t *testing.T) {
	cold, warm := -180.0, -20.0
	seqR := func(seq uint64, dev time.Time, temp float64) custody.Reading {
		return custody.Reading{Shipper: "SHP-1", Seq: seq, HasSeq: true, DeviceTime: dev, ReceivedTime: t0.Add(time.Hour), TempC: f64(temp)}
	}
	timeR := func(dev time.Time, temp float64) custody.Reading {
		return custody.Reading{Shipper: "SHP-1", DeviceTime: dev, ReceivedTime: t0.Add(time.Hour), TempC: f64(temp)}
	}
	later := func(r custody.Reading) custody.Reading { r.ReceivedTime = r.ReceivedTime.Add(time.Minute); return r }
	stored := []custody.Reading{seqR(1, t0, cold), timeR(t0.Add(time.Minute), cold)}
	for _, tc := range []struct {
		name string
		add  []custody.Reading
		// want is nil when the batch must be taken, else what its
		// error must say.
		want     []string
		stored   int // readings stored by the batch
		dups     int
		newTotal int // readings in the store afterwards
	}{
		{name: "redelivery is a duplicate", add: []custody.Reading{later(stored[0]), later(stored[1]), seqR(2, t0.Add(2*time.Minute), cold)},
			stored: 1, dups: 2, newTotal: 3},
		{name: "repeated inside the batch is a duplicate", add: []custody.Reading{seqR(2, t0.Add(2*time.Minute), cold), seqR(2, t0.Add(2*time.Minute), cold)},
			stored: 1, dups: 1, newTotal: 3},
		{name: "restarted seq", add: []custody.Reading{seqR(5, t0.Add(5*time.Minute), cold), seqR(1, t0.Add(time.Hour), warm)},
			want: []string{"shipper SHP-1 seq 1 is already stored", "device_time 2026-11-23T08:00:00Z -> 2026-11-23T09:00:00Z", "temp_c -180 -> -20",
				"nothing of the message was stored"}, newTotal: 2},
		{name: "same device time without seq", add: []custody.Reading{timeR(t0.Add(time.Minute), warm)},
			want: []string{"shipper SHP-1 device time 2026-11-23T08:01:00Z is already stored", "temp_c -180 -> -20"}, newTotal: 2},
		{name: "a value dropped", add: []custody.Reading{{Shipper: "SHP-1", Seq: 1, HasSeq: true, DeviceTime: t0}},
			want: []string{"seq 1", "temp_c -180 -> none"}, newTotal: 2},
		{name: "twice in the batch, differently", add: []custody.Reading{seqR(7, t0, cold), seqR(7, t0, warm), seqR(1, t0, warm)},
			want: []string{"seq 7 appears twice in the message", "temp_c -180 -> -20", "2 of the message's 3 readings conflict"}, newTotal: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir())
			defer s.Close()
			ctx := context.Background()
			if _, err := s.AddReadings(ctx, stored); err != nil {
				t.Fatal(err)
			}
			res, err := s.AddReadings(ctx, tc.add)
			if tc.want == nil {
				if err != nil || res.Stored != tc.stored || res.Duplicates != tc.dups {
					t.Fatalf("got %+v, %v; want stored %d dups %d", res, err, tc.stored, tc.dups)
				}
			} else {
				if !errors.Is(err, custody.ErrReadingConflict) || res.Stored != 0 || res.Duplicates != 0 {
					t.Fatalf("got %+v, %v; want ErrReadingConflict", res, err)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
			}
			if n, _ := s.ReadingsCount(ctx); n != tc.newTotal {
				t.Fatalf("%d readings stored, want %d", n, tc.newTotal)
			}
			// What was stored first is untouched.
			got, _, err := s.ShipperReadings(ctx, "SHP-1", time.Time{}, time.Time{}, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range got {
				if (r.Seq == 1 || !r.HasSeq) && *r.TempC != cold {
					t.Fatalf("stored reading changed: %s", r.AppendCanonical(nil))
				}
			}
		})
	}
}

// TestReadingConflictInOneCommit: requests committed together are judged
// one by one: of two that carry different readings under the same new
// identity, one is stored and the other refused, with its quarantine entry;
// a third request in the same batch is not affected.
func TestReadingConflictInOneCommit(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	a := custody.Reading{Shipper: "S", Seq: 9, HasSeq: true, DeviceTime: t0, TempC: f64(-180)}
	b := a
	b.TempC = f64(-20)
	other := reading("T", 1, true)
	var reqs []*readingsReq
	for i, rs := range [][]custody.Reading{{a}, {b}, {other}} {
		var q *custody.QuarantineEntry
		if i == 1 {
			q = &custody.QuarantineEntry{Topic: "x", Reason: "must not be written", Payload: []byte("x")}
		}
		reqs = append(reqs, &readingsReq{readings: rs, quarantine: q})
	}
	outs := make([]custody.Outcome[custody.IngestResult], len(reqs))
	if err := s.commitReadings(reqs, outs); err != nil { // one transaction, as the writer would
		t.Fatal(err)
	}
	ra, rb, ro := outs[0], outs[1], outs[2]
	if ra.Err != nil || ra.Value.Stored != 1 || ro.Err != nil || ro.Value.Stored != 1 {
		t.Fatalf("first %+v %v, other %+v %v", ra.Value, ra.Err, ro.Value, ro.Err)
	}
	if !errors.Is(rb.Err, custody.ErrReadingConflict) || !strings.Contains(rb.Err.Error(), "temp_c -180 -> -20") {
		t.Fatalf("second: %+v %v", rb.Value, rb.Err)
	}
	if q, _ := s.QuarantineList(context.Background(), 0, 0); len(q) != 0 {
		t.Fatalf("the refused request's quarantine entry was written: %+v", q)
	}
	if n, _ := s.ReadingsCount(context.Background()); n != 2 {
		t.Fatalf("%d readings", n)
	}
}

// TestDamagedReadingIsNoDuplicate: a delivery whose stored twin can no
// longer be read is refused with the reason, not taken for a duplicate.
func TestDamagedReadingIsNoDuplicate(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	ctx := context.Background()
	r := reading("S", 1, true)
	if _, err := s.AddReadings(ctx, []custody.Reading{r}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := bolt.Open(dir+"/"+FileName, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketReadings).Put(r.Key(), []byte{readingV1, 1})
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s = openT(t, dir)
	defer s.Close()
	_, err = s.AddReadings(ctx, []custody.Reading{r})
	if !errors.Is(err, custody.ErrReadingConflict) || !strings.Contains(err.Error(), "unreadable") {
		t.Fatalf("got %v", err)
	}
}
