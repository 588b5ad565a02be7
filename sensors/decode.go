package sensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/coid-project/coid/custody"
)

// Bounds on what Decode accepts from one MQTT message.
const (
	// MaxPayloadBytes is the largest payload Decode accepts (1 MiB).
	MaxPayloadBytes = 1 << 20
	// MaxBatchReadings is the largest number of readings in one payload.
	MaxBatchReadings = 10000
	// MaxSenMLRecords is the largest number of SenML records in one pack.
	MaxSenMLRecords = 10 * MaxBatchReadings
)

// DefaultTopicPrefix is the first topic level shippers publish under.
const DefaultTopicPrefix = "shippers"

// TelemetryTopic returns the topic shipper publishes to under prefix:
// "{prefix}/{shipper}/telemetry".
func TelemetryTopic(prefix, shipper string) string {
	return prefix + "/" + shipper + "/telemetry"
}

// SubscriptionFilter returns the MQTT topic filter that matches every
// shipper's telemetry under prefix: "{prefix}/+/telemetry".
func SubscriptionFilter(prefix string) string {
	return prefix + "/+/telemetry"
}

// SharedFilter returns the filter of a subscription shared by the group
// of instances named group: "$share/{group}/{prefix}/+/telemetry"; with no
// group, SubscriptionFilter(prefix).
func SharedFilter(group, prefix string) string {
	if group == "" {
		return SubscriptionFilter(prefix)
	}
	return "$share/" + group + "/" + SubscriptionFilter(prefix)
}

