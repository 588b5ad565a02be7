package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// encodeReadingV1 is the encoder of version 1, which wrote every reading
// stored before version 2: kept here to make such files in tests.
func encodeReadingV1(dst []byte, r *custody.Reading, wm uint64) []byte {
	dst = append(dst, readingV1)
	dst = binary.AppendUvarint(dst, wm)
	dst = binary.AppendVarint(dst, r.ReceivedTime.UnixNano())
	return appendReadingContentV1(dst, r)
}

// encodeReading is the encoder of version 2, which wrote every reading
// of the per-reading layout from version 1 until the block layout: kept
// here to make such files in tests.
func encodeReading(dst []byte, r *custody.Reading, wm uint64) []byte {
	dst = append(dst, readingV2)
	dst = binary.AppendUvarint(dst, wm)
	dst = appendTimeV2(dst, r.ReceivedTime.UnixNano()-r.DeviceTime.UnixNano())
	return appendReadingContentV2(dst, r)
}

// checkRoundTrip decodes v, which holds r with watermark wm, and fails
// unless every field comes back bit for bit and every truncation or
// extension of v is refused.
func checkRoundTrip(t *testing.T, r custody.Reading, wm uint64, v []byte) {
	t.Helper()
	got, gotWM, err := decodeReading(r.Shipper, r.Key(), v)
	if err != nil {
		t.Fatalf("decode %x: %v", v, err)
	}
	// The canonical form has no non-finite numbers (Validate refuses
	// them); sameReading compares every value bit for bit.
	canonical := func(r *custody.Reading) []byte {
		for _, n := range readingNums(r) {
			if *n.p != nil && (math.IsNaN(**n.p) || math.IsInf(**n.p, 0)) {
				return nil
			}
		}
		return r.AppendCanonical(nil)
	}
	if gotWM != wm || !sameReading(&got, &r) || got.ReceivedTime.UnixNano() != r.ReceivedTime.UnixNano() ||
		!bytes.Equal(canonical(&got), canonical(&r)) {
		t.Fatalf("round trip of %x: got recv %s wm %d (%s), want recv %s wm %d", v,
			got.ReceivedTime, gotWM, readingDiff(&r, &got), r.ReceivedTime, wm)
	}
	if same, _ := sameStoredContent(v, &r, nil); !same {
		t.Fatalf("stored content of %x differs from the reading's", v)
	}
	for n := 0; n < len(v); n++ {
		if _, _, err := decodeReading(r.Shipper, r.Key(), v[:n]); err == nil {
			t.Fatalf("%x truncated to %d accepted", v, n)
		}
	}
	if _, _, err := decodeReading(r.Shipper, r.Key(), append(bytes.Clone(v), 0)); err == nil {
		t.Fatalf("%x extended accepted", v)
	}
}

