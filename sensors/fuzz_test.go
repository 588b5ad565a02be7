package sensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// checkDecoded asserts the decoder's properties for any payload: a rejected
// payload yields no readings and an ErrInvalid; an accepted one yields at
// least one reading, each valid, from the topic's shipper, stamped with the
// receive time, and the readings survive a round trip through the project's
// JSON unchanged, and through SenML when they have a SenML form (always so
// for readings decoded from SenML).
func checkDecoded(t *testing.T, payload []byte) {
	rs, err := Decode(shipper, payload, received)
	if err != nil {
		if rs != nil {
			t.Fatalf("rejected payload returned %d readings", len(rs))
		}
		if !errors.Is(err, custody.ErrInvalid) {
			t.Fatalf("rejection %v does not wrap ErrInvalid", err)
		}
		return
	}
	if len(rs) == 0 {
		t.Fatal("accepted payload gave no readings and no error")
	}
	for i, r := range rs {
		if err := r.Validate(received); err != nil {
			t.Fatalf("reading %d does not validate: %v", i, err)
		}
		if r.Shipper != shipper || !r.ReceivedTime.Equal(received) {
			t.Fatalf("reading %d: shipper %q received %v", i, r.Shipper, r.ReceivedTime)
		}
	}
	if m := ambiguousMember(payload); m != "" {
		t.Fatalf("accepted a payload with %s", m)
	}
	// Device times, and so identities, come from the payload alone: a
	// redelivery hours later decodes to the same readings.
	later, err := Decode(shipper, payload, received.Add(6*time.Hour))
	if err != nil {
		t.Fatalf("accepted at %v, rejected six hours later: %v", received, err)
	}
	for i := range later {
		later[i].ReceivedTime = received
	}
	sameReadings(t, later, rs)
	enc, err := EncodeJSON(rs)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(shipper, enc, received)
	if err != nil {
		t.Fatalf("re-encoded JSON rejected: %v\n%s", err, enc)
	}
	sameReadings(t, back, rs)
	if !senmlForm(rs) {
		return
	}
	enc, err = EncodeSenML(rs)
	if err != nil {
		t.Fatal(err)
	}
	back, err = Decode(shipper, enc, received)
	if err != nil {
		t.Fatalf("re-encoded SenML rejected: %v\n%s", err, enc)
	}
	sameReadings(t, back, rs)
}

// documentedMembers is the set of member names of the project's JSON and
// the SenML labels, read from the struct tags encoding/json decodes into.
var documentedMembers = func() map[string]bool {
	m := map[string]bool{}
	for _, v := range []any{wireReading{}, senmlRecord{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			m[tag] = true
		}
	}
	return m
}()

// ambiguousMember walks a well-formed payload with encoding/json's tokenizer
// and describes the first member name that is repeated in its object, or
// that is not exactly a documented name in a reading (an object at the top
// level or in the top-level array); "" if there is none. In a SenML pack
// (an array whose first element is not a reading of the project's JSON),
// where unknown labels are ignored, only a known label repeated in a record
// or a label ending in "_" is.
func ambiguousMember(payload []byte) string {
	senml := isSenMLPayload(payload)
	type frame struct {
		object, keyNext bool
		names           map[string]bool
	}
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(payload))
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if name, ok := tok.(string); ok && top != nil && top.object && top.keyNext {
			top.keyNext = false
			reading := len(stack) == 1 || len(stack) == 2 && !stack[0].object
			switch {
			case senml && !(len(stack) == 2 && !stack[0].object):
				// SenML ignores what is not a record's known label.
			case senml && top.names[name] && documentedMembers[name]:
				return fmt.Sprintf("label %q twice in one record", name)
			case senml && strings.HasSuffix(name, "_"):
				return fmt.Sprintf("label %q, which must be understood", name)
			case senml:
			case top.names[name]:
				return fmt.Sprintf("member %q twice in one object", name)
			case reading && !documentedMembers[name]:
				return fmt.Sprintf("member %q, not a documented name", name)
			}
			top.names[name] = true
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			stack = append(stack, &frame{object: tok == json.Delim('{'), keyNext: true, names: map[string]bool{}})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 { // a value ended: the parent object wants a key
			stack[len(stack)-1].keyNext = true
		}
	}
}

