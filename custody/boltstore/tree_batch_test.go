package boltstore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/storetest"
	"github.com/coid-project/coid/custody/verifiable"
)

// TestWriterEdgeFollowsTheCommittedTree drives the writer's transactions
// with its caches (as the group commit does) through batches of every
// size, on both sides of treeAsyncMin, one with a draft that fails alone,
// one whose transaction fails after its leaves were hashed, and one begun
// with an edge of another size: the tree stays the independent library's
// tree of the records committed, and the cached edge only ever follows a
// committed batch.
func TestWriterEdgeFollowsTheCommittedTree(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	cache, edges := chainCache{}, &edgeCache{}
	// The idle writer's catching up is TestTreeCatchesUpOnceIdle's: here
	// the hashes wait until a commit or Close writes them.
	s.treeIdle.Stop()
	s.treeIdle = time.AfterFunc(time.Hour, func() {})
	next := 0
	drafts := func(n int) []*appendReq {
		var reqs []*appendReq
		for range n {
			next++
			reqs = append(reqs, newAppendReq(storetest.Draft(storetest.COI(next), next, true, 0)))
		}
		return reqs
	}
	run := func(reqs []*appendReq, fail bool) ([]custody.Outcome[custody.Record], error) {
		b := s.begin(cache, edges)
		for _, r := range reqs {
			b.Add(r)
		}
		if fail {
			// The transaction ends under the batch: Commit hashes the
			// leaves, then its first write fails.
			if err := b.tx.Rollback(); err != nil {
				t.Fatal(err)
			}
		}
		out := make([]custody.Outcome[custody.Record], len(reqs))
		return out, b.Commit(out)
	}
	commit := func(reqs []*appendReq) {
		t.Helper()
		out, err := run(reqs, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
		}
	}
	treeSize := func() int64 {
		n, err := s.TreeSize(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	head := func() int64 {
		n, _, err := s.Head(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return int64(n)
	}
	for _, n := range []int{1, 2, treeAsyncMin - 1, treeAsyncMin, 1, treeLagMin - 1, 3} {
		commit(drafts(n))
		edges.settle()
		if edges.edge == nil || edges.edge.Size() != treeSize() || treeSize() != head() || len(edges.pending) != 0 {
			t.Fatalf("after a batch of %d: cached edge %v, tree of %d, head %d", n, edges.edge, treeSize(), head())
		}
	}
	// Large batches leave their hashes waiting, in the cache, the file's
	// tree unchanged, until the batch that reaches treeLagMax hashes
	// writes them all.
	size := treeSize()
	for i := 0; ; i++ {
		commit(drafts(200))
		edges.settle() // the commit did not wait for the batch's hashing
		if treeSize() == head() {
			if i == 0 || len(edges.pending) != 0 {
				t.Fatalf("batch %d wrote the tree, %d hashes still waiting", i, len(edges.pending))
			}
			break
		}
		if treeSize() != size || edges.durable != size || edges.edge.Size() != head() ||
			int64(len(edges.pending)) != keptCount(head())-keptCount(size) {
			t.Fatalf("batch %d: tree %d (was %d), head %d, cache at %d with %d hashes waiting", i, treeSize(), size, head(), edges.durable, len(edges.pending))
		}
		if i > treeLagMax/24+1 { // 200 records keep about 25 hashes
			t.Fatalf("%d hashes wait", len(edges.pending))
		}
	}
	checkTreeMatches(t, s)
	// A small batch writes the hashes waiting with its own.
	commit(drafts(treeLagMin))
	if treeSize() == head() {
		t.Fatal("a large batch wrote the tree")
	}
	commit(drafts(2))
	checkTreeMatches(t, s)
	// A draft that fails alone adds no leaf.
	reqs := drafts(10)
	reqs[4] = newAppendReq(storetest.Draft(storetest.COI(99999), next, false, 0)) // unknown chain
	out, err := run(reqs, false)
	if err != nil || !errors.Is(out[4].Err, custody.ErrNotFound) {
		t.Fatalf("%v, draft 4: %v", err, out[4].Err)
	}
	checkTreeMatches(t, s)
	// A failed transaction leaves the cache at the committed tree, the
	// hashes waiting included.
	commit(drafts(40))
	edges.settle()
	before, waiting := head(), len(edges.pending)
	if treeSize() == before || waiting == 0 {
		t.Fatal("nothing waits")
	}
	for _, n := range []int{3, 40, 100} {
		if _, err := run(drafts(n), true); err == nil {
			t.Fatal("the rolled-back batch committed")
		}
		if head() != before || edges.edge.Size() != before || len(edges.pending) != waiting {
			t.Fatalf("after a failed batch: head %d, cached edge %d with %d hashes waiting, want %d with %d", head(), edges.edge.Size(), len(edges.pending), before, waiting)
		}
	}
	commit(drafts(50))
	commit(drafts(1))
	checkTreeMatches(t, s)
	// An edge of another size is not used: the batch reads the tree's.
	edges.settle()
	edges.edge.Add(verifiable.LeafHash([]byte("not a record")), nil)
	commit(drafts(20))
	commit(drafts(1))
	checkTreeMatches(t, s)
	// Nor one that does not follow the file's tree: the batch hashes the
	// records the tree lacks from the log.
	commit(drafts(30))
	edges.settle()
	edges.durable--
	commit(drafts(30))
	commit(drafts(1))
	checkTreeMatches(t, s)
	// Hashes left waiting are written at Close: a reader (which does not
	// build the tree) finds it complete.
	commit(drafts(30))
	if treeSize() == head() {
		t.Fatal("nothing waits")
	}
	dir := s.path[:len(s.path)-len(FileName)]
	want := head()
	s.Close()
	r, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n, err := r.TreeSize(context.Background()); err != nil || n != want {
		t.Fatalf("tree of %d (%v) after Close, want %d", n, err, want)
	}
	checkTreeMatches(t, r)
}

// TestTreeCatchesUpOnceIdle appends through the writer with enough
// callers that its commits leave their tree hashes waiting, then stops:
// the idle writer writes them, and proofs cover every record.
func TestTreeCatchesUpOnceIdle(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	defer s.Close()
	ctx := context.Background()
	const writers, each = 64, 20
	var wg sync.WaitGroup
	for w := 1; w <= writers; w++ {
		wg.Go(func() {
			for k := range each {
				if _, err := s.Append(ctx, storetest.Draft(storetest.COI(w), w*1000+k, k == 0, uint64(k))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// The size only ever counts records whose hashes are stored: every
	// read of it meanwhile is a tree that proves.
	l := newLog(t, s, dir)
	for deadline := time.Now().Add(time.Minute); ; {
		n, err := s.TreeSize(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			if _, err := l.Inclusion(ctx, uint64(n), n); err != nil {
				t.Fatalf("proof at %d: %v", n, err)
			}
		}
		if n == writers*each {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tree holds %d of %d records a minute after the last append", n, writers*each)
		}
		time.Sleep(time.Millisecond)
	}
	checkTreeMatches(t, s)
}

// TestWriterBatchesReuseTheirTreeMemory drives the writer's transactions
// with its caches through batches that leave their hashes waiting and
// batches that write them: the batches' leaves' lists and edges are two
// or three arrays used in turn, not new ones for each batch, and neither
// a batch whose hashes wait nor a list kept for the next batch holds its
// records once they are hashed.
func TestWriterBatchesReuseTheirTreeMemory(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	cache, edges := chainCache{}, &edgeCache{}
	s.treeIdle.Stop()
	s.treeIdle = time.AfterFunc(time.Hour, func() {})
	lists, edgeSeen := map[*[]byte]bool{}, map[*verifiable.Edge]bool{}
	next := 0
	for i, n := range []int{40, 40, 40, 40, 2, 40, 40, 3, 40, 40, 40, 1} {
		b := s.begin(cache, edges)
		for range n {
			next++
			b.Add(newAppendReq(storetest.Draft(storetest.COI(next), next, true, 0)))
		}
		out := make([]custody.Outcome[custody.Record], n)
		if err := b.Commit(out); err != nil {
			t.Fatal(err)
		}
		if i > 0 { // the first batch's edge is read from the file
			lists[&b.leaves.leaves[0]] = true
			edgeSeen[b.leaves.edge] = true
		}
		// A batch whose hashes wait keeps none of its records once
		// hashed.
		if h := edges.hashing; h != nil {
			h.wait()
			for j, enc := range h.leaves {
				if enc != nil {
					t.Fatalf("batch %d: its hashes wait with record %d", i, j)
				}
			}
		}
		for _, l := range edges.spareLeaves {
			for j, enc := range l[:cap(l)] {
				if enc != nil {
					t.Fatalf("batch %d: a spare list still holds record %d", i, j)
				}
			}
		}
	}
	if len(lists) > 2 || len(edgeSeen) > 3 {
		t.Fatalf("%d leaves' lists and %d edges for 11 batches", len(lists), len(edgeSeen))
	}
	checkTreeMatches(t, s)
}