func TestReadingCodecRoundTrip(t *testing.T) {
	full := func(v float64) custody.Reading {
		r := reading("SHP-1", 3, true)
		r.TempC, r.TiltDeg, r.BatteryPct, r.LN2Pct, r.Lat, r.Lon = f64(v), f64(v), f64(v), f64(v), f64(v), f64(v)
		return r
	}
	withTimes := func(seq bool, dev, recv time.Time) custody.Reading {
		r := reading("SHP-1", 1, seq)
		r.DeviceTime, r.ReceivedTime = dev, recv
		return r
	}
	ns := t0.Add(123456789 * time.Nanosecond)
	for _, c := range []struct {
		name string
		r    custody.Reading
		max  int // the longest version-2 encoding expected; 0: no bound
	}{
		{"seq, temperature only", reading("SHP-1", 1, true), 15},
		{"no seq, temperature only", reading("SHP-1", 1, false), 10},
		{"every field", reading("SHP-1", 3, true), 30},
		{"nothing but the identity", custody.Reading{Shipper: "B", DeviceTime: t0, ReceivedTime: t0}, 0},
		{"integers", full(88), 0},
		{"hundredths", full(-185.37), 0},
		{"millionths", full(52.520008), 0},
		{"more decimals", full(0.1 + 0.2), 0},
		{"negative zero", full(math.Copysign(0, -1)), 0},
		{"huge", full(math.MaxFloat64), 0},
		{"beyond 2^53", full(1 << 60), 0},
		{"subnormal", full(math.SmallestNonzeroFloat64), 0},
		{"received in nanoseconds", withTimes(true, t0, ns), 0},
		{"device in nanoseconds", withTimes(true, ns, t0), 0},
		{"device in milliseconds, no seq", withTimes(false, t0.Add(time.Millisecond), t0), 0},
		{"received before device", withTimes(true, t0.Add(time.Hour), t0), 0},
		{"far apart", withTimes(true, time.Unix(0, math.MinInt64+1).UTC(), time.Unix(0, math.MaxInt64).UTC()), 0},
		{"earliest and latest", withTimes(false, time.Unix(0, math.MaxInt64).UTC(), time.Unix(0, math.MinInt64).UTC()), 0},
		{"seq at its largest", func() custody.Reading { r := reading("S", 1, true); r.Seq = math.MaxUint64; return r }(), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			v2 := encodeReading(nil, &c.r, 1<<40)
			if v2[0] != readingV2 {
				t.Fatalf("written in version %d", v2[0])
			}
			checkRoundTrip(t, c.r, 1<<40, v2)
			checkRoundTrip(t, c.r, 7, encodeReadingV1(nil, &c.r, 7))
			// Sized as stored: a watermark of a few thousand batches.
			if v := encodeReading(nil, &c.r, 5000); c.max > 0 && len(v) > c.max {
				t.Errorf("%d bytes, want at most %d (version 1: %d)", len(v), c.max, len(encodeReadingV1(nil, &c.r, 5000)))
			}
		})
	}
}

// TestReadingCodecRefusesNonsense: values no encoder writes are refused,
// not decoded to something else.
func TestReadingCodecRefusesNonsense(t *testing.T) {
	r := reading("S", 1, true)
	good := encodeReading(nil, &r, 1)
	for _, c := range []struct {
		name string
		v    []byte
	}{
		{"unknown version", append([]byte{3}, good[1:]...)},
		{"raw time tag with a value", []byte{readingV2, 1, 1<<2 | timeRaw, 0}},
		{"bits tag with a value", append(bytes.Clone(good[:len(good)-3]), 1<<2|numBits)},
		{"seconds overflowing", binary.AppendUvarint([]byte{readingV2, 1}, zigzag(math.MaxInt64/int64(1e9)+1)<<2|timeSeconds)},
	} {
		if _, _, err := decodeReading(r.Shipper, r.Key(), c.v); err == nil {
			t.Errorf("%s: %x accepted", c.name, c.v)
		}
	}
	other := reading("S", 1, false)
	if _, _, err := decodeReading(r.Shipper, other.Key(), good); err == nil {
		t.Error("a reading with seq accepted under a key by device time")
	}
}

