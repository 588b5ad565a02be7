package custody

// Cold-chain telemetry: the domain types shared by the decoder, the rule
// engine, the store and the API (readings, profiles, excursions, seals).
// Everything here is pure; decoding payloads lives in package sensors and
// judging readings against a profile in package custody/coldchain.

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// Limits on what a Reading may carry. Values outside them are physically
// impossible for a shipper's sensors or a sign of a broken clock, and make
// Validate fail.
const (
	// MaxShipperIDLen is the longest shipper ID accepted.
	MaxShipperIDLen = 64

	// MaxClockSkew is how far a device time may lie in the future of the
	// time the reading is judged (normally its receive time).
	MaxClockSkew = 5 * time.Minute

	// AbsoluteZeroC is absolute zero in degrees Celsius; no temperature
	// may be below it.
	AbsoluteZeroC = -273.15

	// MaxTempC is the highest temperature a reading may carry. No sensor in
	// a shipper can report more; larger values are sensor error codes.
	MaxTempC = 1000.0
)

// MinDeviceTime is the earliest device time accepted: a clock reading before
// 2000 is an unset real-time clock, not a measurement time.
var MinDeviceTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// ErrReadingConflict means a reading's identity (Reading.Key: shipper and
// seq, or shipper and device time) is already stored, or repeated in the
// same batch, with different content: a logger that restarted its sequence
// numbers, or two different readings with the same device time and no seq.
// The store refused the whole batch and wrote nothing of it. Retrying
// cannot help: the caller must keep the batch for review instead (the
// telemetry pipeline quarantines the message and logs it).
var ErrReadingConflict = errors.New("reading conflicts with the stored reading of the same identity")

// ReadingEncoding names the canonical reading encoding (see
// Reading.AppendCanonical) and the readings hash built on it (see
// SealReadings). A seal records it so that a later format is never confused
// with this one.
const ReadingEncoding = "coid-reading-v1"

// Reading is one sample from a shipper's sensors. It is identified by
// (Shipper, Seq) when the device numbers its readings (HasSeq) and by
// (Shipper, DeviceTime) otherwise; QoS 1 redelivers, so the same identity
// may arrive more than once and must be stored once (see Key).
//
// Every measurement is optional: nil means the payload did not carry it,
// which is different from a zero value.
type Reading struct {
	// Shipper is the shipper (data logger) ID, 1 to MaxShipperIDLen
	// characters from [A-Za-z0-9._-].
	Shipper string
	// Seq is the device's sequence number; meaningful only when HasSeq.
	Seq uint64
	// HasSeq says whether the device numbered this reading.
	HasSeq bool
	// DeviceTime is when the device took the reading, in UTC. Rules judge
	// readings by this time, never by arrival.
	DeviceTime time.Time
	// ReceivedTime is when coid received the reading, in UTC. It is
	// metadata, not part of the canonical encoding.
	ReceivedTime time.Time

	// TempC is the product-space temperature in degrees Celsius.
	TempC *float64
	// TiltDeg is the angle from upright in degrees, 0 to 180.
	TiltDeg *float64
	// LidOpen reports the lid switch: true when the lid is open.
	LidOpen *bool
	// Light reports the light sensor inside the shipper: true when light
	// is detected, which means the lid is open or the shell is breached.
	Light *bool
	// BatteryPct is the logger's remaining battery, 0 to 100.
	BatteryPct *float64
	// LN2Pct is the liquid-nitrogen charge of a dry shipper, 0 to 100.
	LN2Pct *float64
	// Lat is the latitude in decimal degrees (WGS 84), -90 to 90; given
	// together with Lon or not at all.
	Lat *float64
	// Lon is the longitude in decimal degrees (WGS 84), -180 to 180.
	Lon *float64
}

// ValidateShipperID reports whether id is an acceptable shipper ID: 1 to
// MaxShipperIDLen characters, each a letter, digit, '.', '_' or '-', the
// first a letter or digit (the rule of ValidShipperID). The error wraps
// ErrInvalid and says what is wrong.
func ValidateShipperID(id string) error { return teleValidateID("shipper id", id) }

// validateID checks a shipper ID or profile name.
func teleValidateID(what, id string) error {
	if id == "" {
		return fmt.Errorf("%s: empty: %w", what, ErrInvalid)
	}
	if len(id) > MaxShipperIDLen {
		return fmt.Errorf("%s: %d characters, max %d: %w", what, len(id), MaxShipperIDLen, ErrInvalid)
	}
	for i := 0; i < len(id); i++ {
		if !teleIDChar(id[i]) {
			return fmt.Errorf("%s %q: character %q at %d not in [A-Za-z0-9._-]: %w", what, id, id[i], i, ErrInvalid)
		}
	}
	if c := id[0]; c == '.' || c == '_' || c == '-' {
		return fmt.Errorf("%s %q: must start with a letter or digit: %w", what, id, ErrInvalid)
	}
	return nil
}

func teleIDChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// ShipperKeyPrefix returns the prefix that every Key of the shipper's
// readings starts with, for range scans over one shipper.
func ShipperKeyPrefix(shipper string) []byte {
	k := make([]byte, 0, len(shipper)+1)
	k = append(k, shipper...)
	return append(k, 0)
}

