package boltstore

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/storetest"
)

// BenchmarkExcursionChainsPage reads one page of 50 chains from the
// excursion index (all, and open only) in the middle of stores of 1,000,
// 10,000 and 100,000 chains that each hold an excursion record (one in
// ten still open): a page's cost must not grow with the store.
func BenchmarkExcursionChainsPage(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("chains=%d", n), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{})
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
						// The enroll draft stands for a chain with an
						// excursion record: the store indexes by step.
						d := storetest.Draft(storetest.COI(i+1), i, true, 0)
						d.Record.Step = custody.StepExcursion
						d.OpenIssues = custody.IssueCounts{Kept: true}
						if i%10 == 0 {
							d.OpenIssues.Excursions = 1
						}
						if _, err := s.Append(ctx, d); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			mid := storetest.COI(n / 2)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				for _, open := range []bool{false, true} {
					page, err := s.ExcursionChains(ctx, open, mid, 50)
					if err != nil || len(page) != 50 {
						b.Fatalf("page: %d, %v", len(page), err)
					}
				}
			}
		})
	}
}
