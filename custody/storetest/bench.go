package storetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// BenchAppend measures durable appends to l with writers concurrent
// writers, each waiting for its record's commit, and reports records/s.
// Each writer fills chains of 30 records, the length of a whole journey
// with notes, so chain summaries stay the size they have in use. Every
// backend's append benchmark runs this, so their figures compare.
func BenchAppend(b *testing.B, l custody.Ledger, writers int) {
	const perChain = 30
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 1; w <= writers; w++ {
		wg.Go(func() {
			for n := 0; next.Add(1) <= int64(b.N); n++ {
				coi, k := COI(w+writers*(n/perChain)), n%perChain
				if _, err := l.Append(context.Background(), Draft(coi, n, k == 0, uint64(k))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}
