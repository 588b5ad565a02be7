package custody

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"math"
	"strings"
	"time"
)

// SealHasher recomputes a leg's seal (SealReadings) from its readings
// given one at a time in seal order (CompareReadings), each as its
// canonical encoding and the few figures the seal's summary needs, so
// that a store can hash readings straight from what it stores, without a
// Reading built for each. The encodings stream into one SHA-256; its
// memory is reused from one leg to the next (Reset). The zero value is
// ready for Reset; a SealHasher is not safe for concurrent use.
type SealHasher struct {
	p       Profile
	method  string
	maxGap  time.Duration
	h       hash.Hash
	scratch []byte

	n              int
	first, last    int64
	prevDev        int64
	prevHasSeq     bool
	prevSeq        uint64
	unordered      bool
	haveTemp       bool
	minC, maxC     float64
	tempPrev       time.Time
	tempPrevOut    bool
	timeOutOfRange time.Duration
	temps          []float64
	times          []time.Time
}

// Reset starts a leg sealed under profile p, MKT weighed by mktMethod
// (MKTTimeWeighted, or "" for equal weights) with maxGap the largest gap
// time weighting credits, as sealReadings takes them.
func (sh *SealHasher) Reset(p Profile, mktMethod string, maxGap time.Duration) {
	if sh.h == nil {
		sh.h = sha256.New()
	}
	sh.h.Reset()
	*sh = SealHasher{p: p, method: mktMethod, maxGap: maxGap, h: sh.h, scratch: sh.scratch[:0],
		temps: sh.temps[:0], times: sh.times[:0]}
}

// Scratch returns memory (length 0) to append the next reading's
// encoding to; Add gives it back for the next reading.
func (sh *SealHasher) Scratch() []byte { return sh.scratch[:0] }

// Add hashes the next reading: enc is its canonical encoding
// (Reading.AppendCanonical) followed by the newline the readings hash
// puts after each, dev its device time in Unix nanoseconds, hasSeq and
// seq its sequence number, tempC its temperature when hasTemp. It
// returns false once a reading came out of seal order (or could not be
// ordered without its encoding): the seal is then not the readings', and
// the caller must seal them with SealReadings instead.
func (sh *SealHasher) Add(enc []byte, dev int64, hasSeq bool, seq uint64, tempC float64, hasTemp bool) bool {
	if sh.n > 0 && !sh.after(dev, hasSeq, seq) {
		sh.unordered = true
	}
	sh.scratch = enc[:0]
	if sh.unordered {
		return false
	}
	sh.h.Write(enc)
	if sh.n == 0 {
		sh.first = dev
	}
	sh.n++
	sh.last, sh.prevDev, sh.prevHasSeq, sh.prevSeq = dev, dev, hasSeq, seq
	if !hasTemp {
		return true
	}
	t := time.Unix(0, dev)
	if sh.haveTemp && sh.tempPrevOut {
		sh.timeOutOfRange += t.Sub(sh.tempPrev)
	}
	sh.tempPrev, sh.tempPrevOut = t, !sh.p.TempInRange(tempC)
	if !sh.haveTemp || tempC < sh.minC {
		sh.minC = tempC
	}
	if !sh.haveTemp || tempC > sh.maxC {
		sh.maxC = tempC
	}
	sh.haveTemp = true
	sh.temps = append(sh.temps, tempC)
	sh.times = append(sh.times, t)
	return true
}

// after reports whether a reading of device time dev and sequence number
// seq (when hasSeq) sorts strictly after the previous one in
// CompareReadings order, decided without the encodings: readings equal
// on those figures are reported as not ordered.
func (sh *SealHasher) after(dev int64, hasSeq bool, seq uint64) bool {
	switch {
	case dev != sh.prevDev:
		return dev > sh.prevDev
	case hasSeq != sh.prevHasSeq:
		return hasSeq // a reading without seq sorts first
	}
	return hasSeq && seq > sh.prevSeq
}

// Seal returns the seal of the readings added since Reset, as
// sealReadings computes it with the profile's MKT switched to mkt; ok is
// false when a reading came out of order (see Add). It does not change
// the hasher's state, so a second Seal with the other switch is cheap.
func (sh *SealHasher) Seal(mkt bool) (s LegSeal, ok bool) {
	if sh.unordered {
		return LegSeal{}, false
	}
	p := sh.p
	s = LegSeal{Encoding: ReadingEncoding, Profile: p.Name, Count: sh.n, TimeOutOfRange: sh.timeOutOfRange}
	if p.MinC != nil {
		s.LimitMinC = teleF64(*p.MinC)
	}
	if p.MaxC != nil {
		s.LimitMaxC = teleF64(*p.MaxC)
	}
	if sh.haveTemp {
		s.MinC, s.MaxC = teleF64(sh.minC), teleF64(sh.maxC)
	}
	if sh.n > 0 {
		s.FirstDeviceTime = time.Unix(0, sh.first).UTC()
		s.LastDeviceTime = time.Unix(0, sh.last).UTC()
	}
	if mkt && len(sh.temps) > 0 {
		m := MeanKineticTemperature(sh.temps)
		if sh.method == MKTTimeWeighted {
			m = TimeWeightedMKT(sh.times, sh.temps, sh.maxGap)
		}
		if !math.IsNaN(m) {
			s.MKTC = teleF64(math.Round(m*1000) / 1000)
			if sh.method == MKTTimeWeighted {
				s.MKTMethod, s.MKTMaxGap = sh.method, sh.maxGap
			}
		}
	}
	var sum [sha256.Size]byte
	s.ReadingsHash = hex.EncodeToString(sh.h.Sum(sum[:0]))
	return s, true
}

