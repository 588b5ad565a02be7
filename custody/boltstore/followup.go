package boltstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// The follow-up index (custody.FollowUpIndex): one entry per infused
// chain, keyed by COI, written and removed in the transaction of the
// chain's records (batchTx.put).
var (
	bucketFollowUp  = []byte("followup_index") // COI -> follow-up entry (binary, encodeFollowUp)
	followUpBuckets = [][]byte{bucketFollowUp}
	// keyFollowUpBuilt in the meta bucket says every chain infused before
	// the store kept the index has its entry (buildFollowUpIndex).
	keyFollowUpBuilt = []byte("followup_index_built")
)

var _ custody.FollowUpIndex = (*Store)(nil)

// followUpV1 starts an entry: the product and the three site names as
// length-prefixed strings, the infusion time (varint nanoseconds), then
// the count of recorded time points and each (uvarint).
const followUpV1 = 1

func encodeFollowUp(w *custody.FollowUpPending) []byte {
	dst := []byte{followUpV1}
	for _, s := range []string{w.Product, w.Sites.Collection, w.Sites.Manufacturing, w.Sites.Treatment} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	dst = appendTime(dst, w.Infused)
	dst = binary.AppendUvarint(dst, uint64(len(w.Done)))
	for _, d := range w.Done {
		dst = binary.AppendUvarint(dst, uint64(d))
	}
	return dst
}

func decodeFollowUp(k, b []byte, in interned) (custody.FollowUpPending, error) {
	if len(b) == 0 || b[0] != followUpV1 {
		return custody.FollowUpPending{}, errors.New("malformed follow-up index entry")
	}
	r := fieldReader{b: b[1:]}
	w := custody.FollowUpPending{COI: custody.COI(k), Product: in.str(&r)}
	w.Sites = custody.Sites{Collection: in.str(&r), Manufacturing: in.str(&r), Treatment: in.str(&r)}
	w.Infused = readTime(&r)
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		return custody.FollowUpPending{}, errors.New("malformed follow-up index entry")
	}
	w.Done = make([]int, 0, n)
	for range n {
		d := r.uvarint()
		if d > math.MaxInt32 {
			r.bad = true
		}
		w.Done = append(w.Done, int(d))
	}
	if !r.done() {
		return custody.FollowUpPending{}, errors.New("malformed follow-up index entry")
	}
	return w, nil
}

// putFollowUp stores the draft's follow-up entry for chain coi, or
// removes the chain's entry when the draft carries none and the chain
// was infused (prev).
func (b *batchTx) putFollowUp(coi custody.COI, prev custody.State, d *custody.Draft) error {
	if d.FollowUp == nil && prev != custody.StateInfused {
		return nil
	}
	idx := b.tx.Bucket(bucketFollowUp)
	if d.FollowUp == nil || d.State != custody.StateInfused {
		return idx.Delete([]byte(coi))
	}
	return idx.Put([]byte(coi), encodeFollowUp(d.FollowUp))
}

// FollowUpPending implements custody.FollowUpIndex.
func (s *Store) FollowUpPending(ctx context.Context, after custody.COI, fn func(custody.FollowUpPending) bool) error {
	return s.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta).Get(keyFollowUpBuilt) == nil {
			return fmt.Errorf("follow-up index: not built yet: %w", errors.ErrUnsupported)
		}
		in := interned{}
		c := tx.Bucket(bucketFollowUp).Cursor()
		k, v := c.First()
		if after != "" {
			k, v = c.Seek([]byte(after))
			if k != nil && bytes.Equal(k, []byte(after)) {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			w, err := decodeFollowUp(k, v, in)
			if err != nil {
				return fmt.Errorf("follow-up index %q: %v: %w", k, err, custody.ErrChainBroken)
			}
			if !fn(w) {
				return nil
			}
		}
		return nil
	})
}

// followUpOf folds a chain entry's records into its follow-up entry;
// nil: the chain is not infused.
func followUpOf(tx *bolt.Tx, ce *chainEntry) (*custody.FollowUpPending, error) {
	if ce.State != custody.StateInfused {
		return nil, nil
	}
	recs, err := chainRecords(tx, ce)
	if err != nil {
		return nil, err
	}
	return custody.FollowUpPendingOf(ce.COI, ce.Product, ce.Sites, recs), nil
}

