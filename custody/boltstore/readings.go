package boltstore

// Telemetry readings in the same bbolt file as the ledger.
//
// Layout (buckets created by Open). Readings are stored in blocks:
//
//	reading_shippers     shipper -> its number (uint32 BE, from the
//	                       bucket's sequence) and the widest span of
//	                       device times one of its blocks ever held
//	                       (uint64 BE nanoseconds)
//	reading_shipper_nos  number (uint32 BE) -> shipper
//	reading_blocks       number (4) kind (1: 's' by seq, 't' by device
//	                       time) first identity (8 BE, as in
//	                       Reading.Key) -> up to readingsPerBlock readings
//	                       of that shipper and kind, in identity order
//	                       (encodeBlock): each with its watermark, delta
//	                       encoded. Block ranges never overlap: a reading
//	                       goes in the last block starting at or before
//	                       its identity (the first block if none); a block
//	                       grown past readingsPerBlock is cut in blocks of
//	                       readingsPerBlock from its start.
//	reading_block_times  number (4) earliest device time in the block
//	                       (UnixNano XOR 1<<63, 8 BE) kind first identity
//	                       -> the latest device time in the block (8 BE):
//	                       a time range reads the blocks whose earliest
//	                       time is at most the span before its start
//	reading_log          watermark (8 BE) -> the blocks the batch stored
//	                       readings in: for each, shipper number, kind,
//	                       lowest and highest identity stored; the
//	                       batch's readings are those in range with its
//	                       watermark (decodeLogEntry), for ReadingsSince
//	readings_meta        "watermark" -> uint64 BE: the number of
//	                       committed batches that stored at least one
//	                       reading
//	                     "batches_from" -> uint64 BE: the watermark the
//	                       reading log starts after (0, or the watermark
//	                       of a file written before it existed, when Open
//	                       created it)
//	                     "block_readings" -> uint64 BE: readings in blocks
//	quarantine           id (8 bytes BE) -> QuarantineEntry JSON, at most
//	                       MaxQuarantine entries and MaxQuarantineBytes
//	                       (the oldest are dropped)
//
// Files written before the block layout hold their readings one per entry
// in the per-reading layout, which every read path and the duplicate check
// read too, forever (no reading is moved), and nothing writes any more:
//
//	readings         Reading.Key() -> encoded reading (readingcodec.go,
//	                   versions 1 and 2)
//	reading_times    shipper 0x00 (device UnixNano XOR 1<<63, 8 bytes BE)
//	                   Key() -> empty: index for range scans by device time
//	reading_batches  watermark (8 bytes BE) Key() -> empty: the readings
//	                   of each batch, all before the first in reading_log
//
// Readings are written by their own writer goroutine (a
// custody.GroupCommit), which commits many callers' batches in one
// transaction and answers each caller only after the commit is durable. Only that goroutine writes these
// buckets, so it can find duplicates with a read transaction first and
// skip the write entirely when a batch holds nothing new (redeliveries).
//
// A duplicate is a reading identical to the one stored under its identity
// (Reading.Key), apart from its receive time. A reading that differs under
// the same identity (a logger that restarted its seq) is no duplicate:
// its caller's whole batch is refused with custody.ErrReadingConflict and
// nothing of it is written, so that it can be kept for review.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketReadings     = []byte("readings")
	bucketReadingTimes = []byte("reading_times")
	bucketReadingsMeta = []byte("readings_meta")
	bucketReadingBatch = []byte("reading_batches")
	bucketQuarantine   = []byte("quarantine")
	keyWatermark       = []byte("watermark")
	keyBatchesFrom     = []byte("batches_from")

	// readingBuckets are created by Open.
	readingBuckets = [][]byte{bucketReadings, bucketReadingTimes, bucketReadingsMeta, bucketQuarantine}
	// readingLogBuckets are created by Open, and missing from a file no
	// writer with the reading log has opened yet.
	readingLogBuckets = [][]byte{bucketReadingBatch, bucketReadingShippers, bucketReadingShipperNos, bucketReadingBlocks,
		bucketReadingBlockTimes, bucketReadingLog}
)