// Key returns the reading's identity as a storage key. Keys sort by shipper,
// then readings with a sequence number by Seq, then readings without one by
// device time:
//
//	shipper 0x00 's' seq(8 bytes big-endian)
//	shipper 0x00 't' (UnixNano XOR 1<<63)(8 bytes big-endian)
//
// Two deliveries of the same reading have the same key. The 0x00 separator
// cannot occur in a valid shipper ID, so one shipper's keys never interleave
// with another's.
func (r Reading) Key() []byte {
	k := make([]byte, 0, len(r.Shipper)+10)
	k = append(k, r.Shipper...)
	k = append(k, 0)
	if r.HasSeq {
		k = append(k, 's')
		return binary.BigEndian.AppendUint64(k, r.Seq)
	}
	k = append(k, 't')
	return binary.BigEndian.AppendUint64(k, uint64(r.DeviceTime.UnixNano())^(1<<63))
}

// Validate rejects a reading that cannot be true: a bad shipper ID, a device
// time before MinDeviceTime or more than MaxClockSkew after now, a
// temperature below absolute zero or above MaxTempC, a tilt outside 0..180
// degrees, a percentage outside 0..100, a latitude or longitude out of range
// or one without the other, a Seq without HasSeq, or a non-finite number.
// The error wraps ErrInvalid and names the field.
func (r Reading) Validate(now time.Time) error {
	const op = "validate reading"
	if err := ValidateShipperID(r.Shipper); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if !r.HasSeq && r.Seq != 0 {
		return fmt.Errorf("%s: seq %d set without has_seq: %w", op, r.Seq, ErrInvalid)
	}
	if r.Seq > MaxSeq {
		return fmt.Errorf("%s: seq %d above %d: %w", op, r.Seq, uint64(MaxSeq), ErrInvalid)
	}
	switch {
	case r.DeviceTime.IsZero():
		return fmt.Errorf("%s: device time missing: %w", op, ErrInvalid)
	case r.DeviceTime.Before(MinDeviceTime):
		return fmt.Errorf("%s: device time %s before %d (clock not set?): %w",
			op, r.DeviceTime.UTC().Format(time.RFC3339Nano), MinDeviceTime.Year(), ErrInvalid)
	case r.DeviceTime.After(now.Add(MaxClockSkew)):
		return fmt.Errorf("%s: device time %s is %s in the future of %s (max %s): %w",
			op, r.DeviceTime.UTC().Format(time.RFC3339Nano), r.DeviceTime.Sub(now).Round(time.Second),
			now.UTC().Format(time.RFC3339), MaxClockSkew, ErrInvalid)
	}
	if r.TempC != nil && *r.TempC < AbsoluteZeroC {
		return fmt.Errorf("%s: temp_c %v below absolute zero (%v C): %w", op, *r.TempC, AbsoluteZeroC, ErrInvalid)
	}
	checks := []struct {
		name   string
		v      *float64
		lo, hi float64
	}{
		{"temp_c", r.TempC, AbsoluteZeroC, MaxTempC},
		{"tilt_deg", r.TiltDeg, 0, 180},
		{"battery_pct", r.BatteryPct, 0, 100},
		{"ln2_pct", r.LN2Pct, 0, 100},
		{"lat", r.Lat, -90, 90},
		{"lon", r.Lon, -180, 180},
	}
	for _, c := range checks {
		if c.v == nil {
			continue
		}
		if v := *c.v; math.IsNaN(v) || math.IsInf(v, 0) || v < c.lo || v > c.hi {
			return fmt.Errorf("%s: %s %v outside %v..%v: %w", op, c.name, v, c.lo, c.hi, ErrInvalid)
		}
	}
	if (r.Lat == nil) != (r.Lon == nil) {
		return fmt.Errorf("%s: lat and lon must be given together: %w", op, ErrInvalid)
	}
	return nil
}

// teleTimeLayout is RFC 3339 in UTC with the fraction trimmed of trailing
// zeros, the layout of the ledger's record times.
const teleTimeLayout = time.RFC3339Nano

// MaxSeq is the largest sequence number a reading may carry, 2^53-1: the
// largest integer every JSON implementation (I-JSON, RFC 7493) and SenML
// represent exactly.
const MaxSeq = 1<<53 - 1

// AppendCanonical appends the reading's canonical encoding (ReadingEncoding
// "coid-reading-v1") to b and returns the extended buffer. It is the RFC
// 8785 JSON Canonicalization Scheme (JCS, the scheme of the ledger's
// records; see Canonicalize) form of this JSON object:
//
//   - members present only when set: "battery_pct", "lat", "lid_open",
//     "light", "ln2_pct", "lon", "seq" (only when HasSeq), "shipper",
//     "temp_c", "tilt_deg", "time" (this is JCS's sorted order);
//     ReceivedTime is not part of it: it is coid's metadata, not the
//     device's measurement;
//   - "time" is the device time as a string, RFC 3339 in UTC ("Z") with
//     the fractional seconds trimmed of trailing zeros and omitted when
//     zero (Go's time.RFC3339Nano), e.g. "2026-11-22T13:00:00Z" or
//     "2026-11-22T13:00:00.25Z";
//   - numbers as JCS writes them (ECMAScript Number.prototype.toString of
//     the IEEE 754 double: 88, -182.4, 1e-7; negative zero as 0); seq is
//     at most MaxSeq, so it is written as a plain integer;
//   - no white space.
//
// Any JCS library reproduces it from the same member values. Example:
//
//	{"lid_open":false,"seq":1187,"shipper":"SHP-0042","temp_c":-182.4,"time":"2026-11-22T13:00:00Z"}
//
// The encoding is defined for readings that pass Validate; it is also valid
// input for sensors.Decode.
func (r Reading) AppendCanonical(b []byte) []byte {
	b = r.appendMembers(b)
	return append(b, '}')
}

