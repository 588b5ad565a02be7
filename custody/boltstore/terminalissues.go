package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// The terminal-issue index: one empty-valued entry, keyed by COI, for each
// chain in a terminal state whose summary counts open issues or keeps no
// counts (custody.WaitsInTerminalState): the ended chains that still wait
// for QA. The append puts or removes a chain's entry in the transaction
// that changes its summary (batchTx.putTerminalIssue); a file written
// before the index was kept gets it at its first open for writing
// (buildTerminalIssueIndex). It answers custody.TerminalIssueIndex, so the
// console finds them without reading every cancelled chain.
var (
	bucketTerminalIssues = []byte("terminal_issues") // COI -> empty
	// keyTerminalIssuesBuilt in the meta bucket says every chain that
	// belongs in the index has its entry.
	keyTerminalIssuesBuilt = []byte("terminal_issues_built")
)

// putTerminalIssue puts or removes chain coi's entry of the terminal-issue
// index as its summary moves from prev (nil: a new chain) to ci.
func (b *batchTx) putTerminalIssue(coi custody.COI, prev, ci *custody.ChainInfo) error {
	was := prev != nil && custody.WaitsInTerminalState(prev)
	is := custody.WaitsInTerminalState(ci)
	idx := b.tx.Bucket(bucketTerminalIssues)
	switch {
	case was == is || idx == nil:
		return nil
	case is:
		return idx.Put([]byte(coi), nil)
	default:
		return idx.Delete([]byte(coi))
	}
}

// terminalIssuesBuilt reports whether tx's file keeps a complete
// terminal-issue index.
func terminalIssuesBuilt(tx *bolt.Tx) bool {
	return tx.Bucket(bucketTerminalIssues) != nil && tx.Bucket(bucketMeta).Get(keyTerminalIssuesBuilt) != nil
}

// buildTerminalIssueIndex gives every chain that belongs in the
// terminal-issue index its entry when the file keeps none yet (a new
// file, or one written before the index was kept): one pass over the
// summaries in the chain-state index's terminal states when that index is
// built, over every summary otherwise. It runs at open, after the
// chain-state index's build and before the writer starts.
func (s *Store) buildTerminalIssueIndex() error {
	err := s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta).Get(keyTerminalIssuesBuilt) != nil {
			return nil
		}
		idx, err := tx.CreateBucketIfNotExists(bucketTerminalIssues)
		if err != nil {
			return err
		}
		in := interned{}
		var ci custody.ChainInfo
		put := func(k, v []byte) error {
			if _, err := decodeChainInto(v, &ci, in, false); err != nil {
				return fmt.Errorf("terminal-issue index: chain summary %s: %v: %w", k, err, custody.ErrChainBroken)
			}
			if custody.WaitsInTerminalState(&ci) {
				return idx.Put(bytes.Clone(k), nil)
			}
			return nil
		}
		chains := tx.Bucket(bucketChains)
		if !chainStatesBuilt(tx) {
			if err := chains.ForEach(put); err != nil {
				return err
			}
		} else {
			for _, st := range []custody.State{custody.StateInfused, custody.StateCancelled} {
				prefix := chainStateKey(st, "")
				c := tx.Bucket(bucketChainStates).Cursor()
				for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
					coi := k[len(prefix):]
					if err := put(coi, chains.Get(coi)); err != nil {
						return err
					}
				}
			}
		}
		return tx.Bucket(bucketMeta).Put(keyTerminalIssuesBuilt, []byte{1})
	})
	if err != nil {
		return fmt.Errorf("terminal-issue index: %w", err)
	}
	return nil
}

// TerminalIssueChainsAfter implements custody.TerminalIssueIndex: a cursor
// on the terminal-issue index from after onwards, reading each chain's
// summary.
func (s *Store) TerminalIssueChainsAfter(ctx context.Context, after custody.COI, limit int) ([]custody.ChainInfo, error) {
	if limit < 1 {
		return nil, fmt.Errorf("terminal-issue chains: limit %d must be 1 or more: %w", limit, custody.ErrInvalid)
	}
	out := []custody.ChainInfo{}
	err := s.view(func(tx *bolt.Tx) error {
		if !terminalIssuesBuilt(tx) {
			return fmt.Errorf("terminal-issue index: not built yet; open the file for writing once (coid serve) to build it: %w", errors.ErrUnsupported)
		}
		var err error
		out, err = indexPage(tx, bucketTerminalIssues, nil, "terminal-issue index", after, limit, custody.WaitsInTerminalState)
		return err
	})
	return out, err
}

// terminalIssueBucketChecks checks each entry of the terminal-issue index
// against the chain's summary: the chain exists, is in a terminal state
// and counts open issues or keeps no counts (an extra entry);
// checkChainStatesComplete finds the missing ones.
func terminalIssueBucketChecks() map[string]bucketCheck {
	return map[string]bucketCheck{
		string(bucketTerminalIssues): {name: strName, entry: func(tx *bolt.Tx, k, v []byte) error {
			if len(v) != 0 {
				return errors.New("the entry has a value")
			}
			sv := tx.Bucket(bucketChains).Get(k)
			if sv == nil {
				return fmt.Errorf("chain %s is listed but chain %s: %v", k, k, custody.ErrNotFound)
			}
			var ci custody.ChainInfo
			if _, err := decodeChainInto(sv, &ci, nil, false); err != nil || string(ci.COI) != string(k) {
				return fmt.Errorf("chain %s is listed but its summary is malformed: %v", k, custody.ErrChainBroken)
			}
			if !custody.WaitsInTerminalState(&ci) {
				return fmt.Errorf("chain %s is listed but is %q with %d open issues counted", k, ci.State, ci.OpenIssues.Total())
			}
			return nil
		}},
	}
}
