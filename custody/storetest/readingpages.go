package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// testReadingsPaged: ShipperReadingsPage pages a shipper's readings in
// CompareReadings order from the time index, never splitting the readings
// of one instant; paging with the last device time as the cursor lists
// every reading once, including those stored between pages after the
// cursor, and none stored before it or of another shipper.
func testReadingsPaged(t *testing.T, s Store) {
	ctx := context.Background()
	add := func(rs ...custody.Reading) {
		t.Helper()
		if _, err := s.AddReadings(ctx, rs); err != nil {
			t.Fatal(err)
		}
	}
	// Readings at minutes 0-9; minute 3 holds two readings (seq 3 and
	// 103); another shipper's readings lie in between.
	for i := range 10 {
		add(reading("SHP-P", i), reading("SHP-Q", i))
	}
	twin := reading("SHP-P", 3)
	twin.Seq = 103
	add(twin)

	seqs := func(from, to time.Time, limit int, between func(page int)) []uint64 {
		t.Helper()
		var got []uint64
		for p := 0; ; p++ {
			rs, err := s.ShipperReadingsPage(ctx, "SHP-P", from, to, limit)
			if err != nil {
				t.Fatalf("ShipperReadingsPage(from %v, limit %d): %v", from, limit, err)
			}
			for i, r := range rs {
				if r.Shipper != "SHP-P" || r.ReceivedTime.IsZero() {
					t.Fatalf("page lists %+v", r)
				}
				if i > 0 && custody.CompareReadings(rs[i-1], r) >= 0 {
					t.Fatalf("page out of order: %v", rs)
				}
				got = append(got, r.Seq)
			}
			if len(rs) < limit {
				return got
			}
			from = rs[len(rs)-1].DeviceTime.Add(time.Nanosecond)
			if between != nil {
				between(p)
			}
			if p > 30 {
				t.Fatalf("paging does not end: %v", got)
			}
		}
	}
	if got, want := seqs(time.Time{}, time.Time{}, 2, nil), []uint64{0, 1, 2, 3, 103, 4, 5, 6, 7, 8, 9}; !slices.Equal(got, want) {
		t.Fatalf("paged readings %v, want %v", got, want)
	}
	// The twin instant is not split: a page of 4 from minute 0 holds 5.
	if rs, err := s.ShipperReadingsPage(ctx, "SHP-P", time.Time{}, time.Time{}, 4); err != nil || len(rs) != 5 {
		t.Fatalf("page of 4 ending on the twin instant: %d readings, %v; want 5", len(rs), err)
	}
	// Bounded by from and to (inclusive), as ShipperReadings.
	if got, want := seqs(t0.Add(2*time.Minute), t0.Add(5*time.Minute), 3, nil), []uint64{2, 3, 103, 4, 5}; !slices.Equal(got, want) {
		t.Fatalf("paged readings of minutes 2-5 %v, want %v", got, want)
	}
	// Readings stored between pages: minute 1.5 (before the cursor) is
	// not listed, 4.5 and 20 (after it) are.
	got := seqs(time.Time{}, time.Time{}, 3, func(p int) {
		if p == 0 {
			early, mid, late := reading("SHP-P", 50), reading("SHP-P", 51), reading("SHP-P", 20)
			early.DeviceTime = t0.Add(90 * time.Second)
			mid.DeviceTime = t0.Add(270 * time.Second)
			add(early, mid, late)
		}
	})
	if want := []uint64{0, 1, 2, 3, 103, 4, 51, 5, 6, 7, 8, 9, 20}; !slices.Equal(got, want) {
		t.Fatalf("paged readings while storing %v, want %v", got, want)
	}
	if rs, err := s.ShipperReadingsPage(ctx, "SHP-NONE", time.Time{}, time.Time{}, 5); err != nil || len(rs) != 0 {
		t.Fatalf("readings of an unknown shipper: %v, %v", rs, err)
	}
	if _, err := s.ShipperReadingsPage(ctx, "SHP-P", time.Time{}, time.Time{}, 0); err == nil {
		t.Fatal("ShipperReadingsPage with limit 0: no error")
	}
}
