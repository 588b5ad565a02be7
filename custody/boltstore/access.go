package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// The access index (custody.AccessIndex): one entry per expanded-access
// request, keyed by the request chain's journey state then its
// identifier, so the open requests of the triage queue are a prefix read
// that never touches the decided ones. An append of a request record
// moves the entry from the chain's state before to its state after, in
// the same transaction as the record (batchTx.put).
var (
	bucketAccess  = []byte("access_index") // state 0 request ID -> access row (binary, encodeAccessRow)
	accessBuckets = [][]byte{bucketAccess}
	// keyAccessBuilt in the meta bucket says every request appended
	// before the store kept the index has its entry (buildAccessIndex).
	keyAccessBuilt = []byte("access_index_built")
)

var _ custody.AccessIndex = (*Store)(nil)

// accessRowV1 starts an entry: the ID, view state, urgency, treatment
// and manufacturing sites and assignee as length-prefixed strings, then
// the submitted, decided and waiting-since times (varint nanoseconds, 0
// for none) and the ended pauses (varint nanoseconds).
const accessRowV1 = 1

func accessKey(st custody.State, id custody.COI) []byte {
	k := make([]byte, 0, len(st)+1+len(id))
	k = append(k, st...)
	k = append(k, 0)
	return append(k, id...)
}

func encodeAccessRow(w *custody.AccessRow) []byte {
	dst := []byte{accessRowV1}
	for _, s := range []string{string(w.ID), string(w.State), string(w.Urgency), w.Treatment, w.Manufacturing, w.Assignee} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	dst = appendTime(dst, w.Submitted)
	dst = appendTime(dst, w.Decided)
	dst = appendTime(dst, w.WaitingSince)
	return binary.AppendVarint(dst, int64(w.Paused))
}

func decodeAccessRow(b []byte, in interned) (custody.AccessRow, error) {
	if len(b) == 0 || b[0] != accessRowV1 {
		return custody.AccessRow{}, errors.New("malformed access index entry")
	}
	r := fieldReader{b: b[1:]}
	w := custody.AccessRow{ID: custody.COI(r.str()), State: custody.State(in.str(&r)), Urgency: custody.Urgency(in.str(&r)),
		Treatment: in.str(&r), Manufacturing: in.str(&r), Assignee: in.str(&r)}
	w.Submitted, w.Decided, w.WaitingSince = readTime(&r), readTime(&r), readTime(&r)
	w.Paused = time.Duration(r.varint())
	if !r.done() {
		return custody.AccessRow{}, errors.New("malformed access index entry")
	}
	return w, nil
}

// putAccess moves chain coi's access index entry from state prev (empty:
// none) to the draft's state with the draft's row. A request draft
// without a row (none is expected: the service computes one for every
// request record) removes the entry and marks the index for rebuilding
// at the next open.
func (b *batchTx) putAccess(coi custody.COI, prev custody.State, d *custody.Draft) error {
	if d.Access == nil && !d.State.Access() && !prev.Access() {
		return nil
	}
	idx := b.tx.Bucket(bucketAccess)
	if prev.Access() {
		if err := idx.Delete(accessKey(prev, coi)); err != nil {
			return err
		}
	}
	if d.Access == nil || !d.State.Access() {
		return b.meta.Delete(keyAccessBuilt)
	}
	row := *d.Access
	row.ID = coi
	return idx.Put(accessKey(d.State, coi), encodeAccessRow(&row))
}