// FuzzReadingCodec: every reading decodes from its encoding (version 2,
// and version 1 as older files hold it) with every field bit for bit, and
// no stored value makes the decoder fail other than with an error.
func FuzzReadingCodec(f *testing.F) {
	f.Add(uint64(1), true, int64(t0.UnixNano()), int64(1500e6), uint8(0xff), math.Float64bits(-185.37), math.Float64bits(52.520008), uint8(3), []byte{2, 1})
	f.Add(uint64(0), false, int64(-1), int64(math.MinInt64), uint8(0x15), math.Float64bits(math.Copysign(0, -1)), math.Float64bits(math.NaN()), uint8(0), []byte{1})
	f.Fuzz(func(t *testing.T, seq uint64, hasSeq bool, dev, recvDelta int64, present uint8, a, b uint64, bools uint8, junk []byte) {
		r := custody.Reading{Shipper: "SHP-F", HasSeq: hasSeq, DeviceTime: time.Unix(0, dev).UTC(), ReceivedTime: time.Unix(0, dev+recvDelta).UTC()}
		if hasSeq {
			r.Seq = seq
		}
		for i, n := range readingNums(&r) {
			if present&(1<<i) != 0 {
				x := math.Float64frombits([]uint64{a, b}[i%2])
				*n.p = &x
			}
		}
		if bools&1 != 0 {
			r.LidOpen = bp(bools&2 != 0)
		}
		if bools&4 != 0 {
			r.Light = bp(bools&8 != 0)
		}
		wm := seq ^ uint64(dev)
		checkRoundTrip(t, r, wm, encodeReading(nil, &r, wm))
		checkRoundTrip(t, r, wm, encodeReadingV1(nil, &r, wm))
		_, _, _ = decodeReading(r.Shipper, r.Key(), junk)
	})
}

// TestVersion1FileStillReads: a file whose readings main's encoder wrote
// (version 1) opens and verifies; its readings, read by shipper and by the
// reading log, seal as they did; redeliveries of them are duplicates, a
// changed one a conflict; new readings are written in version 2 beside
// them.
func TestVersion1FileStillReads(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	var old []custody.Reading
	for i := range 40 {
		old = append(old, reading(fmt.Sprintf("SHP-%d", i%2), i, i%4 != 3))
	}
	s := openT(t, dir)
	s.Close()
	// Store them as main's writer did: version 1 values in the
	// per-reading layout.
	addOldLayout(t, dir, old[:20], encodeReadingV1)
	addOldLayout(t, dir, old[20:], encodeReadingV1)

	s = openT(t, dir)
	defer s.Close()
	if rep := verify(t, s); !rep.OK {
		t.Fatalf("verify: %+v", rep)
	}
	p := custody.BuiltinProfiles()["cryogenic"]
	for _, sh := range []string{"SHP-0", "SHP-1"} {
		var want []custody.Reading
		for _, r := range old {
			if r.Shipper == sh {
				want = append(want, r)
			}
		}
		custody.SortReadings(want)
		got, _, err := s.ShipperReadings(ctx, sh, time.Time{}, time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if gs, ws := custody.SealReadings(got, p), custody.SealReadings(want, p); !reflect.DeepEqual(gs, ws) || gs.Count != len(want) {
			t.Fatalf("%s: seal %+v, want %+v", sh, gs, ws)
		}
	}
	page, err := s.ReadingsSince(ctx, 0, 0)
	if err != nil || len(page.Readings) != len(old) {
		t.Fatalf("reading log: %d readings, %v", len(page.Readings), err)
	}
	if res, err := s.AddReadings(ctx, old); err != nil || res.Duplicates != len(old) || res.Stored != 0 {
		t.Fatalf("redelivery: %+v %v", res, err)
	}
	changed := old[5]
	changed.TempC = f64(*changed.TempC + 0.01)
	if _, err := s.AddReadings(ctx, []custody.Reading{changed}); err == nil {
		t.Fatal("a changed version-1 reading taken for a duplicate")
	}
	fresh := []custody.Reading{reading("SHP-0", 100, true), reading("SHP-0", 101, false)}
	if res, err := s.AddReadings(ctx, fresh); err != nil || res.Stored != 2 {
		t.Fatalf("new readings: %+v %v", res, err)
	}
	if err := s.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketReadings).Get(fresh[0].Key()); v != nil {
			return fmt.Errorf("new reading stored in the per-reading layout as %x", v)
		}
		got, err := newBlockLookup(tx).get(&fresh[0])
		if err != nil || got == nil {
			return fmt.Errorf("new reading not in the block layout: %v", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.ShipperReadings(ctx, "SHP-0", time.Time{}, time.Time{}, 0)
	if err != nil || len(got) != 22 {
		t.Fatalf("mixed versions: %d readings, %v", len(got), err)
	}
}
