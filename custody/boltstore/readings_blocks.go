package boltstore

// The readings' block layout (see the top of readings.go).

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketReadingShippers   = []byte("reading_shippers")
	bucketReadingShipperNos = []byte("reading_shipper_nos")
	bucketReadingBlocks     = []byte("reading_blocks")
	bucketReadingBlockTimes = []byte("reading_block_times")
	bucketReadingLog        = []byte("reading_log")
	keyBlockReadings        = []byte("block_readings")
)

// readingLogV1 is the version byte of a reading_log value: then, for each
// block a batch stored readings in, the shipper's number (uvarint), the
// identity kind, the lowest identity (uvarint) and the highest minus the
// lowest (uvarint).
const readingLogV1 = 1

// shipperEntry is a shipper's entry in reading_shippers: its number, and
// the widest span of device times one of its blocks ever held.
type shipperEntry struct {
	no   uint32
	span uint64
}

func (e shipperEntry) value() []byte {
	v := binary.BigEndian.AppendUint32(make([]byte, 0, 12), e.no)
	return binary.BigEndian.AppendUint64(v, e.span)
}

// lookupShipper returns shipper's entry; ok is false when it has no
// readings in the block layout. A malformed entry is an error.
func lookupShipper(tx *bolt.Tx, shipper string) (e shipperEntry, ok bool, err error) {
	b := tx.Bucket(bucketReadingShippers)
	if b == nil {
		return e, false, nil
	}
	v := b.Get([]byte(shipper))
	if v == nil {
		return e, false, nil
	}
	if len(v) != 12 {
		return e, false, fmt.Errorf("reading shipper entry %q is %d bytes, not 12: %w", shipper, len(v), custody.ErrChainBroken)
	}
	return shipperEntry{no: binary.BigEndian.Uint32(v), span: binary.BigEndian.Uint64(v[4:])}, true, nil
}

// shipperName returns the shipper numbered no, from names (a cache).
func shipperName(tx *bolt.Tx, no uint32, names map[uint32]string) (string, error) {
	if n, ok := names[no]; ok {
		return n, nil
	}
	b := tx.Bucket(bucketReadingShipperNos)
	var v []byte
	if b != nil {
		v = b.Get(binary.BigEndian.AppendUint32(nil, no))
	}
	if len(v) == 0 {
		return "", fmt.Errorf("reading shipper number %d has no name: %w", no, custody.ErrChainBroken)
	}
	names[no] = string(v)
	return string(v), nil
}

// blockKey is the key of a block: the shipper's number, the identity kind
// and the first reading's identity number.
func blockKey(no uint32, kind byte, first uint64) []byte {
	k := binary.BigEndian.AppendUint32(make([]byte, 0, 13), no)
	k = append(k, kind)
	return binary.BigEndian.AppendUint64(k, first)
}

// splitBlockKey parses a block key.
func splitBlockKey(k []byte) (no uint32, kind byte, first uint64, ok bool) {
	if len(k) != 13 {
		return 0, 0, 0, false
	}
	return binary.BigEndian.Uint32(k), k[4], binary.BigEndian.Uint64(k[5:]), true
}

// blockTimeKey is a block's entry in reading_block_times: the shipper's
// number, the block's earliest device time (timeKey) and the block key's
// kind and identity.
func blockTimeKey(no uint32, min int64, kind byte, first uint64) []byte {
	k := binary.BigEndian.AppendUint32(make([]byte, 0, 21), no)
	k = binary.BigEndian.AppendUint64(k, uint64(min)^(1<<63))
	k = append(k, kind)
	return binary.BigEndian.AppendUint64(k, first)
}

// findBlock returns the key of the block of shipper no and kind that id
// belongs in: the last one starting at or before id, else the first one
// (id precedes them all), nil when there is none. c is a cursor on
// reading_blocks.
func findBlock(c *bolt.Cursor, no uint32, kind byte, id uint64) []byte {
	prefix := blockKey(no, kind, 0)[:5]
	want := blockKey(no, kind, id)
	k, _ := c.Seek(want)
	if bytes.Equal(k, want) {
		return k
	}
	var pk []byte
	if k == nil {
		pk, _ = c.Last()
	} else {
		pk, _ = c.Prev()
	}
	if pk != nil && bytes.HasPrefix(pk, prefix) {
		return pk
	}
	if k != nil && bytes.HasPrefix(k, prefix) {
		return k
	}
	return nil
}

