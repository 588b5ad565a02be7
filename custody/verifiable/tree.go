package verifiable

import (
	"fmt"
	"math/bits"

	"github.com/coid-project/coid/custody"
	"golang.org/x/mod/sumdb/tlog"
)

// Hash is a Merkle tree hash (SHA-256).
type Hash = tlog.Hash

// LeafHash returns the RFC 6962 leaf hash of a record's canonical
// encoding (SHA-256 of 0x00 followed by the bytes).
func LeafHash(canonical []byte) Hash { return tlog.RecordHash(canonical) }

// StoredHashIndex returns where the hash at level of node n is kept among
// the stored hashes: leaf n (record seq n+1) is StoredHashIndex(0, n).
func StoredHashIndex(level int, n int64) int64 { return tlog.StoredHashIndex(level, n) }

// StoredHashCount returns how many stored hashes a tree of n leaves has.
func StoredHashCount(n int64) int64 { return tlog.StoredHashCount(n) }

// HashReader reads stored hashes by their index (StoredHashIndex). It
// returns ErrNotFound (wrapped) for an index not stored yet.
type HashReader = tlog.HashReader

// TreeHash returns the root of the tree of the first n leaves.
func TreeHash(n int64, r HashReader) (Hash, error) {
	// n == 0: RFC 6962's empty tree, SHA-256 of nothing.
	return tlog.TreeHash(n, r)
}

// InclusionProof returns the proof that leaf index leaf is in the tree of
// size leaves (RFC 6962 audit path).
func InclusionProof(leaf, size int64, r HashReader) ([]Hash, error) {
	if leaf < 0 || size <= leaf {
		return nil, fmt.Errorf("inclusion proof: record %d is not in a tree of %d records: %w", leaf+1, size, custody.ErrInvalid)
	}
	p, err := tlog.ProveRecord(size, leaf, r)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof: %w", err)
	}
	return p, nil
}

// ConsistencyProof returns the proof that the tree of size to extends the
// tree of size from (RFC 6962 consistency proof); 0 < from <= to.
func ConsistencyProof(from, to int64, r HashReader) ([]Hash, error) {
	if from <= 0 || to < from {
		return nil, fmt.Errorf("consistency proof: sizes %d and %d: want 0 < from <= to: %w", from, to, custody.ErrInvalid)
	}
	p, err := tlog.ProveTree(to, from, r)
	if err != nil {
		return nil, fmt.Errorf("consistency proof: %w", err)
	}
	return p, nil
}

// Edge is the right edge of a tree: the roots of its complete subtrees,
// largest first. It gives the stored hashes each new leaf adds from the
// leaf's hash alone, without reading the stored hashes again: how a tree
// of many leaves is built in one pass. The zero Edge is the empty tree's.
type Edge struct {
	n     int64
	roots []Hash
}

// LoadEdge returns the edge of the tree of the first n leaves, read from
// its stored hashes.
func LoadEdge(n int64, r HashReader) (*Edge, error) {
	var idx []int64
	for level := 62; level >= 0; level-- {
		if n>>level&1 == 1 {
			idx = append(idx, StoredHashIndex(level, n>>level-1))
		}
	}
	roots, err := r.ReadHashes(idx)
	if err != nil {
		return nil, fmt.Errorf("tree edge at %d leaves: %w", n, err)
	}
	if len(roots) != len(idx) {
		return nil, fmt.Errorf("tree edge at %d leaves: %d hashes read, want %d: %w", n, len(roots), len(idx), custody.ErrChainBroken)
	}
	return &Edge{n: n, roots: roots}, nil
}

// NewEdge returns the edge of the tree of n leaves whose complete
// subtrees' roots, largest first, are roots (as Roots returns them): one
// for each bit set in n, else ErrChainBroken.
func NewEdge(n int64, roots []Hash) (*Edge, error) {
	if n < 0 || len(roots) != bits.OnesCount64(uint64(n)) {
		return nil, fmt.Errorf("tree edge at %d leaves: %d roots: %w", n, len(roots), custody.ErrChainBroken)
	}
	return &Edge{n: n, roots: append(make([]Hash, 0, len(roots)+1), roots...)}, nil
}

// Size returns how many leaves the tree holds.
func (e *Edge) Size() int64 { return e.n }

// Add adds the leaf of hash leaf (LeafHash) and appends to out the stored
// hashes it adds, from StoredHashIndex(0, Size()) before the call on, as
// tlog.StoredHashesForRecordHash returns them.
func (e *Edge) Add(leaf Hash, out []Hash) []Hash {
	h := leaf
	out = append(out, h)
	for level := 0; e.n>>level&1 == 1; level++ {
		h = tlog.NodeHash(e.roots[len(e.roots)-1], h)
		e.roots = e.roots[:len(e.roots)-1]
		out = append(out, h)
	}
	e.roots = append(e.roots, h)
	e.n++
	return out
}

// Roots returns the roots of the tree's complete subtrees, largest first
// (the tree's frontier), in a slice of the caller's.
func (e *Edge) Roots() []Hash { return append([]Hash(nil), e.roots...) }

// Clone returns a copy of the edge that grows apart from e: a writer
// keeps the edge of its committed tree and adds a batch's leaves to a
// copy, which replaces it only once the batch is durable.
func (e *Edge) Clone() *Edge {
	return &Edge{n: e.n, roots: append(make([]Hash, 0, len(e.roots)+1), e.roots...)}
}

// maxRoots is the most roots an edge has: one for each bit of a size.
const maxRoots = 63

// CloneTo is Clone into dst's memory, for a writer that adds every batch
// to a copy: dst (nil: a new Edge) becomes a copy of e that grows apart
// from it, and is returned. Its roots have room for any size, so neither
// the copy nor the leaves added to it allocate once dst has been used.
func (e *Edge) CloneTo(dst *Edge) *Edge {
	if dst == nil {
		dst = &Edge{}
	}
	if cap(dst.roots) < maxRoots {
		dst.roots = make([]Hash, 0, maxRoots)
	}
	dst.n, dst.roots = e.n, append(dst.roots[:0], e.roots...)
	return dst
}

// NodeHash returns the RFC 6962 hash of an interior node from its left
// and right children's hashes.
func NodeHash(left, right Hash) Hash { return tlog.NodeHash(left, right) }

// SplitStoredHashIndex is the inverse of StoredHashIndex: the level and
// node number of the stored hash at index.
func SplitStoredHashIndex(index int64) (level int, n int64) { return tlog.SplitStoredHashIndex(index) }