// appendMembers appends the canonical encoding without the closing brace.
func (r Reading) appendMembers(b []byte) []byte {
	b = append(b, '{')
	n := len(b)
	b = teleAppendNum(b, n, `"battery_pct":`, r.BatteryPct)
	b = teleAppendNum(b, n, `"lat":`, r.Lat)
	b = teleAppendBool(b, n, `"lid_open":`, r.LidOpen)
	b = teleAppendBool(b, n, `"light":`, r.Light)
	b = teleAppendNum(b, n, `"ln2_pct":`, r.LN2Pct)
	b = teleAppendNum(b, n, `"lon":`, r.Lon)
	if r.HasSeq {
		b = teleComma(b, n)
		b = append(b, `"seq":`...)
		b = strconv.AppendUint(b, r.Seq, 10)
	}
	b = teleComma(b, n)
	b = append(b, `"shipper":`...)
	b = appendCanonString(b, r.Shipper)
	b = teleAppendNum(b, n, `"temp_c":`, r.TempC)
	b = teleAppendNum(b, n, `"tilt_deg":`, r.TiltDeg)
	b = append(b, `,"time":"`...)
	b = r.DeviceTime.UTC().AppendFormat(b, teleTimeLayout)
	return append(b, '"')
}

// teleComma appends a member separator unless b has no member after
// position n yet.
func teleComma(b []byte, n int) []byte {
	if len(b) > n {
		return append(b, ',')
	}
	return b
}

func teleAppendNum(b []byte, n int, key string, v *float64) []byte {
	if v == nil {
		return b
	}
	b = teleComma(b, n)
	b = append(b, key...)
	return AppendJCSNumber(b, *v)
}

func teleAppendBool(b []byte, n int, key string, v *bool) []byte {
	if v == nil {
		return b
	}
	b = teleComma(b, n)
	b = append(b, key...)
	return strconv.AppendBool(b, *v)
}

// AppendJCSNumber appends x as RFC 8785 writes a number: ECMAScript's
// Number.prototype.toString of the double (shortest round-trip digits,
// plain notation for 1e-6 <= |x| < 1e21, exponent form otherwise, negative
// zero as 0). x must be finite.
func AppendJCSNumber(b []byte, x float64) []byte { return appendES6Number(b, x) }

// MarshalJSON encodes the reading as its canonical encoding followed by one
// more member, "received_time" (same time format), when ReceivedTime is
// set. This is the form for the API and for stores.
func (r Reading) MarshalJSON() ([]byte, error) {
	b := r.appendMembers(make([]byte, 0, 256))
	if !r.ReceivedTime.IsZero() {
		b = append(b, `,"received_time":"`...)
		b = r.ReceivedTime.UTC().AppendFormat(b, teleTimeLayout)
		b = append(b, '"')
	}
	return append(b, '}'), nil
}

type teleReadingJSON struct {
	Shipper      string     `json:"shipper"`
	Seq          *uint64    `json:"seq"`
	Time         time.Time  `json:"time"`
	ReceivedTime *time.Time `json:"received_time"`
	TempC        *float64   `json:"temp_c"`
	TiltDeg      *float64   `json:"tilt_deg"`
	LidOpen      *bool      `json:"lid_open"`
	Light        *bool      `json:"light"`
	BatteryPct   *float64   `json:"battery_pct"`
	LN2Pct       *float64   `json:"ln2_pct"`
	Lat          *float64   `json:"lat"`
	Lon          *float64   `json:"lon"`
}

// UnmarshalJSON decodes what MarshalJSON writes. Unknown members are an
// error wrapping ErrInvalid; the reading is not validated (call Validate).
func (r *Reading) UnmarshalJSON(data []byte) error {
	var w teleReadingJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("decode reading: %v: %w", err, ErrInvalid)
	}
	*r = Reading{
		Shipper:    w.Shipper,
		DeviceTime: w.Time.UTC(),
		TempC:      w.TempC, TiltDeg: w.TiltDeg, LidOpen: w.LidOpen, Light: w.Light,
		BatteryPct: w.BatteryPct, LN2Pct: w.LN2Pct, Lat: w.Lat, Lon: w.Lon,
	}
	if w.Seq != nil {
		r.Seq, r.HasSeq = *w.Seq, true
	}
	if w.ReceivedTime != nil {
		r.ReceivedTime = w.ReceivedTime.UTC()
	}
	return nil
}

// CompareReadings orders readings by device time, then readings without a
// sequence number before those with one, then by Seq, then by canonical
// encoding. It is a total order on canonical encodings, so sorting by it is
// deterministic whatever the input order.
func CompareReadings(a, b Reading) int { return teleCompare(&a, &b) }

