package verifiable_test

import (
	"fmt"
	"testing"

	"github.com/coid-project/coid/custody/verifiable"
	"golang.org/x/mod/sumdb/tlog"
)

// TestEdgeAddsWhatNewHashesAdds grows a tree leaf by leaf along an Edge
// and checks, at every size, that the edge adds exactly the stored
// hashes tlog.StoredHashesForRecordHash computes from the stored hashes, that the edge
// read back from them (LoadEdge) is the one grown, and that a clone grows
// apart from the edge it was taken from.
func TestEdgeAddsWhatNewHashesAdds(t *testing.T) {
	var stored []verifiable.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= int64(len(stored)) {
				return nil, fmt.Errorf("hash %d not stored", x)
			}
			out[i] = stored[x]
		}
		return out, nil
	})
	edge, err := verifiable.LoadEdge(0, r)
	if err != nil {
		t.Fatal(err)
	}
	for n := int64(0); n < 600; n++ {
		leaf := verifiable.LeafHash(fmt.Appendf(nil, "record %d", n))
		want, err := tlog.StoredHashesForRecordHash(n, leaf, r)
		if err != nil {
			t.Fatal(err)
		}
		// A clone taken now and grown by another leaf leaves edge as it
		// was.
		clone := edge.Clone()
		clone.Add(verifiable.LeafHash([]byte("another")), nil)
		got := edge.Add(leaf, nil)
		if len(got) != len(want) {
			t.Fatalf("leaf %d: %d hashes, want %d", n, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("leaf %d: hash %d differs", n, i)
			}
		}
		if clone.Size() != n+1 || edge.Size() != n+1 {
			t.Fatalf("leaf %d: sizes %d and %d", n, edge.Size(), clone.Size())
		}
		stored = append(stored, got...)
		if int64(len(stored)) != verifiable.StoredHashCount(n+1) {
			t.Fatalf("leaf %d: %d stored hashes, want %d", n, len(stored), verifiable.StoredHashCount(n+1))
		}
		loaded, err := verifiable.LoadEdge(n+1, r)
		if err != nil {
			t.Fatal(err)
		}
		// Both edges give the same hashes for the next leaf.
		next := verifiable.LeafHash([]byte("next"))
		a, b := loaded.Add(next, nil), edge.Clone().Add(next, nil)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("size %d: the loaded edge differs from the grown one", n+1)
		}
	}
}

// TestEdgeCloneTo checks that a copy made into a spare edge, whatever the
// spare held and whichever size the edge has, adds the same hashes as a
// Clone and leaves the edge as it was, and that once the spare has been
// used neither the copy nor the leaves added to it allocate.
func TestEdgeCloneTo(t *testing.T) {
	leaf := func(n int64) verifiable.Hash { return verifiable.LeafHash(fmt.Appendf(nil, "record %d", n)) }
	grow := func(e *verifiable.Edge, n int64) *verifiable.Edge {
		for i := e.Size(); i < n; i++ {
			e.Add(leaf(i), nil)
		}
		return e
	}
	for _, tc := range []struct {
		name        string
		size, spare int64 // the edge's size, the spare's (-1: none)
		add         int64 // leaves added to the copy
	}{
		{"empty into none", 0, -1, 5},
		{"into none", 37, -1, 100},
		{"into a smaller spare", 1023, 3, 1},
		{"into a larger spare", 5, 4096, 300},
		{"into an empty spare", 64, 0, 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edge := grow(&verifiable.Edge{}, tc.size)
			var spare *verifiable.Edge
			if tc.spare >= 0 {
				spare = grow(&verifiable.Edge{}, tc.spare)
			}
			roots := fmt.Sprint(edge.Roots())
			cp, clone := edge.CloneTo(spare), edge.Clone()
			if spare != nil && cp != spare {
				t.Fatal("the copy is not in the spare")
			}
			for i := tc.size; i < tc.size+tc.add; i++ {
				a, b := cp.Add(leaf(i), nil), clone.Add(leaf(i), nil)
				if fmt.Sprint(a) != fmt.Sprint(b) {
					t.Fatalf("leaf %d: the copy adds %v, the clone %v", i, a, b)
				}
			}
			if cp.Size() != clone.Size() || fmt.Sprint(cp.Roots()) != fmt.Sprint(clone.Roots()) {
				t.Fatalf("the copy is at %d, the clone at %d", cp.Size(), clone.Size())
			}
			if edge.Size() != tc.size || fmt.Sprint(edge.Roots()) != roots {
				t.Fatal("growing the copy changed the edge")
			}
		})
	}
	edge := grow(&verifiable.Edge{}, 1000)
	spare, h := edge.CloneTo(nil), leaf(0)
	out := make([]verifiable.Hash, 0, 64)
	if n := testing.AllocsPerRun(20, func() {
		cp := edge.CloneTo(spare)
		for range 5000 { // from 3 roots to 12 and back
			out = cp.Add(h, out[:0])
		}
	}); n != 0 {
		t.Fatalf("a copy into a used spare and its leaves allocate %v times", n)
	}
}
