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