// Bounds of the quarantine, which keeps rejected payloads for review.
// Beyond MaxQuarantine entries or MaxQuarantineBytes, the oldest entries
// are dropped (the newest is always kept) and the store logs a warning
// naming their IDs; IDs are consecutive, so a gap before the oldest entry
// listed also shows what was dropped.
const (
	// MaxQuarantine is how many rejected payloads the quarantine keeps.
	MaxQuarantine = 1000
	// MaxQuarantineBytes bounds the space the quarantine's entries take
	// in the file, as stored (JSON, the payload in base64: about 4/3 of
	// the payload's bytes), so that a flood of large rejected payloads
	// cannot grow the file, which never shrinks, by more than this.
	MaxQuarantineBytes = 64 << 20
	// MaxQuarantinePayloadBytes is the longest payload kept whole: 1 MiB,
	// sensors.MaxPayloadBytes, the largest payload the decoder accepts, so
	// a payload refused for its content is always kept entire. Of a longer
	// one (refused for its size alone) the first MaxQuarantinePayloadBytes
	// bytes are kept, and QuarantineEntry.Size tells its full length.
	MaxQuarantinePayloadBytes = 1 << 20
)

// quarantineMaxBytes is MaxQuarantineBytes; tests lower it.
var quarantineMaxBytes = MaxQuarantineBytes

// A commit of fewer than readingsGatherBelow readings waits up to
// readingsGatherWait for more before it starts.
const (
	readingsGatherBelow = 2048
	readingsGatherWait  = 2 * time.Millisecond
)

// maxReadingsBatch caps the readings committed in one transaction.
const maxReadingsBatch = 16384

var _ custody.ReadingStore = (*Store)(nil)

type readingsReq struct {
	readings   []custody.Reading
	quarantine *custody.QuarantineEntry
}

// newReadingsWriter starts the readings' group commit: a batch of fewer
// than readingsGatherBelow readings waits up to readingsGatherWait for
// more before it commits, since each commit costs two fsyncs, whose CPU
// time the broker and the MQTT connections need when ingest is busy.
func newReadingsWriter(s *Store) (*custody.GroupCommit[readingsReq, custody.IngestResult], error) {
	return custody.NewGroupCommit(custody.GroupCommitConfig[readingsReq, custody.IngestResult]{
		Begin:       func() custody.BatchTxn[readingsReq, custody.IngestResult] { return &readingsTxn{s: s} },
		Queue:       8192,
		MaxBatch:    maxReadingsBatch,
		Weight:      func(r *readingsReq) int { return len(r.readings) },
		GatherBelow: readingsGatherBelow,
		GatherWait:  readingsGatherWait,
		AfterCommit: s.maybeRefresh,
	})
}

// readingsTxn is one batch of the readings writer: its requests are
// checked and stored together at Commit (commitReadings).
type readingsTxn struct {
	s     *Store
	batch []*readingsReq
}

// Add implements custody.BatchTxn.
func (t *readingsTxn) Add(r *readingsReq) { t.batch = append(t.batch, r) }

// Commit implements custody.BatchTxn.
func (t *readingsTxn) Commit(out []custody.Outcome[custody.IngestResult]) error {
	return t.s.commitReadings(t.batch, out)
}

// AddReadingsAsync implements custody.ReadingSink: it queues readings
// (and, if q is not nil, a quarantined payload) for the readings writer and
// returns at once; done is called from the writer goroutine once the
// transaction holding them is durable, or with the error that prevented
// it: custody.ErrReadingConflict when a reading's identity is stored with
// different content (nothing of the batch was written), another error
// when the commit failed. done must not block for long. It blocks only
// while the writer's queue is full and fails with custody.ErrClosed when
// the store is closed.
func (s *Store) AddReadingsAsync(readings []custody.Reading, q *custody.QuarantineEntry, done func(custody.IngestResult, error)) error {
	if s.readOnly {
		return fmt.Errorf("add readings: store opened read-only: %w", custody.ErrClosed)
	}
	if err := s.readings.Submit(context.Background(), readingsReq{readings: readings, quarantine: q}, done); err != nil {
		return fmt.Errorf("add readings: %w", err)
	}
	return nil
}

