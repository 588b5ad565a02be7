package boltstore

import (
	"context"
	"sync"
	"testing"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/storetest"
)

// BenchmarkChains10k lists 10,000 chain summaries, as the scoped chain
// list and the QA console do on every request.
func BenchmarkChains10k(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 10000; i += 50 {
				d := storetest.Draft(storetest.COI(i+1), i, true, 0)
				d.Sites = custody.Sites{Collection: "S001", Manufacturing: "MFG-1", Treatment: "S002"}
				d.OpenIssues.Kept = true
				if _, err := s.Append(ctx, d); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := s.Chains(ctx, ""); err != nil {
			b.Fatal(err)
		}
	}
}
