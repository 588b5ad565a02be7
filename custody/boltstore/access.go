package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
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

// An entry starts with its version byte, then the ID, view state,
// urgency, treatment and manufacturing sites and assignee as
// length-prefixed strings, then the submitted, decided and waiting-since
// times (nanoseconds since the Unix epoch, 0 for none) and the ended
// pauses (nanoseconds): varints in accessRowV1, 8 bytes big-endian each in
// accessRowV2, which is written now. Both are read.
const (
	accessRowV1 = 1
	accessRowV2 = 2
)

func accessKey(st custody.State, id custody.COI) []byte {
	k := make([]byte, 0, len(st)+1+len(id))
	k = append(k, st...)
	k = append(k, 0)
	return append(k, id...)
}

func encodeAccessRow(w *custody.AccessRow) []byte {
	dst := make([]byte, 0, 1+6+len(w.ID)+len(w.State)+len(w.Urgency)+len(w.Treatment)+len(w.Manufacturing)+len(w.Assignee)+4*8)
	dst = append(dst, accessRowV2)
	for _, s := range []string{string(w.ID), string(w.State), string(w.Urgency), w.Treatment, w.Manufacturing, w.Assignee} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	for _, t := range []time.Time{w.Submitted, w.Decided, w.WaitingSince} {
		var n int64
		if !t.IsZero() {
			n = t.UnixNano()
		}
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return binary.BigEndian.AppendUint64(dst, uint64(w.Paused))
}

// fixedTime reads a time accessRowV2 holds.
func fixedTime(r *fieldReader) time.Time {
	if v := fixedInt(r); v != 0 {
		return time.Unix(0, v).UTC()
	}
	return time.Time{}
}

// fixedInt reads an 8-byte big-endian integer.
func fixedInt(r *fieldReader) int64 {
	b := r.next(8)
	if b == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

func decodeAccessRow(b []byte, a *accessStrings) (custody.AccessRow, error) {
	if len(b) == 0 || (b[0] != accessRowV1 && b[0] != accessRowV2) {
		return custody.AccessRow{}, errors.New("malformed access index entry")
	}
	r := fieldReader{b: b[1:]}
	w := custody.AccessRow{ID: custody.COI(a.id(&r)), State: custody.State(a.field(0, &r)), Urgency: custody.Urgency(a.field(1, &r)),
		Treatment: a.field(2, &r), Manufacturing: a.field(3, &r), Assignee: a.field(4, &r)}
	if b[0] == accessRowV1 {
		w.Submitted, w.Decided, w.WaitingSince = readTime(&r), readTime(&r), readTime(&r)
		w.Paused = time.Duration(r.varint())
	} else {
		w.Submitted, w.Decided, w.WaitingSince = fixedTime(&r), fixedTime(&r), fixedTime(&r)
		w.Paused = time.Duration(fixedInt(&r))
	}
	if !r.done() {
		return custody.AccessRow{}, errors.New("malformed access index entry")
	}
	return w, nil
}

// accessStrings hands out the strings of the access rows read in one
// transaction without a string per row and field: a field's value is
// first compared with the same field's value in the row before (a
// request's state, urgency and sites mostly repeat from row to row),
// then looked up among the distinct values read; the identifiers are cut
// from one string of all the keys read (ids, in the order the rows are
// decoded). A nil *accessStrings copies every string.
type accessStrings struct {
	in   interned
	last [5]string
	ids  string
	off  int
}

// field reads the length-prefixed string of field i (0-4: state,
// urgency, treatment and manufacturing sites, assignee).
func (a *accessStrings) field(i int, r *fieldReader) string {
	b := r.next(r.uvarint())
	if a == nil {
		return string(b)
	}
	if string(b) == a.last[i] {
		return a.last[i]
	}
	s, ok := a.in[string(b)]
	if !ok {
		s = string(b)
		a.in[s] = s
	}
	a.last[i] = s
	return s
}

// id reads a row's length-prefixed identifier: the next one of ids when
// it is the same (it is unless the rows and keys disagree).
func (a *accessStrings) id(r *fieldReader) string {
	b := r.next(r.uvarint())
	if a == nil {
		return string(b)
	}
	if end := a.off + len(b); end <= len(a.ids) && a.ids[a.off:end] == string(b) {
		s := a.ids[a.off:end]
		a.off = end
		return s
	}
	return string(b)
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

// maxCachedAccessRows bounds the rows of one list of states that
// accessRowsCache keeps (about 180 bytes each).
const maxCachedAccessRows = 100_000

// accessRowsCache keeps, for each list of states asked, the rows the
// last AccessRows decoded and the snapshot they were read in (the file
// open and its last committed write transaction): a read of the same
// snapshot returns them without decoding again. Any commit moves the
// snapshot on, so an append is seen by the next read.
type accessRowsCache struct {
	mu       sync.Mutex
	byStates map[string]cachedAccessRows
}

type cachedAccessRows struct {
	db   *bolt.DB
	txid int
	rows []custody.AccessRow
}

func accessStatesKey(states []custody.State) string {
	var b strings.Builder
	for _, st := range states {
		b.WriteString(string(st))
		b.WriteByte(0)
	}
	return b.String()
}

func (c *accessRowsCache) get(key string, tx *bolt.Tx) ([]custody.AccessRow, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byStates[key]
	if !ok || e.db != tx.DB() || e.txid != tx.ID() {
		return nil, false
	}
	return e.rows, true
}

func (c *accessRowsCache) put(key string, tx *bolt.Tx, rows []custody.AccessRow) {
	if len(rows) > maxCachedAccessRows {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byStates == nil {
		c.byStates = map[string]cachedAccessRows{}
	}
	if e, ok := c.byStates[key]; ok && e.db == tx.DB() && e.txid > tx.ID() {
		return // a later snapshot's rows are kept already
	}
	c.byStates[key] = cachedAccessRows{db: tx.DB(), txid: tx.ID(), rows: rows}
}

// AccessRows implements custody.AccessIndex. Reads of the same snapshot
// share the rows (accessRowsCache).
func (s *Store) AccessRows(ctx context.Context, states ...custody.State) ([]custody.AccessRow, error) {
	var out []custody.AccessRow
	key := accessStatesKey(states)
	err := s.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta).Get(keyAccessBuilt) == nil {
			// An older ledger opened read-only: its index is built by
			// the next open for writing.
			return fmt.Errorf("access index: not built yet: %w", errors.ErrUnsupported)
		}
		if rows, ok := s.accessRows.get(key, tx); ok {
			out = rows
			return nil
		}
		c := tx.Bucket(bucketAccess).Cursor()
		// Counted first (keys only, their identifiers kept as one
		// string): the rows are copied once, their identifiers not at
		// all.
		n, ids := 0, []byte(nil)
		for _, st := range states {
			prefix := accessKey(st, "")
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				n++
				ids = append(ids, k[len(prefix):]...)
			}
		}
		strs := &accessStrings{in: interned{}, ids: string(ids)}
		out = make([]custody.AccessRow, 0, n)
		for _, st := range states {
			prefix := accessKey(st, "")
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				w, err := decodeAccessRow(v, strs)
				if err != nil {
					return fmt.Errorf("access index %q: %v: %w", k, err, custody.ErrChainBroken)
				}
				out = append(out, w)
			}
		}
		s.accessRows.put(key, tx, out)
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
