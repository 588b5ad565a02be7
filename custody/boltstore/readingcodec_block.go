package boltstore

// Blocks of readings: up to readingsPerBlock readings of one shipper and
// one kind of identity (by seq, or by device time), stored as one bbolt
// value, so that the key and bbolt's element header are paid once per
// block and each reading is delta-encoded against the one before it.

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/coid-project/coid/custody"
)

// Block encoding, version 1:
//
//	0x01, count uvarint, then for each reading in identity order:
//	  the identity minus the previous one's (uvarint, at least 1; absent
//	    for the first, whose identity is the block key's),
//	  zigzag(watermark minus the previous one's) uvarint (the first's
//	    minus 0),
//	  received time minus device time (appendTimeV2),
//	  flags uvarint,
//	  for a block of seq-numbered readings, the device time minus the
//	    previous one's (appendTimeV2; the first's minus 0; the
//	    differences wrap around int64), absent in a block identified by
//	    device time, whose identity is the device time,
//	  for each numeric flag set, in flag order, the value (appendNumV2).
const blockV1 = 1

// readingsPerBlock is how many readings a block holds at most.
const readingsPerBlock = 64

// Identity kinds, the byte after the shipper in custody.Reading.Key.
const (
	kindSeq  = 's'
	kindTime = 't'
)

// blockReading is a reading as a block holds it, with its watermark.
type blockReading struct {
	r  custody.Reading
	wm uint64
}

// readingID returns the kind and number of r's identity: the last 9 bytes
// of r.Key().
func readingID(r *custody.Reading) (byte, uint64) {
	if r.HasSeq {
		return kindSeq, r.Seq
	}
	return kindTime, uint64(r.DeviceTime.UnixNano()) ^ (1 << 63)
}

// encodeBlock appends the block of rs, all of kind, in strictly
// increasing identity order (the caller's duty).
func encodeBlock(dst []byte, kind byte, rs []blockReading) []byte {
	dst = append(dst, blockV1)
	dst = binary.AppendUvarint(dst, uint64(len(rs)))
	var prevID, prevWM uint64
	var prevDev int64
	for i := range rs {
		r := &rs[i].r
		_, id := readingID(r)
		if i > 0 {
			dst = binary.AppendUvarint(dst, id-prevID)
		}
		dst = binary.AppendUvarint(dst, zigzag(int64(rs[i].wm-prevWM)))
		dev := r.DeviceTime.UnixNano()
		dst = appendTimeV2(dst, r.ReceivedTime.UnixNano()-dev)
		dst = binary.AppendUvarint(dst, readingFlags(r))
		if kind == kindSeq {
			dst = appendTimeV2(dst, dev-prevDev)
		}
		for _, n := range readingNums(r) {
			if *n.p != nil {
				dst = appendNumV2(dst, **n.p)
			}
		}
		prevID, prevWM, prevDev = id, rs[i].wm, dev
	}
	return dst
}

// decodeBlock appends to dst the readings of shipper in the block stored
// with value v under an identity of kind starting at first (the block
// key's). Any value either decodes, each reading's identity of kind and
// increasing from first, or is an error wrapping custody.ErrChainBroken.
func decodeBlock(dst []blockReading, shipper string, kind byte, first uint64, v []byte, slab *valueSlab) ([]blockReading, error) {
	err := eachInBlock(shipper, kind, first, v, slab, func(r *custody.Reading, wm uint64) {
		dst = append(dst, blockReading{r: *r, wm: wm})
	})
	return dst, err
}