// ReadingSealer is a ReadingStore that can hash a shipper's stored
// readings into a seal without building a Reading for each, for
// verification at the speed of the hardware.
type ReadingSealer interface {
	// SealShipperReadings adds to sh (after the caller's Reset), in seal
	// order, each reading ShipperReadings(ctx, shipper, from, to,
	// through) would return. It returns false when the readings could not
	// be added in seal order (SealHasher.Add said so): the caller then
	// seals ShipperReadings's readings instead.
	SealShipperReadings(ctx context.Context, sh *SealHasher, shipper string, from, to time.Time, through uint64) (bool, error)
}

// sealsIdentical reports whether a and b hold the same figures, so that
// their JSON encodings are certainly the same; false leaves the question
// to the encodings (times in different zones, say).
func sealsIdentical(a, b *LegSeal) bool {
	f := func(x, y *float64) bool {
		return x == nil && y == nil || x != nil && y != nil && math.Float64bits(*x) == math.Float64bits(*y)
	}
	return a.Encoding == b.Encoding && a.Profile == b.Profile && f(a.LimitMinC, b.LimitMinC) && f(a.LimitMaxC, b.LimitMaxC) &&
		a.Count == b.Count && a.FirstDeviceTime == b.FirstDeviceTime && a.LastDeviceTime == b.LastDeviceTime &&
		f(a.MinC, b.MinC) && f(a.MaxC, b.MaxC) && a.TimeOutOfRange == b.TimeOutOfRange && f(a.MKTC, b.MKTC) &&
		a.MKTMethod == b.MKTMethod && a.MKTMaxGap == b.MKTMaxGap && a.ReadingsHash == b.ReadingsHash
}

// sealWork is a verification worker's memory, reused from one leg to the
// next: the stored receive record, the seal's hasher, and the leg's
// readings when they are read as Readings.
type sealWork struct {
	record   []byte
	hasher   SealHasher
	readings []Reading
}

// streamSeal recomputes rs's seal under p (limits and name already
// taken from the seal) by streaming the stored readings into a
// SealHasher, when the reading store can (ReadingSealer). ok is false
// when it cannot: the caller seals the readings themselves.
func (s *Service) streamSeal(ctx context.Context, rs ReceiveSeal, p Profile, method string, w *sealWork) (got LegSeal, ok bool, err error) {
	rsl, can := s.tele.Readings.(ReadingSealer)
	if !can {
		return LegSeal{}, false, nil
	}
	if w == nil {
		w = &sealWork{}
	}
	sh := &w.hasher
	sh.Reset(p, method, rs.Seal.MKTMaxGap)
	if ok, err := rsl.SealShipperReadings(ctx, sh, rs.Shipper, rs.From, rs.To, rs.Watermark); err != nil || !ok {
		return LegSeal{}, false, err
	}
	got, ok = sh.Seal(p.MKT)
	if ok && rs.Seal.MKTC != nil && got.MKTC == nil {
		got, ok = sh.Seal(true)
	}
	return got, ok, nil
}

// StoredRecordReader is a Store that hands out a record's stored bytes
// (its canonical encoding) and stored hash as they are, for a reader that
// needs one member of many records and checks the hash itself.
type StoredRecordReader interface {
	// AppendStoredRecord appends the stored canonical encoding of the
	// record at log position seq to dst and returns it with the hash
	// stored beside it, unchecked. ErrNotFound: no record there.
	AppendStoredRecord(ctx context.Context, dst []byte, seq uint64) ([]byte, Hash, error)
}

var (
	stepReceive    = []byte(StepReceive)
	errSealScanned = errors.New("seal scanned")
)

// readReceiveSeal reads the telemetry seal of the receive record at log
// position seq from its stored bytes, without decoding the record: the
// bytes must hash to want and say they are record seq (ReadLinks), the
// step must be a receive, and its data hold only "seal_intact" (a
// boolean or null) and "telemetry" (an object), each at most once and
// spelt exactly so: the members decoding the whole record reads into
// ReceiveData, read the same way. ok is false for anything else (another
// step, no seal, a stored record that is not sound), which the caller
// leaves to the whole record's decoding, with its errors.
func readReceiveSeal(stored []byte, want Hash, seq uint64) (COI, ReceiveSeal, bool) {
	l, err := ReadLinks(stored, want)
	if err != nil || l.Seq != seq || strings.IndexByte(string(l.Chain), '\\') >= 0 || !bytes.Equal(readStep(stored), stepReceive) {
		return "", ReceiveSeal{}, false
	}
	var data []byte
	datas := 0
	err = scanTopLevel(stored, func(key, val []byte) error {
		switch {
		case string(key) == "data":
			data = val
			datas++
		case bytes.IndexByte(key, '\\') >= 0 || bytes.EqualFold(key, []byte("data")):
			return errSealScanned // a key decoding might read as "data"
		}
		return nil
	})
	if err != nil || datas != 1 {
		return "", ReceiveSeal{}, false
	}
	var tele []byte
	var seen [2]int
	err = scanTopLevel(data, func(key, val []byte) error {
		switch string(key) {
		case "seal_intact":
			seen[0]++
			if v := string(val); v != "true" && v != "false" && v != "null" {
				return errSealScanned
			}
		case "telemetry":
			seen[1]++
			tele = val
		default:
			return errSealScanned
		}
		return nil
	})
	if err != nil || seen[0] > 1 || seen[1] != 1 || len(tele) == 0 || tele[0] != '{' {
		return "", ReceiveSeal{}, false
	}
	rs, plain := parseReceiveSeal(tele)
	if !plain {
		rs = ReceiveSeal{}
		if json.Unmarshal(tele, &rs) != nil {
			return "", ReceiveSeal{}, false
		}
	}
	return l.Chain, rs, true
}
