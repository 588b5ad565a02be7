package boltstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"strconv"
	"sync"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
	bolt "go.etcd.io/bbolt"
)

// The Merkle tree over the log (package verifiable): its stored hashes,
// written by the batch that writes the records, and the signed
// checkpoints.
var (
	bucketTree        = []byte("tree")        // stored hash index / hashGroup (8 bytes BE) -> up to hashGroup hashes (32 each)
	bucketCheckpoints = []byte("checkpoints") // sequence (8 bytes BE) -> size (8 bytes BE) || signed note
	keyTreeSize       = []byte("tree_size")   // in meta: records whose hashes are stored (8 bytes BE)
	treeBuckets       = [][]byte{bucketTree, bucketCheckpoints, bucketCosignatures}
)

var _ verifiable.Source = (*Store)(nil)

// treeBuildChunk is how many records one transaction of the tree's
// building (upgrade) hashes: a crash loses at most that much work.
const treeBuildChunk = 1 << 17

// hashGroup is how many consecutive stored hashes one entry of the tree
// bucket holds: the writer puts one entry per group it changed at commit,
// not one per hash, and a proof reads a few entries.
const hashGroup = 64

// treeHashes reads and writes the stored hashes inside a transaction.
// Hashes added are kept in pending, by group, until flush puts them, and
// are read from there meanwhile. The tree only grows at its end, so a
// group is only ever appended to.
type treeHashes struct {
	b       *bolt.Bucket
	pending map[int64][]byte // group -> its whole value, as it will be
}

func newTreeHashes(b *bolt.Bucket) *treeHashes {
	return &treeHashes{b: b, pending: map[int64][]byte{}}
}

func (r *treeHashes) group(g int64) []byte {
	if v, ok := r.pending[g]; ok {
		return v
	}
	return r.b.Get(u64(uint64(g)))
}

// ReadHashes implements verifiable.HashReader.
func (r *treeHashes) ReadHashes(indexes []int64) ([]verifiable.Hash, error) {
	out := make([]verifiable.Hash, len(indexes))
	for i, idx := range indexes {
		v := r.group(idx / hashGroup)
		off := int(idx%hashGroup) * custody.HashSize
		if idx < 0 || len(v) < off+custody.HashSize {
			return nil, fmt.Errorf("tree hash %d is not stored: %w", idx, custody.ErrNotFound)
		}
		copy(out[i][:], v[off:])
	}
	return out, nil
}

// add appends the stored hash at idx, which must be the next one.
func (r *treeHashes) add(idx int64, h verifiable.Hash) error {
	g := idx / hashGroup
	v, ok := r.pending[g]
	if !ok {
		v = append(make([]byte, 0, hashGroup*custody.HashSize), r.b.Get(u64(uint64(g)))...)
	}
	if len(v) != int(idx%hashGroup)*custody.HashSize {
		return fmt.Errorf("tree hash %d: the tree holds %d hashes of its group: %w", idx, len(v)/custody.HashSize, custody.ErrChainBroken)
	}
	r.pending[g] = append(v, h[:]...)
	return nil
}

// flush puts the groups changed.
func (r *treeHashes) flush() error {
	for g, v := range r.pending {
		if err := r.b.Put(u64(uint64(g)), v); err != nil {
			return err
		}
	}
	clear(r.pending)
	return nil
}

// addLeaf adds the tree hashes leaf n (record n+1, canonical encoding
// enc) adds.
func addLeaf(tree *treeHashes, n int64, enc []byte) error {
	return addLeafHash(tree, n, verifiable.LeafHash(enc))
}

// addLeafHash is addLeaf given the leaf's hash.
func addLeafHash(tree *treeHashes, n int64, leaf verifiable.Hash) error {
	hs, err := verifiable.NewHashesOfLeaf(n, leaf, tree)
	if err != nil {
		return err
	}
	idx := verifiable.StoredHashIndex(0, n)
	for i := range hs {
		if err := tree.add(idx+int64(i), hs[i]); err != nil {
			return err
		}
	}
	return nil
}