// ValidShareGroup reports whether group can name a shared subscription:
// 1 to 64 letters, digits, '-', '_' or '.' (MQTT forbids '/', '+' and '#'
// in it; the rest keeps it readable in logs and broker configuration).
func ValidShareGroup(group string) bool {
	if group == "" || len(group) > 64 {
		return false
	}
	for _, r := range group {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// ShipperFromTopic returns the shipper ID named by a telemetry topic under
// prefix. A topic of another shape, or naming an invalid shipper ID, is an
// error wrapping custody.ErrInvalid.
func ShipperFromTopic(prefix, topic string) (string, error) {
	rest, ok := strings.CutPrefix(topic, prefix+"/")
	if !ok {
		return "", fmt.Errorf("shipper from topic %q: not under %q: %w", topic, prefix+"/", custody.ErrInvalid)
	}
	id, ok := strings.CutSuffix(rest, "/telemetry")
	if !ok {
		return "", fmt.Errorf("shipper from topic %q: does not end in /telemetry: %w", topic, custody.ErrInvalid)
	}
	if err := custody.ValidateShipperID(id); err != nil {
		return "", fmt.Errorf("shipper from topic %q: %w", topic, err)
	}
	return id, nil
}

// Decode decodes one MQTT payload published on the topic of topicShipper
// and received at received. It accepts the project's JSON (one object or an
// array of objects) and SenML JSON (an array of records), told apart by the
// first array element: an object with a "shipper" or "time" member is the
// project's JSON, anything else is read as SenML. See the package
// documentation for both formats. In the project's JSON a member name must
// be exactly a documented one (names are case-sensitive) and appear once in
// its object, so that a payload has one meaning; SenML is read as RFC 8428
// says: labels coid does not know are ignored unless their name ends in
// "_", a known label may appear once per record, and a record coid does not
// use is skipped (DecodeDetail says which and why). A used SenML record's
// time (bt + t) must be an absolute Unix time: a record with a relative time
// (below 2^28) or none is refused, since the device time identifies a
// reading without seq and is what the rules judge.
//
// The readings come back in payload order (SenML: by first record of each
// time), each with ReceivedTime set to received in UTC, and each passes
// Validate(received). Readings of the same identity (Key) within one
// payload are all returned; storing each identity once is the store's job.
// Skipped SenML records aside, if anything is wrong the whole payload is
// rejected: Decode returns nil and an error wrapping custody.ErrInvalid
// that names the element and the reason.
func Decode(topicShipper string, payload []byte, received time.Time) ([]custody.Reading, error) {
	rs, _, err := DecodeDetail(topicShipper, payload, received)
	return rs, err
}

// DecodeDetail is Decode that also returns the SenML records it skipped
// (see Skipped), in pack order, so that the caller can tell the sender; a
// payload in the project's JSON skips nothing. A pack whose records are
// all skipped is refused, with the first reasons in the error.
func DecodeDetail(topicShipper string, payload []byte, received time.Time) ([]custody.Reading, []Skipped, error) {
	const op = "decode telemetry"
	if err := custody.ValidateShipperID(topicShipper); err != nil {
		return nil, nil, fmt.Errorf("%s: topic: %w", op, err)
	}
	if received.IsZero() {
		return nil, nil, fmt.Errorf("%s: zero receive time: %w", op, custody.ErrInvalid)
	}
	received = received.UTC()
	if len(payload) > MaxPayloadBytes {
		return nil, nil, fmt.Errorf("%s: payload of %d bytes exceeds %d: %w", op, len(payload), MaxPayloadBytes, custody.ErrInvalid)
	}
	body := bytes.TrimLeft(payload, " \t\r\n")
	if len(body) == 0 {
		return nil, nil, fmt.Errorf("%s: empty payload: %w", op, custody.ErrInvalid)
	}
	var (
		rs      []custody.Reading
		skipped []Skipped
		err     error
	)
	if ws, isArray, ok := fastProject(body, topicShipper); ok {
		rs, err = convertProject(ws, isArray, topicShipper, received)
	} else {
		switch body[0] {
		case '{':
			rs, err = decodeObject(topicShipper, body, received)
		case '[':
			rs, skipped, err = decodeArray(topicShipper, body, received)
		default:
			err = fmt.Errorf("payload is not a JSON object or array: %w", custody.ErrInvalid)
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	return rs, skipped, nil
}

// invalid wraps a decoding error in custody.ErrInvalid unless it already is
// one.
func invalid(err error) error {
	if errors.Is(err, custody.ErrInvalid) {
		return err
	}
	return fmt.Errorf("%v: %w", err, custody.ErrInvalid)
}

// wireReading is one reading in the project's JSON.
type wireReading struct {
	Shipper    *string  `json:"shipper"`
	Seq        *uint64  `json:"seq"`
	Time       *string  `json:"time"`
	TempC      *float64 `json:"temp_c"`
	TiltDeg    *float64 `json:"tilt_deg"`
	LidOpen    *bool    `json:"lid_open"`
	Light      *bool    `json:"light"`
	BatteryPct *float64 `json:"battery_pct"`
	LN2Pct     *float64 `json:"ln2_pct"`
	Lat        *float64 `json:"lat"`
	Lon        *float64 `json:"lon"`
}

// reading converts and validates one decoded element.
func (w *wireReading) reading(topicShipper string, received time.Time) (custody.Reading, error) {
	if w.Shipper == nil {
		return custody.Reading{}, fmt.Errorf("shipper missing: %w", custody.ErrInvalid)
	}
	if *w.Shipper != topicShipper {
		return custody.Reading{}, fmt.Errorf("shipper %q does not match topic shipper %q: %w", *w.Shipper, topicShipper, custody.ErrInvalid)
	}
	if w.Time == nil {
		return custody.Reading{}, fmt.Errorf("time missing: %w", custody.ErrInvalid)
	}
	t, err := time.Parse(time.RFC3339Nano, *w.Time)
	if err != nil {
		return custody.Reading{}, fmt.Errorf("time %q is not RFC 3339: %w", *w.Time, custody.ErrInvalid)
	}
	r := custody.Reading{
		Shipper: topicShipper, DeviceTime: t.UTC(), ReceivedTime: received,
		TempC: w.TempC, TiltDeg: w.TiltDeg, LidOpen: w.LidOpen, Light: w.Light,
		BatteryPct: w.BatteryPct, LN2Pct: w.LN2Pct, Lat: w.Lat, Lon: w.Lon,
	}
	if w.Seq != nil {
		r.Seq, r.HasSeq = *w.Seq, true
	}
	if err := r.Validate(received); err != nil {
		return custody.Reading{}, err
	}
	return r, nil
}

func newDecoder(b []byte) *json.Decoder {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec
}

// expectEOF fails if anything but white space follows the top-level value.
func expectEOF(dec *json.Decoder) error {
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("data after the top-level JSON value: %w", custody.ErrInvalid)
	}
	return nil
}

func decodeObject(topicShipper string, body []byte, received time.Time) ([]custody.Reading, error) {
	if err := checkMembers(body); err != nil {
		return nil, err
	}
	dec := newDecoder(body)
	ws := make([]wireReading, 1)
	if err := dec.Decode(&ws[0]); err != nil {
		return nil, invalid(err)
	}
	if err := expectEOF(dec); err != nil {
		return nil, err
	}
	return convertProject(ws, false, topicShipper, received)
}

// convertProject converts and validates decoded project-JSON elements.
func convertProject(ws []wireReading, isArray bool, topicShipper string, received time.Time) ([]custody.Reading, error) {
	rs := make([]custody.Reading, len(ws))
	for i := range ws {
		r, err := ws[i].reading(topicShipper, received)
		if err != nil {
			if isArray {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			return nil, err
		}
		rs[i] = r
	}
	return rs, nil
}

// decodeArray reads the first element to tell the formats apart, then
// decodes the array in that format: the project's JSON with encoding/json
// (after checkMembers), SenML with its own scanner once the whole payload
// is known to be well-formed JSON.
func decodeArray(topicShipper string, body []byte, received time.Time) ([]custody.Reading, []Skipped, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // '['
		return nil, nil, invalid(err)
	}
	if !dec.More() {
		if _, err := dec.Token(); err != nil {
			return nil, nil, invalid(err)
		}
		return nil, nil, fmt.Errorf("empty array: %w", custody.ErrInvalid)
	}
	var first json.RawMessage
	if err := dec.Decode(&first); err != nil {
		return nil, nil, fmt.Errorf("element 0: %w", invalid(err))
	}
	if !isProjectJSON(first) {
		if !json.Valid(body) {
			var v json.RawMessage
			return nil, nil, fmt.Errorf("senml pack: %w", invalid(json.Unmarshal(body, &v)))
		}
		return decodeSenML(topicShipper, body, received)
	}
	if err := checkMembers(body); err != nil {
		return nil, nil, err
	}
	dec = newDecoder(body)
	if _, err := dec.Token(); err != nil { // '['
		return nil, nil, invalid(err)
	}
	if err := dec.Decode(&first); err != nil {
		return nil, nil, fmt.Errorf("element 0: %w", invalid(err))
	}
	rs, err := decodeProjectArray(topicShipper, first, dec, received)
	if err != nil {
		return nil, nil, err
	}
	if _, err := dec.Token(); err != nil { // ']'
		return nil, nil, invalid(err)
	}
	if err := expectEOF(dec); err != nil {
		return nil, nil, err
	}
	return rs, nil, nil
}

// memberFrame is one open object or array in checkMembers.
type memberFrame struct {
	object   bool
	wantName bool                // object: the next string is a member name
	reading  bool                // object: a reading or record, whose names are documented ones
	seen     uint32              // reading: the documented names seen, by index in knownMembers
	names    map[string]struct{} // other object: the names seen
	elements int                 // top-level array: index of the current element
}

// maxMemberDepth bounds the nesting checkMembers follows. A reading or
// record holds no object or array, so encoding/json refuses any payload
// nested deeper than 2 (and any nested beyond 10000) whatever its names.
const maxMemberDepth = 64

// checkMembers refuses what encoding/json would otherwise resolve silently,
// so that a payload means one thing only: a member name that appears twice
// in one object, at any depth (encoding/json keeps the last), and, in the
// readings and records (the top-level object, or the objects in the
// top-level array), a member name that is not exactly one of those the
// package documentation lists (encoding/json matches names without regard
// to case). Names are compared after unescaping, as JSON defines them. It
// returns an error wrapping custody.ErrInvalid that names the element and
// the member. Syntax errors, and nesting beyond maxMemberDepth, are left to
// encoding/json, which refuses them; only well-formed JSON is judged
// exactly. It takes time linear in the payload's length.
func checkMembers(body []byte) error {
	stack := make([]memberFrame, 0, 4)
	for i := 0; i < len(body); {
		c := body[i]
		switch c {
		case '{', '[':
			n := len(stack)
			if n == maxMemberDepth {
				return nil
			}
			reading := c == '{' && (n == 0 || n == 1 && !stack[0].object)
			stack = append(stack, memberFrame{object: c == '{', wantName: true, reading: reading})
			i++
		case '}', ']':
			if n := len(stack); n > 0 {
				stack = stack[:n-1]
			}
			i++
		case ',':
			if n := len(stack); n > 0 {
				stack[n-1].wantName = true
				stack[n-1].elements++
			}
			i++
		case '"':
			end, escaped := custody.ScanJSONString(body, i)
			if end < 0 {
				return nil // unterminated: a syntax error
			}
			n := len(stack)
			if n == 0 || !stack[n-1].object || !stack[n-1].wantName {
				i = end
				continue
			}
			f := &stack[n-1]
			f.wantName = false
			name := body[i+1 : end-1]
			if escaped {
				var u string
				if json.Unmarshal(body[i:end], &u) != nil {
					return nil // a bad escape: a syntax error
				}
				name = []byte(u)
			}
			var err error
			if f.reading {
				err = f.readingMember(name)
			} else {
				err = f.nestedMember(name)
			}
			if err != nil {
				if n >= 2 && !stack[0].object {
					return fmt.Errorf("element %d: %w", stack[0].elements, err)
				}
				return err
			}
			i = end
		default:
			i++
		}
	}
	return nil
}

// readingMember judges one member name of a reading or record: it must be
// exactly a documented name, once.
func (f *memberFrame) readingMember(name []byte) error {
	k := memberIndex(name)
	if k < 0 {
		for _, m := range knownMembers {
			if strings.EqualFold(m, string(name)) {
				return fmt.Errorf("member %q is not %q: member names are case-sensitive: %w", name, m, custody.ErrInvalid)
			}
		}
		return fmt.Errorf("unknown member %q: %w", name, custody.ErrInvalid)
	}
	if f.seen&(1<<k) != 0 {
		return duplicateMember(name)
	}
	f.seen |= 1 << k
	return nil
}

// nestedMember judges one member name of an object inside a reading or
// record (which encoding/json refuses anyway): it must appear once.
func (f *memberFrame) nestedMember(name []byte) error {
	if _, dup := f.names[string(name)]; dup {
		return duplicateMember(name)
	}
	if f.names == nil {
		f.names = map[string]struct{}{}
	}
	f.names[string(name)] = struct{}{}
	return nil
}

func duplicateMember(name []byte) error {
	return fmt.Errorf("member %q appears twice in one object: %w", name, custody.ErrInvalid)
}

// knownMembers lists the member names of the project's JSON (wireReading)
// and the SenML labels (senmlRecord); TestKnownMembers keeps it in step with
// their struct tags and with memberIndex. A name of one format in the other
// is refused by encoding/json as an unknown field.
var knownMembers = [...]string{
	"shipper", "seq", "time", "temp_c", "tilt_deg", "lid_open", "light", "battery_pct", "ln2_pct", "lat", "lon",
	"bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "v", "vs", "vb", "vd", "s", "t", "ut",
}

// memberIndex returns the index of name in knownMembers, or -1.
func memberIndex(name []byte) int {
	switch string(name) {
	case "shipper":
		return 0
	case "seq":
		return 1
	case "time":
		return 2
	case "temp_c":
		return 3
	case "tilt_deg":
		return 4
	case "lid_open":
		return 5
	case "light":
		return 6
	case "battery_pct":
		return 7
	case "ln2_pct":
		return 8
	case "lat":
		return 9
	case "lon":
		return 10
	case "bn":
		return 11
	case "bt":
		return 12
	case "bu":
		return 13
	case "bv":
		return 14
	case "bs":
		return 15
	case "bver":
		return 16
	case "n":
		return 17
	case "u":
		return 18
	case "v":
		return 19
	case "vs":
		return 20
	case "vb":
		return 21
	case "vd":
		return 22
	case "s":
		return 23
	case "t":
		return 24
	case "ut":
		return 25
	}
	return -1
}

// isProjectJSON reports whether an array element looks like the project's
// JSON rather than a SenML record.
func isProjectJSON(elem json.RawMessage) bool {
	var keys map[string]json.RawMessage
	if json.Unmarshal(elem, &keys) != nil {
		return false
	}
	_, s := keys["shipper"]
	_, t := keys["time"]
	return s || t
}

func decodeProjectArray(topicShipper string, first json.RawMessage, dec *json.Decoder, received time.Time) ([]custody.Reading, error) {
	ws := make([]wireReading, 1)
	if err := newDecoder(first).Decode(&ws[0]); err != nil {
		return nil, fmt.Errorf("element 0: %w", invalid(err))
	}
	for i := 1; dec.More(); i++ {
		if i >= MaxBatchReadings {
			return nil, fmt.Errorf("more than %d readings in one payload: %w", MaxBatchReadings, custody.ErrInvalid)
		}
		ws = append(ws, wireReading{})
		if err := dec.Decode(&ws[i]); err != nil {
			return nil, fmt.Errorf("element %d: %w", i, invalid(err))
		}
	}
	return convertProject(ws, true, topicShipper, received)
}

// EncodeJSON encodes readings in the project's JSON: the canonical encoding
// (custody.Reading.AppendCanonical) of each reading, as a single object for
// one reading and as an array otherwise. ReceivedTime is not encoded. No
// readings is an error wrapping custody.ErrInvalid, since Decode would
// reject the empty array.
func EncodeJSON(readings []custody.Reading) ([]byte, error) {
	if len(readings) == 0 {
		return nil, fmt.Errorf("encode json: no readings: %w", custody.ErrInvalid)
	}
	if len(readings) == 1 {
		return readings[0].AppendCanonical(make([]byte, 0, 192)), nil
	}
	b := make([]byte, 0, 2+len(readings)*160)
	b = append(b, '[')
	for i := range readings {
		if i > 0 {
			b = append(b, ',')
		}
		b = readings[i].AppendCanonical(b)
	}
	return append(b, ']'), nil
}