// buildFollowUpIndex gives every chain infused before the store kept the
// follow-up index its entry, in one transaction, and marks it built.
func (s *Store) buildFollowUpIndex() error {
	return s.update(func(tx *bolt.Tx) error {
		meta, idx := tx.Bucket(bucketMeta), tx.Bucket(bucketFollowUp)
		if meta.Get(keyFollowUpBuilt) != nil {
			return nil
		}
		err := scanChainEntries(tx, func(ce *chainEntry) error {
			w, err := followUpOf(tx, ce)
			if err != nil {
				return fmt.Errorf("follow-up index of chain %s: %w", ce.COI, err)
			}
			if w == nil {
				return idx.Delete([]byte(ce.COI))
			}
			return idx.Put([]byte(ce.COI), encodeFollowUp(w))
		})
		if err != nil {
			return err
		}
		return meta.Put(keyFollowUpBuilt, []byte{1})
	})
}

// followUpBucketChecks checks each follow-up entry against the ledger:
// the chain is infused and its records fold to the entry.
func followUpBucketChecks() map[string]bucketCheck {
	return map[string]bucketCheck{string(bucketFollowUp): followUpCheck(true)}
}

// followUpCheck returns the check of the follow-up index's entries: each
// against the fold of its chain's records, read through one cursor of the
// check's read (not a cursor made for each, as Bucket.Get makes), each
// checked against its stored hash when hashes is set.
func followUpCheck(hashes bool) bucketCheck {
	var records seqGetter
	var in *bolt.Tx
	return bucketCheck{name: strName, entry: func(tx *bolt.Tx, k, v []byte) error {
		if in != tx {
			in, records = tx, seqGetter{c: tx.Bucket(bucketLog).Cursor()}
		}
		w, err := decodeFollowUp(k, v, nil)
		if err != nil {
			return err
		}
		ce, err := getChain(tx, custody.COI(k))
		if err != nil {
			return fmt.Errorf("the chain: %v", err)
		}
		if ce.State != custody.StateInfused {
			return fmt.Errorf("the chain is %q, not infused", ce.State)
		}
		want, err := foldFollowUpForCheck(records.get, ce, hashes)
		switch {
		case err != nil:
			return err
		case want == nil:
			return errors.New("the chain's records hold no infusion")
		case want.Product != w.Product || want.Sites != w.Sites || !want.Infused.Equal(w.Infused) || !slices.Equal(want.Done, w.Done):
			return fmt.Errorf("the entry %+v disagrees with the chain's records (%+v)", w, *want)
		}
		return nil
	}}
}

// followUpBuilt reports whether every infused chain has its follow-up
// entry (buildFollowUpIndex has run).
func followUpBuilt(tx *bolt.Tx) bool {
	return tx.Bucket(bucketFollowUp) != nil && tx.Bucket(bucketMeta).Get(keyFollowUpBuilt) != nil
}

// missingFollowUp returns the damage of infused chain coi without a
// follow-up entry, nil when it needs none: its records, read with get,
// hold no infusion (batchTx.putFollowUp removes the entry of such a
// chain).
func missingFollowUp(tx *bolt.Tx, get func(key []byte) []byte, coi []byte) error {
	ce, err := getChain(tx, custody.COI(coi))
	if err != nil {
		return &FileDamage{Bucket: string(bucketChains), Key: strName(coi), Problem: err.Error()}
	}
	want, err := foldFollowUpForCheck(get, ce, true)
	switch {
	case err != nil:
		return &FileDamage{Bucket: string(bucketChains), Key: strName(coi), Problem: err.Error()}
	case want != nil:
		return &FileDamage{Bucket: string(bucketFollowUp), Key: strName(coi), Problem: fmt.Sprintf("infused chain %s has no follow-up entry", coi)}
	}
	return nil
}

// followUpFoldJSON is what the follow-up fold reads of a stored record:
// decoding only these members, and a step's data only for a follow-up,
// spares the check most of a full decode of every infused chain's
// records (their signatures, hashes and other steps' data).
type followUpFoldJSON struct {
	Seq  uint64          `json:"seq"`
	Step custody.Step    `json:"step"`
	Time string          `json:"time"`
	Data json.RawMessage `json:"data"`
}

