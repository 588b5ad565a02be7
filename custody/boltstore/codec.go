package boltstore

import (
	"encoding/binary"
	"math"
)

// fieldReader reads the fields of the store's binary encodings (chain
// entries, readings). The first short or malformed field makes every later
// read return zero and ok() false, so decoders check once at the end.
type fieldReader struct {
	b   []byte
	bad bool
}

func (r *fieldReader) uvarint() uint64 {
	if r.bad {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *fieldReader) varint() int64 {
	if r.bad {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

// next returns the next n bytes.
func (r *fieldReader) next(n uint64) []byte {
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// str reads a length-prefixed string.
func (r *fieldReader) str() string { return string(r.next(r.uvarint())) }

// float64 reads a big-endian IEEE 754 double. A NaN or an infinity, which
// nothing stores (intake refuses them) and the canonical encoding has no
// form for, makes the read fail: the value was changed in the file.
func (r *fieldReader) float64() float64 {
	b := r.next(8)
	if b == nil {
		return 0
	}
	x := math.Float64frombits(binary.BigEndian.Uint64(b))
	if math.IsNaN(x) || math.IsInf(x, 0) {
		r.bad = true
		return 0
	}
	return x
}

// done reports whether every read succeeded and nothing is left over.
func (r *fieldReader) done() bool { return !r.bad && len(r.b) == 0 }
