package boltstore

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// checkStoredCanonical fails unless appendStoredCanonical writes, for the
// reading of shipper stored under key with value v, exactly what
// decodeReadingIn and AppendCanonical give (and the same figures), or
// declines; it declines a value decodeReadingIn refuses. It returns
// whether the fast path took it.
func checkStoredCanonical(t *testing.T, shipper string, key, v []byte) bool {
	t.Helper()
	prefix := []byte("prefix")
	got, sr, ok := appendStoredCanonical(bytes.Clone(prefix), shipper, canonShipper(shipper), key, v)
	r, wm, err := decodeReadingIn(shipper, key, v, nil)
	if err != nil {
		if ok {
			t.Fatalf("%x under %x: refused by the decoder (%v), encoded as %s", v, key, err, got)
		}
		return false
	}
	if !ok {
		if !bytes.Equal(got, prefix) {
			t.Fatalf("declined, but dst changed to %q", got)
		}
		return false
	}
	want := append(r.AppendCanonical(bytes.Clone(prefix)), '\n')
	if !bytes.Equal(got, want) {
		t.Fatalf("%x under %x:\n got %s\nwant %s", v, key, got, want)
	}
	wantSR := storedReading{wm: wm, dev: r.DeviceTime.UnixNano(), hasSeq: r.HasSeq, seq: r.Seq, hasTemp: r.TempC != nil}
	if r.TempC != nil {
		wantSR.tempC = *r.TempC
	}
	if sr.wm != wantSR.wm || sr.dev != wantSR.dev || sr.hasSeq != wantSR.hasSeq || sr.seq != wantSR.seq ||
		sr.hasTemp != wantSR.hasTemp || math.Float64bits(sr.tempC) != math.Float64bits(wantSR.tempC) {
		t.Fatalf("%x: figures %+v, want %+v", v, sr, wantSR)
	}
	return true
}

// randomReading returns a reading with each member present or not at
// random, values of every stored kind (integers, hundredths, millionths,
// other doubles, -0, large), seq or not.
func randomReading(rng *rand.Rand, shipper string) custody.Reading {
	dev := time.Unix(0, rng.Int64N(1<<62)).UTC()
	switch rng.IntN(3) {
	case 0:
		dev = dev.Truncate(time.Second)
	case 1:
		dev = dev.Truncate(time.Millisecond)
	}
	r := custody.Reading{Shipper: shipper, DeviceTime: dev, ReceivedTime: dev.Add(time.Duration(rng.Int64N(1e12)))}
	if rng.IntN(2) == 0 {
		r.Seq, r.HasSeq = rng.Uint64N(custody.MaxSeq+1), true
	}
	for _, n := range readingNums(&r) {
		if rng.IntN(3) > 0 {
			*n.p = f64(randomValue(rng))
		}
	}
	if rng.IntN(2) == 0 {
		r.LidOpen = bp(rng.IntN(2) == 0)
	}
	if rng.IntN(2) == 0 {
		r.Light = bp(rng.IntN(2) == 0)
	}
	return r
}

// randomValue returns a value of one of the kinds the stored encoding
// treats apart.
func randomValue(rng *rand.Rand) float64 {
	digits := []int64{10, 1e3, 1e6, 1e9, 1e12, 1e15, 1 << 53}[rng.IntN(7)]
	q := rng.Int64N(2*digits) - digits
	switch rng.IntN(7) {
	case 0:
		return float64(q)
	case 1:
		return float64(q) / 100
	case 2:
		return float64(q) / 1e6
	case 3:
		return math.Copysign(0, -1)
	case 4:
		return float64(q) * math.Pow(10, float64(rng.IntN(40)-20))
	case 5:
		return math.Float64frombits(rng.Uint64() &^ (0x7ff << 52)) // subnormal or zero
	}
	return rng.NormFloat64() * 100
}

// TestStoredCanonicalEqualsDecoded: for random readings in both stored
// versions, the canonical encoding written from the stored bytes is the
// decoded reading's, and the fast path takes nearly all of them.
func TestStoredCanonicalEqualsDecoded(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fast := 0
	const n = 20000
	for i := range n {
		r := randomReading(rng, "SHP-1")
		wm := rng.Uint64N(1 << 40)
		if checkStoredCanonical(t, r.Shipper, r.Key(), encodeReading(nil, &r, wm)) {
			fast++
		}
		if !checkStoredCanonical(t, r.Shipper, r.Key(), encodeReadingV1(nil, &r, wm)) {
			t.Fatalf("reading %d: version 1 declined", i)
		}
		// Under another reading's key: refused by both.
		other := r
		other.HasSeq, other.Seq = !r.HasSeq, 0
		checkStoredCanonical(t, r.Shipper, other.Key(), encodeReading(nil, &r, wm))
	}
	if fast != n {
		t.Errorf("fast path took %d of %d version-2 readings", fast, n)
	}
	// A shipper JSON would escape goes the general way.
	r := reading("SHP\"1", 1, true)
	if checkStoredCanonical(t, r.Shipper, r.Key(), encodeReading(nil, &r, 1)) {
		t.Error("a shipper with a quote taken by the fast path")
	}
}