// AddReadings stores readings durably, each identity once, and returns when
// they are committed. It refuses them all with custody.ErrReadingConflict
// when one differs from the reading stored under its identity.
func (s *Store) AddReadings(ctx context.Context, readings []custody.Reading) (custody.IngestResult, error) {
	type out struct {
		res custody.IngestResult
		err error
	}
	ch := make(chan out, 1)
	if err := s.AddReadingsAsync(readings, nil, func(res custody.IngestResult, err error) { ch <- out{res, err} }); err != nil {
		return custody.IngestResult{}, err
	}
	// Once queued the batch may commit: wait for the outcome.
	o := <-ch
	return o.res, o.err
}

// Quarantine stores a rejected payload durably.
func (s *Store) Quarantine(ctx context.Context, q custody.QuarantineEntry) error {
	ch := make(chan error, 1)
	if err := s.AddReadingsAsync(nil, &q, func(_ custody.IngestResult, err error) { ch <- err }); err != nil {
		return err
	}
	return <-ch
}

// commitReadings stores a batch in one transaction and sets every
// request's outcome in out; an error fails the whole batch. A request holding a reading whose identity is already stored,
// or taken earlier in the batch, with different content is refused whole
// (ErrReadingConflict): none of its readings, nor its quarantine entry, is
// written; the other requests are not affected. An identical reading is a
// duplicate, counted and skipped.
func (s *Store) commitReadings(batch []*readingsReq, out []custody.Outcome[custody.IngestResult]) error {
	type item struct {
		r   *custody.Reading
		key []byte
	}
	var items []item
	// seen holds the readings taken so far in this batch, by key, with the
	// index of their request.
	type taken struct {
		r   *custody.Reading
		req int
	}
	seen := map[string]taken{}
	dups := make([]int, len(batch))
	newN := make([]int, len(batch))
	refused := make([]error, len(batch))
	var quarantined []*custody.QuarantineEntry
	var wm uint64
	var content []byte
	// Find what is new with a read transaction: only this goroutine
	// writes these buckets, so the answer holds for the update below.
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketReadings)
		if b == nil {
			return fmt.Errorf("readings bucket missing")
		}
		wm = readWatermark(tx)
		blocks := newBlockLookup(tx)
		for i, req := range batch {
			start := len(items)
			var conflict *readingConflict
			for j := range req.readings {
				r := &req.readings[j]
				k := r.Key()
				if prev, ok := seen[string(k)]; ok {
					if sameReading(prev.r, r) {
						dups[i]++
						continue
					}
					conflict = conflict.add(r, func() string {
						if prev.req == i {
							return "appears twice in the message with different content (first -> second: " + readingDiff(prev.r, r) + ")"
						}
						// Stored by this very commit, for another message.
						return "is already stored with different content (stored -> this message: " + readingDiff(prev.r, r) + ")"
					})
					continue
				}
				if v := b.Get(k); v != nil {
					var same bool
					if same, content = sameStoredContent(v, r, content); same {
						dups[i]++
						continue
					}
					conflict = conflict.add(r, func() string {
						old, _, err := decodeReading(r.Shipper, k, v)
						if err != nil {
							// Tampered or damaged: never taken for a duplicate.
							return fmt.Sprintf("is already stored, but the stored reading is unreadable (%v)", err)
						}
						return "is already stored with different content (stored -> this message: " + readingDiff(&old, r) + ")"
					})
					continue
				}
				if old, err := blocks.get(r); err != nil || old != nil {
					if err == nil && sameReading(old, r) {
						dups[i]++
						continue
					}
					conflict = conflict.add(r, func() string {
						if err != nil {
							// Tampered or damaged: never taken for a duplicate.
							return fmt.Sprintf("is already stored, but the stored reading is unreadable (%v)", err)
						}
						return "is already stored with different content (stored -> this message: " + readingDiff(old, r) + ")"
					})
					continue
				}
				seen[string(k)] = taken{r, i}
				items = append(items, item{r, k})
			}
			if conflict != nil {
				// Refused whole: forget what it would have added.
				for _, it := range items[start:] {
					delete(seen, string(it.key))
				}
				items = items[:start]
				dups[i] = 0
				refused[i] = conflict.err(len(req.readings))
				continue
			}
			newN[i] = len(items) - start
			if req.quarantine != nil {
				quarantined = append(quarantined, req.quarantine)
			}
		}
		return nil
	})
	var dropped quarantineDrop
	if err == nil && (len(items) > 0 || len(quarantined) > 0) {
		err = s.update(func(tx *bolt.Tx) error {
			if len(items) > 0 {
				wm = readWatermark(tx) + 1
				if err := tx.Bucket(bucketReadingsMeta).Put(keyWatermark, u64(wm)); err != nil {
					return err
				}
				rs := make([]*custody.Reading, len(items))
				for i, it := range items {
					rs[i] = it.r
				}
				if err := putBlocks(tx, rs, wm); err != nil {
					return err
				}
			}
			var err error
			dropped, err = putQuarantine(tx, quarantined)
			return err
		})
	}
	if err == nil && dropped.n > 0 {
		s.log.Warn("telemetry quarantine full: oldest entries dropped", "dropped", dropped.n, "first_id", dropped.first,
			"last_id", dropped.last, "max_entries", MaxQuarantine, "max_bytes", quarantineMaxBytes)
	}
	if err != nil {
		return fmt.Errorf("add readings: commit failed, nothing was written: %w", err)
	}
	for i := range batch {
		if refused[i] != nil {
			out[i] = custody.Outcome[custody.IngestResult]{Value: custody.IngestResult{Watermark: wm}, Err: refused[i]}
		} else {
			out[i] = custody.Outcome[custody.IngestResult]{Value: custody.IngestResult{Stored: newN[i], Duplicates: dups[i], Watermark: wm}}
		}
	}
	return nil
}

