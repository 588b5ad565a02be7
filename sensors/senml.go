package sensors

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/coid-project/coid/custody"
)

// senmlRecord lists the SenML labels of RFC 8428 section 4 that coid reads,
// with their JSON types (TestKnownMembers keeps knownMembers in step with
// its tags). The decoder scans records itself rather than through
// encoding/json, which would match labels without regard to case: a label
// of another case is, like any label coid does not know, ignored.
type senmlRecord struct {
	BaseName    *string  `json:"bn"`
	BaseTime    *float64 `json:"bt"`
	BaseUnit    *string  `json:"bu"`
	BaseValue   *float64 `json:"bv"`
	BaseSum     *float64 `json:"bs"`
	BaseVersion *float64 `json:"bver"`
	Name        *string  `json:"n"`
	Unit        *string  `json:"u"`
	Value       *float64 `json:"v"`
	StringValue *string  `json:"vs"`
	BoolValue   *bool    `json:"vb"`
	DataValue   *string  `json:"vd"`
	Sum         *float64 `json:"s"`
	Time        *float64 `json:"t"`
	UpdateTime  *float64 `json:"ut"`
}

// SenML URN form of a shipper's base name: "urn:dev:shipper:{id}:".
const senmlURNPrefix = "urn:dev:shipper:"

// senmlRelativeLimit: SenML times below 2^28 are relative to now.
const senmlRelativeLimit = 1 << 28

// senmlMaxTime bounds absolute SenML times (about year 5138) so that the
// conversion to time.Time cannot overflow.
const senmlMaxTime = 1e11

// senmlMaxVersion is the highest SenML version (bver) coid understands.
const senmlMaxVersion = 10

// Skipped is one SenML record that Decode left out of the readings, and
// why: RFC 8428 lets a receiver use the records it understands, so a
// record coid does not use (a string, boolean or data value where coid
// reads none, a name that is not one of coid's quantities, a sum, a unit
// coid cannot convert, a ratio outside 0..1) is skipped rather than the
// whole pack refused.
type Skipped struct {
	// Record is the record's index in the pack, from 0.
	Record int
	// Name is the record's full name (bn + n).
	Name string
	// Reason says why coid did not use it.
	Reason string
}

// String describes s for logs.
func (s Skipped) String() string {
	return fmt.Sprintf("senml record %d (%q): %s", s.Record, s.Name, s.Reason)
}

// unitConv converts a value in a unit to the quantity's unit; ok = false
// (with a reason) refuses the record.
type unitConv func(v float64, lit []byte, hasBase bool) (float64, string, bool)

// quantity describes one SenML quantity coid understands.
type quantity struct {
	name    string
	units   map[string]unitConv // accepted units; "" means no unit
	boolean bool                // value in vb rather than v
	set     func(r *custody.Reading, v float64, b bool) bool
}

// same is the conversion of a unit coid stores as it is.
func same(v float64, _ []byte, _ bool) (float64, string, bool) { return v, "", true }

// round9 rounds a converted value to 1e-9, so that a conversion gives the
// decimal a person would write (90 K is -183.15 C, not -183.14999999999998).
func round9(v float64) float64 { return math.Round(v*1e9) / 1e9 }

// kelvin converts K to Cel.
func kelvin(v float64, _ []byte, _ bool) (float64, string, bool) {
	return round9(v + custody.AbsoluteZeroC), "", true
}

// radians converts rad to deg.
func radians(v float64, _ []byte, _ bool) (float64, string, bool) {
	return round9(v * 180 / math.Pi), "", true
}

// ratio converts a ratio (RFC 8428 units "/" and "%": 0 to 1, not a
// percentage) to a percentage 0 to 100. The number as written is scaled by
// 100 in decimal (0.71 is exactly 71), so that EncodeSenML's ratios read
// back to the same percentages; with a base value (bv) the sum is scaled in
// binary and rounded to 1e-9.
func ratio(v float64, lit []byte, hasBase bool) (float64, string, bool) {
	if !(v >= 0 && v <= 1) {
		return 0, fmt.Sprintf("ratio %v outside 0..1: the units %q and %q are ratios (RFC 8428 section 12.1, note 2; 0.5 is 50 %%), a battery percentage is %q", v, "/", "%", "%EL"), false
	}
	if hasBase || lit == nil {
		return round9(v * 100), "", true
	}
	p, err := strconv.ParseFloat(shiftDecimal(lit, 2), 64)
	if err != nil {
		return round9(v * 100), "", true
	}
	return p, "", true
}

