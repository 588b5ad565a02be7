package pgstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/coid-project/coid/custody"

	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/custody/storetest"
)

// BenchmarkAppend64 measures durable appends with 64 writers on PostgreSQL
// (synchronous_commit and fsync as the server has them, on by default) and
// on bbolt in the same run, so the two figures compare on one machine
// under one load.
func BenchmarkAppend64(b *testing.B) {
	b.Run("postgres", func(b *testing.B) {
		storetest.BenchAppend(b, open(b, pgtest.Schema(b)), 64)
	})
	b.Run("bbolt", func(b *testing.B) {
		s, err := boltstore.Open(b.TempDir(), boltstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		storetest.BenchAppend(b, s, 64)
	})
}

// BenchmarkAccessRows measures what the triage queue reads of the store
// over n open requests: the access index's rows ("index"), and, for
// comparison, what the service read before the index was kept
// ("fold": the submitted chains' summaries, then each request's records,
// folded into its row; the service's own fold of each request is on top
// of that).
func BenchmarkAccessRows(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		ctx := context.Background()
		s := open(b, pgtest.Schema(b))
		ids := make(chan int)
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				for i := range ids {
					rec := triageRecord(custody.COI(fmt.Sprintf("EAA9999260%05d", i)), custody.StepAccessSubmit, i%60, submitData)
					w, err := custody.AccessRowOf([]custody.Record{rec})
					if err != nil {
						b.Error(err)
						return
					}
					if _, err := s.Append(ctx, custody.Draft{Record: rec, NewChain: true, State: custody.AccessSubmitted, Product: "CART-19",
						Sites: custody.Sites{Treatment: "PAR-1", Manufacturing: "MFG-1"}, Access: &w}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		for i := range n {
			ids <- i
		}
		close(ids)
		wg.Wait()
		b.Run(fmt.Sprintf("index/%d", n), func(b *testing.B) {
			for b.Loop() {
				rows, err := s.AccessRows(ctx, custody.AccessSubmitted, custody.AccessInfoRequested)
				if err != nil || len(rows) != n {
					b.Fatalf("%d rows, %v", len(rows), err)
				}
			}
		})
		b.Run(fmt.Sprintf("fold/%d", n), func(b *testing.B) {
			for b.Loop() {
				infos, err := s.Chains(ctx, custody.AccessSubmitted)
				if err != nil || len(infos) != n {
					b.Fatalf("%d chains, %v", len(infos), err)
				}
				for _, ci := range infos {
					recs, err := s.Records(ctx, ci.COI)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := custody.AccessRowOf(recs); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
