package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// The chain-site index: one empty-valued entry per chain, keyed by its
// site names as enrolled, its state, a zero byte and its COI, so the
// chains of one route in one state lie together in COI order; and beside
// it the counts, keyed by site names and state, an 8-byte big-endian
// count. A site name is written as its length (uvarint) and its bytes, so
// no two sets of names share a key. The append moves a chain's entry and
// counts in the transaction that changes its state (batchTx.putChainSite);
// a file written before the index was kept gets it at its first open for
// writing (buildChainSiteIndex). It answers custody.ChainSiteIndex: a
// user bound to a few of a network's sites is counted and paged from it
// at a cost that follows the user's chains.
var (
	bucketChainSites      = []byte("chain_sites")       // sites state 0x00 COI -> empty
	bucketChainSiteCounts = []byte("chain_site_counts") // sites state -> uint64
	// keyChainSitesBuilt in the meta bucket says every chain has its
	// entry and the counts count them; keyChainSitesFrom holds the last
	// COI a build in progress indexed (the build resumes after it).
	keyChainSitesBuilt = []byte("chain_sites_built")
	keyChainSitesFrom  = []byte("chain_sites_from")
)

// chainSitesKey appends the key prefix of the chains with site names
// sites in state st: the names, each with its length, then the state.
func chainSitesKey(k []byte, sites custody.Sites, st custody.State) []byte {
	for _, name := range []string{sites.Collection, sites.Manufacturing, sites.Treatment} {
		k = binary.AppendUvarint(k, uint64(len(name)))
		k = append(k, name...)
	}
	return append(k, st...)
}

// chainSiteKey is the index key of chain coi with site names sites in
// state st.
func chainSiteKey(sites custody.Sites, st custody.State, coi custody.COI) []byte {
	k := chainSitesKey(make([]byte, 0, 64), sites, st)
	k = append(k, 0)
	return append(k, coi...)
}

// splitChainSites splits a counts key, or an index key's part before its
// zero byte, into site names and state.
func splitChainSites(k []byte) (custody.Sites, custody.State, bool) {
	var names [3]string
	for i := range names {
		n, w := binary.Uvarint(k)
		if w <= 0 || n > uint64(len(k)-w) {
			return custody.Sites{}, "", false
		}
		names[i] = string(k[w : w+int(n)])
		k = k[w+int(n):]
	}
	if len(k) == 0 || bytes.IndexByte(k, 0) >= 0 {
		return custody.Sites{}, "", false
	}
	return custody.Sites{Collection: names[0], Manufacturing: names[1], Treatment: names[2]}, custody.State(k), true
}

// splitChainSiteKey splits an index key into its counts key (site names
// and state) and COI.
func splitChainSiteKey(k []byte) (prefix []byte, coi custody.COI, ok bool) {
	sites, st, ok := splitChainSites(k[:max(0, bytes.LastIndexByte(k, 0))])
	if !ok {
		return nil, "", false
	}
	prefix = chainSitesKey(nil, sites, st)
	if len(k) <= len(prefix)+1 || k[len(prefix)] != 0 {
		return nil, "", false
	}
	return prefix, custody.COI(k[len(prefix)+1:]), true
}

// putChainSite moves chain coi's entry of the chain-site index, and the
// counts, from its state before the record (prev, with the sites it was
// enrolled with; prev empty: a new chain) to the state after, when they
// differ.
func (b *batchTx) putChainSite(coi custody.COI, prevSites custody.Sites, prev custody.State, sites custody.Sites, st custody.State) error {
	if prev == st && prevSites == sites {
		return nil
	}
	idx, counts := b.tx.Bucket(bucketChainSites), b.tx.Bucket(bucketChainSiteCounts)
	if idx == nil || counts == nil {
		return nil // a file opened for writing builds them first
	}
	if prev != "" {
		if err := idx.Delete(chainSiteKey(prevSites, prev, coi)); err != nil {
			return err
		}
		if err := addChainSiteCount(counts, chainSitesKey(nil, prevSites, prev), -1); err != nil {
			return err
		}
	}
	if err := addChainSiteCount(counts, chainSitesKey(nil, sites, st), 1); err != nil {
		return err
	}
	return idx.Put(chainSiteKey(sites, st, coi), nil)
}