var quantities = map[string]quantity{
	"temp": {name: "temp", units: map[string]unitConv{"Cel": same, "K": kelvin}, set: func(r *custody.Reading, v float64, _ bool) bool {
		return setFloat(&r.TempC, v)
	}},
	"tilt": {name: "tilt", units: map[string]unitConv{"deg": same, "rad": radians}, set: func(r *custody.Reading, v float64, _ bool) bool {
		return setFloat(&r.TiltDeg, v)
	}},
	"lid": {name: "lid", units: map[string]unitConv{"": same}, boolean: true, set: func(r *custody.Reading, _ float64, b bool) bool {
		return setBool(&r.LidOpen, b)
	}},
	"light": {name: "light", units: map[string]unitConv{"": same}, boolean: true, set: func(r *custody.Reading, _ float64, b bool) bool {
		return setBool(&r.Light, b)
	}},
	"battery": {name: "battery", units: map[string]unitConv{"%EL": same, "%": ratio, "/": ratio}, set: func(r *custody.Reading, v float64, _ bool) bool {
		return setFloat(&r.BatteryPct, v)
	}},
	"ln2": {name: "ln2", units: map[string]unitConv{"/": ratio, "%": ratio}, set: func(r *custody.Reading, v float64, _ bool) bool {
		return setFloat(&r.LN2Pct, v)
	}},
	"lat": {name: "lat", units: map[string]unitConv{"lat": same}, set: func(r *custody.Reading, v float64, _ bool) bool {
		return setFloat(&r.Lat, v)
	}},
	"lon": {name: "lon", units: map[string]unitConv{"lon": same}, set: func(r *custody.Reading, v float64, _ bool) bool {
		return setFloat(&r.Lon, v)
	}},
	"seq": {name: "seq", units: map[string]unitConv{"count": same, "": same}, set: func(r *custody.Reading, v float64, _ bool) bool {
		if r.HasSeq {
			return r.Seq == uint64(v)
		}
		r.Seq, r.HasSeq = uint64(v), true
		return true
	}},
}

// setFloat sets *p to v unless it is already set; setting it again to the
// same value is fine (the same record repeated), to another is not.
func setFloat(p **float64, v float64) bool {
	if *p != nil {
		return **p == v
	}
	*p = &v
	return true
}

func setBool(p **bool, v bool) bool {
	if *p != nil {
		return **p == v
	}
	*p = &v
	return true
}

// splitSenMLName splits a full SenML name into shipper and quantity.
func splitSenMLName(full []byte) (shipper, qty []byte, ok bool) {
	if rest, urn := bytes.CutPrefix(full, []byte(senmlURNPrefix)); urn {
		shipper, qty, ok = bytes.Cut(rest, []byte(":"))
	} else {
		shipper, qty, ok = bytes.Cut(full, []byte("/"))
	}
	return shipper, qty, ok && len(shipper) > 0 && len(qty) > 0
}

// senmlTime resolves bt+t to an absolute time, to the microsecond. RFC 8428
// reads a time below 2^28 as relative to the receiver's "now"; coid refuses
// it, and a record without any time (which RFC 8428 reads as "now"): a
// reading identified by its device time must carry that time itself, or a
// QoS 1 redelivery would be stored again at another time and a logger's
// backlog would be squeezed into the moment it was received. hasTime reports
// whether bt or t was given.
func senmlTime(tt float64, hasTime bool) (time.Time, error) {
	switch {
	case !hasTime:
		return time.Time{}, fmt.Errorf("no time (bt or t): a reading must carry its absolute device time: %w", custody.ErrInvalid)
	case tt < senmlRelativeLimit:
		return time.Time{}, fmt.Errorf("time %v is relative to the receive time (below 2^28, RFC 8428 section 4.5.3): a reading must carry its absolute device time, Unix seconds in bt+t: %w", tt, custody.ErrInvalid)
	case tt > senmlMaxTime:
		return time.Time{}, fmt.Errorf("time %v out of range: %w", tt, custody.ErrInvalid)
	}
	sec := math.Floor(tt)
	us := math.Round((tt - sec) * 1e6)
	return time.Unix(int64(sec), int64(us)*1000).UTC(), nil
}