// eachInBlock is decodeBlock handing each reading to fn instead, as it is
// decoded (the reading is fn's to copy, not to keep): on an error fn may
// have had some of the block's readings.
func eachInBlock(shipper string, kind byte, first uint64, v []byte, slab *valueSlab, fn func(r *custody.Reading, wm uint64)) error {
	var r custody.Reading // one for the block: fn copies it
	return eachBlockEntry(shipper, kind, first, v, func(e *blockEntry) {
		r = custody.Reading{Shipper: shipper}
		if kind == kindSeq {
			r.Seq, r.HasSeq = e.id, true
		}
		r.DeviceTime, r.ReceivedTime = time.Unix(0, e.dev).UTC(), time.Unix(0, e.dev+e.recvDelta).UTC()
		for i, nf := range readingNums(&r) {
			if e.flags&nf.flag != 0 {
				*nf.p = slab.float(e.nums[i].x)
			}
		}
		if e.flags&flagLidSet != 0 {
			r.LidOpen = slab.bool(e.flags&flagLidOpen != 0)
		}
		if e.flags&flagLightSet != 0 {
			r.Light = slab.bool(e.flags&flagLight != 0)
		}
		fn(&r, e.wm)
	})
}

// blockEntry is one reading of a block as it is stored, before any
// custody.Reading is built of it: what eachInBlock makes a Reading of, and
// what the seal's canonical encoding is written from (appendCanonEntry).
type blockEntry struct {
	id        uint64 // the identity: the seq, or the device time's key form
	wm        uint64 // the watermark
	dev       int64  // the device time, Unix nanoseconds
	recvDelta int64  // the received time minus dev
	flags     uint64
	// nums holds the values whose flags are set, in storedNumFlags order.
	nums [6]storedNum
}

// eachBlockEntry parses the block stored with value v under an identity
// of kind starting at first, and hands fn each reading's stored fields
// (the entry is fn's to read during the call, not to keep). It checks all
// that eachInBlock and decodeBlock check, with the same errors: any value
// either parses, each reading's identity of kind and increasing from
// first, or is an error wrapping custody.ErrChainBroken; on an error fn
// may have had some of the block's readings.
func eachBlockEntry(shipper string, kind byte, first uint64, v []byte, fn func(e *blockEntry)) error {
	bad := func(why string) error {
		return fmt.Errorf("readings block of %s %c%d: %s: %w: %w", shipper, kind, first, why, errBadReading, custody.ErrChainBroken)
	}
	if kind != kindSeq && kind != kindTime {
		return bad("unknown identity kind")
	}
	if len(v) == 0 || v[0] != blockV1 {
		return bad("unknown version")
	}
	rd := fieldReader{b: v[1:]}
	n := rd.uvarint()
	if rd.bad || n == 0 || n > uint64(len(v)) {
		return bad("bad count")
	}
	var e blockEntry
	var id, wm uint64
	var dev int64
	for i := uint64(0); i < n; i++ {
		if i == 0 {
			id = first
		} else {
			d := rd.uvarint()
			if d == 0 || id+d < id {
				return bad("identities out of order")
			}
			id += d
		}
		wm += uint64(unzigzag(rd.uvarint()))
		recvDelta := rd.timeV2()
		f := rd.uvarint()
		if kind == kindSeq {
			if f&flagSeq == 0 {
				return bad("a reading without seq in a block by seq")
			}
			dev += rd.timeV2()
		} else {
			if f&flagSeq != 0 {
				return bad("a reading with seq in a block by device time")
			}
			dev = int64(id ^ 1<<63)
		}
		if f >= 1<<11 {
			return bad("unknown flags")
		}
		e.id, e.wm, e.dev, e.recvDelta, e.flags = id, wm, dev, recvDelta, f
		for j, fl := range storedNumFlags {
			if f&fl == 0 {
				continue
			}
			// numV2's reading, keeping the integer and its scale.
			u := rd.uvarint()
			switch tag := u & 3; {
			case tag != numBits:
				q := unzigzag(u >> 2)
				e.nums[j] = storedNum{tag: tag, q: q, x: float64(q) / numScales[tag]}
			case u != numBits:
				rd.bad = true
				e.nums[j] = storedNum{tag: numBits}
			default:
				e.nums[j] = storedNum{tag: numBits, x: rd.float64()}
			}
		}
		if f&flagLidSet == 0 && f&flagLidOpen != 0 {
			return bad("unknown flags")
		}
		if f&flagLightSet == 0 && f&flagLight != 0 {
			return bad("unknown flags")
		}
		if rd.bad {
			return bad("truncated")
		}
		fn(&e)
	}
	if !rd.done() {
		return bad("trailing bytes")
	}
	return nil
}
