package boltstore

import (
	"bytes"
	"encoding/binary"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// valueSlab hands out the pointers a custody.Reading holds its values by
// from blocks shared by many readings, so that decoding a leg's readings
// allocates once per block instead of once per value. A nil slab gives
// each value its own allocation.
type valueSlab struct {
	floats []float64
	bools  []bool
}

// slabBlock is how many values a block holds.
const slabBlock = 1024

// float returns a pointer to a copy of x.
func (s *valueSlab) float(x float64) *float64 {
	if s == nil {
		return new(x)
	}
	if len(s.floats) == cap(s.floats) {
		s.floats = make([]float64, 0, slabBlock)
	}
	s.floats = append(s.floats, x)
	return &s.floats[len(s.floats)-1]
}

// bool returns a pointer to a copy of x.
func (s *valueSlab) bool(x bool) *bool {
	if s == nil {
		return new(x)
	}
	if len(s.bools) == cap(s.bools) {
		s.bools = make([]bool, 0, slabBlock)
	}
	s.bools = append(s.bools, x)
	return &s.bools[len(s.bools)-1]
}

// seqGetter reads values of one bucket through one cursor, as
// Bucket.Get does but without a cursor made for each: keys asked for in
// the bucket's order (a shipper's readings in time order usually are)
// are found by stepping to the next key instead of a search from the root.
type seqGetter struct {
	c    *bolt.Cursor
	last []byte // the key the cursor is at; nil before the first
}

// get returns the value of key, nil when there is none.
func (g *seqGetter) get(key []byte) []byte {
	var k, v []byte
	if g.last != nil && bytes.Compare(key, g.last) > 0 {
		k, v = g.c.Next()
	}
	if !bytes.Equal(k, key) {
		k, v = g.c.Seek(key)
	}
	g.last = k
	if !bytes.Equal(k, key) {
		return nil
	}
	return v
}

// readingKeyIs reports whether key is r's storage key (custody.Reading.Key)
// without allocating it.
func readingKeyIs(r *custody.Reading, key []byte) bool {
	var buf [64]byte
	k := append(buf[:0], r.Shipper...)
	k = append(k, 0)
	if r.HasSeq {
		k = append(k, 's')
		k = binary.BigEndian.AppendUint64(k, r.Seq)
	} else {
		k = append(k, 't')
		k = binary.BigEndian.AppendUint64(k, uint64(r.DeviceTime.UnixNano())^(1<<63))
	}
	return bytes.Equal(k, key)
}