// AccessRows implements custody.AccessIndex.
func (s *Store) AccessRows(ctx context.Context, states ...custody.State) ([]custody.AccessRow, error) {
	var out []custody.AccessRow
	err := s.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta).Get(keyAccessBuilt) == nil {
			// An older ledger opened read-only: its index is built by
			// the next open for writing.
			return fmt.Errorf("access index: not built yet: %w", errors.ErrUnsupported)
		}
		in := interned{}
		c := tx.Bucket(bucketAccess).Cursor()
		// Counted first (keys only): the rows are copied once.
		n := 0
		for _, st := range states {
			prefix := accessKey(st, "")
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				n++
			}
		}
		out = make([]custody.AccessRow, 0, n)
		for _, st := range states {
			prefix := accessKey(st, "")
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				w, err := decodeAccessRow(v, in)
				if err != nil {
					return fmt.Errorf("access index %q: %v: %w", k, err, custody.ErrChainBroken)
				}
				out = append(out, w)
			}
		}
		return nil
	})
	return out, err
}

// chainRecords reads a chain's records, in chain order, inside tx.
func chainRecords(tx *bolt.Tx, ce *chainEntry) ([]custody.Record, error) {
	recs := make([]custody.Record, 0, len(ce.Seqs))
	for _, seq := range ce.Seqs {
		r, err := getRecord(tx, seq)
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// buildAccessIndex gives every request of a ledger written before the
// store kept the access index (or whose index was marked for rebuilding)
// its entry, folding each request once, in one transaction, and marks the
// index built. A store whose index is built is not read again.
func (s *Store) buildAccessIndex() error {
	return s.update(func(tx *bolt.Tx) error {
		meta, idx := tx.Bucket(bucketMeta), tx.Bucket(bucketAccess)
		if meta.Get(keyAccessBuilt) != nil {
			return nil
		}
		if err := idx.ForEach(func(k, _ []byte) error { return idx.Delete(k) }); err != nil {
			return err
		}
		err := scanChainEntries(tx, func(ce *chainEntry) error {
			if !ce.State.Access() {
				return nil
			}
			recs, err := chainRecords(tx, ce)
			if err != nil {
				return fmt.Errorf("access index of request %s: %w", ce.COI, err)
			}
			w, err := custody.AccessRowOf(recs)
			if err != nil {
				return fmt.Errorf("access index of request %s: %w", ce.COI, err)
			}
			return idx.Put(accessKey(ce.State, ce.COI), encodeAccessRow(&w))
		})
		if err != nil {
			return err
		}
		return meta.Put(keyAccessBuilt, []byte{1})
	})
}

// accessBucketChecks checks each access index entry against the ledger:
// it decodes, its chain is a request in the state its key names, and it
// is the row the request's records fold to.
func accessBucketChecks() map[string]bucketCheck {
	return map[string]bucketCheck{
		string(bucketAccess): {name: strName, entry: func(tx *bolt.Tx, k, v []byte) error {
			i := bytes.IndexByte(k, 0)
			if i < 0 {
				return errors.New("the key is not a state and a request")
			}
			w, err := decodeAccessRow(v, nil)
			if err != nil {
				return err
			}
			ce, err := getChain(tx, custody.COI(k[i+1:]))
			if err != nil {
				return fmt.Errorf("the request's chain: %v", err)
			}
			if string(ce.State) != string(k[:i]) {
				return fmt.Errorf("the entry is filed under state %q, the chain is %q", k[:i], ce.State)
			}
			recs, err := chainRecords(tx, ce)
			if err != nil {
				return err
			}
			want, err := custody.AccessRowOf(recs)
			if err != nil {
				return err
			}
			if !sameAccessRow(w, want) {
				return fmt.Errorf("the entry %+v disagrees with the request's records (%+v)", w, want)
			}
			return nil
		}},
	}
}

// sameAccessRow compares two rows, times by instant.
func sameAccessRow(a, b custody.AccessRow) bool {
	return a.ID == b.ID && a.State == b.State && a.Urgency == b.Urgency && a.Treatment == b.Treatment &&
		a.Manufacturing == b.Manufacturing && a.Assignee == b.Assignee && a.Submitted.Equal(b.Submitted) &&
		a.Decided.Equal(b.Decided) && a.WaitingSince.Equal(b.WaitingSince) && a.Paused == b.Paused
}