// isSenMLPayload tells a SenML pack as Decode does: an array whose first
// element is not a reading of the project's JSON.
func isSenMLPayload(payload []byte) bool {
	var elems []json.RawMessage
	if json.Unmarshal(payload, &elems) != nil || len(elems) == 0 {
		return false
	}
	var keys map[string]json.RawMessage
	if json.Unmarshal(elems[0], &keys) != nil {
		return true
	}
	_, s := keys["shipper"]
	_, t := keys["time"]
	return !s && !t
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"shipper":"SHP-0042","seq":1187,"time":"2026-11-22T13:00:00Z","temp_c":-182.4,"tilt_deg":3.5,"lid_open":false,"battery_pct":88,"ln2_pct":71,"lat":40.71,"lon":-74.01}`,
		`{"shipper":"SHP-0042","time":"2026-11-22T13:00:00.123456789+02:00","light":true}`,
		`[{"shipper":"SHP-0042","seq":1,"time":"2026-11-22T13:00:00Z","temp_c":-180},{"shipper":"SHP-0042","seq":2,"time":"2026-11-22T13:01:00Z","temp_c":-181e0}]`,
		`[{"shipper":"SHP-0042","seq":1,"time":"2026-11-22T13:00:00Z"},{"shipper":"SHP-0042","seq":1,"time":"2026-11-22T13:00:00Z"}]`,
		`{"shipper":"SHP-0042","time":"2026-11-22T13:00:00Z","temp_c":-273.16}`,
		`{"shipper":"SHP-0043","time":"2026-11-22T13:00:00Z"}`,
		`{"shipper":"SHP-0042","time":"2027-11-22T13:00:00Z"}`,
		`[]`, `{}`, `[1]`, `null`, `{"shipper":"SHP-0042","time":"2026-11-22T13:00:00Z","temp_c":0.0000001,"seq":9007199254740991}`,
		`{"shipper":"SHP-0042","time":"2026-11-22T13:00:00Z","temp_c":-20,"TEMP_C":-180}`,
		`{"shipper":"SHP-0042","time":"2026-11-22T13:00:00Z","temp_c":-20,"temp\u005fc":-180}`,
		`[{"shipper":"SHP-0042","time":"2026-11-22T13:00:00Z"},{"shipper":"SHP-0042","time":"2026-11-22T13:00:00Z","Seq":1}]`,
		`{"shipper":"SHP-0042","time":"2026-11-22T13:00:00Z","temp_c":{"a":1,"a":2}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		checkDecoded(t, payload)
	})
}