// leafHashes returns the leaf hashes of the encodings, computed on
// GOMAXPROCS goroutines, each over a contiguous share.
func leafHashes(encs [][]byte) []verifiable.Hash {
	out := make([]verifiable.Hash, len(encs))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(encs)/1024))
	per := (len(encs) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(encs); lo += per {
		hi := min(lo+per, len(encs))
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				out[i] = verifiable.LeafHash(encs[i])
			}
		})
	}
	wg.Wait()
	return out
}

func readTreeSize(meta *bolt.Bucket) int64 {
	v := meta.Get(keyTreeSize)
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

// buildTree hashes the records the tree does not hold yet: a ledger
// written before the tree existed, once, at its first open by this
// version. It commits every treeBuildChunk records, so an interrupted
// build resumes where it stopped.
func (s *Store) buildTree() error {
	for {
		done := false
		err := s.update(func(tx *bolt.Tx) error {
			meta, treeB, logB := tx.Bucket(bucketMeta), tx.Bucket(bucketTree), tx.Bucket(bucketLog)
			treeB.FillPercent = 1.0
			tree := newTreeHashes(treeB)
			size := readTreeSize(meta)
			head, _ := readHead(meta)
			if uint64(size) >= head {
				done = true
				return nil
			}
			end := min(uint64(size)+treeBuildChunk, head)
			// The records' bytes (valid for the transaction), then their
			// leaf hashes on every core, then the interior hashes in order.
			encs := make([][]byte, 0, end-uint64(size))
			c := logB.Cursor()
			seq := uint64(size) + 1
			for k, v := c.Seek(u64(seq)); seq <= end; k, v = c.Next() {
				if k == nil || binary.BigEndian.Uint64(k) != seq || len(v) < custody.HashSize {
					return fmt.Errorf("build the tree: record %d is missing: %w", seq, custody.ErrChainBroken)
				}
				encs = append(encs, v[custody.HashSize:])
				seq++
			}
			leaves := leafHashes(encs)
			for i, h := range leaves {
				if err := addLeafHash(tree, size+int64(i), h); err != nil {
					return err
				}
			}
			if err := tree.flush(); err != nil {
				return err
			}
			return meta.Put(keyTreeSize, u64(end))
		})
		if err != nil || done {
			return err
		}
	}
}

// TreeSize implements verifiable.Source.
func (s *Store) TreeSize(ctx context.Context) (int64, error) {
	var n int64
	err := s.view(func(tx *bolt.Tx) error {
		n = readTreeSize(tx.Bucket(bucketMeta))
		return nil
	})
	return n, err
}

// ReadHashes implements verifiable.Source.
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([]verifiable.Hash, error) {
	var out []verifiable.Hash
	err := s.view(func(tx *bolt.Tx) error {
		tree := tx.Bucket(bucketTree)
		if tree == nil {
			return fmt.Errorf("the tree is not built: %w", custody.ErrNotFound)
		}
		var err error
		out, err = newTreeHashes(tree).ReadHashes(indexes)
		return err
	})
	return out, err
}

// ReadEntries implements verifiable.Source.
func (s *Store) ReadEntries(ctx context.Context, start, end int64) ([][]byte, error) {
	var out [][]byte
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLog).Cursor()
		seq := uint64(start) + 1
		for k, v := c.Seek(u64(seq)); seq <= uint64(end); k, v = c.Next() {
			if k == nil || binary.BigEndian.Uint64(k) != seq || len(v) < custody.HashSize {
				return fmt.Errorf("record %d: %w", seq, custody.ErrNotFound)
			}
			out = append(out, append([]byte(nil), v[custody.HashSize:]...))
			seq++
		}
		return nil
	})
	return out, err
}