// Label bits of a scanned record.
const (
	lBN = 1 << iota
	lBT
	lBU
	lBV
	lBS
	lBVer
	lN
	lU
	lV
	lVS
	lVB
	lVD
	lS
	lT
	lUT
)

// senmlRec is one scanned record: the labels present (bits) and their
// values.
type senmlRec struct {
	has                uint16
	bn, bu             string
	n, u               []byte // slices of the input unless escaped
	bt, bv, bver, v, t float64
	vlit               []byte // v as written
	vb                 bool
}

// senmlState carries the base fields and the readings built so far.
type senmlState struct {
	topicShipper string
	received     time.Time
	bn           string
	bu           []byte
	nameBuf      []byte // the current record's full name
	bt, bv       float64
	hasBT, hasBV bool // a bt, a bv was given
	bver         float64
	rs           []custody.Reading
	byTime       map[int64]int // UnixNano -> index in rs
	firstRecord  []int         // index in rs -> first record number
	skipped      []Skipped
}

// decodeSenML decodes a SenML pack (a JSON array, already known to be
// well-formed) with a scanner of its own.
func decodeSenML(topicShipper string, body []byte, received time.Time) ([]custody.Reading, []Skipped, error) {
	st := &senmlState{topicShipper: topicShipper, received: received, byTime: map[int64]int{}}
	s := fastScanner{b: body}
	s.ws()
	s.eat('[')
	for i := 0; ; i++ {
		s.ws()
		if s.eat(']') {
			break
		}
		if i > 0 {
			s.eat(',')
			s.ws()
		}
		if i >= MaxSenMLRecords {
			return nil, nil, fmt.Errorf("more than %d senml records in one payload: %w", MaxSenMLRecords, custody.ErrInvalid)
		}
		var rec senmlRec
		if err := s.senmlRecord(&rec); err != nil {
			return nil, nil, fmt.Errorf("senml record %d: %w", i, err)
		}
		if err := st.record(i, &rec); err != nil {
			return nil, nil, fmt.Errorf("senml record %d: %w", i, err)
		}
	}
	if len(st.rs) == 0 {
		why := ""
		for k, sk := range st.skipped {
			if k == 3 {
				why += fmt.Sprintf("; and %d more", len(st.skipped)-k)
				break
			}
			why += "; " + sk.String()
		}
		return nil, nil, fmt.Errorf("senml pack has no record coid uses%s: %w", why, custody.ErrInvalid)
	}
	for j := range st.rs {
		if err := st.rs[j].Validate(received); err != nil {
			return nil, nil, fmt.Errorf("senml reading at %s (from record %d): %w",
				st.rs[j].DeviceTime.Format(time.RFC3339Nano), st.firstRecord[j], err)
		}
	}
	return st.rs, st.skipped, nil
}

// senmlRecord scans one record of a well-formed pack into rec. A label
// coid does not know is ignored (RFC 8428 section 4.4) unless its name ends
// in "_", which marks an extension a receiver must understand: that is an
// error. A known label of the wrong JSON type, or given twice, is an error.
func (s *fastScanner) senmlRecord(rec *senmlRec) error {
	if !s.eat('{') {
		return fmt.Errorf("not a JSON object: %w", custody.ErrInvalid)
	}
	s.ws()
	if s.eat('}') {
		return nil
	}
	for {
		s.ws()
		name, err := s.jsonBytes()
		if err != nil {
			return err
		}
		s.ws()
		s.eat(':')
		s.ws()
		bit, kind := senmlLabel(string(name))
		if bit == 0 {
			if bytes.HasSuffix(name, []byte("_")) {
				return fmt.Errorf("label %q must be understood (its name ends in \"_\", RFC 8428 section 4.4) and coid does not know it: %w", name, custody.ErrInvalid)
			}
			s.skipValue()
		} else {
			if rec.has&bit != 0 {
				return fmt.Errorf("label %q appears twice in one record: %w", name, custody.ErrInvalid)
			}
			rec.has |= bit
			if err := s.senmlValue(rec, name, bit, kind); err != nil {
				return err
			}
		}
		s.ws()
		if s.eat(',') {
			continue
		}
		if s.eat('}') {
			return nil
		}
		return fmt.Errorf("malformed record: %w", custody.ErrInvalid)
	}
}