// FuzzStoredCanonical: whatever the stored value, the fast encoding is
// the decoder's or declines.
func FuzzStoredCanonical(f *testing.F) {
	r := reading("SHP-F", 3, true)
	f.Add(true, uint64(3), encodeReading(nil, &r, 9))
	f.Add(true, uint64(3), encodeReadingV1(nil, &r, 9))
	r = reading("SHP-F", 4, false)
	f.Add(false, uint64(r.DeviceTime.UnixNano())^1<<63, encodeReading(nil, &r, 9))
	f.Fuzz(func(t *testing.T, seq bool, id uint64, v []byte) {
		key := []byte("SHP-F\x00t")
		if seq {
			key[len(key)-1] = 's'
		}
		checkStoredCanonical(t, "SHP-F", append(key, u64(id)...), v)
	})
}

// TestStoredNumberAsJCS: an integer, hundredths or millionths written as
// the decimal they are is what AppendJCSNumber writes of the float64:
// random values of every magnitude, and the edges.
func TestStoredNumberAsJCS(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(q int64, tag uint64) {
		t.Helper()
		x := float64(q) / numScales[tag]
		got := string(appendStoredNum(nil, storedNum{tag: tag, q: q, x: x}))
		if want := string(custody.AppendJCSNumber(nil, x)); got != want {
			t.Fatalf("q %d tag %d: %s, want %s", q, tag, got, want)
		}
	}
	edges := []int64{0, 1, -1, 5, 10, 99, 100, 101, -100, 1e6, -1e6, 1e6 + 1, 123456, 1e15 - 1, -(1e15 - 1), 1e15, -1e15,
		1e15 + 1, 1<<53 - 1, -(1<<53 - 1), 999999999999999, 100000000000000}
	for _, tag := range []uint64{numInt, numCenti, numMicro} {
		for _, q := range edges {
			check(q, tag)
		}
		for range 300000 {
			check((rng.Int64N(1<<54)-1<<53)>>rng.IntN(54), tag)
		}
	}
	for _, x := range []float64{math.Copysign(0, -1), 1e21, 1e-7, 0.1 + 0.2, math.MaxFloat64, -math.SmallestNonzeroFloat64} {
		if got, want := string(appendStoredNum(nil, storedNum{tag: numBits, x: x})), string(custody.AppendJCSNumber(nil, x)); got != want {
			t.Fatalf("%v: %s, want %s", x, got, want)
		}
	}
}

// TestRFC3339NanoAsTime: the time written from Unix nanoseconds is the
// time package's RFC 3339 of it: random instants over the whole range,
// and days at the edges of months, leap years and centuries.
func TestRFC3339NanoAsTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	check := func(n int64) {
		t.Helper()
		if got, want := string(appendRFC3339Nano(nil, n)), time.Unix(0, n).UTC().Format(time.RFC3339Nano); got != want {
			t.Fatalf("%d: %s, want %s", n, got, want)
		}
	}
	for _, n := range []int64{0, 1, -1, math.MaxInt64, math.MinInt64, 1e9, 999999999, 1e9 + 1e6} {
		check(n)
	}
	for y := 1970; y < 2262; y++ {
		for _, d := range []time.Time{time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(y, 2, 28, 23, 59, 59, 999999999, time.UTC),
			time.Date(y, 2, 29, 12, 0, 0, 0, time.UTC), time.Date(y, 3, 1, 0, 0, 0, 1, time.UTC), time.Date(y, 12, 31, 23, 59, 59, 500e6, time.UTC)} {
			check(d.UnixNano())
		}
	}
	for range 300000 {
		n := rng.Int64()
		switch rng.IntN(3) {
		case 0:
			n -= n % 1e9
		case 1:
			n -= n % 1e6
		}
		check(n)
		check(-n)
	}
}