// readingConflict collects the conflicting readings of one request: the
// first described, the others counted.
type readingConflict struct {
	got  custody.Reading
	what string
	n    int
}

// add counts a conflict of reading got; describe says how it differs from
// what is stored, and is called for the first conflict only.
func (c *readingConflict) add(got *custody.Reading, describe func() string) *readingConflict {
	if c == nil {
		return &readingConflict{got: *got, what: describe(), n: 1}
	}
	c.n++
	return c
}

// err describes the conflict for the quarantine and the log: the shipper
// and identity, each field that differs (stored value first), and how
// many of the request's total readings conflict.
func (c *readingConflict) err(total int) error {
	id := "device time " + c.got.DeviceTime.UTC().Format(time.RFC3339Nano)
	if c.got.HasSeq {
		id = fmt.Sprintf("seq %d", c.got.Seq)
	}
	more := ""
	if c.n > 1 {
		more = fmt.Sprintf("; %d of the message's %d readings conflict", c.n, total)
	}
	return fmt.Errorf("add readings: shipper %s %s %s%s; nothing of the message was stored: %w",
		c.got.Shipper, id, c.what, more, custody.ErrReadingConflict)
}

// readingDiff lists the fields in which a and b differ, as
// "name a -> b" separated by commas.
func readingDiff(a, b *custody.Reading) string {
	var out []string
	if !a.DeviceTime.Equal(b.DeviceTime) {
		out = append(out, fmt.Sprintf("device_time %s -> %s", a.DeviceTime.UTC().Format(time.RFC3339Nano), b.DeviceTime.UTC().Format(time.RFC3339Nano)))
	}
	if a.HasSeq != b.HasSeq || a.Seq != b.Seq {
		out = append(out, fmt.Sprintf("seq %s -> %s", fmtSeq(a), fmtSeq(b)))
	}
	for _, f := range [...]struct {
		name string
		a, b *float64
	}{{"temp_c", a.TempC, b.TempC}, {"tilt_deg", a.TiltDeg, b.TiltDeg}, {"battery_pct", a.BatteryPct, b.BatteryPct},
		{"ln2_pct", a.LN2Pct, b.LN2Pct}, {"lat", a.Lat, b.Lat}, {"lon", a.Lon, b.Lon}} {
		if !sameFloat(f.a, f.b) {
			out = append(out, fmt.Sprintf("%s %s -> %s", f.name, fmtFloat(f.a), fmtFloat(f.b)))
		}
	}
	for _, f := range [...]struct {
		name string
		a, b *bool
	}{{"lid_open", a.LidOpen, b.LidOpen}, {"light", a.Light, b.Light}} {
		if !sameBool(f.a, f.b) {
			out = append(out, fmt.Sprintf("%s %s -> %s", f.name, fmtBool(f.a), fmtBool(f.b)))
		}
	}
	return strings.Join(out, ", ")
}

