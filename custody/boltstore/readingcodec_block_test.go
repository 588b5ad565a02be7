package boltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// checkBlockRoundTrip encodes rs (one kind, increasing identities) as a
// block and fails unless every reading and watermark decodes bit for bit
// (receive time included) and every truncation or extension is refused.
func checkBlockRoundTrip(t *testing.T, kind byte, rs []blockReading) {
	t.Helper()
	v := encodeBlock(nil, kind, rs)
	_, first := readingID(&rs[0].r)
	got, err := decodeBlock(nil, rs[0].r.Shipper, kind, first, v, nil)
	if err != nil {
		t.Fatalf("decode %x: %v", v, err)
	}
	if len(got) != len(rs) {
		t.Fatalf("%d readings decoded, %d encoded", len(got), len(rs))
	}
	for i := range rs {
		a, b := &rs[i], &got[i]
		if a.wm != b.wm || !sameReading(&a.r, &b.r) || !a.r.ReceivedTime.Equal(b.r.ReceivedTime) {
			t.Fatalf("reading %d: got %+v wm %d, want %+v wm %d", i, b.r, b.wm, a.r, a.wm)
		}
	}
	for n := 0; n < len(v); n++ {
		if _, err := decodeBlock(nil, rs[0].r.Shipper, kind, first, v[:n], nil); err == nil {
			t.Fatalf("truncated to %d of %d bytes accepted", n, len(v))
		}
	}
	if _, err := decodeBlock(nil, rs[0].r.Shipper, kind, first, append(bytes.Clone(v), 0), nil); err == nil {
		t.Fatal("extended block accepted")
	}
}

// TestBlockRoundTrip: blocks of seq-numbered readings (device times out of
// order, watermarks up and down, receive before device time) and of
// readings identified by device time decode as encoded.
func TestBlockRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, kind := range []byte{kindSeq, kindTime} {
		for _, n := range []int{1, 2, 17, readingsPerBlock} {
			var rs []blockReading
			seq := uint64(rng.IntN(1000))
			dev := t0
			for i := range n {
				r := reading("SHP-B", i, kind == kindSeq)
				seq += 1 + uint64(rng.IntN(3))
				dev = dev.Add(time.Duration(rng.IntN(120)+1) * time.Second)
				if kind == kindSeq {
					r.Seq = seq
					// Late and early device times: not in seq order.
					r.DeviceTime = dev.Add(time.Duration(rng.IntN(7200)-3600) * time.Second)
				} else {
					r.DeviceTime = dev.Add(time.Duration(rng.IntN(1000)) * time.Nanosecond)
				}
				r.ReceivedTime = r.DeviceTime.Add(time.Duration(rng.IntN(4000)-1000) * time.Millisecond)
				if i == 5 {
					r.TempC = f64(math.Copysign(0, -1))
					r.Lat, r.Lon = f64(1e300), f64(-12.3456789)
				}
				rs = append(rs, blockReading{r: r, wm: uint64(100 + rng.IntN(50))})
			}
			checkBlockRoundTrip(t, kind, rs)
		}
	}
}

// TestBlockRefusesBadValues: values that are no block of the key they
// are stored under are refused with an error, not decoded wrong.
func TestBlockRefusesBadValues(t *testing.T) {
	seqR := []blockReading{{r: reading("S", 1, true), wm: 1}, {r: reading("S", 2, true), wm: 1}}
	good := encodeBlock(nil, kindSeq, seqR)
	cases := map[string]struct {
		kind  byte
		first uint64
		v     []byte
	}{
		"empty":                   {kindSeq, 1, nil},
		"unknown version":         {kindSeq, 1, append([]byte{9}, good[1:]...)},
		"no readings":             {kindSeq, 1, []byte{blockV1, 0}},
		"unknown kind":            {'x', 1, good},
		"seq block read by time":  {kindTime, 1, good},
		"identity step of zero":   {kindSeq, 1, []byte{blockV1, 2, 0, 0, 1, 0, 0, 0, 0, 1, 0}},
		"count beyond the value":  {kindSeq, 1, []byte{blockV1, 200, 0}},
		"unknown flag":            {kindTime, 1, []byte{blockV1, 1, 0, 0, 0x80, 0x10}},
		"lid open without lid":    {kindTime, 1, []byte{blockV1, 1, 0, 0, flagLidOpen}},
		"identity past the range": {kindSeq, math.MaxUint64, good},
	}
	for name, c := range cases {
		if rs, err := decodeBlock(nil, "S", c.kind, c.first, c.v, nil); err == nil {
			t.Errorf("%s: decoded %d readings", name, len(rs))
		}
	}
}