// TestSealShipperReadingsEqualsSealReadings: over a real file with legs
// of random readings (every value kind, seq and no-seq readings at the
// same instants, some stored as version 1, some deleted), the seal
// hashed straight from the stored bytes is the seal of ShipperReadings,
// for random windows and watermarks; readings out of seal order (a
// reading without seq after one with at the same instant, in the index)
// are handed back to the slow path rather than hashed.
func TestSealShipperReadingsEqualsSealReadings(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	openT(t, dir).Close()
	rng := rand.New(rand.NewPCG(7, 8))
	shippers := []string{"SHP-0", "SHP-1", "SHP-2", "SHP-3"}
	for batch := range 6 {
		var rs []custody.Reading
		for i := range 80 {
			sh := shippers[rng.IntN(len(shippers))]
			r := randomReading(rng, sh)
			r.DeviceTime = t0.Add(time.Duration(rng.IntN(300)) * time.Minute)
			if rng.IntN(4) == 0 {
				r.DeviceTime = r.DeviceTime.Add(time.Duration(rng.IntN(1e9)))
			}
			if r.HasSeq {
				r.Seq = uint64(batch*1000 + i)
			}
			if sh == "SHP-3" { // the mixed shipper: seq and no-seq at the same instants
				r.DeviceTime = t0.Add(time.Duration(i%5) * time.Minute)
			}
			if !r.HasSeq {
				// One reading without seq an instant: others would conflict.
				r.DeviceTime = r.DeviceTime.Add(time.Duration(1 + batch*1000 + i))
			}
			r.ReceivedTime = t0.Add(24 * time.Hour)
			if r.TempC != nil && rng.IntN(2) == 0 {
				r.TempC = f64(float64(rng.IntN(4000))/100 - 5) // within and outside the limits
			}
			rs = append(rs, r)
		}
		if batch == 0 {
			for k := range 5 {
				at := t0.Add(time.Duration(k) * time.Minute)
				rs = append(rs, custody.Reading{Shipper: "SHP-3", DeviceTime: at, ReceivedTime: at, TempC: f64(4)},
					custody.Reading{Shipper: "SHP-3", Seq: uint64(900 + k), HasSeq: true, DeviceTime: at, ReceivedTime: at, TempC: f64(5)})
			}
		}
		// Stored in the per-reading layout, whose values the test
		// rewrites below.
		addOldLayout(t, dir, rs, encodeReading)
	}
	db, err := bolt.Open(dir+"/"+FileName, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketReadings)
		type kv struct{ k, v []byte }
		var v1, del [][]byte
		var puts []kv
		err := b.ForEach(func(k, v []byte) error {
			switch rng.IntN(6) {
			case 0:
				r, wm, err := decodeStoredReading(k, v)
				if err != nil {
					return err
				}
				puts = append(puts, kv{bytes.Clone(k), encodeReadingV1(nil, &r, wm)})
				v1 = append(v1, k)
			case 1:
				del = append(del, bytes.Clone(k))
			}
			return nil
		})
		for _, e := range puts {
			if err == nil {
				err = b.Put(e.k, e.v)
			}
		}
		for _, k := range del {
			if err == nil {
				err = b.Delete(k)
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s := openT(t, dir)
	defer s.Close()

	var sh custody.SealHasher
	streamed, declined := 0, 0
	for i := range 400 {
		shipper := shippers[i%len(shippers)]
		p := custody.BuiltinProfiles()[[]string{"refrigerated", "cryogenic", "frozen"}[rng.IntN(3)]]
		p.MinC, p.MaxC = f64(2), f64(8)
		p.MKT = rng.IntN(2) == 0
		var from, to time.Time
		if rng.IntN(2) == 0 {
			from = t0.Add(time.Duration(rng.IntN(200)) * time.Minute)
			to = from.Add(time.Duration(rng.IntN(200)) * time.Minute)
		}
		through := uint64(rng.IntN(8))
		sh.Reset(p, custody.MKTTimeWeighted, p.SilenceAfter())
		ok, err := s.SealShipperReadings(ctx, &sh, shipper, from, to, through)
		if err != nil {
			t.Fatal(err)
		}
		rs, _, err := s.ShipperReadings(ctx, shipper, from, to, through)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			declined++
			if shipper != "SHP-3" {
				t.Fatalf("%s %s..%s through %d: declined", shipper, from, to, through)
			}
			continue
		}
		streamed++
		got, ok := sh.Seal(p.MKT)
		if want := custody.SealReadings(rs, p); !ok || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s %s..%s through %d:\n got %+v\nwant %+v", shipper, from, to, through, got, want)
		}
	}
	if declined == 0 || streamed < 300 {
		t.Errorf("%d legs streamed, %d declined: the mixed shipper should be declined, the others streamed", streamed, declined)
	}
}