func fmtSeq(r *custody.Reading) string {
	if !r.HasSeq {
		return "none"
	}
	return strconv.FormatUint(r.Seq, 10)
}

func fmtFloat(p *float64) string {
	if p == nil {
		return "none"
	}
	return strconv.FormatFloat(*p, 'g', -1, 64)
}

func fmtBool(p *bool) string {
	if p == nil {
		return "none"
	}
	return strconv.FormatBool(*p)
}

// sameReading reports whether a and b carry the same reading: the same
// identity, device time and measurements (the receive time is not part of
// a reading's content: a redelivery arrives later).
func sameReading(a, b *custody.Reading) bool {
	return a.Shipper == b.Shipper && a.HasSeq == b.HasSeq && a.Seq == b.Seq && a.DeviceTime.Equal(b.DeviceTime) &&
		sameFloat(a.TempC, b.TempC) && sameFloat(a.TiltDeg, b.TiltDeg) && sameFloat(a.BatteryPct, b.BatteryPct) &&
		sameFloat(a.LN2Pct, b.LN2Pct) && sameFloat(a.Lat, b.Lat) && sameFloat(a.Lon, b.Lon) &&
		sameBool(a.LidOpen, b.LidOpen) && sameBool(a.Light, b.Light)
}

// sameFloat compares bit patterns, as the stored encoding does.
func sameFloat(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return math.Float64bits(*a) == math.Float64bits(*b)
}

func sameBool(a, b *bool) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func readWatermark(tx *bolt.Tx) uint64 {
	return readU64(tx.Bucket(bucketReadingsMeta), keyWatermark)
}

// quarantineDrop tells which entries putQuarantine dropped to stay within
// MaxQuarantine and MaxQuarantineBytes: n of them, IDs first to last.
type quarantineDrop struct {
	n           int
	first, last uint64
}

// putQuarantine stores the entries qs under consecutive IDs and then drops
// the oldest entries beyond MaxQuarantine entries or MaxQuarantineBytes of
// stored values, always keeping the newest.
func putQuarantine(tx *bolt.Tx, qs []*custody.QuarantineEntry) (quarantineDrop, error) {
	var d quarantineDrop
	if len(qs) == 0 {
		return d, nil
	}
	b := tx.Bucket(bucketQuarantine)
	for _, q := range qs {
		id, err := b.NextSequence()
		if err != nil {
			return d, err
		}
		e := *q
		e.ID = id
		if len(e.Payload) > MaxQuarantinePayloadBytes {
			e.Payload = e.Payload[:MaxQuarantinePayloadBytes]
		}
		v, err := json.Marshal(e)
		if err != nil {
			return d, err
		}
		if err := b.Put(u64(id), v); err != nil {
			return d, err
		}
	}
	// Walk from the newest: the first entry that does not fit, and every
	// older one, is dropped. Only value lengths are read.
	var drop [][]byte
	n, size := 0, 0
	c := b.Cursor()
	for k, v := c.Last(); k != nil; k, v = c.Prev() {
		if drop == nil && n > 0 && (n >= MaxQuarantine || size+len(v) > quarantineMaxBytes) {
			drop = [][]byte{}
		}
		if drop != nil {
			drop = append(drop, bytes.Clone(k))
			continue
		}
		n++
		size += len(v)
	}
	for _, k := range drop {
		if err := b.Delete(k); err != nil {
			return d, err
		}
	}
	if len(drop) > 0 {
		d = quarantineDrop{n: len(drop), first: binary.BigEndian.Uint64(drop[len(drop)-1]), last: binary.BigEndian.Uint64(drop[0])}
	}
	return d, nil
}