// FuzzReadingBlock: any block of readings built from the fuzzer's values
// decodes bit for bit, and any bytes either decode or are refused with an
// error, never a panic; what decodes has identities increasing from the
// key's and re-encodes to a value that decodes to the same readings.
func FuzzReadingBlock(f *testing.F) {
	f.Add(uint64(7), true, int64(t0.UnixNano()), int64(1500e6), uint8(0xff), math.Float64bits(-185.37), math.Float64bits(52.520008), uint8(3), uint16(5), []byte{blockV1, 1, 2, 3})
	f.Add(uint64(0), false, int64(-1), int64(math.MinInt64), uint8(0x15), math.Float64bits(math.Copysign(0, -1)), math.Float64bits(math.NaN()), uint8(0), uint16(0), []byte{blockV1})
	f.Fuzz(func(t *testing.T, seq uint64, hasSeq bool, dev, recvDelta int64, present uint8, a, b uint64, bools uint8, step uint16, junk []byte) {
		var rs []blockReading
		for i := range 3 {
			r := custody.Reading{Shipper: "SHP-F", HasSeq: hasSeq}
			d := dev + int64(i)*int64(step+1)
			if hasSeq {
				if seq > math.MaxUint64-3 {
					seq = 0
				}
				r.Seq = seq + uint64(i)
				d = dev - int64(i)*int64(step) // device time may go back
			} else if d < dev {
				return // wrapped: identities would not increase
			}
			r.DeviceTime, r.ReceivedTime = time.Unix(0, d).UTC(), time.Unix(0, d+recvDelta).UTC()
			for j, n := range readingNums(&r) {
				if present&(1<<j) != 0 {
					x := math.Float64frombits([]uint64{a, b}[(i+j)%2])
					*n.p = &x
				}
			}
			if bools&1 != 0 {
				r.LidOpen = bp(bools&2 != 0)
			}
			if bools&4 != 0 {
				r.Light = bp(bools&8 != 0)
			}
			rs = append(rs, blockReading{r: r, wm: seq ^ uint64(d) + uint64(i)})
		}
		kind, first := readingID(&rs[0].r)
		if !allFinite(rs) {
			// Never stored (intake refuses them): taken for damage.
			if _, err := decodeBlock(nil, "SHP-F", kind, first, encodeBlock(nil, kind, rs), nil); err == nil {
				t.Fatal("a block holding a NaN or an infinity decoded")
			}
		} else {
			checkBlockRoundTrip(t, kind, rs)
		}
		for _, k := range []byte{kindSeq, kindTime} {
			got, err := decodeBlock(nil, "SHP-F", k, first, junk, nil)
			if err != nil {
				continue
			}
			prev := first
			for i := range got {
				gk, id := readingID(&got[i].r)
				if gk != k || (i == 0 && id != first) || (i > 0 && id <= prev) {
					t.Fatalf("decoded reading %d of kind %c identity %d after %d", i, gk, id, prev)
				}
				prev = id
			}
			again, err := decodeBlock(nil, "SHP-F", k, first, encodeBlock(nil, k, got), nil)
			if err != nil || len(again) != len(got) {
				t.Fatalf("re-encoded block: %d readings, %v", len(again), err)
			}
			for i := range got {
				if !sameReading(&got[i].r, &again[i].r) || got[i].wm != again[i].wm || !got[i].r.ReceivedTime.Equal(again[i].r.ReceivedTime) {
					t.Fatalf("re-encoded reading %d differs", i)
				}
			}
		}
	})
}

// TestNonFiniteStoredValueIsDamage: a stored double changed in the file to
// a NaN or an infinity (which intake never stores and the canonical
// encoding cannot write) makes the reading's decoding fail as damage, in
// both layouts and on the seal's fast path, instead of reaching the
// number encoder.
func TestNonFiniteStoredValueIsDamage(t *testing.T) {
	dev := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	big := 1e300 // stored as its IEEE 754 bits
	r := custody.Reading{Shipper: "SHP-1", HasSeq: true, Seq: 7, DeviceTime: dev, ReceivedTime: dev.Add(time.Second), TempC: &big}
	var bits [8]byte
	binary.BigEndian.PutUint64(bits[:], math.Float64bits(big))
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		var with [8]byte
		binary.BigEndian.PutUint64(with[:], math.Float64bits(bad))
		one := encodeReading(nil, &r, 3)
		block := encodeBlock(nil, kindSeq, []blockReading{{r: r, wm: 3}})
		for name, v := range map[string][]byte{"per reading": one, "block": block} {
			if bytes.Count(v, bits[:]) != 1 {
				t.Fatalf("%s: the value's bits are not in %x once", name, v)
			}
			if name == "per reading" {
				if _, _, err := decodeReading(r.Shipper, r.Key(), v); err != nil {
					t.Fatalf("%s as written: %v", name, err)
				}
			} else if _, err := decodeBlock(nil, r.Shipper, kindSeq, 7, v, nil); err != nil {
				t.Fatalf("%s as written: %v", name, err)
			}
			changed := bytes.Replace(v, bits[:], with[:], 1)
			var err error
			if name == "per reading" {
				_, _, err = decodeReading(r.Shipper, r.Key(), changed)
			} else {
				_, err = decodeBlock(nil, r.Shipper, kindSeq, 7, changed, nil)
			}
			if !errors.Is(err, custody.ErrChainBroken) {
				t.Fatalf("%s with %v stored: %v, want ErrChainBroken", name, bad, err)
			}
			if name == "block" {
				if err := eachBlockEntry(r.Shipper, kindSeq, 7, changed, func(*blockEntry) {}); err == nil {
					t.Fatalf("the seal's block parser took %v", bad)
				}
			}
		}
	}
}

// allFinite reports whether every numeric value of rs is finite.
func allFinite(rs []blockReading) bool {
	for i := range rs {
		for _, n := range readingNums(&rs[i].r) {
			if x := *n.p; x != nil && (math.IsNaN(*x) || math.IsInf(*x, 0)) {
				return false
			}
		}
	}
	return true
}