// addChainSiteCount adds delta to the count under key.
func addChainSiteCount(counts *bolt.Bucket, key []byte, delta int64) error {
	var n int64
	if v := counts.Get(key); len(v) == 8 {
		n = int64(binary.BigEndian.Uint64(v))
	}
	if n += delta; n < 0 {
		return fmt.Errorf("chain-site counts: %q would count %d chains: %w", key, n, custody.ErrChainBroken)
	}
	if n == 0 {
		return counts.Delete(key)
	}
	return counts.Put(key, binary.BigEndian.AppendUint64(nil, uint64(n)))
}

// chainSitesBuilt reports whether tx's file keeps a complete chain-site
// index and its counts.
func chainSitesBuilt(tx *bolt.Tx) bool {
	return tx.Bucket(bucketChainSites) != nil && tx.Bucket(bucketChainSiteCounts) != nil &&
		tx.Bucket(bucketMeta).Get(keyChainSitesBuilt) != nil
}

// chainSitesPerTx bounds the chains one transaction of the index's build
// indexes.
const chainSitesPerTx = 20000

// buildChainSiteIndex gives every chain its entry of the chain-site index,
// and counts them, when the file keeps none yet (a new file, or one
// written before the index was kept): one pass over the summaries, perTx
// of them per transaction, each transaction committing its entries with
// their counts, resuming after the last chain a build cut short indexed.
// It runs at open, before the writer starts.
func (s *Store) buildChainSiteIndex(perTx int) error {
	return s.buildFromSummaries("chain-site index", keyChainSitesBuilt, keyChainSitesFrom, perTx,
		func(tx *bolt.Tx) (func(ci *custody.ChainInfo) error, func() error, error) {
			idx, err := tx.CreateBucketIfNotExists(bucketChainSites)
			if err != nil {
				return nil, nil, err
			}
			counts, err := tx.CreateBucketIfNotExists(bucketChainSiteCounts)
			if err != nil {
				return nil, nil, err
			}
			added := map[string]int64{}
			add := func(ci *custody.ChainInfo) error {
				added[string(chainSitesKey(nil, ci.Sites, ci.State))]++
				return idx.Put(chainSiteKey(ci.Sites, ci.State, ci.COI), nil)
			}
			flush := func() error {
				for key, n := range added {
					if err := addChainSiteCount(counts, []byte(key), n); err != nil {
						return err
					}
				}
				return nil
			}
			return add, flush, nil
		})
}

// errNoChainSites is the answer of a file opened read-only before a
// writer built the chain-site index.
var errNoChainSites = fmt.Errorf("chain-site index: not built yet; open the file for writing once (coid serve) to build it: %w", errors.ErrUnsupported)

// SiteStateCounts implements custody.ChainSiteIndex from the chain-site
// index's counts.
func (s *Store) SiteStateCounts(ctx context.Context) ([]custody.SiteStateCount, error) {
	out := []custody.SiteStateCount{}
	err := s.view(func(tx *bolt.Tx) error {
		if !chainSitesBuilt(tx) {
			return errNoChainSites
		}
		return tx.Bucket(bucketChainSiteCounts).ForEach(func(k, v []byte) error {
			sites, st, ok := splitChainSites(k)
			if !ok || len(v) != 8 {
				return fmt.Errorf("chain-site counts: entry %q: malformed: %w", k, custody.ErrChainBroken)
			}
			out = append(out, custody.SiteStateCount{Sites: sites, State: st, N: int(binary.BigEndian.Uint64(v))})
			return nil
		})
	})
	return out, err
}