// QuarantineList returns the quarantined payloads, newest first, at most
// limit of them (limit <= 0: all that are kept).
func (s *Store) QuarantineList(ctx context.Context, before uint64, limit int) ([]custody.QuarantineEntry, error) {
	out := []custody.QuarantineEntry{}
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQuarantine)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		k, v := c.Last()
		if before != 0 {
			if k, v = c.Seek(u64(before)); k == nil {
				k, v = c.Last()
			}
			for k != nil && binary.BigEndian.Uint64(k) >= before {
				k, v = c.Prev()
			}
		}
		for ; k != nil && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
			var e custody.QuarantineEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("quarantine entry %x: %v: %w", k, err, custody.ErrChainBroken)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("quarantine list: %w", err)
	}
	return out, nil
}

func timeKey(t time.Time) []byte {
	return u64(uint64(t.UnixNano()) ^ (1 << 63))
}

func timeIndexKey(shipper string, t time.Time, key []byte) []byte {
	k := make([]byte, 0, len(shipper)+1+8+len(key))
	k = append(k, shipper...)
	k = append(k, 0)
	k = append(k, timeKey(t)...)
	return append(k, key...)
}

// ShipperReadings implements custody.ReadingStore.
func (s *Store) ShipperReadings(ctx context.Context, shipper string, from, to time.Time, through uint64) ([]custody.Reading, uint64, error) {
	return s.AppendShipperReadings(ctx, nil, shipper, from, to, through)
}

// ShipperReadingsPage implements custody.ReadingStore: the readings from
// from in device-time order, stopping at the first instant after the page
// is full, from both layouts (a file written before the block layout
// keeps its readings in the per-reading one).
func (s *Store) ShipperReadingsPage(ctx context.Context, shipper string, from, to time.Time, limit int) ([]custody.Reading, error) {
	if limit < 1 {
		return nil, fmt.Errorf("readings of %s: limit %d must be 1 or more: %w", shipper, limit, custody.ErrInvalid)
	}
	out := []custody.Reading{}
	err := s.view(func(tx *bolt.Tx) error {
		var slab valueSlab
		var err error
		if out, err = oldReadingsPage(tx, out, shipper, from, to, limit, &slab); err != nil {
			return err
		}
		// Blocks come in the order of their earliest device time, so once
		// the page is full the next block's readings come after the page
		// when it starts after the page's last instant.
		cut := int64(math.MaxInt64)
		return blockRange(tx, shipper, from, to, &slab, func(r *custody.Reading, _ uint64) {
			out = append(out, *r)
		}, func(next int64) bool {
			if len(out) < limit {
				return false
			}
			custody.SortReadings(out)
			cut = out[limit-1].DeviceTime.UnixNano()
			return next > cut
		})
	})
	if err != nil {
		return nil, fmt.Errorf("readings of %s: %w", shipper, err)
	}
	custody.SortReadings(out)
	if len(out) > limit {
		last := out[limit-1].DeviceTime
		n := limit
		for n < len(out) && out[n].DeviceTime.Equal(last) {
			n++
		}
		out = out[:n]
	}
	return out, nil
}

