package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/pgstore"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/custody/storetest"
)

// benchLedger fills a bbolt store in dir with n records over n/100 chains
// (an enroll and notes each), appended by 64 writers.
func benchLedger(b testing.TB, dir string, n int) {
	b.Helper()
	st, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	const writers, perChain = 64, 100
	chains := max(n/perChain, 1)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := w; c < chains; c += writers {
				coi := storetest.COI(c + 1)
				for i := range perChain {
					if _, err := st.Append(context.Background(), storetest.Draft(coi, c*perChain+i, i == 0, uint64(i))); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkMigrate copies a generated ledger (COID_BENCH_MIGRATE_RECORDS
// records, 100000 by default) from bbolt into an empty PostgreSQL schema
// as coid migrate does, and reports the copy's records/s and the
// verification's. The copy's time is what coid migrate reports as its
// own: from the export's read to the last of what is copied after the
// ledger's transaction (Export; Import with its checks, the records' and
// the tree's COPY, the index builds, the rest and the commit, then the
// access and follow-up indexes and the readings; copyAfterLedger), the
// target's schema being created before.
func BenchmarkMigrate(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("COID_BENCH_MIGRATE_RECORDS")); err == nil && v > 0 {
		n = v
	}
	dir := b.TempDir()
	benchLedger(b, dir, n)
	ctx := context.Background()
	src, err := boltstore.Open(dir, boltstore.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	var copyTime, verifyTime time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dst, err := pgstore.Open(ctx, pgtest.Schema(b), pgstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		var want custody.Hash
		err = src.Export(ctx, func(e *custody.Export) error {
			want = e.HeadHash
			_, err := dst.Import(ctx, e, 0, nil)
			return err
		})
		if err == nil {
			err = copyAfterLedger(ctx, src, dst)
		}
		if err != nil {
			b.Fatal(err)
		}
		copyTime += time.Since(start)
		start = time.Now()
		if err := verifyMigration(ctx, src, dst, want, slog.New(slog.DiscardHandler), io.Discard, func(err error) error { return err }); err != nil {
			b.Fatal(err)
		}
		verifyTime += time.Since(start)
		b.StopTimer()
		dst.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/copyTime.Seconds(), "records/s")
	b.ReportMetric(float64(n*b.N)/verifyTime.Seconds(), "verified-records/s")
}