// ChainsOfSitesAfter implements custody.ChainSiteIndex: a cursor on the
// chain-site index's part for sites and st, reading each chain's summary.
func (s *Store) ChainsOfSitesAfter(ctx context.Context, sites custody.Sites, st custody.State, after custody.COI, limit int) ([]custody.ChainInfo, error) {
	if limit < 1 {
		return nil, fmt.Errorf("chains of sites: limit %d must be 1 or more: %w", limit, custody.ErrInvalid)
	}
	out := []custody.ChainInfo{}
	err := s.view(func(tx *bolt.Tx) error {
		if !chainSitesBuilt(tx) {
			return errNoChainSites
		}
		var err error
		out, err = indexPage(tx, bucketChainSites, append(chainSitesKey(nil, sites, st), 0), "chain-site index", after, limit,
			func(ci *custody.ChainInfo) bool { return ci.State == st && ci.Sites == sites })
		return err
	})
	return out, err
}

// chainSiteBucketChecks checks that each entry of the chain-site index is
// a key of site names, state and COI with no value, and each count a key
// of site names and state with an 8-byte count; checkChainSites holds
// them to the summaries.
func chainSiteBucketChecks() map[string]bucketCheck {
	name := func(k []byte) string { return fmt.Sprintf("%q", k) }
	return map[string]bucketCheck{
		string(bucketChainSites): {name: name, entry: func(tx *bolt.Tx, k, v []byte) error {
			if _, _, ok := splitChainSiteKey(k); !ok {
				return errors.New("the key is not site names, a state and a COI")
			}
			if len(v) != 0 {
				return errors.New("the entry has a value")
			}
			return nil
		}},
		string(bucketChainSiteCounts): {name: name, entry: func(tx *bolt.Tx, k, v []byte) error {
			if _, _, ok := splitChainSites(k); !ok {
				return errors.New("the key is not site names and a state")
			}
			if len(v) != 8 || binary.BigEndian.Uint64(v) == 0 {
				return fmt.Errorf("the count %x is not a count of 1 or more", v)
			}
			return nil
		}},
	}
}

// chainSiteTally follows the walk of the summaries (checkChainStatesComplete)
// when the file keeps a complete chain-site index: every chain has its
// entry (has), and the counts count, by site names and state, the chains
// the walk saw.
type chainSiteTally struct {
	idx    *bolt.Bucket
	counts map[string]int64
	chains int64
}

func newChainSiteTally(tx *bolt.Tx) *chainSiteTally {
	if !chainSitesBuilt(tx) {
		return nil
	}
	return &chainSiteTally{idx: tx.Bucket(bucketChainSites), counts: map[string]int64{}}
}

// has checks chain ci's entry.
func (t *chainSiteTally) has(ci *custody.ChainInfo) error {
	key := chainSiteKey(ci.Sites, ci.State, ci.COI)
	if t.idx.Get(key) == nil {
		return &FileDamage{Bucket: string(bucketChainSites), Key: fmt.Sprintf("%q", key),
			Problem: fmt.Sprintf("chain %s, in state %q, is missing from the index", ci.COI, ci.State)}
	}
	t.counts[string(key[:len(key)-len(ci.COI)-1])]++
	t.chains++
	return nil
}

// finish checks, once every chain has been seen to have its entry, that
// the index holds no other entry (as many entries as chains) and that
// the stored counts are the chains'.
func (t *chainSiteTally) finish(ctx context.Context, tx *bolt.Tx) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if n := int64(t.idx.Stats().KeyN); n != t.chains {
		return &FileDamage{Bucket: string(bucketChainSites),
			Problem: fmt.Sprintf("the index lists %d entries for %d chains: some entry names a chain in another state or with other sites", n, t.chains)}
	}
	want := t.counts
	err := tx.Bucket(bucketChainSiteCounts).ForEach(func(k, v []byte) error {
		if len(v) != 8 || int64(binary.BigEndian.Uint64(v)) != want[string(k)] {
			return &FileDamage{Bucket: string(bucketChainSiteCounts), Key: fmt.Sprintf("%q", k),
				Problem: fmt.Sprintf("counts %x, the summaries have %d chains with these sites and state", v, want[string(k)])}
		}
		delete(want, string(k))
		return nil
	})
	if err != nil {
		return err
	}
	for k, n := range want {
		return &FileDamage{Bucket: string(bucketChainSiteCounts), Key: fmt.Sprintf("%q", k),
			Problem: fmt.Sprintf("no count, the summaries have %d chains with these sites and state", n)}
	}
	return nil
}