// oldReadingsPage appends to out the page ShipperReadingsPage answers from
// the per-reading layout: a cursor on the readings' time index from from,
// stopping at the first instant after the page is full.
func oldReadingsPage(tx *bolt.Tx, out []custody.Reading, shipper string, from, to time.Time, limit int, slab *valueSlab) ([]custody.Reading, error) {
	b, idx := tx.Bucket(bucketReadings), tx.Bucket(bucketReadingTimes)
	if b == nil || idx == nil {
		return out, nil
	}
	prefix, start, end := timeRange(shipper, from, to)
	c := idx.Cursor()
	var last []byte
	n := 0
	rg := seqGetter{c: b.Cursor()}
	for k, _ := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) < len(prefix)+8 {
			return out, fmt.Errorf("reading index key %x malformed: %w", k, custody.ErrChainBroken)
		}
		at := k[:len(prefix)+8]
		if end != nil && bytes.Compare(at, end) > 0 {
			break
		}
		if n >= limit && !bytes.Equal(at, last) {
			break
		}
		key := k[len(prefix)+8:]
		v := rg.get(key)
		if v == nil {
			continue // as in AppendShipperReadings: a deleted reading
		}
		r, _, err := decodeReadingIn(shipper, key, v, slab)
		if err != nil {
			return out, err
		}
		out = append(out, r)
		n++
		last = append(last[:0], at...)
	}
	return out, nil
}

// AppendShipperReadings implements custody.ReadingAppender: ShipperReadings
// appended to dst[:0], reusing its memory.
func (s *Store) AppendShipperReadings(ctx context.Context, dst []custody.Reading, shipper string, from, to time.Time, through uint64) ([]custody.Reading, uint64, error) {
	out := dst[:0]
	var wm uint64
	err := s.view(func(tx *bolt.Tx) error {
		wm = readWatermark(tx)
		var slab valueSlab
		var err error
		if out, err = appendOldReadings(ctx, tx, out, shipper, from, to, through, &slab); err != nil {
			return err
		}
		n := 0
		return blockRange(tx, shipper, from, to, &slab, func(r *custody.Reading, rwm uint64) {
			if through == 0 || rwm <= through {
				out = append(out, *r)
			}
		}, func(int64) bool {
			n++
			return n%64 == 0 && ctx.Err() != nil
		})
	})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, 0, fmt.Errorf("readings of %s: %w", shipper, err)
	}
	custody.SortReadings(out)
	if out == nil {
		out = []custody.Reading{}
	}
	return out, wm, nil
}