func teleCompare(a, b *Reading) int {
	if c := a.DeviceTime.Compare(b.DeviceTime); c != 0 {
		return c
	}
	if a.HasSeq != b.HasSeq {
		if a.HasSeq {
			return 1
		}
		return -1
	}
	if c := cmp.Compare(a.Seq, b.Seq); c != 0 {
		return c
	}
	return bytes.Compare(a.AppendCanonical(nil), b.AppendCanonical(nil))
}

// SortReadings sorts readings in place into the order of CompareReadings:
// the device-time order in which rules judge them and seals hash them.
func SortReadings(readings []Reading) {
	if !teleSorted(readings) {
		slices.SortStableFunc(readings, CompareReadings)
	}
}

// teleSorted reports whether readings are in CompareReadings order.
func teleSorted(readings []Reading) bool {
	for i := 1; i < len(readings); i++ {
		if teleCompare(&readings[i-1], &readings[i]) > 0 {
			return false
		}
	}
	return true
}

// Profile is a named set of rules for a leg: temperature limits, tilt, lid,
// the expected reporting interval and whether mean kinetic temperature
// applies. Profiles are configuration (see ParseProfiles); BuiltinProfiles
// gives the defaults. In JSON, durations are Go duration strings such as
// "10m" or "1h30m", and absent limits mean "no limit":
//
//	{"name":"refrigerated","min_c":2,"max_c":8,"grace":"10m",
//	 "lid_must_be_closed":true,"lid_grace":"5m",
//	 "expected_interval":"5m","silence_intervals":6,"mkt":true}
type Profile struct {
	// Name identifies the profile; the ship step names it. Same character
	// set as shipper IDs.
	Name string `json:"name"`
	// MinC is the lowest allowed temperature in degrees Celsius,
	// inclusive; nil means no lower bound.
	MinC *float64 `json:"min_c,omitempty"`
	// MaxC is the highest allowed temperature in degrees Celsius,
	// inclusive; nil means no upper bound.
	MaxC *float64 `json:"max_c,omitempty"`
	// Grace is how long the temperature may be out of range (in total,
	// over a flapping episode) before it is an excursion.
	Grace time.Duration `json:"grace"`
	// MaxTiltDeg is the largest allowed tilt from upright; nil means tilt
	// is not judged.
	MaxTiltDeg *float64 `json:"max_tilt_deg,omitempty"`
	// TiltGrace is how long the shipper may be tilted beyond MaxTiltDeg
	// before it is an excursion.
	TiltGrace time.Duration `json:"tilt_grace"`
	// LidMustBeClosed makes an open lid, or light inside the shipper, a
	// rule break.
	LidMustBeClosed bool `json:"lid_must_be_closed"`
	// LidGrace is how long the lid may be open before it is an excursion.
	LidGrace time.Duration `json:"lid_grace"`
	// ExpectedInterval is how often the shipper is expected to report.
	ExpectedInterval time.Duration `json:"expected_interval"`
	// SilenceIntervals is how many expected intervals without any reading
	// make a silence excursion; at least 1.
	SilenceIntervals int `json:"silence_intervals"`
	// MKT says whether mean kinetic temperature is computed for the seal
	// (refrigerated and room temperature, never frozen product).
	MKT bool `json:"mkt"`
	// MinLN2Pct is the liquid-nitrogen charge (0-100) below which a dry
	// shipper no longer holds the product safely: the floor its hold
	// time is projected to; nil means the monitor's configured empty
	// level.
	MinLN2Pct *float64 `json:"min_ln2_pct,omitempty"`
}

// Bounds on profile durations, so that silence arithmetic cannot overflow.
const (
	teleMaxDuration         = 7 * 24 * time.Hour
	teleMaxSilenceIntervals = 10000
)

// SilenceAfter returns how long a gap between readings may last before it is
// a silence excursion: SilenceIntervals times ExpectedInterval.
func (p Profile) SilenceAfter() time.Duration {
	return time.Duration(p.SilenceIntervals) * p.ExpectedInterval
}

// TempInRange reports whether temperature c (Celsius) is within the
// profile's limits, bounds included.
func (p Profile) TempInRange(c float64) bool {
	return (p.MinC == nil || c >= *p.MinC) && (p.MaxC == nil || c <= *p.MaxC)
}

