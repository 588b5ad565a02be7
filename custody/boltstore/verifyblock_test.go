package boltstore

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// checkBlockCanonical fails unless, for the block stored with value v
// under an identity of kind starting at first, eachBlockEntry refuses
// exactly what decodeBlock refuses (with the same error) and, for a block
// that decodes, appendCanonEntry writes for each reading what
// AppendCanonical writes of the decoded one, with the same seal figures.
// It returns how many readings it compared.
func checkBlockCanonical(t *testing.T, shipper string, kind byte, first uint64, v []byte) int {
	t.Helper()
	want, werr := decodeBlock(nil, shipper, kind, first, v, nil)
	var got [][]byte
	var entries []blockEntry
	member := canonShipper(shipper)
	finite := true
	gerr := eachBlockEntry(shipper, kind, first, v, func(e *blockEntry) {
		for i, fl := range storedNumFlags {
			if x := e.nums[i].x; e.flags&fl != 0 && (math.IsNaN(x) || math.IsInf(x, 0)) {
				// Never stored (intake refuses them): both encodings
				// reach AppendJCSNumber, which has no form for them.
				finite = false
			}
		}
		if finite {
			got = append(got, appendCanonEntry([]byte("prefix"), member, kind, e))
		}
		entries = append(entries, *e)
	})
	switch {
	case (werr == nil) != (gerr == nil):
		t.Fatalf("%x: decodeBlock %v, eachBlockEntry %v", v, werr, gerr)
	case werr != nil:
		if werr.Error() != gerr.Error() {
			t.Fatalf("%x: decodeBlock %v, eachBlockEntry %v", v, werr, gerr)
		}
		return 0
	case !finite:
		return 0
	case len(got) != len(want):
		t.Fatalf("%x: %d readings parsed, %d decoded", v, len(got), len(want))
	}
	for i := range want {
		r, e := &want[i].r, &entries[i]
		enc := append(r.AppendCanonical([]byte("prefix")), '\n')
		if !bytes.Equal(got[i], enc) {
			t.Fatalf("%x reading %d:\n got %s\nwant %s", v, i, got[i], enc)
		}
		if e.wm != want[i].wm || e.dev != r.DeviceTime.UnixNano() || e.dev+e.recvDelta != r.ReceivedTime.UnixNano() ||
			(kind == kindSeq) != r.HasSeq || (r.HasSeq && e.id != r.Seq) || (e.flags&flagTemp != 0) != (r.TempC != nil) ||
			(r.TempC != nil && math.Float64bits(e.nums[0].x) != math.Float64bits(*r.TempC)) {
			t.Fatalf("%x reading %d: entry %+v, decoded %+v wm %d", v, i, *e, *r, want[i].wm)
		}
	}
	return len(want)
}

// randomBlock returns up to readingsPerBlock random readings of shipper of
// one kind, in identity order, with their watermarks.
func randomBlock(rng *rand.Rand, shipper string) (byte, []blockReading) {
	seq := rng.IntN(2) == 0
	n := 1 + rng.IntN(readingsPerBlock)
	seen := map[uint64]bool{}
	var rs []blockReading
	for len(rs) < n {
		r := randomReading(rng, shipper)
		r.HasSeq = seq
		if seq {
			r.Seq = rng.Uint64N(custody.MaxSeq + 1)
		} else {
			r.Seq = 0
		}
		_, id := readingID(&r)
		if seen[id] {
			continue
		}
		seen[id] = true
		rs = append(rs, blockReading{r: r, wm: rng.Uint64N(1 << 40)})
	}
	sort.Slice(rs, func(i, j int) bool { _, a := readingID(&rs[i].r); _, b := readingID(&rs[j].r); return a < b })
	kind, _ := readingID(&rs[0].r)
	return kind, rs
}