// appendOldReadings appends to out shipper's readings within from and to
// stored by watermark through (0: all) in the per-reading layout.
func appendOldReadings(ctx context.Context, tx *bolt.Tx, out []custody.Reading, shipper string, from, to time.Time, through uint64, slab *valueSlab) ([]custody.Reading, error) {
	b, idx := tx.Bucket(bucketReadings), tx.Bucket(bucketReadingTimes)
	if b == nil || idx == nil {
		return out, nil
	}
	prefix, start, end := timeRange(shipper, from, to)
	c := idx.Cursor()
	n := 0
	rg := seqGetter{c: b.Cursor()}
	for k, _ := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) < len(prefix)+8 {
			return out, fmt.Errorf("reading index key %x malformed: %w", k, custody.ErrChainBroken)
		}
		if end != nil && bytes.Compare(k[:len(prefix)+8], end) > 0 {
			break
		}
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return out, ctx.Err()
		}
		key := k[len(prefix)+8:]
		v := rg.get(key)
		if v == nil {
			// An index entry without its reading: the reading was
			// deleted. Seals computed over it will no longer match.
			continue
		}
		r, rwm, err := decodeReadingIn(shipper, key, v, slab)
		if err != nil {
			return out, err
		}
		if through != 0 && rwm > through {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// ReadingsSince implements custody.ReadingLog: it walks the
// reading_batches index from the batch after after.
func (s *Store) ReadingsSince(ctx context.Context, after uint64, limit int) (custody.ReadingsPage, error) {
	if limit <= 0 {
		limit = custody.DefaultReadingsPage
	}
	page := custody.ReadingsPage{Through: after}
	err := s.view(func(tx *bolt.Tx) error {
		b, batches, blog, blocks := tx.Bucket(bucketReadings), tx.Bucket(bucketReadingBatch), tx.Bucket(bucketReadingLog), tx.Bucket(bucketReadingBlocks)
		if b == nil || batches == nil {
			return fmt.Errorf("readings buckets missing: %w", custody.ErrChainBroken)
		}
		if from := readU64(tx.Bucket(bucketReadingsMeta), keyBatchesFrom); after < from {
			page.Incomplete, page.Through, after = true, from, from
		}
		wm := readWatermark(tx)
		// The batches stored in the per-reading layout, all before those
		// in the block layout.
		c := batches.Cursor()
		full := false
		for k, _ := c.Seek(u64(after + 1)); k != nil; k, _ = c.Next() {
			if len(k) < 8 {
				return fmt.Errorf("reading batch key %x malformed: %w", k, custody.ErrChainBroken)
			}
			bw := binary.BigEndian.Uint64(k)
			if bw != page.Through && len(page.Readings) >= limit {
				full = true
				break
			}
			if len(page.Readings)%4096 == 4095 && ctx.Err() != nil {
				return ctx.Err()
			}
			key := k[8:]
			v := b.Get(key)
			if v == nil {
				continue // deleted: as ShipperReadings, seals will tell
			}
			r, _, err := decodeStoredReading(key, v)
			if err != nil {
				return err
			}
			page.Readings = append(page.Readings, r)
			page.Through = bw
		}
		if !full && blog != nil && blocks != nil {
			br := newBlockReader(tx, nil)
			bc := blocks.Cursor()
			c := blog.Cursor()
			for k, v := c.Seek(u64(max(after, page.Through) + 1)); k != nil; k, v = c.Next() {
				if len(page.Readings) >= limit {
					break
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				ranges, err := decodeLogEntry(v)
				if len(k) != 8 || err != nil {
					return fmt.Errorf("reading log entry %x malformed: %w", k, custody.ErrChainBroken)
				}
				bw := binary.BigEndian.Uint64(k)
				for _, lr := range ranges {
					if page.Readings, err = logReadings(page.Readings, br, bc, lr, bw); err != nil {
						return err
					}
				}
				page.Through = bw
			}
		}
		page.More = page.Through < wm
		return nil
	})
	if err != nil {
		return custody.ReadingsPage{}, fmt.Errorf("readings since watermark %d: %w", after, err)
	}
	return page, nil
}

// decodeStoredReading decodes the reading stored under key with value v.
func decodeStoredReading(key, v []byte) (custody.Reading, uint64, error) {
	i := bytes.IndexByte(key, 0)
	if i < 0 {
		return custody.Reading{}, 0, errors.New("the key is not a reading's")
	}
	return decodeReading(string(key[:i]), key, v)
}

// initReadingLog records, in a file opened for writing, the watermark the
// reading log starts after: the current one when the log is new (0 for a
// new file; readings stored before are not in the log).
func initReadingLog(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketReadingsMeta)
	if meta.Get(keyBatchesFrom) != nil {
		return nil
	}
	return meta.Put(keyBatchesFrom, u64(readWatermark(tx)))
}

// readU64 returns the 8-byte big-endian value under key in b, or 0.
func readU64(b *bolt.Bucket, key []byte) uint64 {
	if b == nil {
		return 0
	}
	if v := b.Get(key); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// ReadingsCount returns how many readings are stored.
func (s *Store) ReadingsCount(ctx context.Context) (int, error) {
	n := 0
	err := s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketReadings); b != nil {
			n = b.Stats().KeyN
		}
		n += int(readU64(tx.Bucket(bucketReadingsMeta), keyBlockReadings))
		return nil
	})
	return n, err
}

// QuarantineCount returns how many refused payloads the quarantine holds
// (for the operators' gauge; it reads the bucket's page statistics, not
// its entries).
func (s *Store) QuarantineCount(ctx context.Context) (int, error) {
	n := 0
	err := s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketQuarantine); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	return n, err
}

// timeRange returns the keys of shipper's readings in the time index:
// their common prefix, where from starts (the prefix when from is zero)
// and the last instant to reaches (nil when to is zero: no end).
func timeRange(shipper string, from, to time.Time) (prefix, start, end []byte) {
	prefix = custody.ShipperKeyPrefix(shipper)
	start = prefix
	if !from.IsZero() {
		start = append(bytes.Clone(prefix), timeKey(from)...)
	}
	if !to.IsZero() {
		end = append(bytes.Clone(prefix), timeKey(to)...)
	}
	return prefix, start, end
}