// foldFollowUpForCheck is followUpOf for an infused chain, as the check
// needs it, reading the log's records with get: each record's bytes are
// checked against its position, and its stored hash when hashes is set,
// as getRecord does, and only the members the fold reads are decoded; the
// records themselves are verified with the ledger.
func foldFollowUpForCheck(get func(key []byte) []byte, ce *chainEntry, hashes bool) (*custody.FollowUpPending, error) {
	recs := make([]custody.Record, 0, len(ce.Seqs))
	var key [8]byte
	for _, seq := range ce.Seqs {
		binary.BigEndian.PutUint64(key[:], seq)
		v := get(key[:])
		switch {
		case v == nil:
			return nil, fmt.Errorf("record %d: %w", seq, custody.ErrNotFound)
		case len(v) < custody.HashSize:
			return nil, fmt.Errorf("record %d: truncated: %w", seq, custody.ErrChainBroken)
		case hashes && sha256.Sum256(v[custody.HashSize:]) != custody.Hash(v[:custody.HashSize]):
			return nil, fmt.Errorf("record %d: content does not match its hash: %w", seq, custody.ErrChainBroken)
		}
		var j followUpFoldJSON
		if !j.scan(v[custody.HashSize:]) {
			if err := json.Unmarshal(v[custody.HashSize:], &j); err != nil {
				return nil, fmt.Errorf("record %d: %v: %w", seq, err, custody.ErrChainBroken)
			}
		}
		if j.Seq != seq {
			return nil, fmt.Errorf("record %d: stored at the wrong position (says %d): %w", seq, j.Seq, custody.ErrChainBroken)
		}
		r := custody.Record{Seq: seq, Chain: ce.COI, Step: j.Step}
		switch j.Step {
		case custody.StepInfuse:
			t, err := time.Parse(time.RFC3339Nano, j.Time)
			if err != nil {
				return nil, fmt.Errorf("record %d: record time: %v: %w", seq, err, custody.ErrChainBroken)
			}
			r.Time = t.UTC()
		case custody.StepFollowUp:
			r.Data = j.Data
		default:
			continue // the fold reads no other step
		}
		recs = append(recs, r)
	}
	return custody.FollowUpPendingOf(ce.COI, ce.Product, ce.Sites, recs), nil
}

// isRecordMember says whether name is a member of a stored record, as
// the record's canonical encoding names them.
func isRecordMember(name []byte) bool {
	switch string(name) {
	case "chain", "chain_prev", "chain_seq", "data", "hash", "prev", "seq", "signatures", "site", "step", "submitted_by", "time", "v":
		return true
	}
	return false
}

// scan reads j's members from a stored record b without a JSON decoder:
// the record is a JSON object whose members' names and the values read
// here are written without escapes, as its canonical encoding writes
// them; the other members' values are skipped, not checked (the ledger's
// verification decodes every record). It returns false, j then not to
// be used, for anything else (another name, an escape, a malformed
// value), which json.Unmarshal then decodes or refuses as it would.
func (j *followUpFoldJSON) scan(b []byte) bool {
	*j = followUpFoldJSON{}
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		end := stringEnd(b, i)
		if end < 0 {
			return false
		}
		name := b[i+1 : end-1]
		if !isRecordMember(name) {
			return false // escaped, or a name json.Unmarshal may match without regard to case
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		vend := valueEnd(b, i)
		if vend < 0 {
			return false
		}
		val := b[i:vend]
		switch string(name) {
		case "seq":
			n, err := strconv.ParseUint(string(val), 10, 64)
			if err != nil {
				return false
			}
			j.Seq = n
		case "step":
			str, ok := plainString(val)
			if !ok {
				return false
			}
			j.Step = custody.Step(str)
		case "time":
			str, ok := plainString(val)
			if !ok {
				return false
			}
			j.Time = str
		case "data":
			j.Data = val
		}
		i = skipSpace(b, vend)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the JSON string starting at
// b[i], -1 when it does not end.
func stringEnd(b []byte, i int) int {
	i++
	if i > len(b) {
		return -1
	}
	// Most strings hold no escape: the next quote ends them.
	q := bytes.IndexByte(b[i:], '"')
	if q < 0 {
		return -1
	}
	if bytes.IndexByte(b[i:i+q], '\\') < 0 {
		return i + q + 1
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// valueEnd returns the index just past the JSON value starting at b[i]:
// a string, an object or an array (their nesting and strings followed,
// their contents not checked), or a literal; -1 when it does not end.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				e := stringEnd(b, i)
				if e < 0 {
					return -1
				}
				i = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	start := i
	for ; i < len(b); i++ {
		if c := b[i]; c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			break
		}
	}
	if i == start {
		return -1
	}
	return i
}

// plainString returns the text of the JSON string val when it holds no
// escape and is valid UTF-8 (json.Unmarshal would replace what is not).
func plainString(val []byte) (string, bool) {
	if len(val) < 2 || val[0] != '"' || bytes.IndexByte(val, '\\') >= 0 || !utf8.Valid(val) {
		return "", false
	}
	return string(val[1 : len(val)-1]), true
}