// Validate checks that the profile can be used: a valid name, finite limits
// not below absolute zero with MinC < MaxC, a tilt limit within 0..180,
// grace times from 0 to 7 days, an expected interval above 0 and at most
// 7 days, and 1 to 10000 silence intervals. The error wraps ErrInvalid.
func (p Profile) Validate() error {
	op := "validate profile " + strconv.Quote(p.Name)
	if err := teleValidateID("name", p.Name); err != nil {
		return fmt.Errorf("validate profile: %w", err)
	}
	for _, l := range []struct {
		name string
		v    *float64
	}{{"min_c", p.MinC}, {"max_c", p.MaxC}} {
		if l.v != nil && (math.IsNaN(*l.v) || math.IsInf(*l.v, 0) || *l.v < AbsoluteZeroC || *l.v > MaxTempC) {
			return fmt.Errorf("%s: %s %v outside %v..%v: %w", op, l.name, *l.v, AbsoluteZeroC, MaxTempC, ErrInvalid)
		}
	}
	if p.MinC != nil && p.MaxC != nil && !(*p.MinC < *p.MaxC) {
		return fmt.Errorf("%s: min_c %v not below max_c %v: %w", op, *p.MinC, *p.MaxC, ErrInvalid)
	}
	if p.MinLN2Pct != nil && !(*p.MinLN2Pct >= 0 && *p.MinLN2Pct < 100) {
		return fmt.Errorf("%s: min_ln2_pct %v outside 0..100: %w", op, *p.MinLN2Pct, ErrInvalid)
	}
	if p.MaxTiltDeg != nil && !(*p.MaxTiltDeg >= 0 && *p.MaxTiltDeg <= 180) {
		return fmt.Errorf("%s: max_tilt_deg %v outside 0..180: %w", op, *p.MaxTiltDeg, ErrInvalid)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"grace", p.Grace}, {"tilt_grace", p.TiltGrace}, {"lid_grace", p.LidGrace}} {
		if d.v < 0 || d.v > teleMaxDuration {
			return fmt.Errorf("%s: %s %s outside 0..%s: %w", op, d.name, d.v, teleMaxDuration, ErrInvalid)
		}
	}
	if p.ExpectedInterval <= 0 || p.ExpectedInterval > teleMaxDuration {
		return fmt.Errorf("%s: expected_interval %s must be above 0 and at most %s: %w", op, p.ExpectedInterval, teleMaxDuration, ErrInvalid)
	}
	if p.SilenceIntervals < 1 || p.SilenceIntervals > teleMaxSilenceIntervals {
		return fmt.Errorf("%s: silence_intervals %d outside 1..%d: %w", op, p.SilenceIntervals, teleMaxSilenceIntervals, ErrInvalid)
	}
	return nil
}

// teleProfileJSON is Profile with durations as strings.
type teleProfileJSON struct {
	Name             string   `json:"name"`
	MinC             *float64 `json:"min_c,omitempty"`
	MaxC             *float64 `json:"max_c,omitempty"`
	Grace            string   `json:"grace"`
	MaxTiltDeg       *float64 `json:"max_tilt_deg,omitempty"`
	TiltGrace        string   `json:"tilt_grace"`
	LidMustBeClosed  bool     `json:"lid_must_be_closed"`
	LidGrace         string   `json:"lid_grace"`
	ExpectedInterval string   `json:"expected_interval"`
	SilenceIntervals int      `json:"silence_intervals"`
	MKT              bool     `json:"mkt"`
	MinLN2Pct        *float64 `json:"min_ln2_pct,omitempty"`
}

// MarshalJSON writes the profile with durations as Go duration strings.
func (p Profile) MarshalJSON() ([]byte, error) {
	return json.Marshal(teleProfileJSON{
		Name: p.Name, MinC: p.MinC, MaxC: p.MaxC,
		Grace: p.Grace.String(), MaxTiltDeg: p.MaxTiltDeg, TiltGrace: p.TiltGrace.String(),
		LidMustBeClosed: p.LidMustBeClosed, LidGrace: p.LidGrace.String(),
		ExpectedInterval: p.ExpectedInterval.String(), SilenceIntervals: p.SilenceIntervals, MKT: p.MKT,
		MinLN2Pct: p.MinLN2Pct,
	})
}

// UnmarshalJSON reads a profile written by MarshalJSON or by hand. Unknown
// members are rejected (a misspelt rule must not silently vanish); an absent
// duration is 0. It does not validate; call Validate. Errors wrap ErrInvalid.
func (p *Profile) UnmarshalJSON(data []byte) error {
	var w teleProfileJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("decode profile: %v: %w", err, ErrInvalid)
	}
	var durs [4]time.Duration
	for i, s := range []string{w.Grace, w.TiltGrace, w.LidGrace, w.ExpectedInterval} {
		if s == "" {
			continue
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("decode profile %q: %v: %w", w.Name, err, ErrInvalid)
		}
		durs[i] = d
	}
	*p = Profile{
		Name: w.Name, MinC: w.MinC, MaxC: w.MaxC,
		Grace: durs[0], MaxTiltDeg: w.MaxTiltDeg, TiltGrace: durs[1],
		LidMustBeClosed: w.LidMustBeClosed, LidGrace: durs[2],
		ExpectedInterval: durs[3], SilenceIntervals: w.SilenceIntervals, MKT: w.MKT,
		MinLN2Pct: w.MinLN2Pct,
	}
	return nil
}

func teleF64(v float64) *float64 { return &v }

