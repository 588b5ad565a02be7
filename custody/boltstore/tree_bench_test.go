package boltstore

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"testing"
	"time"

	"github.com/coid-project/coid/custody/verifiable"
	"github.com/transparency-dev/merkle/proof"
	bolt "go.etcd.io/bbolt"
)

// synthTree writes n synthetic records (record i+1 is leaf i's 8-byte
// index after a zero hash, not a record a ledger would hold) into s's log
// bucket and the tree of their leaves into its tree bucket with the
// store's own code, as the writer would, and sets the tree's size: a real
// RFC 6962 tree of n leaves, whose proofs recompute the nodes below
// treeLow from those records, without n real records, whose writing would
// take far longer.
func synthTree(tb testing.TB, s *Store, n int64) {
	tb.Helper()
	const chunk = 1 << 18
	edge, err := verifiable.LoadEdge(0, &keptTree{})
	if err != nil {
		tb.Fatal(err)
	}
	for start := int64(0); start < n; start += chunk {
		end := min(start+chunk, n)
		if err := s.update(func(tx *bolt.Tx) error {
			treeB, logB := tx.Bucket(bucketTree), tx.Bucket(bucketLog)
			treeB.FillPercent, logB.FillPercent = 1.0, 1.0
			tree := newTreeHashes(treeB, tx.Bucket(bucketMeta))
			var hs []verifiable.Hash
			for i := start; i < end; i++ {
				v := binary.BigEndian.AppendUint64(make([]byte, 32, 40), uint64(i))
				if err := logB.Put(u64(uint64(i+1)), v); err != nil {
					return err
				}
				hs = addKept(edge, verifiable.LeafHash(v[32:]), hs)
			}
			if err := tree.add(keptCount(start), hs); err != nil {
				return err
			}
			if err := tree.flush(); err != nil {
				return err
			}
			return tx.Bucket(bucketMeta).Put(keyTreeSize, u64(uint64(end)))
		}); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkInclusionProof10M answers inclusion proofs, through the store
// and verifiable.Log as the API does (a read transaction, the proof, the
// root), in a tree of 10,000,000 leaves built by synthTree. Every proof is
// verified, outside the timing, by the independent library.
func BenchmarkInclusionProof10M(b *testing.B) {
	const n = 10_000_000
	dir := b.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	synthTree(b, s, n)
	b.Logf("built a synthetic tree of %d leaves in %v", n, time.Since(start))
	keys, err := verifiable.OpenKeys(dir, rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	l := verifiable.NewLog(s, keys, time.Now, nil)
	ctx := context.Background()
	seq := uint64(1)
	cpu := 0.0
	for b.Loop() {
		seq = (seq*7919 + 104729) % n
		c0 := cpuSeconds()
		inc, err := l.Inclusion(ctx, seq+1, n)
		if err != nil {
			b.Fatal(err)
		}
		cpu += cpuSeconds() - c0
		b.StopTimer()
		var leaf [8]byte
		binary.BigEndian.PutUint64(leaf[:], seq)
		if err := proof.VerifyInclusion(hasher, seq, n, hasher.HashLeaf(leaf[:]), hashes(inc.Proof), inc.Root[:]); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(cpu/float64(b.N)*1e6, "cpu-µs/op")
}

// BenchmarkBuildTree1M builds the tree of an existing ledger of 1,000,000
// records (30 per chain) that has none, as the first open of a ledger
// written before the tree existed does.
func BenchmarkBuildTree1M(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const chains = 33334
	fill(b, s, chains, 30)
	cpu := 0.0
	for b.Loop() {
		b.StopTimer()
		dropTree(b, s)
		b.StartTimer()
		c0 := cpuSeconds()
		if err := s.buildTree(); err != nil {
			b.Fatal(err)
		}
		cpu += cpuSeconds() - c0
	}
	b.ReportMetric(cpu/float64(b.N), "cpu-s/op")
	if n, _ := s.TreeSize(context.Background()); n != chains*30 {
		b.Fatalf("tree of %d", n)
	}
	b.ReportMetric(float64(chains*30)/b.Elapsed().Seconds()*float64(b.N), "records/s")
}

// dropTree leaves s's ledger without its tree, as one written before the
// tree existed: the next buildTree builds it all.
func dropTree(tb testing.TB, s *Store) {
	tb.Helper()
	if err := s.update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketTree); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketTree); err != nil {
			return err
		}
		for _, k := range [][]byte{keyTreeSize, keyTreeTail} {
			if err := tx.Bucket(bucketMeta).Delete(k); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
}
