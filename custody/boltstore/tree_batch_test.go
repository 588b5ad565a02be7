package boltstore

import (
	"context"
	"errors"
	"testing"

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
	for _, n := range []int{1, 2, treeAsyncMin - 1, treeAsyncMin, 1, 31, 64, 200, 3} {
		commit(drafts(n))
		if edges.edge == nil || edges.edge.Size() != treeSize() {
			t.Fatalf("after a batch of %d: cached edge %v, tree of %d", n, edges.edge, treeSize())
		}
	}
	// A draft that fails alone adds no leaf.
	reqs := drafts(10)
	reqs[4] = newAppendReq(storetest.Draft(storetest.COI(99999), next, false, 0)) // unknown chain
	out, err := run(reqs, false)
	if err != nil || !errors.Is(out[4].Err, custody.ErrNotFound) {
		t.Fatalf("%v, draft 4: %v", err, out[4].Err)
	}
	checkTreeMatches(t, s)
	// A failed transaction leaves the cached edge at the committed tree.
	before := treeSize()
	for _, n := range []int{3, 40} {
		if _, err := run(drafts(n), true); err == nil {
			t.Fatal("the rolled-back batch committed")
		}
		if treeSize() != before || edges.edge.Size() != before {
			t.Fatalf("after a failed batch: tree %d, cached edge %d, want %d", treeSize(), edges.edge.Size(), before)
		}
	}
	commit(drafts(50))
	checkTreeMatches(t, s)
	// An edge of another size is not used: the batch reads the tree's.
	edges.edge.Add(verifiable.LeafHash([]byte("not a record")), nil)
	commit(drafts(20))
	commit(drafts(1))
	checkTreeMatches(t, s)
}
