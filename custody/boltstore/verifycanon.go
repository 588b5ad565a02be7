package boltstore

// The canonical encoding of a stored reading (custody.Reading.
// AppendCanonical, "coid-reading-v1"), written straight from the stored
// bytes for verification: no custody.Reading is built and nothing is
// allocated. Whatever it is not sure of (a version it does not know, a
// malformed value, a shipper ID that JSON would escape) it leaves to
// decodeReadingIn and AppendCanonical; equivalence with them is tested.

import (
	"encoding/binary"
	"strconv"
	"time"

	"github.com/coid-project/coid/custody"
)

// storedNum is one numeric value of a stored reading: its tag and
// integer q in version 2's form (tag numBits for a value only its bits
// hold), and the float64 it stands for.
type storedNum struct {
	tag uint64
	q   int64
	x   float64
}

// storedReading is what the seal needs of a stored reading besides its
// encoding.
type storedReading struct {
	wm      uint64
	dev     int64
	hasSeq  bool
	seq     uint64
	hasTemp bool
	tempC   float64
}

// canonShipper returns the "shipper" member of the canonical encoding of
// shipper's readings, or nil when the shipper ID holds a character JSON
// would escape or that is not ASCII (the general path then encodes it).
func canonShipper(shipper string) []byte {
	for i := 0; i < len(shipper); i++ {
		if c := shipper[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return nil
		}
	}
	return []byte(`"shipper":"` + shipper + `"`)
}

// appendStoredCanonical appends the canonical encoding of the reading of
// shipper (whose "shipper" member is member, from canonShipper) stored
// under key with value v, and a newline, to dst. ok is false when it
// cannot be sure to write what decodeReadingIn and AppendCanonical would
// (dst is then returned as it was given).
func appendStoredCanonical(dst []byte, shipper string, member, key, v []byte) (_ []byte, sr storedReading, ok bool) {
	n := len(shipper)
	if member == nil || len(v) == 0 || len(key) != n+10 || string(key[:n]) != shipper || key[n] != 0 {
		return dst, sr, false
	}
	idk := binary.BigEndian.Uint64(key[n+2:])
	rd := fieldReader{b: v[1:]}
	sr.wm = rd.uvarint()
	var f uint64
	var nums [6]storedNum // temp, tilt, battery, ln2, lat, lon: the stored order
	switch v[0] {
	case readingV2:
		rd.timeV2()
		f = rd.uvarint()
		if f&flagSeq != 0 {
			sr.hasSeq, sr.seq = true, idk
			sr.dev = rd.timeV2()
		} else {
			sr.dev = int64(idk ^ 1<<63)
		}
		for i, fl := range storedNumFlags {
			if f&fl == 0 {
				continue
			}
			u := rd.uvarint()
			if tag := u & 3; tag != numBits {
				q := unzigzag(u >> 2)
				nums[i] = storedNum{tag: tag, q: q, x: float64(q) / numScales[tag]}
			} else if u != numBits {
				return dst, sr, false
			} else {
				nums[i] = storedNum{tag: numBits, x: rd.float64()}
			}
		}
	case readingV1:
		rd.varint()
		sr.dev = rd.varint()
		if f = rd.uvarint(); f&flagSeq != 0 {
			sr.hasSeq, sr.seq = true, rd.uvarint()
		}
		for i, fl := range storedNumFlags {
			if f&fl != 0 {
				nums[i] = storedNum{tag: numBits, x: rd.float64()}
			}
		}
	default:
		return dst, sr, false
	}
	if !rd.done() {
		return dst, sr, false
	}
	// The key must be the reading's own (decodeReadingIn's readingKeyIs).
	if sr.hasSeq {
		if key[n+1] != 's' || idk != sr.seq {
			return dst, sr, false
		}
	} else if key[n+1] != 't' || idk != uint64(sr.dev)^1<<63 {
		return dst, sr, false
	}
	sr.hasTemp, sr.tempC = f&flagTemp != 0, nums[0].x
	return appendCanonFields(dst, member, f, &nums, sr.hasSeq, sr.seq, sr.dev), sr, true
}

// appendCanonEntry appends the canonical encoding of a block's reading e
// of kind (as eachBlockEntry hands it) of the shipper whose "shipper"
// member is member (canonShipper's, not nil), and a newline, to dst: what
// AppendCanonical writes of the Reading eachInBlock makes of it, and a
// newline.
func appendCanonEntry(dst, member []byte, kind byte, e *blockEntry) []byte {
	return appendCanonFields(dst, member, e.flags, &e.nums, kind == kindSeq, e.id, e.dev)
}