// AddCheckpoint implements verifiable.Source.
func (s *Store) AddCheckpoint(ctx context.Context, size int64, signed []byte) error {
	if s.readOnly {
		return fmt.Errorf("keep checkpoint: store opened read-only: %w", custody.ErrClosed)
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCheckpoints)
		b.FillPercent = 1.0
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		return b.Put(u64(seq), append(u64(uint64(size)), signed...))
	})
}

// LatestCheckpoint implements verifiable.Source.
func (s *Store) LatestCheckpoint(ctx context.Context) ([]byte, error) {
	var out []byte
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCheckpoints)
		if b == nil {
			return fmt.Errorf("no checkpoint signed yet: %w", custody.ErrNotFound)
		}
		_, v := b.Cursor().Last()
		if len(v) <= 8 {
			return fmt.Errorf("no checkpoint signed yet: %w", custody.ErrNotFound)
		}
		out = append([]byte(nil), v[8:]...)
		return nil
	})
	return out, err
}

// Checkpoints calls fn with every signed checkpoint kept, oldest first.
func (s *Store) Checkpoints(ctx context.Context, fn func(size int64, signed []byte) error) error {
	return s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCheckpoints)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			if len(v) <= 8 {
				return fmt.Errorf("a kept checkpoint is damaged: %w", custody.ErrChainBroken)
			}
			return fn(int64(binary.BigEndian.Uint64(v[:8])), append([]byte(nil), v[8:]...))
		})
	})
}

// checkTree checks, for coid verify, that the stored tree hashes are the
// tree of the records the log holds: each record's leaf hash and every
// interior node recomputed from the record's bytes and from its children,
// which were checked before it. A ledger whose tree is not built yet (an
// older file opened read-only) has the part built checked. Records before
// from are taken as they are: their hashes only feed the checks of later
// ones (from 1 checks all).
func checkTree(ctx context.Context, tx *bolt.Tx, from uint64) error {
	treeB := tx.Bucket(bucketTree)
	if treeB == nil {
		return nil
	}
	meta := tx.Bucket(bucketMeta)
	size := readTreeSize(meta)
	head, _ := readHead(meta)
	if uint64(size) > head {
		return &FileDamage{Bucket: string(bucketTree), Problem: fmt.Sprintf("the tree holds %d records, the log %d", size, head)}
	}
	r := newTreeHashes(treeB)
	c := tx.Bucket(bucketLog).Cursor()
	seq := max(from, 1)
	for k, v := c.Seek(u64(seq)); seq <= uint64(size); k, v = c.Next() {
		if seq%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		key := strconv.FormatUint(seq, 10)
		if k == nil || binary.BigEndian.Uint64(k) != seq || len(v) < custody.HashSize {
			return &FileDamage{Bucket: string(bucketLog), Key: key, Problem: "the record is missing"}
		}
		n := int64(seq - 1)
		want, err := verifiable.NewHashes(n, v[custody.HashSize:], r)
		if err != nil {
			return &FileDamage{Bucket: string(bucketTree), Key: key, Problem: "the tree hashes below the record's are missing"}
		}
		idx := make([]int64, len(want))
		for i := range idx {
			idx[i] = verifiable.StoredHashIndex(0, n) + int64(i)
		}
		got, err := r.ReadHashes(idx)
		if err != nil {
			return &FileDamage{Bucket: string(bucketTree), Key: key, Problem: "the record's tree hashes are missing"}
		}
		for i := range want {
			if got[i] != want[i] {
				return &FileDamage{Bucket: string(bucketTree), Key: key, Problem: "the record's tree hashes do not match it (proofs would fail)"}
			}
		}
		seq++
	}
	// Nothing beyond the tree's last hash.
	n := verifiable.StoredHashCount(size)
	k, v := treeB.Cursor().Last()
	if k != nil && int64(binary.BigEndian.Uint64(k))*hashGroup+int64(len(v)/custody.HashSize) != n {
		return &FileDamage{Bucket: string(bucketTree), Problem: fmt.Sprintf("the tree holds hashes beyond its %d records", size)}
	}
	return nil
}