// BuiltinProfiles returns the three profiles coid knows without
// configuration, keyed by name. Each call returns fresh values.
//
//   - "cryogenic": a dry (LN2 vapour) shipper for frozen product. At or
//     below -150 C (well under the -135 C glass transition of water; a
//     charged dry shipper holds about -180 C), 5 minutes grace; upright:
//     at most 30 degrees of tilt for more than 10 minutes (a shipper on its
//     side loses most of its hold time in hours, while handling on a dolly
//     or a ramp tilts it briefly); lid closed and no light, 1 minute grace;
//     a reading every minute, silence after 15 minutes. No MKT.
//   - "refrigerated": 2 to 8 C, 10 minutes grace; lid closed, 5 minutes
//     grace; a reading every 5 minutes, silence after 30 minutes; MKT.
//   - "room": controlled room temperature 15 to 25 C, 30 minutes grace; lid
//     closed, 5 minutes grace; a reading every 5 minutes, silence after 30
//     minutes; MKT.
func BuiltinProfiles() map[string]Profile {
	return map[string]Profile{
		"cryogenic": {
			Name: "cryogenic", MaxC: teleF64(-150), Grace: 5 * time.Minute,
			MaxTiltDeg: teleF64(30), TiltGrace: 10 * time.Minute,
			LidMustBeClosed: true, LidGrace: time.Minute,
			ExpectedInterval: time.Minute, SilenceIntervals: 15,
		},
		"refrigerated": {
			Name: "refrigerated", MinC: teleF64(2), MaxC: teleF64(8), Grace: 10 * time.Minute,
			LidMustBeClosed: true, LidGrace: 5 * time.Minute,
			ExpectedInterval: 5 * time.Minute, SilenceIntervals: 6, MKT: true,
		},
		"room": {
			Name: "room", MinC: teleF64(15), MaxC: teleF64(25), Grace: 30 * time.Minute,
			LidMustBeClosed: true, LidGrace: 5 * time.Minute,
			ExpectedInterval: 5 * time.Minute, SilenceIntervals: 6, MKT: true,
		},
	}
}

// ParseProfiles reads a JSON array of profiles (a configuration file) and
// returns the built-in profiles with the file's profiles added or replacing
// those of the same name. Every profile must validate and names must be
// unique within the file. Errors wrap ErrInvalid.
func ParseProfiles(data []byte) (map[string]Profile, error) {
	var ps []Profile
	if err := json.Unmarshal(data, &ps); err != nil {
		return nil, fmt.Errorf("parse profiles: %w", teleWrapInvalid(err))
	}
	out := BuiltinProfiles()
	seen := make(map[string]bool, len(ps))
	for i, p := range ps {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("parse profiles: element %d: %w", i, err)
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("parse profiles: element %d: duplicate name %q: %w", i, p.Name, ErrInvalid)
		}
		seen[p.Name] = true
		out[p.Name] = p
	}
	return out, nil
}

// wrapInvalid makes err wrap ErrInvalid if it does not already.
func teleWrapInvalid(err error) error {
	if errors.Is(err, ErrInvalid) {
		return err
	}
	return fmt.Errorf("%v: %w", err, ErrInvalid)
}

// ExcursionKind names the rule an excursion broke.
type ExcursionKind string

// The excursion kinds, one per rule.
const (
	// ExcursionTemperature means the temperature was outside the
	// profile's limits for longer than Grace.
	ExcursionTemperature ExcursionKind = "temperature"
	// ExcursionTilt means the shipper was tilted beyond MaxTiltDeg for
	// longer than TiltGrace.
	ExcursionTilt ExcursionKind = "tilt"
	// ExcursionLid means the lid was open, or light was seen inside, for
	// longer than LidGrace.
	ExcursionLid ExcursionKind = "lid"
	// ExcursionSilence means no reading arrived for longer than the
	// profile's SilenceAfter.
	ExcursionSilence ExcursionKind = "silence"
)

// Excursion is a rule broken for longer than its grace time on one leg.
// Start is when the rule was first broken (not when the grace ran out); End
// is zero while the excursion is still open.
type Excursion struct {
	// ID identifies the excursion within its leg across re-evaluations:
	// ExcursionID(Kind, Start). A caller writes each ID to the ledger once.
	ID string `json:"id"`
	// Kind is the broken rule.
	Kind ExcursionKind `json:"kind"`
	// Start is the device time at which the rule was first broken.
	Start time.Time `json:"start"`
	// End is the device time at which the rule was last seen kept again
	// for good; zero while the excursion is open.
	End time.Time `json:"end,omitzero"`
	// Worst is the worst value seen: the temperature furthest beyond its
	// limit, or the largest tilt; nil for lid and silence.
	Worst *float64 `json:"worst,omitempty"`
	// Limit is the profile limit that Worst broke; nil for lid and
	// silence.
	Limit *float64 `json:"limit,omitempty"`
	// Duration is End minus Start, or the evaluation time minus Start while
	// the excursion is open.
	Duration time.Duration `json:"duration_ns"`
	// Breach is the total time within Duration during which the rule was
	// actually broken; shorter than Duration when the value flapped back
	// into range briefly.
	Breach time.Duration `json:"breach_ns"`
}

// Open reports whether the excursion was still ongoing when evaluated.
func (e Excursion) Open() bool { return e.End.IsZero() }

// Overlaps reports whether e and o are of the same kind and their periods
// [Start, End] intersect, an open excursion extending without end. A late
// reading can reveal that an excursion began earlier than first seen, which
// gives it a new Start and so a new ID; a caller that writes each excursion
// once treats a new ID that overlaps one already written as the same
// excursion.
func (e Excursion) Overlaps(o Excursion) bool {
	if e.Kind != o.Kind {
		return false
	}
	endsBefore := func(x, y Excursion) bool { return !x.Open() && x.End.Before(y.Start) }
	return !endsBefore(e, o) && !endsBefore(o, e)
}

// ExcursionID returns the stable identifier of an excursion of kind k that
// started at start: the kind, "/", and start in the canonical time format,
// e.g. "temperature/2026-11-22T13:00:00Z" (RFC 3339 in UTC, fraction trimmed).
func ExcursionID(k ExcursionKind, start time.Time) string {
	b := make([]byte, 0, len(k)+32)
	b = append(b, k...)
	b = append(b, '/')
	return string(start.UTC().AppendFormat(b, teleTimeLayout))
}