// Label kinds.
const (
	kString = iota
	kNumber
	kBool
)

// senmlLabel returns the bit and kind of a label, or bit 0 for a label
// coid does not know.
func senmlLabel(name string) (uint16, int) {
	switch name {
	case "bn":
		return lBN, kString
	case "bt":
		return lBT, kNumber
	case "bu":
		return lBU, kString
	case "bv":
		return lBV, kNumber
	case "bs":
		return lBS, kNumber
	case "bver":
		return lBVer, kNumber
	case "n":
		return lN, kString
	case "u":
		return lU, kString
	case "v":
		return lV, kNumber
	case "vs":
		return lVS, kString
	case "vb":
		return lVB, kBool
	case "vd":
		return lVD, kString
	case "s":
		return lS, kNumber
	case "t":
		return lT, kNumber
	case "ut":
		return lUT, kNumber
	}
	return 0, 0
}

// senmlValue scans the value of a known label.
func (s *fastScanner) senmlValue(rec *senmlRec, name []byte, bit uint16, kind int) error {
	switch kind {
	case kString:
		v, err := s.jsonBytes()
		if err != nil {
			return fmt.Errorf("label %q must be a string: %w", name, custody.ErrInvalid)
		}
		switch bit {
		case lBN:
			rec.bn = string(v)
		case lBU:
			rec.bu = string(v)
		case lN:
			rec.n = v
		case lU:
			rec.u = v
		}
	case kBool:
		v, ok := s.boolean()
		if !ok {
			return fmt.Errorf("label %q must be true or false: %w", name, custody.ErrInvalid)
		}
		rec.vb = v
	default:
		lit, _, ok := s.number()
		if !ok {
			return fmt.Errorf("label %q must be a number: %w", name, custody.ErrInvalid)
		}
		f, err := strconv.ParseFloat(string(lit), 64)
		if err != nil {
			return fmt.Errorf("label %q: number %s out of range: %w", name, lit, custody.ErrInvalid)
		}
		switch bit {
		case lBT:
			rec.bt = f
		case lBV:
			rec.bv = f
		case lBVer:
			rec.bver = f
		case lV:
			rec.v, rec.vlit = f, lit
		case lT:
			rec.t = f
		}
	}
	return nil
}

// jsonString scans a JSON string and returns it unescaped.
func (s *fastScanner) jsonString() (string, error) {
	b, err := s.jsonBytes()
	return string(b), err
}

// jsonBytes scans a JSON string and returns it unescaped; without escapes,
// it is a slice of the input (no allocation).
func (s *fastScanner) jsonBytes() ([]byte, error) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, fmt.Errorf("expected a string: %w", custody.ErrInvalid)
	}
	end, escaped := custody.ScanJSONString(s.b, s.i)
	if end < 0 {
		return nil, fmt.Errorf("unterminated string: %w", custody.ErrInvalid)
	}
	raw := s.b[s.i:end]
	s.i = end
	if !escaped {
		return raw[1 : len(raw)-1], nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, invalid(err)
	}
	return []byte(v), nil
}

