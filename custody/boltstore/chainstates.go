package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// The chain-state index: one empty-valued entry per chain, keyed by its
// state, a zero byte and its COI, so the chains in one state lie together
// in COI order. The append moves a chain's entry in the transaction that
// changes its state (batchTx.putChainState); a file written before the
// index was kept gets it at its first open for writing
// (buildChainStateIndex). ChainsAfter with a state reads it, so a page of
// a rare state costs the page, not the summaries in other states.
var (
	bucketChainStates = []byte("chain_states") // state 0x00 COI -> empty
	// keyChainStatesBuilt in the meta bucket says every chain has its
	// entry; keyChainStatesFrom holds the last COI a build in progress
	// indexed (the build resumes after it).
	keyChainStatesBuilt = []byte("chain_states_built")
	keyChainStatesFrom  = []byte("chain_states_from")
)

// chainStatesPerTx bounds the chains one transaction of the index's build
// indexes, so a build over a large file never holds one huge transaction.
const chainStatesPerTx = 20000

// chainStateKey is the index key of chain coi in state st.
func chainStateKey(st custody.State, coi custody.COI) []byte {
	k := make([]byte, 0, len(st)+1+len(coi))
	k = append(k, st...)
	k = append(k, 0)
	return append(k, coi...)
}

// splitChainStateKey splits an index key into state and COI.
func splitChainStateKey(k []byte) (custody.State, custody.COI, bool) {
	i := bytes.IndexByte(k, 0)
	if i < 1 || i == len(k)-1 {
		return "", "", false
	}
	return custody.State(k[:i]), custody.COI(k[i+1:]), true
}

// putChainState moves chain coi's entry of the chain-state index from
// prev (empty: a new chain) to st when they differ.
func (b *batchTx) putChainState(coi custody.COI, prev, st custody.State) error {
	if prev == st {
		return nil
	}
	idx := b.tx.Bucket(bucketChainStates)
	if prev != "" {
		if err := idx.Delete(chainStateKey(prev, coi)); err != nil {
			return err
		}
		if err := addChainStateCount(b.tx, prev, -1); err != nil {
			return err
		}
	}
	if err := addChainStateCount(b.tx, st, 1); err != nil {
		return err
	}
	return idx.Put(chainStateKey(st, coi), nil)
}

// chainStatesBuilt reports whether tx's file keeps a complete chain-state
// index.
func chainStatesBuilt(tx *bolt.Tx) bool {
	return tx.Bucket(bucketChainStates) != nil && tx.Bucket(bucketMeta).Get(keyChainStatesBuilt) != nil
}

// buildChainStateIndex gives every chain its entry of the chain-state
// index when the file keeps none yet (a new file, or one written before
// the index was kept): one pass over the summaries, perTx of them per
// transaction, resuming after the last chain a build cut short
// indexed. It runs at open, before the writer starts.
func (s *Store) buildChainStateIndex(perTx int) error {
	return s.buildFromSummaries("chain-state index", keyChainStatesBuilt, keyChainStatesFrom, perTx,
		func(tx *bolt.Tx) (func(ci *custody.ChainInfo) error, func() error, error) {
			idx, err := tx.CreateBucketIfNotExists(bucketChainStates)
			if err != nil {
				return nil, nil, err
			}
			put := func(ci *custody.ChainInfo) error { return idx.Put(chainStateKey(ci.State, ci.COI), nil) }
			return put, func() error { return nil }, nil
		})
}

