package boltstore

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// The chain-state counts: how many entries of the chain-state index each
// state has, keyed by the state, an 8-byte big-endian count. The append
// moves a chain's count in the transaction that moves its index entry
// (batchTx.putChainState), so CountChainsInState reads one key instead of
// stepping over the state's entries. A file opened for writing without
// them gets them counted from the index once (buildChainStateCounts).
var bucketChainStateCounts = []byte("chain_state_counts") // state -> uint64

// addChainStateCount adds delta to state st's count, when the file keeps
// the counts.
func addChainStateCount(tx *bolt.Tx, st custody.State, delta int64) error {
	b := tx.Bucket(bucketChainStateCounts)
	if b == nil {
		return nil
	}
	var n int64
	if v := b.Get([]byte(st)); len(v) == 8 {
		n = int64(binary.BigEndian.Uint64(v))
	}
	if n += delta; n < 0 {
		return fmt.Errorf("chain-state counts: state %q would count %d chains: %w", st, n, custody.ErrChainBroken)
	}
	if n == 0 {
		return b.Delete([]byte(st))
	}
	return b.Put([]byte(st), binary.BigEndian.AppendUint64(nil, uint64(n)))
}

// countIndex counts the chain-state index's entries by state.
func countIndex(tx *bolt.Tx) map[custody.State]int64 {
	counts := map[custody.State]int64{}
	c := tx.Bucket(bucketChainStates).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if st, _, ok := splitChainStateKey(k); ok {
			counts[st]++
		}
	}
	return counts
}

// buildChainStateCounts counts the chain-state index by state, once, for
// a file opened for writing whose index is complete but keeps no counts
// (a new file, or one written before they were kept). It runs at open,
// after buildChainStateIndex and before the writer starts.
func (s *Store) buildChainStateCounts() error {
	err := s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketChainStateCounts) != nil || !chainStatesBuilt(tx) {
			return nil
		}
		b, err := tx.CreateBucket(bucketChainStateCounts)
		if err != nil {
			return err
		}
		for st, n := range countIndex(tx) {
			if err := b.Put([]byte(st), binary.BigEndian.AppendUint64(nil, uint64(n))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("chain-state counts: %w", err)
	}
	return nil
}

// storedChainStateCount returns state st's stored count; false when the
// file keeps no counts.
func storedChainStateCount(tx *bolt.Tx, st custody.State) (int, bool) {
	b := tx.Bucket(bucketChainStateCounts)
	if b == nil {
		return 0, false
	}
	if v := b.Get([]byte(st)); len(v) == 8 {
		return int(binary.BigEndian.Uint64(v)), true
	}
	return 0, true
}

// checkChainStateCounts checks, when the file keeps the counts, that each
// state's stored count is its number of entries in the chain-state index
// (which checkChainStatesComplete holds to the summaries).
func checkChainStateCounts(ctx context.Context, tx *bolt.Tx) error {
	b := tx.Bucket(bucketChainStateCounts)
	if b == nil || !chainStatesBuilt(tx) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	want := countIndex(tx)
	err := b.ForEach(func(k, v []byte) error {
		st := custody.State(k)
		if len(v) != 8 || int64(binary.BigEndian.Uint64(v)) != want[st] {
			return &FileDamage{Bucket: string(bucketChainStateCounts), Key: fmt.Sprintf("%q", k),
				Problem: fmt.Sprintf("state %q counts %x, the index lists %d chains in it", st, v, want[st])}
		}
		delete(want, st)
		return nil
	})
	if err != nil {
		return err
	}
	for st, n := range want {
		if n > 0 {
			return &FileDamage{Bucket: string(bucketChainStateCounts), Key: fmt.Sprintf("%q", st),
				Problem: fmt.Sprintf("state %q has no count, the index lists %d chains in it", st, n)}
		}
	}
	return nil
}