// skipValue skips one well-formed JSON value.
func (s *fastScanner) skipValue() {
	depth := 0
	for s.i < len(s.b) {
		switch c := s.b[s.i]; c {
		case '"':
			end, _ := custody.ScanJSONString(s.b, s.i)
			if end < 0 {
				s.i = len(s.b)
				return
			}
			s.i = end
			if depth == 0 {
				return
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return
			}
			depth--
			if depth == 0 {
				s.i++
				return
			}
		case ',':
			if depth == 0 {
				return
			}
		case ' ', '\t', '\r', '\n':
			if depth == 0 {
				return
			}
		}
		s.i++
	}
}

// skip records that record i is not used, and why.
func (st *senmlState) skip(i int, name []byte, format string, args ...any) {
	st.skipped = append(st.skipped, Skipped{Record: i, Name: string(name), Reason: fmt.Sprintf(format, args...)})
}

// record applies one SenML record: its base fields apply to it and to the
// records after it (RFC 8428 section 4.5); its own fields resolve against
// them. A record coid cannot use is skipped; what makes the pack
// ambiguous or unreadable is an error.
func (st *senmlState) record(i int, rec *senmlRec) error {
	if rec.has&lBVer != 0 {
		if !(rec.bver >= 1 && rec.bver <= senmlMaxVersion) {
			return fmt.Errorf("senml version %v not supported (max %d): %w", rec.bver, senmlMaxVersion, custody.ErrInvalid)
		}
		if st.bver != 0 && rec.bver != st.bver {
			return fmt.Errorf("senml version %v differs from %v earlier in the pack (RFC 8428 section 4.4): %w", rec.bver, st.bver, custody.ErrInvalid)
		}
		st.bver = rec.bver
	}
	if rec.has&lBN != 0 {
		st.bn = rec.bn
	}
	if rec.has&lBT != 0 {
		st.bt, st.hasBT = rec.bt, true
	}
	if rec.has&lBU != 0 {
		st.bu = []byte(rec.bu)
	}
	if rec.has&lBV != 0 {
		st.bv, st.hasBV = rec.bv, true
	}
	values := 0
	for _, b := range []uint16{lV, lVS, lVB, lVD} {
		if rec.has&b != 0 {
			values++
		}
	}
	if values > 1 {
		return fmt.Errorf("record has more than one value (v, vs, vb, vd): %w", custody.ErrInvalid)
	}
	st.nameBuf = append(append(st.nameBuf[:0], st.bn...), rec.n...)
	full := st.nameBuf
	if values == 0 {
		switch {
		case rec.has&lS != 0:
			st.skip(i, full, "a sum (s) without a value: coid stores values, not sums")
			return nil
		case rec.has&(lN|lU|lT) != 0:
			return fmt.Errorf("record %q has no value (v, vs, vb, vd) and no sum (s): %w", full, custody.ErrInvalid)
		}
		return nil // a record of base fields only
	}
	shipperB, qnameB, ok := splitSenMLName(full)
	if !ok {
		st.skip(i, full, "the name is neither {shipper}/{quantity} nor %s{shipper}:{quantity}", senmlURNPrefix)
		return nil
	}
	if string(shipperB) != st.topicShipper {
		return fmt.Errorf("shipper %q does not match topic shipper %q: %w", shipperB, st.topicShipper, custody.ErrInvalid)
	}
	q, ok := quantities[string(qnameB)]
	qname := q.name
	if !ok {
		qname = string(qnameB)
		st.skip(i, full, "%q is not a quantity coid records", qname)
		return nil
	}
	switch {
	case rec.has&(lVS|lVD) != 0:
		st.skip(i, full, "a string or data value (vs, vd): %s takes a %s", qname, valueLabel(q))
		return nil
	case q.boolean && rec.has&lVB == 0:
		st.skip(i, full, "a numeric value (v): %s takes a boolean (vb)", qname)
		return nil
	case !q.boolean && rec.has&lV == 0:
		st.skip(i, full, "a boolean value (vb): %s takes a number (v)", qname)
		return nil
	}
	var v float64
	var unit []byte
	if rec.has&lU != 0 {
		unit = rec.u
	} else if !q.boolean {
		unit = st.bu
	}
	conv, ok := q.units[string(unit)]
	if !ok {
		st.skip(i, full, "unit %s: coid cannot convert it to what %s records (accepted: %s)", unitName(string(unit)), qname, unitList(q))
		return nil
	}
	if !q.boolean {
		v = st.bv + rec.v
		if math.IsInf(v, 0) {
			return fmt.Errorf("%s value overflows: %w", qname, custody.ErrInvalid)
		}
		var why string
		if v, why, ok = conv(v, rec.vlit, st.hasBV && st.bv != 0); !ok {
			st.skip(i, full, "%s", why)
			return nil
		}
	}
	if qname == "seq" && !(v >= 0 && v <= custody.MaxSeq && v == math.Trunc(v)) {
		return fmt.Errorf("seq %v is not an integer from 0 to %d: %w", v, uint64(custody.MaxSeq), custody.ErrInvalid)
	}
	tt := st.bt
	if rec.has&lT != 0 {
		tt += rec.t
	}
	t, err := senmlTime(tt, st.hasBT || rec.has&lT != 0)
	if err != nil {
		return err
	}
	key := t.UnixNano()
	j, ok := st.byTime[key]
	if !ok {
		if len(st.rs) >= MaxBatchReadings {
			return fmt.Errorf("more than %d readings in one payload: %w", MaxBatchReadings, custody.ErrInvalid)
		}
		j = len(st.rs)
		st.byTime[key] = j
		st.rs = append(st.rs, custody.Reading{Shipper: st.topicShipper, DeviceTime: t, ReceivedTime: st.received})
		st.firstRecord = append(st.firstRecord, i)
	}
	if !q.set(&st.rs[j], v, rec.vb) {
		return fmt.Errorf("two different %s values at %s: %w", qname, t.Format(time.RFC3339Nano), custody.ErrInvalid)
	}
	return nil
}

