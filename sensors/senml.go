package sensors

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/coid-project/coid/custody"
)

// senmlRecord is one SenML record (RFC 8428 section 4). Unknown labels are
// rejected by the decoder.
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

// quantity describes one SenML quantity coid understands.
type quantity struct {
	units   []string // accepted units; "" means no unit
	boolean bool     // value in vb rather than v
	set     func(r *custody.Reading, v float64, b bool) bool
}

var quantities = map[string]quantity{
	"temp": {units: []string{"Cel"}, set: func(r *custody.Reading, v float64, _ bool) bool {
		return setFloat(&r.TempC, v)
	}},
	"tilt": {units: []string{"deg"}, set: func(r *custody.Reading, v float64, _ bool) bool {
		return setFloat(&r.TiltDeg, v)
	}},
	"lid": {units: []string{""}, boolean: true, set: func(r *custody.Reading, _ float64, b bool) bool {
		return setBool(&r.LidOpen, b)
	}},
	"light": {units: []string{""}, boolean: true, set: func(r *custody.Reading, _ float64, b bool) bool {
		return setBool(&r.Light, b)
	}},
	"battery": {units: []string{"%EL", "%"}, set: func(r *custody.Reading, v float64, _ bool) bool {
		return setFloat(&r.BatteryPct, v)
	}},
	"ln2": {units: []string{"%"}, set: func(r *custody.Reading, v float64, _ bool) bool {
		return setFloat(&r.LN2Pct, v)
	}},
	"lat": {units: []string{"lat"}, set: func(r *custody.Reading, v float64, _ bool) bool {
		return setFloat(&r.Lat, v)
	}},
	"lon": {units: []string{"lon"}, set: func(r *custody.Reading, v float64, _ bool) bool {
		return setFloat(&r.Lon, v)
	}},
	"seq": {units: []string{"count", ""}, set: func(r *custody.Reading, v float64, _ bool) bool {
		if r.HasSeq {
			return false
		}
		r.Seq, r.HasSeq = uint64(v), true
		return true
	}},
}

// setFloat sets *p to v unless it is already set (a duplicate).
func setFloat(p **float64, v float64) bool {
	if *p != nil {
		return false
	}
	*p = &v
	return true
}

func setBool(p **bool, v bool) bool {
	if *p != nil {
		return false
	}
	*p = &v
	return true
}

