package boltstore

// Stored readings' encodings in the per-reading layout, which files
// written before the block layout (readingcodec_block.go) hold: version 2,
// and version 1 written before it. Both are read forever and no longer
// written: rewriting old readings would not shrink the file (bbolt never
// gives pages back), and a reading's seal is computed over its canonical
// form, which every encoding decodes to. The block layout encodes each
// reading's fields as version 2 does.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/coid-project/coid/custody"
)

// Reading encoding, version 1 (read only):
//
//	0x01, watermark uvarint, received UnixNano varint, device UnixNano varint,
//	flags uvarint, seq uvarint (if flagSeq), then for each numeric flag set,
//	in flag order, the float64 bits (8 bytes BE).
const readingV1 = 1

// Reading encoding, version 2:
//
//	0x02, watermark uvarint, received time minus device time (a time, see
//	appendTimeV2; the difference wraps around int64), then the content:
//	flags uvarint, the device time (appendTimeV2) unless the key carries it
//	(a reading without seq), then for each numeric flag set, in flag order,
//	the value (appendNumV2). The seq is not stored: the key carries it.
//
// Which quantity a value is, and its unit, is fixed by its flag, so the
// flags are the dictionary of quantities and units.
const readingV2 = 2

const (
	flagSeq = 1 << iota
	flagTemp
	flagTilt
	flagLidSet
	flagLidOpen
	flagLightSet
	flagLight
	flagBattery
	flagLN2
	flagLat
	flagLon
)

// Times in version 2 are a uvarint holding zigzag(q)<<2 | tag, with the
// nanoseconds n = q (tag timeNanos), q seconds (timeSeconds) or q
// milliseconds (timeMillis); tag timeRaw is followed by n as 8 bytes BE,
// for n whose q does not fit.
const (
	timeNanos = iota
	timeSeconds
	timeMillis
	timeRaw
)

// Values in version 2 are a uvarint holding zigzag(q)<<2 | tag, the value
// being q (tag numInt), q/100 (numCenti) or q/1e6 (numMicro), each exactly
// the float64 stored; tag numBits (q = 0) is followed by the float64's bits
// as 8 bytes BE, for every value that is not exactly one of those (-0,
// more decimals, very large): no value loses precision.
const (
	numBits = iota
	numInt
	numCenti
	numMicro
)

// numScales are the divisors of numInt, numCenti and numMicro.
var numScales = [...]float64{numInt: 1, numCenti: 100, numMicro: 1e6}

