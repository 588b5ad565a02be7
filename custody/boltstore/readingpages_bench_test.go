package boltstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
)

// BenchmarkShipperReadingsPage reads one 500-reading page from the middle
// of a shipper's 1,000, 10,000 and 100,000 minute readings (page), and,
// for comparison, what GET /api/v1/shippers/{id}/readings read before it
// paged: every reading from there on (rest).
func BenchmarkShipperReadingsPage(b *testing.B) {
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	for _, n := range []int{1000, 10000, 100000} {
		s, err := boltstore.Open(b.TempDir(), boltstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		batch := make([]custody.Reading, 0, 1000)
		for i := range n {
			temp := -180 + float64(i%7)*0.25
			batch = append(batch, custody.Reading{Shipper: "SHP-0001", Seq: uint64(i), HasSeq: true,
				DeviceTime: t0.Add(time.Duration(i) * time.Minute), TempC: &temp})
			if len(batch) == cap(batch) || i == n-1 {
				if _, err := s.AddReadings(ctx, batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		from := t0.Add(time.Duration(n/2) * time.Minute)
		b.Run(fmt.Sprintf("readings=%d/page", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rs, err := s.ShipperReadingsPage(ctx, "SHP-0001", from, time.Time{}, 500)
				if err != nil || len(rs) != 500 {
					b.Fatalf("page: %d, %v", len(rs), err)
				}
			}
		})
		b.Run(fmt.Sprintf("readings=%d/rest", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rs, _, err := s.ShipperReadings(ctx, "SHP-0001", from, time.Time{}, 0)
				if err != nil || len(rs) != n-n/2 {
					b.Fatalf("rest: %d, %v", len(rs), err)
				}
			}
		})
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
