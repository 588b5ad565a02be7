package boltstore

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
	bolt "go.etcd.io/bbolt"
)

// The Merkle tree over the log (package verifiable): its stored hashes,
// written by the batch that writes the records, and the signed
// checkpoints.
var (
	bucketTree        = []byte("tree")        // stored hash index (8 bytes BE) -> hash (32)
	bucketCheckpoints = []byte("checkpoints") // sequence (8 bytes BE) -> size (8 bytes BE) || signed note
	keyTreeSize       = []byte("tree_size")   // in meta: records whose hashes are stored (8 bytes BE)
	treeBuckets       = [][]byte{bucketTree, bucketCheckpoints}
)

var _ verifiable.Source = (*Store)(nil)

// treeBuildChunk is how many records one transaction of the tree's
// building (upgrade) hashes: a crash loses at most that much work.
const treeBuildChunk = 1 << 17

// txHashes reads stored hashes inside a transaction, including those the
// transaction wrote.
type txHashes struct{ b *bolt.Bucket }

func (r txHashes) ReadHashes(indexes []int64) ([]verifiable.Hash, error) {
	out := make([]verifiable.Hash, len(indexes))
	for i, idx := range indexes {
		v := r.b.Get(u64(uint64(idx)))
		if len(v) != len(verifiable.Hash{}) {
			return nil, fmt.Errorf("tree hash %d is not stored: %w", idx, custody.ErrNotFound)
		}
		copy(out[i][:], v)
	}
	return out, nil
}

// addLeaf stores the tree hashes leaf n (record n+1, canonical encoding
// enc) adds.
func addLeaf(tree *bolt.Bucket, n int64, enc []byte) error {
	hs, err := verifiable.NewHashes(n, enc, txHashes{tree})
	if err != nil {
		return err
	}
	idx := verifiable.StoredHashIndex(0, n)
	for i := range hs {
		if err := tree.Put(u64(uint64(idx+int64(i))), hs[i][:]); err != nil {
			return err
		}
	}
	return nil
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
			meta, tree, logB := tx.Bucket(bucketMeta), tx.Bucket(bucketTree), tx.Bucket(bucketLog)
			tree.FillPercent = 1.0
			size := readTreeSize(meta)
			head, _ := readHead(meta)
			if uint64(size) >= head {
				done = true
				return nil
			}
			end := min(uint64(size)+treeBuildChunk, head)
			c := logB.Cursor()
			seq := uint64(size) + 1
			for k, v := c.Seek(u64(seq)); seq <= end; k, v = c.Next() {
				if k == nil || binary.BigEndian.Uint64(k) != seq || len(v) < custody.HashSize {
					return fmt.Errorf("build the tree: record %d is missing: %w", seq, custody.ErrChainBroken)
				}
				if err := addLeaf(tree, int64(seq-1), v[custody.HashSize:]); err != nil {
					return err
				}
				seq++
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
		out, err = txHashes{tree}.ReadHashes(indexes)
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