func zigzag(n int64) uint64   { return uint64(n<<1) ^ uint64(n>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// appendTimeV2 appends the nanoseconds n.
func appendTimeV2(dst []byte, n int64) []byte {
	q, tag := n, uint64(timeNanos)
	switch {
	case n%1e9 == 0:
		q, tag = n/1e9, timeSeconds
	case n%1e6 == 0:
		q, tag = n/1e6, timeMillis
	}
	if z := zigzag(q); z < 1<<62 {
		return binary.AppendUvarint(dst, z<<2|tag)
	}
	dst = binary.AppendUvarint(dst, timeRaw)
	return binary.BigEndian.AppendUint64(dst, uint64(n))
}

// timeV2 reads a time written by appendTimeV2.
func (r *fieldReader) timeV2() int64 {
	u := r.uvarint()
	q, tag := unzigzag(u>>2), u&3
	switch tag {
	case timeNanos:
		return q
	case timeSeconds, timeMillis:
		scale := int64(1e9)
		if tag == timeMillis {
			scale = 1e6
		}
		if q > math.MaxInt64/scale || q < math.MinInt64/scale {
			r.bad = true
			return 0
		}
		return q * scale
	}
	if u != timeRaw {
		r.bad = true
		return 0
	}
	b := r.next(8)
	if b == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

// appendNumV2 appends the value v exactly.
func appendNumV2(dst []byte, v float64) []byte {
	for tag := numInt; tag <= numMicro; tag++ {
		x := v * numScales[tag]
		if !(math.Abs(x) < 1<<53) {
			continue
		}
		q := int64(math.Round(x))
		if math.Float64bits(float64(q)/numScales[tag]) == math.Float64bits(v) {
			return binary.AppendUvarint(dst, zigzag(q)<<2|uint64(tag))
		}
	}
	dst = binary.AppendUvarint(dst, numBits)
	return binary.BigEndian.AppendUint64(dst, math.Float64bits(v))
}

// numV2 reads a value written by appendNumV2.
func (r *fieldReader) numV2() float64 {
	u := r.uvarint()
	if tag := u & 3; tag != numBits {
		return float64(unzigzag(u>>2)) / numScales[tag]
	}
	if u != numBits {
		r.bad = true
		return 0
	}
	return r.float64()
}

// readingNums lists a reading's numeric fields with their flags, in the
// order the encodings store them.
func readingNums(r *custody.Reading) [6]struct {
	flag uint64
	p    **float64
} {
	return [...]struct {
		flag uint64
		p    **float64
	}{{flagTemp, &r.TempC}, {flagTilt, &r.TiltDeg}, {flagBattery, &r.BatteryPct}, {flagLN2, &r.LN2Pct}, {flagLat, &r.Lat}, {flagLon, &r.Lon}}
}

// readingFlags returns the flags of r's encoding.
func readingFlags(r *custody.Reading) uint64 {
	var f uint64
	if r.HasSeq {
		f |= flagSeq
	}
	for _, n := range readingNums(r) {
		if *n.p != nil {
			f |= n.flag
		}
	}
	if r.LidOpen != nil {
		f |= flagLidSet
		if *r.LidOpen {
			f |= flagLidOpen
		}
	}
	if r.Light != nil {
		f |= flagLightSet
		if *r.Light {
			f |= flagLight
		}
	}
	return f
}

// appendReadingContentV2 appends the part of a reading's version-2
// encoding that follows the watermark and receive time, which is the
// same for every delivery of the same reading.
func appendReadingContentV2(dst []byte, r *custody.Reading) []byte {
	dst = binary.AppendUvarint(dst, readingFlags(r))
	if r.HasSeq {
		dst = appendTimeV2(dst, r.DeviceTime.UnixNano())
	}
	for _, n := range readingNums(r) {
		if *n.p != nil {
			dst = appendNumV2(dst, **n.p)
		}
	}
	return dst
}

// appendReadingContentV1 appends the part of a reading's version-1
// encoding that follows the watermark and receive time.
func appendReadingContentV1(dst []byte, r *custody.Reading) []byte {
	dst = binary.AppendVarint(dst, r.DeviceTime.UnixNano())
	dst = binary.AppendUvarint(dst, readingFlags(r))
	if r.HasSeq {
		dst = binary.AppendUvarint(dst, r.Seq)
	}
	for _, n := range readingNums(r) {
		if *n.p != nil {
			dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(**n.p))
		}
	}
	return dst
}

// sameStoredContent reports whether the stored value v holds the content
// of r (everything but the watermark and receive time), in v's version;
// buf is scratch space, returned for reuse.
func sameStoredContent(v []byte, r *custody.Reading, buf []byte) (bool, []byte) {
	if len(v) == 0 {
		return false, buf
	}
	rd := fieldReader{b: v[1:]}
	rd.uvarint()
	switch v[0] {
	case readingV1:
		rd.varint()
		buf = appendReadingContentV1(buf[:0], r)
	case readingV2:
		rd.timeV2()
		buf = appendReadingContentV2(buf[:0], r)
	default:
		return false, buf
	}
	return !rd.bad && bytes.Equal(rd.b, buf), buf
}

var errBadReading = errors.New("malformed stored reading")

// decodeReading decodes the reading of shipper stored under key with
// value v, in either version, and returns it with its watermark.
func decodeReading(shipper string, key, v []byte) (custody.Reading, uint64, error) {
	return decodeReadingIn(shipper, key, v, nil)
}

// decodeReadingIn is decodeReading with the reading's values placed in
// slab (nil: each on its own), so that decoding many readings does not
// allocate for each.
func decodeReadingIn(shipper string, key, v []byte, slab *valueSlab) (custody.Reading, uint64, error) {
	bad := func() (custody.Reading, uint64, error) {
		return custody.Reading{}, 0, fmt.Errorf("reading %x: %w: %w", key, errBadReading, custody.ErrChainBroken)
	}
	if len(v) == 0 || (v[0] != readingV1 && v[0] != readingV2) || len(key) != len(shipper)+10 {
		return bad()
	}
	rd := fieldReader{b: v[1:]}
	wm := rd.uvarint()
	r := custody.Reading{Shipper: shipper}
	var recv, dev int64
	var f uint64
	if v[0] == readingV1 {
		recv, dev = rd.varint(), rd.varint()
		if f = rd.uvarint(); f&flagSeq != 0 {
			r.Seq, r.HasSeq = rd.uvarint(), true
		}
	} else {
		recvDelta := rd.timeV2()
		f = rd.uvarint()
		idk := binary.BigEndian.Uint64(key[len(key)-8:])
		if f&flagSeq != 0 {
			r.Seq, r.HasSeq = idk, true
			dev = rd.timeV2()
		} else {
			dev = int64(idk ^ 1<<63)
		}
		recv = dev + recvDelta
	}
	r.DeviceTime, r.ReceivedTime = time.Unix(0, dev).UTC(), time.Unix(0, recv).UTC()
	for _, n := range readingNums(&r) {
		if f&n.flag != 0 {
			var x float64
			if v[0] == readingV1 {
				x = rd.float64()
			} else {
				x = rd.numV2()
			}
			*n.p = slab.float(x)
		}
	}
	if f&flagLidSet != 0 {
		r.LidOpen = slab.bool(f&flagLidOpen != 0)
	}
	if f&flagLightSet != 0 {
		r.Light = slab.bool(f&flagLight != 0)
	}
	if !rd.done() || !readingKeyIs(&r, key) {
		return bad()
	}
	return r, wm, nil
}