// TestBlockCanonicalEqualsDecoded: for random blocks of both kinds, with
// values of every stored kind, the canonical encoding written from the
// block's stored fields is the decoded readings', and every truncation
// and extension of the block is refused by both with the same error.
func TestBlockCanonicalEqualsDecoded(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	compared := 0
	for range 2000 {
		kind, rs := randomBlock(rng, "SHP-1")
		v := encodeBlock(nil, kind, rs)
		_, first := readingID(&rs[0].r)
		if n := checkBlockCanonical(t, "SHP-1", kind, first, v); n != len(rs) {
			t.Fatalf("%d readings compared of %d", n, len(rs))
		}
		compared += len(rs)
		checkBlockCanonical(t, "SHP-1", kind, first, v[:rng.IntN(len(v))])
		checkBlockCanonical(t, "SHP-1", kind, first, append(bytes.Clone(v), byte(rng.IntN(256))))
		w := bytes.Clone(v)
		w[rng.IntN(len(w))] ^= byte(1 + rng.IntN(255))
		checkBlockCanonical(t, "SHP-1", kind, first, w)
	}
	if compared < 2000*16 {
		t.Errorf("only %d readings compared", compared)
	}
}

// FuzzBlockCanonical: whatever the stored bytes, eachBlockEntry refuses
// what decodeBlock refuses, and the fast encoding of what both read is
// the decoded readings'.
func FuzzBlockCanonical(f *testing.F) {
	rng := rand.New(rand.NewPCG(13, 14))
	for range 8 {
		kind, rs := randomBlock(rng, "SHP-F")
		_, first := readingID(&rs[0].r)
		f.Add(kind == kindSeq, first, encodeBlock(nil, kind, rs))
	}
	f.Fuzz(func(t *testing.T, seq bool, first uint64, v []byte) {
		kind := byte(kindTime)
		if seq {
			kind = kindSeq
		}
		checkBlockCanonical(t, "SHP-F", kind, first, v)
	})
}

// TestSealShipperReadingsBlocksEqualsSealReadings: random legs stored
// through the store in the block layout (seq and no-seq readings, values
// of every kind, random windows and watermarks) seal from the stored
// fields as SealReadings of ShipperReadings; a shipper ID JSON would
// escape takes the decoded path and seals the same.
func TestSealShipperReadingsBlocksEqualsSealReadings(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir())
	defer s.Close()
	rng := rand.New(rand.NewPCG(15, 16))
	shippers := []string{"SHP-0", "SHP-1", "SHP-2", `SHP"Q`}
	for batch := range 8 {
		var rs []custody.Reading
		for i := range 100 {
			sh := shippers[rng.IntN(len(shippers))]
			r := randomReading(rng, sh)
			// Device times rise with the batch and the seq, as a
			// logger's do, with sub-second jitter; SHP-2 mixes readings
			// with and without seq.
			n := batch*100 + i
			r.DeviceTime = t0.Add(time.Duration(n)*30*time.Second + time.Duration(rng.IntN(1e9)))
			r.HasSeq = sh != "SHP-1" && (sh != "SHP-2" || rng.IntN(2) == 0)
			r.Seq = 0
			if r.HasSeq {
				r.Seq = uint64(n)
			}
			r.ReceivedTime = t0.Add(24 * time.Hour)
			if r.TempC != nil && rng.IntN(2) == 0 {
				r.TempC = f64(float64(rng.IntN(4000))/100 - 5)
			}
			rs = append(rs, r)
		}
		if _, err := s.AddReadings(ctx, rs); err != nil {
			t.Fatal(err)
		}
	}
	var sh custody.SealHasher
	streamed := map[bool]int{}
	for i := range 400 {
		shipper := shippers[i%len(shippers)]
		p := custody.BuiltinProfiles()[[]string{"refrigerated", "cryogenic", "frozen"}[rng.IntN(3)]]
		p.MinC, p.MaxC = f64(2), f64(8)
		p.MKT = rng.IntN(2) == 0
		var from, to time.Time
		if rng.IntN(2) == 0 {
			from = t0.Add(time.Duration(rng.IntN(400)) * time.Minute)
			to = from.Add(time.Duration(rng.IntN(400)) * time.Minute)
		}
		through := uint64(rng.IntN(12))
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
			continue // out of seal order: the caller reads and sorts them
		}
		streamed[canonShipper(shipper) != nil]++
		got, ok := sh.Seal(p.MKT)
		if want := custody.SealReadings(rs, p); !ok || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s %s..%s through %d:\n got %+v\nwant %+v", shipper, from, to, through, got, want)
		}
	}
	if streamed[true] < 200 || streamed[false] < 50 {
		t.Errorf("legs streamed: %d from the stored fields, %d decoded", streamed[true], streamed[false])
	}
}
