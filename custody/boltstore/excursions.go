package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/coid-project/coid/custody"
)

// The excursion index: the chains that hold an excursion record, and of
// them those whose summary counts open excursions (or keeps no counts),
// each keyed by COI with an empty value. Appends keep both in the
// transaction that writes the records and summaries, so the excursion
// list pages from them instead of folding every chain.
var (
	bucketExcursionChains = []byte("excursion_chains")      // COI -> empty
	bucketOpenExcursions  = []byte("open_excursion_chains") // COI -> empty
)

// openExcursions reports whether the index lists a chain with summary ci
// among those with open excursions: when it counts some, or keeps no
// counts (the caller folds the chain to know).
func openExcursions(ci custody.ChainInfo) bool {
	return !ci.OpenIssues.Kept || ci.OpenIssues.Excursions > 0
}

// initExcursionIndex builds the excursion index of a file opened for
// writing that has none (a new file, or one written before the index was
// kept): one pass over the log, once.
func initExcursionIndex(tx *bolt.Tx) error {
	if tx.Bucket(bucketExcursionChains) != nil && tx.Bucket(bucketOpenExcursions) != nil {
		return nil
	}
	all, err := tx.CreateBucketIfNotExists(bucketExcursionChains)
	if err != nil {
		return err
	}
	open, err := tx.CreateBucketIfNotExists(bucketOpenExcursions)
	if err != nil {
		return err
	}
	var head struct {
		Chain custody.COI  `json:"chain"`
		Step  custody.Step `json:"step"`
	}
	step := []byte(`"step":"` + custody.StepExcursion + `"`)
	err = tx.Bucket(bucketLog).ForEach(func(k, v []byte) error {
		if len(v) < custody.HashSize || !bytes.Contains(v[custody.HashSize:], step) {
			return nil
		}
		head.Chain, head.Step = "", ""
		if err := json.Unmarshal(v[custody.HashSize:], &head); err != nil {
			return fmt.Errorf("excursion index: record %x: %v: %w", k, err, custody.ErrChainBroken)
		}
		if head.Step != custody.StepExcursion || all.Get([]byte(head.Chain)) != nil {
			return nil
		}
		if err := all.Put([]byte(head.Chain), nil); err != nil {
			return err
		}
		ce, err := getChain(tx, head.Chain)
		if err != nil {
			return fmt.Errorf("excursion index: %w", err)
		}
		if openExcursions(ce.ChainInfo) {
			return open.Put([]byte(head.Chain), nil)
		}
		return nil
	})
	return err
}

// indexExcursions updates the excursion index for a chain a batch
// touched: excursion says the batch appended an excursion record to it.
func indexExcursions(tx *bolt.Tx, ci custody.ChainInfo, excursion bool) error {
	all, open := tx.Bucket(bucketExcursionChains), tx.Bucket(bucketOpenExcursions)
	k := []byte(ci.COI)
	if all.Get(k) == nil {
		if !excursion {
			return nil
		}
		if err := all.Put(k, nil); err != nil {
			return err
		}
	}
	switch listed := open.Get(k) != nil; {
	case openExcursions(ci) && !listed:
		return open.Put(k, nil)
	case !openExcursions(ci) && listed:
		return open.Delete(k)
	}
	return nil
}

// ExcursionChains implements custody.ChainStore.
func (s *Store) ExcursionChains(ctx context.Context, open bool, before custody.COI, limit int) ([]custody.COI, error) {
	if limit < 1 {
		return nil, fmt.Errorf("excursion chains: limit %d must be 1 or more: %w", limit, custody.ErrInvalid)
	}
	name := bucketExcursionChains
	if open {
		name = bucketOpenExcursions
	}
	var out []custody.COI
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(name)
		if b == nil {
			return fmt.Errorf("excursion chains: this file has no excursion index yet; open it for writing once (coid serve) to build it: %w", errors.ErrUnsupported)
		}
		c := b.Cursor()
		var k []byte
		if before == "" {
			k, _ = c.Last()
		} else {
			if k, _ = c.Seek([]byte(before)); k == nil {
				k, _ = c.Last()
			}
			for k != nil && string(k) >= string(before) {
				k, _ = c.Prev()
			}
		}
		for ; k != nil && len(out) < limit; k, _ = c.Prev() {
			out = append(out, custody.COI(k))
		}
		return nil
	})
	return out, err
}