// splitSenMLName splits a full SenML name into shipper and quantity.
func splitSenMLName(full string) (shipper, qty string, ok bool) {
	if rest, urn := strings.CutPrefix(full, senmlURNPrefix); urn {
		shipper, qty, ok = strings.Cut(rest, ":")
	} else {
		shipper, qty, ok = strings.Cut(full, "/")
	}
	return shipper, qty, ok && shipper != "" && qty != ""
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

// senmlState carries the base fields and the readings built so far.
type senmlState struct {
	topicShipper string
	received     time.Time
	bn, bu       string
	bt, bv       float64
	hasBT        bool // a bt was given
	rs           []custody.Reading
	byTime       map[int64]int // UnixNano -> index in rs
	firstRecord  []int         // index in rs -> first record number
}

func decodeSenML(topicShipper string, first json.RawMessage, dec *json.Decoder, received time.Time) ([]custody.Reading, error) {
	st := &senmlState{topicShipper: topicShipper, received: received, byTime: map[int64]int{}}
	var rec senmlRecord
	fd := newDecoder(first)
	for i := 0; ; i++ {
		rec = senmlRecord{}
		if i == 0 {
			if err := fd.Decode(&rec); err != nil {
				return nil, fmt.Errorf("senml record 0: %w", invalid(err))
			}
		} else {
			if !dec.More() {
				break
			}
			if i >= MaxSenMLRecords {
				return nil, fmt.Errorf("more than %d senml records in one payload: %w", MaxSenMLRecords, custody.ErrInvalid)
			}
			if err := dec.Decode(&rec); err != nil {
				return nil, fmt.Errorf("senml record %d: %w", i, invalid(err))
			}
		}
		if err := st.record(i, &rec); err != nil {
			return nil, fmt.Errorf("senml record %d: %w", i, err)
		}
	}
	if len(st.rs) == 0 {
		return nil, fmt.Errorf("senml pack has no record with a value: %w", custody.ErrInvalid)
	}
	for j := range st.rs {
		if err := st.rs[j].Validate(received); err != nil {
			return nil, fmt.Errorf("senml reading at %s (from record %d): %w",
				st.rs[j].DeviceTime.Format(time.RFC3339Nano), st.firstRecord[j], err)
		}
	}
	return st.rs, nil
}

// record applies one SenML record.
func (st *senmlState) record(i int, rec *senmlRecord) error {
	switch {
	case rec.StringValue != nil, rec.DataValue != nil:
		return fmt.Errorf("string and data values (vs, vd) are not telemetry coid understands: %w", custody.ErrInvalid)
	case rec.Sum != nil, rec.BaseSum != nil:
		return fmt.Errorf("sums (s, bs) are not supported: %w", custody.ErrInvalid)
	case rec.BaseVersion != nil && !(*rec.BaseVersion >= 1 && *rec.BaseVersion <= 10):
		return fmt.Errorf("senml version %v not supported (max 10): %w", *rec.BaseVersion, custody.ErrInvalid)
	}
	if rec.BaseName != nil {
		st.bn = *rec.BaseName
	}
	if rec.BaseTime != nil {
		st.bt, st.hasBT = *rec.BaseTime, true
	}
	if rec.BaseUnit != nil {
		st.bu = *rec.BaseUnit
	}
	if rec.BaseValue != nil {
		st.bv = *rec.BaseValue
	}
	if rec.Value == nil && rec.BoolValue == nil {
		if rec.Name != nil || rec.Unit != nil || rec.Time != nil {
			return fmt.Errorf("record has no value (v or vb): %w", custody.ErrInvalid)
		}
		return nil // a record of base fields only
	}
	if rec.Value != nil && rec.BoolValue != nil {
		return fmt.Errorf("record has both v and vb: %w", custody.ErrInvalid)
	}
	full := st.bn
	if rec.Name != nil {
		full += *rec.Name
	}
	shipper, qname, ok := splitSenMLName(full)
	if !ok {
		return fmt.Errorf("name %q is neither {shipper}/{quantity} nor %s{shipper}:{quantity}: %w", full, senmlURNPrefix, custody.ErrInvalid)
	}
	if shipper != st.topicShipper {
		return fmt.Errorf("shipper %q does not match topic shipper %q: %w", shipper, st.topicShipper, custody.ErrInvalid)
	}
	q, ok := quantities[qname]
	if !ok {
		return fmt.Errorf("unknown quantity %q in name %q: %w", qname, full, custody.ErrInvalid)
	}
	var v float64
	if q.boolean {
		if rec.BoolValue == nil {
			return fmt.Errorf("%s needs a boolean value (vb): %w", qname, custody.ErrInvalid)
		}
	} else {
		if rec.Value == nil {
			return fmt.Errorf("%s needs a numeric value (v): %w", qname, custody.ErrInvalid)
		}
		v = st.bv + *rec.Value
		if math.IsInf(v, 0) {
			return fmt.Errorf("%s value overflows: %w", qname, custody.ErrInvalid)
		}
	}
	unit := ""
	if rec.Unit != nil {
		unit = *rec.Unit
	} else if !q.boolean {
		unit = st.bu
	}
	if !validUnit(q, unit) {
		return fmt.Errorf("unit %q not accepted for %s (want %s): %w", unit, qname, unitList(q), custody.ErrInvalid)
	}
	if qname == "seq" && !(v >= 0 && v <= custody.MaxSeq && v == math.Trunc(v)) {
		return fmt.Errorf("seq %v is not an integer from 0 to %d: %w", v, uint64(custody.MaxSeq), custody.ErrInvalid)
	}
	tt := st.bt
	if rec.Time != nil {
		tt += *rec.Time
	}
	t, err := senmlTime(tt, st.hasBT || rec.Time != nil)
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
	if !q.set(&st.rs[j], v, rec.BoolValue != nil && *rec.BoolValue) {
		return fmt.Errorf("second %s at %s: %w", qname, t.Format(time.RFC3339Nano), custody.ErrInvalid)
	}
	return nil
}

func validUnit(q quantity, u string) bool {
	for _, w := range q.units {
		if u == w {
			return true
		}
	}
	return false
}

func unitList(q quantity) string {
	var s []string
	for _, u := range q.units {
		if u == "" {
			u = "none"
		}
		s = append(s, strconv.Quote(u))
	}
	return strings.Join(s, " or ")
}

// EncodeSenML encodes readings as a SenML JSON pack that Decode reads back
// to the same readings (ReceivedTime aside): per reading, one record per
// measurement, the first carrying the reading's absolute time as bt (and a
// base name "{shipper}/" whenever the shipper changes), in the order seq,
// temp, tilt, lid, light, battery, ln2, lat, lon. Times are written to the
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
		num("ln2", "%", r.LN2Pct)
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