// blockTimes returns the earliest and latest device times of rs.
func blockTimes(rs []blockReading) (min, max int64) {
	min, max = math.MaxInt64, math.MinInt64
	for i := range rs {
		d := rs[i].r.DeviceTime.UnixNano()
		min, max = minI(min, d), maxI(max, d)
	}
	return min, max
}

func minI(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}

func maxI(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// blockReader decodes blocks of the block layout, keeping the last one.
type blockReader struct {
	tx    *bolt.Tx
	names map[uint32]string
	slab  *valueSlab
	key   []byte
	rs    []blockReading
}

func newBlockReader(tx *bolt.Tx, slab *valueSlab) *blockReader {
	return &blockReader{tx: tx, names: map[uint32]string{}, slab: slab}
}

// decode returns the readings of the block stored under k with value v.
func (br *blockReader) decode(k, v []byte) ([]blockReading, error) {
	if br.key != nil && bytes.Equal(br.key, k) {
		return br.rs, nil
	}
	no, kind, first, ok := splitBlockKey(k)
	if !ok {
		return nil, fmt.Errorf("readings block key %x malformed: %w", k, custody.ErrChainBroken)
	}
	name, err := shipperName(br.tx, no, br.names)
	if err != nil {
		return nil, err
	}
	br.key = append(br.key[:0], k...)
	br.rs, err = decodeBlock(br.rs[:0], name, kind, first, v, br.slab)
	if err != nil {
		br.key = nil
		return nil, err
	}
	return br.rs, nil
}

// findIn returns the reading of identity id in rs (sorted by identity).
func findIn(rs []blockReading, id uint64) *blockReading {
	i := sort.Search(len(rs), func(i int) bool { _, x := readingID(&rs[i].r); return x >= id })
	if i < len(rs) {
		if _, x := readingID(&rs[i].r); x == id {
			return &rs[i]
		}
	}
	return nil
}

// blockLookup finds stored readings by identity in the block layout, for
// the duplicate check; it caches decoded blocks.
type blockLookup struct {
	tx       *bolt.Tx
	shippers map[string]*shipperEntry // nil entry: none
	blocks   map[string][]blockReading
	names    map[uint32]string
	c        *bolt.Cursor
}

func newBlockLookup(tx *bolt.Tx) *blockLookup {
	l := &blockLookup{tx: tx, shippers: map[string]*shipperEntry{}, blocks: map[string][]blockReading{}, names: map[uint32]string{}}
	if b := tx.Bucket(bucketReadingBlocks); b != nil {
		l.c = b.Cursor()
	}
	return l
}

// get returns the stored reading with r's identity, nil when none; an
// error when its block cannot be read.
func (l *blockLookup) get(r *custody.Reading) (*custody.Reading, error) {
	if l.c == nil {
		return nil, nil
	}
	e, ok := l.shippers[r.Shipper]
	if !ok {
		se, found, err := lookupShipper(l.tx, r.Shipper)
		if err != nil {
			return nil, err
		}
		if found {
			e = &se
		}
		l.shippers[r.Shipper] = e
	}
	if e == nil {
		return nil, nil
	}
	kind, id := readingID(r)
	k := findBlock(l.c, e.no, kind, id)
	if k == nil {
		return nil, nil
	}
	rs, ok := l.blocks[string(k)]
	if !ok {
		_, _, first, _ := splitBlockKey(k)
		var err error
		rs, err = decodeBlock(nil, r.Shipper, kind, first, l.tx.Bucket(bucketReadingBlocks).Get(k), nil)
		if err != nil {
			return nil, err
		}
		l.blocks[string(k)] = rs
	}
	if br := findIn(rs, id); br != nil {
		return &br.r, nil
	}
	return nil, nil
}

// putBlocks stores readings (new identities, none stored) with watermark
// wm in the block layout, and the batch's entry in the reading log.
func putBlocks(tx *bolt.Tx, readings []*custody.Reading, wm uint64) error {
	type group struct {
		shipper string
		kind    byte
	}
	groups := map[group][]*custody.Reading{}
	for _, r := range readings {
		kind, _ := readingID(r)
		g := group{r.Shipper, kind}
		groups[g] = append(groups[g], r)
	}
	order := make([]group, 0, len(groups))
	for g := range groups {
		order = append(order, g)
	}
	slices.SortFunc(order, func(a, b group) int {
		if c := bytes.Compare([]byte(a.shipper), []byte(b.shipper)); c != 0 {
			return c
		}
		return int(a.kind) - int(b.kind)
	})
	blocks, times := tx.Bucket(bucketReadingBlocks), tx.Bucket(bucketReadingBlockTimes)
	shippers, nos, meta := tx.Bucket(bucketReadingShippers), tx.Bucket(bucketReadingShipperNos), tx.Bucket(bucketReadingsMeta)
	// Blocks grow at their shipper's end, pages rarely take a key in
	// their middle: fill them.
	blocks.FillPercent, times.FillPercent = 1, 1
	tx.Bucket(bucketReadingLog).FillPercent = 1
	logv := []byte{readingLogV1}
	var buf []byte
	for _, g := range order {
		rs := groups[g]
		slices.SortFunc(rs, func(a, b *custody.Reading) int {
			_, x := readingID(a)
			_, y := readingID(b)
			return cmpU64(x, y)
		})
		e, ok, err := lookupShipper(tx, g.shipper)
		if err != nil {
			return err
		}
		if !ok {
			n, err := shippers.NextSequence()
			if err != nil {
				return err
			}
			if n > math.MaxUint32 {
				return fmt.Errorf("more than %d shippers with readings", uint32(math.MaxUint32))
			}
			e = shipperEntry{no: uint32(n)}
			if err := nos.Put(binary.BigEndian.AppendUint32(nil, e.no), []byte(g.shipper)); err != nil {
				return err
			}
		}
		span0 := e.span
		// Which block each reading goes in, found before any is written.
		c := blocks.Cursor()
		type target struct {
			key []byte // nil: a new block
			rs  []*custody.Reading
		}
		var targets []target
		for _, r := range rs {
			_, id := readingID(r)
			k := findBlock(c, e.no, g.kind, id)
			if n := len(targets); n > 0 && bytes.Equal(targets[n-1].key, k) {
				targets[n-1].rs = append(targets[n-1].rs, r)
				continue
			}
			targets = append(targets, target{key: bytes.Clone(k), rs: []*custody.Reading{r}})
		}
		for _, t := range targets {
			var merged []blockReading
			if t.key != nil {
				_, _, first, _ := splitBlockKey(t.key)
				old, err := decodeBlock(nil, g.shipper, g.kind, first, blocks.Get(t.key), nil)
				if err != nil {
					return err
				}
				min, _ := blockTimes(old)
				if err := times.Delete(blockTimeKey(e.no, min, g.kind, first)); err != nil {
					return err
				}
				if err := blocks.Delete(t.key); err != nil {
					return err
				}
				merged = old
			}
			for _, r := range t.rs {
				merged = append(merged, blockReading{r: *r, wm: wm})
			}
			slices.SortFunc(merged, func(a, b blockReading) int {
				_, x := readingID(&a.r)
				_, y := readingID(&b.r)
				return cmpU64(x, y)
			})
			for len(merged) > 0 {
				n := min(len(merged), readingsPerBlock)
				chunk := merged[:n]
				merged = merged[n:]
				_, first := readingID(&chunk[0].r)
				buf = encodeBlock(buf[:0], g.kind, chunk)
				if err := blocks.Put(blockKey(e.no, g.kind, first), bytes.Clone(buf)); err != nil {
					return err
				}
				lo, hi := blockTimes(chunk)
				if err := times.Put(blockTimeKey(e.no, lo, g.kind, first), u64(uint64(hi)^(1<<63))); err != nil {
					return err
				}
				e.span = max(e.span, uint64(hi)-uint64(lo))
			}
			_, lo := readingID(t.rs[0])
			_, hi := readingID(t.rs[len(t.rs)-1])
			logv = binary.AppendUvarint(logv, uint64(e.no))
			logv = append(logv, g.kind)
			logv = binary.AppendUvarint(logv, lo)
			logv = binary.AppendUvarint(logv, hi-lo)
		}
		if !ok || e.span != span0 {
			if err := shippers.Put([]byte(g.shipper), e.value()); err != nil {
				return err
			}
		}
	}
	if err := meta.Put(keyBlockReadings, u64(readU64(meta, keyBlockReadings)+uint64(len(readings)))); err != nil {
		return err
	}
	return tx.Bucket(bucketReadingLog).Put(u64(wm), logv)
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// logRange is one entry of a reading_log value.
type logRange struct {
	no     uint32
	kind   byte
	lo, hi uint64
}

// decodeLogEntry parses a reading_log value.
func decodeLogEntry(v []byte) ([]logRange, error) {
	if len(v) == 0 || v[0] != readingLogV1 {
		return nil, errors.New("unknown version")
	}
	rd := fieldReader{b: v[1:]}
	var out []logRange
	for len(rd.b) > 0 && !rd.bad {
		no := rd.uvarint()
		kb := rd.next(1)
		lo := rd.uvarint()
		d := rd.uvarint()
		if rd.bad || no > math.MaxUint32 || (kb[0] != kindSeq && kb[0] != kindTime) || lo+d < lo {
			return nil, errors.New("malformed entry")
		}
		out = append(out, logRange{uint32(no), kb[0], lo, lo + d})
	}
	if !rd.done() {
		return nil, errors.New("malformed entry")
	}
	return out, nil
}

// logReadings appends to out the readings a reading_log range lists: those
// of its blocks with watermark wm and identity in the range.
func logReadings(out []custody.Reading, br *blockReader, c *bolt.Cursor, lr logRange, wm uint64) ([]custody.Reading, error) {
	prefix := blockKey(lr.no, lr.kind, 0)[:5]
	k := findBlock(c, lr.no, lr.kind, lr.lo)
	if k == nil {
		return out, nil
	}
	k, v := c.Seek(k)
	for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		_, _, first, _ := splitBlockKey(k)
		if first > lr.hi {
			break
		}
		rs, err := br.decode(k, v)
		if err != nil {
			return out, err
		}
		for i := range rs {
			if _, id := readingID(&rs[i].r); id >= lr.lo && id <= lr.hi && rs[i].wm == wm {
				out = append(out, rs[i].r)
			}
		}
	}
	return out, nil
}

// blockRange hands fn the readings of shipper in the block layout whose
// device time is within from and to (zero: unbounded), block after
// block in the order of their earliest device time. Before each block
// but the first, stop (if not nil) is asked with the block's earliest
// device time whether to end there.
func blockRange(tx *bolt.Tx, shipper string, from, to time.Time, slab *valueSlab, fn func(r *custody.Reading, wm uint64), stop func(next int64) bool) error {
	return blockRangeIn(tx, shipper, from, to, func(kind byte, first uint64, v []byte, lo, hi int64) error {
		return eachInBlock(shipper, kind, first, v, slab, func(r *custody.Reading, wm uint64) {
			if d := r.DeviceTime.UnixNano(); d >= lo && d <= hi {
				fn(r, wm)
			}
		})
	}, stop)
}

// blockRangeEntries is blockRange handing fn each reading's stored fields
// (eachBlockEntry), with its block's kind, instead of a Reading.
func blockRangeEntries(tx *bolt.Tx, shipper string, from, to time.Time, fn func(kind byte, e *blockEntry), stop func(next int64) bool) error {
	return blockRangeIn(tx, shipper, from, to, func(kind byte, first uint64, v []byte, lo, hi int64) error {
		return eachBlockEntry(shipper, kind, first, v, func(e *blockEntry) {
			if e.dev >= lo && e.dev <= hi {
				fn(kind, e)
			}
		})
	}, stop)
}

// blockRangeIn walks the blocks blockRange reads, handing each to block
// with the device times [lo, hi] its readings are to be kept within.
func blockRangeIn(tx *bolt.Tx, shipper string, from, to time.Time, block func(kind byte, first uint64, v []byte, lo, hi int64) error, stop func(next int64) bool) error {
	e, ok, err := lookupShipper(tx, shipper)
	if err != nil || !ok {
		return err
	}
	times, blocks := tx.Bucket(bucketReadingBlockTimes), tx.Bucket(bucketReadingBlocks)
	if times == nil || blocks == nil {
		return nil
	}
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if !from.IsZero() {
		lo = from.UnixNano()
	}
	if !to.IsZero() {
		hi = to.UnixNano()
	}
	// No block spans more than e.span: one starting before lo-span ends
	// before lo.
	start := int64(math.MinInt64)
	if e.span < uint64(lo)^(1<<63) {
		start = lo - int64(e.span)
	}
	var prefix [4]byte
	binary.BigEndian.PutUint32(prefix[:], e.no)
	var bk [13]byte
	copy(bk[:], prefix[:])
	var seek [12]byte
	copy(seek[:], prefix[:])
	binary.BigEndian.PutUint64(seek[4:], uint64(start)^(1<<63))
	c := times.Cursor()
	started := false
	for k, v := c.Seek(seek[:]); k != nil && bytes.HasPrefix(k, prefix[:]); k, v = c.Next() {
		if len(k) != 21 || len(v) != 8 {
			return fmt.Errorf("reading block time entry %x malformed: %w", k, custody.ErrChainBroken)
		}
		bmin, bmax := int64(binary.BigEndian.Uint64(k[4:])^(1<<63)), int64(binary.BigEndian.Uint64(v)^(1<<63))
		if bmin > hi {
			break
		}
		if bmax < lo {
			continue
		}
		if started && stop != nil && stop(bmin) {
			return nil
		}
		started = true
		copy(bk[4:], k[12:])
		bv := blocks.Get(bk[:])
		if bv == nil {
			continue // a deleted block: seals will tell
		}
		if err := block(bk[4], binary.BigEndian.Uint64(bk[5:]), bv, lo, hi); err != nil {
			return err
		}
	}
	return nil
}

// readingBlockChecks returns CheckFile's checks of the block layout's
// buckets: every block decodes, every index entry is well formed and
// points at what exists.
func readingBlockChecks() map[string]bucketCheck {
	hexName := func(k []byte) string { return fmt.Sprintf("%x", k) }
	// A shipper's blocks are next to each other: its name is looked up
	// once for them all.
	var (
		in     *bolt.Tx
		lastNo uint32
		last   string
	)
	return map[string]bucketCheck{
		string(bucketReadingBlocks): {name: hexName, entry: func(tx *bolt.Tx, k, v []byte) error {
			no, kind, first, ok := splitBlockKey(k)
			if !ok || v == nil {
				return errors.New("the entry is not a readings block")
			}
			name := last
			if in != tx || no != lastNo {
				var err error
				if name, err = shipperName(tx, no, map[uint32]string{}); err != nil {
					return err
				}
				in, lastNo, last = tx, no, name
			}
			// decodeBlock's checks, without building its readings.
			return eachBlockEntry(name, kind, first, v, func(*blockEntry) {})
		}},
		string(bucketReadingBlockTimes): {name: hexName, entry: func(tx *bolt.Tx, k, v []byte) error {
			if len(k) != 21 || len(v) != 8 || binary.BigEndian.Uint64(v) < binary.BigEndian.Uint64(k[4:]) {
				return errors.New("the entry is not a block's device times")
			}
			if b := tx.Bucket(bucketReadingBlocks); b == nil || b.Get(append(bytes.Clone(k[:4]), k[12:]...)) == nil {
				return errors.New("the entry names no block")
			}
			return nil
		}},
		string(bucketReadingShippers): {name: strName, entry: func(tx *bolt.Tx, k, v []byte) error {
			e, ok, err := lookupShipper(tx, string(k))
			if err != nil || !ok {
				return errors.New("the entry is not a shipper's number")
			}
			if name, err := shipperName(tx, e.no, map[uint32]string{}); err != nil || name != string(k) {
				return fmt.Errorf("number %d is not the shipper's", e.no)
			}
			return nil
		}},
		string(bucketReadingShipperNos): {name: hexName, entry: func(tx *bolt.Tx, k, v []byte) error {
			if len(k) != 4 {
				return errors.New("the key is not a shipper's number")
			}
			if e, ok, err := lookupShipper(tx, string(v)); err != nil || !ok || e.no != binary.BigEndian.Uint32(k) {
				return errors.New("the shipper does not have this number")
			}
			return nil
		}},
		string(bucketReadingLog): {name: seqName, entry: func(_ *bolt.Tx, k, v []byte) error {
			if len(k) != 8 {
				return errors.New("the key is not a watermark")
			}
			_, err := decodeLogEntry(v)
			return err
		}},
	}
}