// LegSeal summarises a leg's telemetry when the leg is received. It is
// written into the chain; verification recomputes it from the stored
// readings with SealReadings, so a changed, added or deleted reading is
// detected through ReadingsHash.
type LegSeal struct {
	// Encoding is ReadingEncoding, the version of the canonical reading
	// encoding that ReadingsHash is computed over.
	Encoding string `json:"encoding"`
	// Profile names the profile whose limits the seal applied.
	Profile string `json:"profile"`
	// LimitMinC is the profile's MinC as applied to TimeOutOfRange,
	// recorded so that the seal can be recomputed even if the profile's
	// configuration changes later.
	LimitMinC *float64 `json:"limit_min_c,omitempty"`
	// LimitMaxC is the profile's MaxC as applied to TimeOutOfRange.
	LimitMaxC *float64 `json:"limit_max_c,omitempty"`
	// Count is the number of readings.
	Count int `json:"count"`
	// FirstDeviceTime is the earliest device time; zero when there are no
	// readings.
	FirstDeviceTime time.Time `json:"first_device_time,omitzero"`
	// LastDeviceTime is the latest device time; zero when there are no
	// readings.
	LastDeviceTime time.Time `json:"last_device_time,omitzero"`
	// MinC is the lowest temperature read; nil when no reading carried a
	// temperature.
	MinC *float64 `json:"min_c,omitempty"`
	// MaxC is the highest temperature read; nil when no reading carried a
	// temperature.
	MaxC *float64 `json:"max_c,omitempty"`
	// TimeOutOfRange is the total time the temperature was outside the
	// limits, each temperature reading holding until the next one.
	TimeOutOfRange time.Duration `json:"time_out_of_range_ns"`
	// MKTC is the mean kinetic temperature in Celsius rounded to 0.001,
	// only when the profile's MKT applies and temperatures were read.
	MKTC *float64 `json:"mkt_c,omitempty"`
	// MKTMethod names how MKTC weighs the readings: MKTTimeWeighted in
	// every seal made now; empty (with MKTC set) in seals made before,
	// which weighed every reading equally.
	MKTMethod string `json:"mkt_method,omitempty"`
	// MKTMaxGap is the largest interval between readings that
	// time-weighted MKT credits to them (the profile's silence time when
	// sealed); recorded so that the seal can be recomputed whatever the
	// profile says later.
	MKTMaxGap time.Duration `json:"mkt_max_gap_ns,omitempty"`
	// ReadingsHash is the lower-case hex SHA-256 described at
	// SealReadings.
	ReadingsHash string `json:"readings_hash"`
}

// SealReadings computes the seal of a leg's readings under profile p. The
// input order does not matter and the slice is not modified: readings are
// taken in CompareReadings order (device time, then seq). The caller passes
// the stored, deduplicated readings of the leg.
//
//   - Count, FirstDeviceTime and LastDeviceTime cover all readings.
//   - MinC, MaxC and MKTC cover readings that carry a temperature; MKTC
//     only when p.MKT: the time-weighted mean kinetic temperature
//     (TimeWeightedMKT with p.SilenceAfter() as the largest gap, rounded
//     to 0.001 C), MKTMethod MKTTimeWeighted.
//   - TimeOutOfRange: each reading with a temperature outside p's limits
//     contributes the time until the next reading with a temperature; the
//     last one contributes nothing. Readings without a temperature do not
//     interrupt the hold.
//   - ReadingsHash = hex(SHA-256(E1 || "\n" || E2 || "\n" || ... || En ||
//     "\n")) where Ei is the canonical encoding (AppendCanonical) of the
//     i-th reading in that order and "\n" is the single byte 0x0A. With no
//     readings it is the SHA-256 of the empty string.
func SealReadings(readings []Reading, p Profile) LegSeal {
	return sealReadings(readings, p, MKTTimeWeighted, p.SilenceAfter())
}

// sealReadings is SealReadings with the MKT method (MKTTimeWeighted, or ""
// for the equal weights of seals made before MKTMethod existed) and the
// largest gap time weighting credits.
func sealReadings(readings []Reading, p Profile, mktMethod string, maxGap time.Duration) LegSeal {
	rs := make([]*Reading, len(readings))
	for i := range readings {
		rs[i] = &readings[i]
	}
	if !teleSorted(readings) {
		slices.SortStableFunc(rs, teleCompare)
	}
	s := LegSeal{Encoding: ReadingEncoding, Profile: p.Name, Count: len(rs)}
	if p.MinC != nil {
		s.LimitMinC = teleF64(*p.MinC)
	}
	if p.MaxC != nil {
		s.LimitMaxC = teleF64(*p.MaxC)
	}
	h := sha256.New()
	buf := make([]byte, 0, 256)
	var (
		temps    []float64
		times    []time.Time
		prevT    time.Time
		prevOut  bool
		havePrev bool
	)
	for _, r := range rs {
		buf = r.AppendCanonical(buf[:0])
		buf = append(buf, '\n')
		h.Write(buf)
		if r.TempC == nil {
			continue
		}
		c := *r.TempC
		if havePrev && prevOut {
			s.TimeOutOfRange += r.DeviceTime.Sub(prevT)
		}
		prevT, prevOut, havePrev = r.DeviceTime, !p.TempInRange(c), true
		if s.MinC == nil || c < *s.MinC {
			s.MinC = teleF64(c)
		}
		if s.MaxC == nil || c > *s.MaxC {
			s.MaxC = teleF64(c)
		}
		if p.MKT {
			temps = append(temps, c)
			times = append(times, r.DeviceTime)
		}
	}
	if len(rs) > 0 {
		s.FirstDeviceTime = rs[0].DeviceTime.UTC()
		s.LastDeviceTime = rs[len(rs)-1].DeviceTime.UTC()
	}
	if p.MKT && len(temps) > 0 {
		m := MeanKineticTemperature(temps)
		if mktMethod == MKTTimeWeighted {
			m = TimeWeightedMKT(times, temps, maxGap)
		}
		if !math.IsNaN(m) {
			s.MKTC = teleF64(math.Round(m*1000) / 1000)
			if mktMethod == MKTTimeWeighted {
				s.MKTMethod, s.MKTMaxGap = mktMethod, maxGap
			}
		}
	}
	s.ReadingsHash = hex.EncodeToString(h.Sum(nil))
	return s
}