func FuzzDecodeSenML(f *testing.F) {
	for _, s := range []string{
		`[{"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"Cel","v":-182.4},{"n":"tilt","u":"deg","v":3.5},{"n":"lid","vb":false},{"n":"seq","v":7}]`,
		`[{"bn":"urn:dev:shipper:SHP-0042:","bt":1795352400.5,"n":"temp","u":"Cel","v":4,"t":-60},{"n":"temp","u":"Cel","v":5}]`,
		`[{"bn":"SHP-0042/","n":"battery","u":"%EL","v":50,"t":-10},{"n":"ln2","u":"%","v":20,"t":-10},{"n":"light","vb":true}]`,
		`[{"bn":"SHP-0042/","bt":1795352400,"bu":"Cel","bv":-180,"n":"temp","v":1},{"n":"lat","u":"lat","v":1},{"n":"lon","u":"lon","v":2}]`,
		`[{"bn":"SHP-0042/","bt":1795352400,"bver":10},{"n":"temp","u":"K","v":90}]`,
		`[{"n":"SHP-0042/temp","u":"Cel","v":-300,"t":1795352400}]`,
		`[{"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"Cel","v":4},{"n":"temp","u":"Cel","v":4}]`,
		`[{"bn":"SHP-0042/","bt":1795352400.000001,"n":"seq","u":"count","v":9007199254740991}]`,
		`[{"bn":"SHP-0042/","n":"temp","u":"Cel","v":-20}]`,
		`[{"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"Cel","v":-20,"V":-180}]`,
		`[{"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"Cel","v":-20},{"n":"lid","vb":false,"vb":true}]`,
		`[{"bn":"SHP-0042/","bt":1795352400,"n":"ln2","u":"/","v":0.71},{"n":"battery","u":"%","v":1e-1},{"n":"note","vs":"x"},{"n":"x","vd":"AA"}]`,
		`[{"bn":"SHP-0042/","bt":1795352400,"bv":0.25,"n":"ln2","u":"%","v":0.5},{"n":"temp","u":"K","v":77.35,"s":1},{"n":"tilt","u":"rad","v":0.1}]`,
		`[{"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"Cel","v":4,"foo":{"a":[1,{"b":"]"}]},"ext_":1}]`,
		`[{"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"Cel","v":4,"\u0076":5,"N":"x"},{"n":"temp","u":"Cel","v":4}]`,
		`[{"bn":"SHP-0042/","bt":1795352400,"n":"ln2","u":"%","v":71},{"n":"temp","u":"degF","v":4,"t":1}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		checkDecoded(t, payload)
	})
}

// senmlForm reports whether readings survive EncodeSenML unchanged: each has
// a measurement or a seq, and their device times are distinct whole
// microseconds (SenML groups records by time).
func senmlForm(rs []custody.Reading) bool {
	seen := map[int64]bool{}
	for _, r := range rs {
		ns := r.DeviceTime.UnixNano()
		if ns%1000 != 0 || seen[ns] {
			return false
		}
		seen[ns] = true
		if !r.HasSeq && r.TempC == nil && r.TiltDeg == nil && r.LidOpen == nil && r.Light == nil &&
			r.BatteryPct == nil && r.LN2Pct == nil && r.Lat == nil && r.Lon == nil {
			return false
		}
	}
	return true
}

// TestSenMLDecodedAlwaysHasSenMLForm pins the assumption FuzzDecodeSenML
// relies on: whatever Decode accepts as SenML can be encoded back.
func TestSenMLDecodedAlwaysHasSenMLForm(t *testing.T) {
	rs, err := Decode(shipper, []byte(`[{"bn":"SHP-0042/","bt":1795352400.1234564,"n":"temp","u":"Cel","v":4,"t":-0.0000004},{"n":"lid","vb":true,"t":-1e-9}]`), received)
	if err != nil {
		t.Fatal(err)
	}
	if !senmlForm(rs) {
		t.Fatalf("decoded SenML readings %v lack a SenML form", canon(rs))
	}
}

// FuzzFastProject checks the reflection-free project-JSON decoder against
// encoding/json: whenever the fast path takes a payload, it must accept or
// reject it as the encoding/json path does, with the same readings.
func FuzzFastProject(f *testing.F) {
	for _, s := range []string{
		`{"shipper":"SHP-0042","seq":1187,"time":"2026-11-22T13:00:00Z","temp_c":-182.4,"tilt_deg":3.5,"lid_open":false,"light":true,"battery_pct":88,"ln2_pct":71,"lat":40.71,"lon":-74.01}`,
		` [ {"shipper":"SHP-0042","time":"2026-11-22T13:00:00.5Z","temp_c":-1.5e2} , {"time":"2026-11-22T13:00:01Z","shipper":"SHP-0042","seq":0} ] `,
		`{"shipper":"SHP-0042","time":"2026-11-22T13:00:00Z","temp_c":1,"temp_c":2}`,
		`{"shipper":"SHP-0042","time":"2026-11-22T13:00:00Z","temp_c":1,"TEMP_C":2}`,
		`{"shipper":"SHP-0042","time":"2026-11-22T13:00:00Z","seq":18446744073709551615}`,
		`{"shipper":"SHP-0042","time":"2026-11-22T13:00:00Z","temp_c":-0}`,
		`{"shipper":"SHP-0043","time":"2026-11-22T13:00:00Z"}`,
		`[{"temp_c":1}]`, `{}`, `[{}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		ws, isArray, ok := fastProject(payload, shipper)
		if !ok {
			return
		}
		fast, ferr := convertProject(ws, isArray, shipper, received)
		var slow []custody.Reading
		var serr error
		body := bytes.TrimLeft(payload, " \t\r\n")
		if body[0] == '{' {
			slow, serr = decodeObject(shipper, body, received)
		} else {
			slow, _, serr = decodeArray(shipper, body, received)
		}
		if (ferr == nil) != (serr == nil) {
			t.Fatalf("fast path err %v, encoding/json err %v", ferr, serr)
		}
		if ferr == nil {
			sameReadings(t, fast, slow)
			if m := ambiguousMember(payload); m != "" {
				t.Fatalf("the fast path accepted a payload with %s", m)
			}
		}
	})
}
