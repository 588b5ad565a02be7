package boltstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// BenchmarkReadingsOnDisk stores b.N minute readings of 1,000 shippers
// (seq-numbered, temperature at 0.01 °C, a full set of values on every
// tenth), committed in batches of 4,096, and reports the file's size per
// reading (keys, the time index and the reading log included) and the
// ingest rate. Run with -benchtime=1000000x for the figure in the README.
func BenchmarkReadingsOnDisk(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	const shippers, batch = 1000, 4096
	rs := make([]custody.Reading, 0, batch)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sh, n := i%shippers, i/shippers
		dev := t0.Add(time.Duration(n) * time.Minute)
		r := custody.Reading{Shipper: fmt.Sprintf("SHP-%06d", sh), Seq: uint64(n), HasSeq: true, DeviceTime: dev,
			ReceivedTime: dev.Add(time.Duration(1500+i%997) * time.Millisecond), TempC: f64(-185 + float64(i%1000)/100)}
		if i%10 == 0 {
			r.TiltDeg, r.LidOpen, r.Light = f64(2.5), bp(false), bp(false)
			r.BatteryPct, r.LN2Pct, r.Lat, r.Lon = f64(87), f64(71.5), f64(52.520008), f64(13.404954)
		}
		rs = append(rs, r)
		if len(rs) == batch || i == b.N-1 {
			if _, err := s.AddReadings(ctx, rs); err != nil {
				b.Fatal(err)
			}
			rs = rs[:0]
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "readings/s")
	// The bytes each bucket's pages hold per reading (keys, values and
	// bbolt's 16-byte element headers), to tell what the file is made of.
	if err := s.view(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketReadings, bucketReadingTimes, bucketReadingBatch, bucketReadingBlocks,
			bucketReadingBlockTimes, bucketReadingLog, bucketReadingShippers, bucketReadingShipperNos} {
			st := tx.Bucket(name).Stats()
			if st.KeyN == 0 {
				continue
			}
			b.ReportMetric(float64(st.LeafInuse+st.BranchInuse)/float64(b.N), string(name)+"-B/reading")
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(st.Size())/float64(b.N), "bytes/reading")
}