// MKTActivationEnergyOverR is ΔH/R in kelvin used by
// MeanKineticTemperature (USP <1079.2>: ΔH = 83.144 kJ/mol, R = 8.3144
// J/(mol K)).
const MKTActivationEnergyOverR = 10000.0

// MeanKineticTemperature returns the mean kinetic temperature in Celsius of
// equally weighted temperatures (Celsius), as USP <1079.2> defines it:
//
//	MKT = (ΔH/R) / -ln( (1/n) Σ exp(-(ΔH/R) / T_i) )   (kelvin)
//
// with ΔH/R = 10000 K. The sum is computed in log-sum-exp form so that very
// low temperatures do not underflow. It returns NaN for no temperatures or
// for any temperature at or below absolute zero or not finite. Examples:
// 5 C constant gives 5.000; 4, 4, 4, 4, 16 give 8.109; 2 and 8 give 5.536.
func MeanKineticTemperature(tempsC []float64) float64 {
	return weightedMKT(tempsC, nil)
}

// MKTTimeWeighted is the LegSeal.MKTMethod of TimeWeightedMKT.
const MKTTimeWeighted = "time-weighted"

// TimeWeightedMKT returns the mean kinetic temperature in Celsius of
// temperatures (Celsius) read at times (same length, in time order), each
// weighted by the time it represents, so that a burst of readings counts
// for the seconds it spans rather than for its number of readings. USP
// <1079.2> assumes equally spaced readings; this is its formula with
// weights w_i in place of 1/n:
//
//	MKT = (ΔH/R) / -ln( Σ w_i exp(-(ΔH/R) / T_i) / Σ w_i )   (kelvin)
//
// A reading represents half the interval to each neighbour, each interval
// capped at maxGap (no cap when maxGap <= 0) so that a silence is not
// filled by the readings around it; the first and last readings, which have
// one neighbour, represent that one interval (capped) in full. Equal
// intervals therefore give equal weights and the USP value exactly. When
// all readings share one time (or there is one) the weights are equal. It
// returns NaN as MeanKineticTemperature does, and for lengths that differ
// or times out of order.
func TimeWeightedMKT(times []time.Time, tempsC []float64, maxGap time.Duration) float64 {
	n := len(tempsC)
	if len(times) != n || n == 0 {
		return math.NaN()
	}
	if n == 1 {
		return weightedMKT(tempsC, nil)
	}
	gap := func(i int) float64 { // interval from reading i-1 to i, in seconds, capped
		d := times[i].Sub(times[i-1])
		if maxGap > 0 && d > maxGap {
			d = maxGap
		}
		return d.Seconds()
	}
	w := make([]float64, n)
	var total float64
	for i := 1; i < n; i++ {
		if times[i].Before(times[i-1]) {
			return math.NaN()
		}
		g := gap(i)
		w[i-1] += g / 2
		w[i] += g / 2
		total += g
	}
	if total == 0 {
		return weightedMKT(tempsC, nil)
	}
	w[0] += gap(1) / 2
	w[n-1] += gap(n-1) / 2
	return weightedMKT(tempsC, w)
}

// weightedMKT computes the MKT of tempsC with weights w (nil: equal
// weights) in log-sum-exp form, so that very low temperatures do not
// underflow.
func weightedMKT(tempsC, w []float64) float64 {
	if len(tempsC) == 0 {
		return math.NaN()
	}
	const k0 = -AbsoluteZeroC
	m := math.Inf(-1)
	for _, c := range tempsC {
		k := c + k0
		if !(k > 0) || math.IsInf(k, 0) {
			return math.NaN()
		}
		if x := -MKTActivationEnergyOverR / k; x > m {
			m = x
		}
	}
	var sum, wsum float64
	for i, c := range tempsC {
		wi := 1.0
		if w != nil {
			wi = w[i]
		}
		sum += wi * math.Exp(-MKTActivationEnergyOverR/(c+k0)-m)
		wsum += wi
	}
	lnMean := m + math.Log(sum/wsum)
	return -MKTActivationEnergyOverR/lnMean - k0
}
