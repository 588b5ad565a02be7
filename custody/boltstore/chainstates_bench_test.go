package boltstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/storetest"
)

// BenchmarkChainsInStatePage reads, from the store, one 5-chain page of
// the chains in a rare state (one chain in a hundred is collected) from a
// quarter of the way into stores of 1,000, 10,000 and 100,000 chains:
// with the chain-state index a page costs the page, not the summaries in
// other states it would step over.
func BenchmarkChainsInStatePage(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("chains=%d", n), func(b *testing.B) {
			s, err := boltstore.Open(b.TempDir(), boltstore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			var wg sync.WaitGroup
			for w := range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < n; i += 64 {
						d := storetest.Draft(storetest.COI(i+1), i, true, 0)
						if i%100 == 0 {
							d.State = custody.StateCollected
						}
						if _, err := s.Append(ctx, d); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			mid := storetest.COI(n / 4)
			b.ReportAllocs()
			for b.Loop() {
				p, err := s.ChainsAfter(ctx, custody.StateCollected, mid, 5)
				if err != nil || len(p) != 5 {
					b.Fatalf("page: %d, %v", len(p), err)
				}
			}
		})
	}
}