// buildFromSummaries builds an index kept beside the chain summaries,
// named name, when the meta bucket has no key built: in transactions of
// perTx summaries each, resuming after the COI kept under from by a build
// cut short, and marking it built in the transaction that indexes the
// last summary. Each transaction calls begin, then add with each summary
// it reads, then flush before it commits.
func (s *Store) buildFromSummaries(name string, built, from []byte, perTx int,
	begin func(tx *bolt.Tx) (add func(ci *custody.ChainInfo) error, flush func() error, err error)) error {
	for {
		done := false
		err := s.update(func(tx *bolt.Tx) error {
			meta := tx.Bucket(bucketMeta)
			if meta.Get(built) != nil {
				done = true
				return nil
			}
			add, flush, err := begin(tx)
			if err != nil {
				return err
			}
			c := tx.Bucket(bucketChains).Cursor()
			k, v := c.First()
			if f := meta.Get(from); f != nil {
				if k, v = c.Seek(f); k != nil && bytes.Equal(k, f) {
					k, v = c.Next()
				}
			}
			in := interned{}
			var ci custody.ChainInfo
			var last []byte
			for n := 0; k != nil && n < perTx; k, v = c.Next() {
				if _, err := decodeChainInto(v, &ci, in, false); err != nil {
					return fmt.Errorf("chain summary %s: %v: %w", k, err, custody.ErrChainBroken)
				}
				if err := add(&ci); err != nil {
					return err
				}
				last = k
				n++
			}
			if err := flush(); err != nil {
				return err
			}
			if k != nil {
				return meta.Put(from, bytes.Clone(last))
			}
			done = true
			if err := meta.Delete(from); err != nil {
				return err
			}
			return meta.Put(built, []byte{1})
		})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if done {
			return nil
		}
	}
}

// chainsInState pages the chains in state st after COI after from the
// chain-state index, reading each one's summary.
func chainsInState(tx *bolt.Tx, st custody.State, after custody.COI, limit int) ([]custody.ChainInfo, error) {
	return indexPage(tx, bucketChainStates, chainStateKey(st, ""), "chain-state index", after, limit,
		func(ci *custody.ChainInfo) bool { return ci.State == st })
}

// indexPage pages an index of chains whose keys are prefix followed by a
// COI: the chains after the COI after, at most limit of them, in COI
// order, each one's summary read and held to what the index says of it
// (listed: false is a broken index); name names the index in errors.
func indexPage(tx *bolt.Tx, bucket, prefix []byte, name string, after custody.COI, limit int, listed func(*custody.ChainInfo) bool) ([]custody.ChainInfo, error) {
	out := []custody.ChainInfo{}
	c := tx.Bucket(bucket).Cursor()
	k, _ := c.Seek(prefix)
	if after != "" {
		from := append(bytes.Clone(prefix), after...)
		if k, _ = c.Seek(from); k != nil && bytes.Equal(k, from) {
			k, _ = c.Next()
		}
	}
	chains := tx.Bucket(bucketChains)
	in := interned{}
	for ; k != nil && len(out) < limit && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		coi := k[len(prefix):]
		v := chains.Get(coi)
		if v == nil {
			return nil, fmt.Errorf("%s: chain %s is listed but has no summary: %w", name, coi, custody.ErrChainBroken)
		}
		var ci custody.ChainInfo
		if _, err := decodeChainInto(v, &ci, in, false); err != nil {
			return nil, fmt.Errorf("chain summary %s: %v: %w", coi, err, custody.ErrChainBroken)
		}
		if !listed(&ci) {
			return nil, fmt.Errorf("%s: chain %s is listed, but its summary (%q) is not what the index says: %w", name, coi, ci.State, custody.ErrChainBroken)
		}
		out = append(out, ci)
	}
	return out, nil
}

// CountChainsInState counts the chains in state st from the chain-state
// index: one key of its counts, or, in a file that keeps none (opened
// read-only before a writer counted them), the state's entries. Without the index (a
// file opened read-only before a writer built it) it returns an error
// wrapping errors.ErrUnsupported.
func (s *Store) CountChainsInState(ctx context.Context, st custody.State) (int, error) {
	n := 0
	err := s.view(func(tx *bolt.Tx) error {
		if !chainStatesBuilt(tx) {
			return fmt.Errorf("chain-state index: not built yet; open the file for writing once (coid serve) to build it: %w", errors.ErrUnsupported)
		}
		if stored, ok := storedChainStateCount(tx, st); ok {
			n = stored
			return nil
		}
		prefix := chainStateKey(st, "")
		c := tx.Bucket(bucketChainStates).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			n++
		}
		return nil
	})
	return n, err
}