func valueLabel(q quantity) string {
	if q.boolean {
		return "boolean (vb)"
	}
	return "number (v)"
}

func unitName(u string) string {
	if u == "" {
		return "none"
	}
	return strconv.Quote(u)
}

// senmlUnitOrder lists units in the order error messages name them.
var senmlUnitOrder = []string{"Cel", "K", "deg", "rad", "%EL", "/", "%", "lat", "lon", "count", ""}

func unitList(q quantity) string {
	var s []string
	for _, u := range senmlUnitOrder {
		if _, ok := q.units[u]; ok {
			s = append(s, unitName(u))
		}
	}
	return strings.Join(s, " or ")
}

// shiftDecimal returns the JSON number lit multiplied by 10^by, written
// with an exponent: the digits are kept, only the exponent changes.
func shiftDecimal(lit []byte, by int) string {
	mant, exp := string(lit), 0
	if k := strings.IndexAny(mant, "eE"); k >= 0 {
		e, err := strconv.Atoi(strings.TrimPrefix(mant[k+1:], "+"))
		if err != nil {
			return "x" // an exponent out of range: not a number
		}
		mant, exp = mant[:k], e
	}
	return mant + "e" + strconv.Itoa(exp+by)
}

// appendRatio appends pct/100 as a JSON number, shifting the decimal point
// of pct's shortest form so that ratio reads it back to pct exactly.
func appendRatio(b []byte, pct float64) []byte {
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], pct, 'e', -1, 64) // d.ddde±xx
	k := strings.IndexByte(string(e), 'e')
	exp, _ := strconv.Atoi(string(e[k+1:]))
	exp -= 2
	digits := make([]byte, 0, k)
	neg := false
	for _, c := range e[:k] {
		switch c {
		case '-':
			neg = true
		case '.':
		default:
			digits = append(digits, c)
		}
	}
	if neg {
		b = append(b, '-')
	}
	// value = d1.d2..dn x 10^exp
	switch {
	case exp >= 0 && exp < 21:
		if len(digits) <= exp+1 {
			b = append(b, digits...)
			for range exp + 1 - len(digits) {
				b = append(b, '0')
			}
			return b
		}
		b = append(b, digits[:exp+1]...)
		b = append(b, '.')
		return append(b, digits[exp+1:]...)
	case exp < 0 && exp >= -7:
		b = append(b, "0."...)
		for range -exp - 1 {
			b = append(b, '0')
		}
		return append(b, digits...)
	}
	b = append(b, digits[0])
	if len(digits) > 1 {
		b = append(b, '.')
		b = append(b, digits[1:]...)
	}
	b = append(b, 'e')
	return strconv.AppendInt(b, int64(exp), 10)
}

