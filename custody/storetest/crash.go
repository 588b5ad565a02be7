package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// testCrash: a crash while appends are in flight loses nothing that was
// acknowledged, leaves a store that verifies, and appends go on after its
// head.
func testCrash(t *testing.T, b Backend, s Store) {
	if b.Crash == nil {
		t.Skip("the backend cannot simulate a crash (Backend.Crash)")
	}
	ctx := context.Background()
	const chains, before = 8, 3
	var mu sync.Mutex
	acked := map[uint64]custody.Hash{}
	for c := 1; c <= chains; c++ {
		for k := range before {
			r := mustAppend(t, s, Draft(COI(c), c*1000+k, k == 0, uint64(k)))
			acked[r.Seq] = r.Hash
		}
	}
	var rs []custody.Reading
	for i := range 10 {
		rs = append(rs, reading("SHP-K", i))
	}
	if res, err := s.AddReadings(ctx, rs); err != nil || res.Stored != len(rs) {
		t.Fatalf("readings: %+v %v", res, err)
	}
	// Writers go on appending while the crash happens.
	stop := make(chan struct{})
	progress := make(chan struct{}, 1)
	var wg sync.WaitGroup
	for c := 1; c <= chains; c++ {
		wg.Go(func() {
			for k := before; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				r, err := s.Append(ctx, Draft(COI(c), c*1000+k, false, uint64(k)))
				if err != nil {
					t.Errorf("chain %d append %d: %v", c, k, err)
					return
				}
				mu.Lock()
				acked[r.Seq] = r.Hash
				if len(acked) >= chains*(before+2) {
					select {
					case progress <- struct{}{}:
					default:
					}
				}
				mu.Unlock()
			}
		})
	}
	select {
	case <-progress:
	case <-time.After(hangBound):
		t.Fatal("appends made no progress")
	}
	mu.Lock()
	pre := make(map[uint64]custody.Hash, len(acked))
	for seq, h := range acked {
		pre[seq] = h
	}
	mu.Unlock()
	c2 := b.Crash(t, s) // every record in pre was acknowledged before
	close(stop)
	wg.Wait()

	var last uint64
	for seq, h := range pre {
		r, err := c2.Record(ctx, seq)
		if err != nil || r.Hash != h {
			t.Fatalf("record %d acknowledged before the crash: %v (hash %s, acknowledged %s)", seq, err, r.Hash, h)
		}
		last = max(last, seq)
	}
	verifyAll(t, c2)
	hs, hh := head(t, c2)
	if hs < last {
		t.Fatalf("head %d after the crash, before records acknowledged up to %d", hs, last)
	}
	again, err := c2.AddReadings(ctx, rs)
	if err != nil || again.Stored != 0 || again.Duplicates != len(rs) {
		t.Fatalf("readings redelivered after the crash: %+v %v", again, err)
	}
	for c := 1; c <= chains; c++ {
		ci, err := c2.Chain(ctx, COI(c))
		if err != nil {
			t.Fatal(err)
		}
		r := mustAppend(t, c2, Draft(COI(c), c*1000+900, false, ci.Records))
		if r.Seq != hs+1 || r.Prev != hh || r.ChainSeq != ci.Records+1 || r.ChainPrev != ci.HeadHash {
			t.Fatalf("append after the crash: %+v, after head %d and chain %+v", r, hs, ci)
		}
		hs, hh = r.Seq, r.Hash
	}
	verifyAll(t, c2)
}