// chainStateBucketChecks checks each entry of the chain-state index
// against the chain's summary: the chain exists and is in the state the
// entry names (an extra or a wrong entry). checkChainStatesComplete finds
// the missing ones.
func chainStateBucketChecks() map[string]bucketCheck {
	return map[string]bucketCheck{
		string(bucketChainStates): {name: func(k []byte) string { return fmt.Sprintf("%q", k) }, entry: func(tx *bolt.Tx, k, v []byte) error {
			st, coi, ok := splitChainStateKey(k)
			switch {
			case !ok:
				return errors.New("the key is not a state and a COI")
			case len(v) != 0:
				return errors.New("the entry has a value")
			}
			// The summary's state only: its record positions are not
			// decoded.
			var ci custody.ChainInfo
			sv := tx.Bucket(bucketChains).Get([]byte(coi))
			if sv == nil {
				return fmt.Errorf("chain %s is listed in state %q but chain %s: %v", coi, st, coi, custody.ErrNotFound)
			}
			if _, err := decodeChainInto(sv, &ci, nil, false); err != nil || ci.COI != coi {
				return fmt.Errorf("chain %s is listed in state %q but chain summary %s: malformed: %v", coi, st, coi, custody.ErrChainBroken)
			}
			if ci.State != st {
				return fmt.Errorf("chain %s is listed in state %q but is %q", coi, st, ci.State)
			}
			return nil
		}},
	}
}

// checkChainStatesComplete checks that every chain has its entry of the
// chain-state index, when the file keeps a complete one: together with
// the entries' own checks, that the index lists exactly the chains in
// each state; then the index's counts (checkChainStateCounts). In the
// same walk, once the follow-up index is built, that every infused chain
// whose records hold an infusion has its follow-up entry (the entries'
// own checks hold each to its chain's records), and, once the chain-site
// index is built, that every chain has its entry there and the index's
// entries and counts are exactly the chains' (chainSiteTally), and that
// every chain that belongs in the terminal-issue index has its entry.
func checkChainStatesComplete(ctx context.Context, tx *bolt.Tx) error {
	states := chainStatesBuilt(tx)
	followUps := followUpBuilt(tx)
	sites := newChainSiteTally(tx)
	var waiting *bolt.Bucket
	if terminalIssuesBuilt(tx) {
		waiting = tx.Bucket(bucketTerminalIssues)
	}
	if !states && !followUps && sites == nil && waiting == nil {
		return nil
	}
	idx := tx.Bucket(bucketChainStates)
	// The follow-up index is in COI order, as the chains are: its
	// entries are found by stepping one cursor along.
	var fu, records seqGetter
	if followUps {
		fu = seqGetter{c: tx.Bucket(bucketFollowUp).Cursor()}
		records = seqGetter{c: tx.Bucket(bucketLog).Cursor()}
	}
	in := interned{}
	var ci custody.ChainInfo
	n := 0
	err := tx.Bucket(bucketChains).ForEach(func(k, v []byte) error {
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if _, err := decodeChainInto(v, &ci, in, false); err != nil {
			return &FileDamage{Bucket: string(bucketChains), Key: strName(k), Problem: err.Error()}
		}
		if states && idx.Get(chainStateKey(ci.State, ci.COI)) == nil {
			return &FileDamage{Bucket: string(bucketChainStates), Key: fmt.Sprintf("%q", chainStateKey(ci.State, ci.COI)),
				Problem: fmt.Sprintf("chain %s, in state %q, is missing from the index", ci.COI, ci.State)}
		}
		if followUps && ci.State == custody.StateInfused && fu.get(k) == nil {
			return missingFollowUp(tx, records.get, k)
		}
		if waiting != nil && custody.WaitsInTerminalState(&ci) && waiting.Get(k) == nil {
			return &FileDamage{Bucket: string(bucketTerminalIssues), Key: strName(k),
				Problem: fmt.Sprintf("chain %s, %q with open issues, is missing from the index", ci.COI, ci.State)}
		}
		if sites != nil {
			return sites.has(&ci)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if sites != nil {
		if err := sites.finish(ctx, tx); err != nil {
			return err
		}
	}
	if !states {
		return nil
	}
	return checkChainStateCounts(ctx, tx)
}