// EncodeSenML encodes readings as a SenML JSON pack that Decode reads back
// to the same readings (ReceivedTime aside): per reading, one record per
// measurement, the first carrying the reading's absolute time as bt (and a
// base name "{shipper}/" whenever the shipper changes), in the order seq,
// temp, tilt, lid, light, battery, ln2, lat, lon. Units are those RFC 8428
// registers: the battery as "%EL" (a percentage), the liquid-nitrogen level
// as the ratio "/" (71 % is written 0.71; "%" would be a ratio too, never a
// percentage). Times are written to the
// microsecond, so finer device times are rounded. A reading with neither a
// measurement nor a seq has no SenML form; it, a seq above custody.MaxSeq
// and no readings at all are errors wrapping custody.ErrInvalid.
func EncodeSenML(readings []custody.Reading) ([]byte, error) {
	if len(readings) == 0 {
		return nil, fmt.Errorf("encode senml: no readings: %w", custody.ErrInvalid)
	}
	b := make([]byte, 0, 64+len(readings)*200)
	b = append(b, '[')
	bn := ""
	for i := range readings {
		r := &readings[i]
		if r.HasSeq && r.Seq > custody.MaxSeq {
			return nil, fmt.Errorf("encode senml: reading %d: seq %d above %d: %w", i, r.Seq, uint64(custody.MaxSeq), custody.ErrInvalid)
		}
		first := true
		rec := func(name, unit string) {
			if len(b) > 1 {
				b = append(b, ',')
			}
			b = append(b, '{')
			if first {
				if r.Shipper+"/" != bn {
					bn = r.Shipper + "/"
					b = append(b, `"bn":`...)
					b = strconv.AppendQuote(b, bn)
					b = append(b, ',')
				}
				b = append(b, `"bt":`...)
				b = appendSenMLTime(b, r.DeviceTime)
				b = append(b, ',')
				first = false
			}
			b = append(b, `"n":"`...)
			b = append(b, name...)
			b = append(b, '"')
			if unit != "" {
				b = append(b, `,"u":"`...)
				b = append(b, unit...)
				b = append(b, '"')
			}
		}
		num := func(name, unit string, v *float64) {
			if v == nil {
				return
			}
			rec(name, unit)
			b = append(b, `,"v":`...)
			b = custody.AppendJCSNumber(b, *v)
			b = append(b, '}')
		}
		boolean := func(name string, v *bool) {
			if v == nil {
				return
			}
			rec(name, "")
			b = append(b, `,"vb":`...)
			b = strconv.AppendBool(b, *v)
			b = append(b, '}')
		}
		if r.HasSeq {
			seq := float64(r.Seq)
			num("seq", "", &seq)
		}
		num("temp", "Cel", r.TempC)
		num("tilt", "deg", r.TiltDeg)
		boolean("lid", r.LidOpen)
		boolean("light", r.Light)
		num("battery", "%EL", r.BatteryPct)
		if r.LN2Pct != nil { // a ratio: RFC 8428 has no unit for a percentage of a fill level
			rec("ln2", "/")
			b = append(b, `,"v":`...)
			b = appendRatio(b, *r.LN2Pct)
			b = append(b, '}')
		}
		num("lat", "lat", r.Lat)
		num("lon", "lon", r.Lon)
		if first {
			return nil, fmt.Errorf("encode senml: reading %d has neither a measurement nor a seq: %w", i, custody.ErrInvalid)
		}
	}
	return append(b, ']'), nil
}

// appendSenMLTime appends t as Unix seconds with microseconds.
func appendSenMLTime(b []byte, t time.Time) []byte {
	t = t.Round(time.Microsecond)
	s := float64(t.Unix()) + float64(t.Nanosecond()/1000)/1e6
	return custody.AppendJCSNumber(b, s)
}