// appendCanonFields appends the canonical encoding of a reading from its
// stored fields, and a newline: the flags f, the values nums (those whose
// flags are set), its seq when it has one, and its device time dev.
func appendCanonFields(dst, member []byte, f uint64, nums *[6]storedNum, hasSeq bool, seq uint64, dev int64) []byte {
	b := append(dst, '{')
	start := len(b)
	num := func(b []byte, fl uint64, i int, name string) []byte {
		if f&fl == 0 {
			return b
		}
		if len(b) > start {
			b = append(b, ',')
		}
		b = append(b, name...)
		return appendStoredNum(b, nums[i])
	}
	boolean := func(b []byte, set, on uint64, name string) []byte {
		if f&set == 0 {
			return b
		}
		if len(b) > start {
			b = append(b, ',')
		}
		b = append(b, name...)
		return strconv.AppendBool(b, f&on != 0)
	}
	b = num(b, flagBattery, 2, `"battery_pct":`)
	b = num(b, flagLat, 4, `"lat":`)
	b = boolean(b, flagLidSet, flagLidOpen, `"lid_open":`)
	b = boolean(b, flagLightSet, flagLight, `"light":`)
	b = num(b, flagLN2, 3, `"ln2_pct":`)
	b = num(b, flagLon, 5, `"lon":`)
	if hasSeq {
		if len(b) > start {
			b = append(b, ',')
		}
		b = append(b, `"seq":`...)
		b = strconv.AppendUint(b, seq, 10)
	}
	if len(b) > start {
		b = append(b, ',')
	}
	b = append(b, member...)
	b = num(b, flagTemp, 0, `"temp_c":`)
	b = num(b, flagTilt, 1, `"tilt_deg":`)
	b = append(b, `,"time":"`...)
	b = appendRFC3339Nano(b, dev)
	return append(b, '"', '}', '\n')
}

// storedNumFlags are the flags of a stored reading's numeric values, in
// the order they are stored (readingNums).
var storedNumFlags = [6]uint64{flagTemp, flagTilt, flagBattery, flagLN2, flagLat, flagLon}

// maxExactDecimal bounds the integers q whose q/100 or q/1e6 has at most
// 15 significant digits: every such decimal converts to a distinct
// float64 (IEEE 754's 15 guaranteed digits), so the shortest digits that
// read back as float64(q)/scale are q's own, trailing zeros dropped.
const maxExactDecimal = 1e15

// appendStoredNum appends a stored value as custody.AppendJCSNumber
// writes its float64: an integer, hundredths or millionths of fewer than
// 16 digits as the decimal they are (well inside the plain notation of
// 1e-6 <= |x| < 1e21), anything else through AppendJCSNumber.
func appendStoredNum(b []byte, v storedNum) []byte {
	if v.tag == numBits || v.q >= maxExactDecimal || v.q <= -maxExactDecimal {
		return custody.AppendJCSNumber(b, v.x)
	}
	q := v.q
	if q < 0 {
		b = append(b, '-')
		q = -q
	}
	var scale, digits int64 = 1, 0
	switch v.tag {
	case numCenti:
		scale, digits = 100, 2
	case numMicro:
		scale, digits = 1e6, 6
	}
	b = strconv.AppendInt(b, q/scale, 10)
	frac := q % scale
	if frac == 0 {
		return b
	}
	for frac%10 == 0 {
		frac /= 10
		digits--
	}
	b = append(b, '.')
	var buf [6]byte
	for i := digits - 1; i >= 0; i-- {
		buf[i] = byte('0' + frac%10)
		frac /= 10
	}
	return append(b, buf[:digits]...)
}

// appendRFC3339Nano appends the time of Unix nanoseconds n as
// time.Unix(0, n).UTC().AppendFormat(b, time.RFC3339Nano) does: the date
// from the days since 1970 (the civil calendar's arithmetic), the
// fraction trimmed of trailing zeros. Times before 1970 go through the
// time package.
func appendRFC3339Nano(b []byte, n int64) []byte {
	if n < 0 {
		return time.Unix(0, n).UTC().AppendFormat(b, time.RFC3339Nano)
	}
	secs, ns := n/1e9, n%1e9
	days, sod := secs/86400, secs%86400
	// Days to year, month and day: the year taken from March 1st so that
	// leap days fall at its end.
	z := days + 719468
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if mp >= 10 {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	b = append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+sod/36000), byte('0'+sod/3600%10), ':', byte('0'+sod/60%60/10), byte('0'+sod/60%10), ':',
		byte('0'+sod%60/10), byte('0'+sod%10))
	if ns != 0 {
		var buf [9]byte
		k := 9
		for ns%10 == 0 {
			ns /= 10
			k--
		}
		for i := k - 1; i >= 0; i-- {
			buf[i] = byte('0' + ns%10)
			ns /= 10
		}
		b = append(b, '.')
		b = append(b, buf[:k]...)
	}
	return append(b, 'Z')
}
