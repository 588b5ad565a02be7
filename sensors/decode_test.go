package sensors

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

const shipper = "SHP-0042"

// received is the receive time used throughout; device times are shortly
// before it.
var received = time.Date(2026, 11, 22, 13, 5, 0, 0, time.UTC)

// t0 is 2026-11-22T13:00:00Z, 1795352400 in Unix seconds.
var t0 = time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC)

func fp(v float64) *float64 { return &v }
func bp(v bool) *bool       { return &v }

// canon renders readings for comparison: canonical encoding plus receive
// time.
func canon(rs []custody.Reading) string {
	var b strings.Builder
	for _, r := range rs {
		b.Write(r.AppendCanonical(nil))
		fmt.Fprintf(&b, " received=%s\n", r.ReceivedTime.Format(time.RFC3339Nano))
	}
	return b.String()
}

func sameReadings(t *testing.T, got, want []custody.Reading) {
	t.Helper()
	if g, w := canon(got), canon(want); g != w {
		t.Fatalf("readings:\n%s\nwant:\n%s", g, w)
	}
}

func TestDecodeProjectJSON(t *testing.T) {
	full := custody.Reading{Shipper: shipper, Seq: 1187, HasSeq: true, DeviceTime: t0, ReceivedTime: received,
		TempC: fp(-182.4), TiltDeg: fp(3.5), LidOpen: bp(false), Light: bp(false), BatteryPct: fp(88), LN2Pct: fp(71),
		Lat: fp(40.71), Lon: fp(-74.01)}
	tests := []struct {
		name    string
		payload string
		want    []custody.Reading
	}{
		{"design example", `{"shipper":"SHP-0042","seq":1187,"time":"2026-11-22T13:00:00Z","temp_c":-182.4,"tilt_deg":3.5,
			"lid_open":false,"light":false,"battery_pct":88,"ln2_pct":71,"lat":40.71,"lon":-74.01}`,
			[]custody.Reading{full}},
		{"minimal without seq", `{"shipper":"SHP-0042","time":"2026-11-22T13:00:00.123456789Z"}`,
			[]custody.Reading{{Shipper: shipper, DeviceTime: t0.Add(123456789), ReceivedTime: received}}},
		{"offset normalised to UTC", `{"shipper":"SHP-0042","time":"2026-11-22T14:00:00+01:00","temp_c":5}`,
			[]custody.Reading{{Shipper: shipper, DeviceTime: t0, ReceivedTime: received, TempC: fp(5)}}},
		{"null is absent", `{"shipper":"SHP-0042","time":"2026-11-22T13:00:00Z","temp_c":null,"seq":0}`,
			[]custody.Reading{{Shipper: shipper, HasSeq: true, DeviceTime: t0, ReceivedTime: received}}},
		{"white space around", " \n{\"shipper\":\"SHP-0042\",\"time\":\"2026-11-22T13:00:00Z\"}\r\n",
			[]custody.Reading{{Shipper: shipper, DeviceTime: t0, ReceivedTime: received}}},
		{"buffer flush array, order kept", `[
			{"shipper":"SHP-0042","seq":2,"time":"2026-11-22T13:01:00Z","temp_c":-180},
			{"shipper":"SHP-0042","seq":1,"time":"2026-11-22T13:00:00Z","temp_c":-181}]`,
			[]custody.Reading{
				{Shipper: shipper, Seq: 2, HasSeq: true, DeviceTime: t0.Add(time.Minute), ReceivedTime: received, TempC: fp(-180)},
				{Shipper: shipper, Seq: 1, HasSeq: true, DeviceTime: t0, ReceivedTime: received, TempC: fp(-181)},
			}},
		{"array of one", `[{"time":"2026-11-22T13:00:00Z","shipper":"SHP-0042","light":true}]`,
			[]custody.Reading{{Shipper: shipper, DeviceTime: t0, ReceivedTime: received, Light: bp(true)}}},
		{"escaped member name is the same name", `{"shipper":"SHP-0042","time":"2026-11-22T13:00:00Z","temp\u005fc":5}`,
			[]custody.Reading{{Shipper: shipper, DeviceTime: t0, ReceivedTime: received, TempC: fp(5)}}},
		{"clock slightly ahead", `{"shipper":"SHP-0042","time":"2026-11-22T13:09:59Z"}`,
			[]custody.Reading{{Shipper: shipper, DeviceTime: received.Add(5*time.Minute - time.Second), ReceivedTime: received}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(shipper, []byte(tt.payload), received)
			if err != nil {
				t.Fatal(err)
			}
			sameReadings(t, got, tt.want)
		})
	}
}

func TestDecodeSenML(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    []custody.Reading
	}{
		{"base name path form, one reading", `[
			{"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"Cel","v":-182.4},
			{"n":"tilt","u":"deg","v":3.5},{"n":"lid","vb":false},{"n":"light","vb":false},
			{"n":"battery","u":"%EL","v":88},{"n":"ln2","u":"/","v":0.71},
			{"n":"lat","u":"lat","v":40.71},{"n":"lon","u":"lon","v":-74.01},{"n":"seq","u":"count","v":1187}]`,
			[]custody.Reading{{Shipper: shipper, Seq: 1187, HasSeq: true, DeviceTime: t0, ReceivedTime: received,
				TempC: fp(-182.4), TiltDeg: fp(3.5), LidOpen: bp(false), Light: bp(false), BatteryPct: fp(88), LN2Pct: fp(71),
				Lat: fp(40.71), Lon: fp(-74.01)}}},
		{"urn form", `[{"bn":"urn:dev:shipper:SHP-0042:","bt":1795352400,"n":"temp","u":"Cel","v":-180}]`,
			[]custody.Reading{{Shipper: shipper, DeviceTime: t0, ReceivedTime: received, TempC: fp(-180)}}},
		{"full names without base", `[{"n":"SHP-0042/temp","u":"Cel","v":4,"t":1795352400},{"n":"SHP-0042/seq","v":9,"t":1795352400}]`,
			[]custody.Reading{{Shipper: shipper, Seq: 9, HasSeq: true, DeviceTime: t0, ReceivedTime: received, TempC: fp(4)}}},
		{"bn is the full name", `[{"bn":"SHP-0042/temp","u":"Cel","v":4,"t":1795352400}]`,
			[]custody.Reading{{Shipper: shipper, DeviceTime: t0, ReceivedTime: received, TempC: fp(4)}}},
		{"times group records, bt+t", `[
			{"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"Cel","v":-180,"t":0},
			{"n":"temp","u":"Cel","v":-179,"t":60},
			{"n":"lid","vb":true,"t":60},
			{"n":"lid","vb":false,"t":0.5}]`,
			[]custody.Reading{
				{Shipper: shipper, DeviceTime: t0, ReceivedTime: received, TempC: fp(-180)},
				{Shipper: shipper, DeviceTime: t0.Add(time.Minute), ReceivedTime: received, TempC: fp(-179), LidOpen: bp(true)},
				{Shipper: shipper, DeviceTime: t0.Add(500 * time.Millisecond), ReceivedTime: received, LidOpen: bp(false)},
			}},
		{"absolute bt with negative t", `[{"bn":"SHP-0042/","bt":1795352700,"n":"temp","u":"Cel","v":5,"t":-300},{"n":"temp","u":"Cel","v":6}]`,
			[]custody.Reading{
				{Shipper: shipper, DeviceTime: t0, ReceivedTime: received, TempC: fp(5)},
				{Shipper: shipper, DeviceTime: t0.Add(5 * time.Minute), ReceivedTime: received, TempC: fp(6)},
			}},
		{"relative bt with absolute t", `[{"bn":"SHP-0042/","bt":-60,"n":"temp","u":"Cel","v":5,"t":1795352460}]`,
			[]custody.Reading{{Shipper: shipper, DeviceTime: t0, ReceivedTime: received, TempC: fp(5)}}},
		{"microseconds kept", `[{"bn":"SHP-0042/","bt":1795352400.123456,"n":"temp","u":"Cel","v":5}]`,
			[]custody.Reading{{Shipper: shipper, DeviceTime: t0.Add(123456 * time.Microsecond), ReceivedTime: received, TempC: fp(5)}}},
		{"base unit and base value", `[{"bn":"SHP-0042/","bt":1795352400,"bu":"Cel","bv":-180,"n":"temp","v":-2.5},{"n":"lid","vb":false}]`,
			[]custody.Reading{{Shipper: shipper, DeviceTime: t0, ReceivedTime: received, TempC: fp(-182.5), LidOpen: bp(false)}}},
		{"base-only record, bver, ut", `[{"bn":"SHP-0042/","bt":1795352400,"bver":10},{"n":"battery","u":"%","v":0.5,"ut":60}]`,
			[]custody.Reading{{Shipper: shipper, DeviceTime: t0, ReceivedTime: received, BatteryPct: fp(50)}}},
		{"base name changes", `[{"bn":"urn:dev:shipper:SHP-0042:","bt":1795352400,"n":"temp","u":"Cel","v":5},{"bn":"SHP-0042/","n":"lid","vb":true}]`,
			[]custody.Reading{{Shipper: shipper, DeviceTime: t0, ReceivedTime: received, TempC: fp(5), LidOpen: bp(true)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(shipper, []byte(tt.payload), received)
			if err != nil {
				t.Fatal(err)
			}
			sameReadings(t, got, tt.want)
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	obj := func(extra string) string {
		return `{"shipper":"SHP-0042","time":"2026-11-22T13:00:00Z"` + extra + `}`
	}
	var big bytes.Buffer
	big.WriteString("[")
	for i := 0; big.Len() < MaxPayloadBytes; i++ {
		if i > 0 {
			big.WriteString(",")
		}
		big.WriteString(obj(`,"seq":` + fmt.Sprint(i)))
	}
	big.WriteString("]")
	var many bytes.Buffer
	many.WriteString("[")
	for i := range MaxBatchReadings + 1 {
		if i > 0 {
			many.WriteString(",")
		}
		fmt.Fprintf(&many, `{"shipper":"SHP-0042","seq":%d,"time":"2026-11-22T13:00:00Z"}`, i)
	}
	many.WriteString("]")
	var manySenML bytes.Buffer
	manySenML.WriteString(`[{"bn":"SHP-0042/","bt":1795352400}`)
	for i := range MaxBatchReadings + 1 {
		fmt.Fprintf(&manySenML, `,{"n":"temp","u":"Cel","v":5,"t":%d}`, -i)
	}
	manySenML.WriteString("]")

	var wide strings.Builder // a nested object with many distinct names
	wide.WriteString(`{"shipper":"SHP-0042","time":"2026-11-22T13:00:00Z","temp_c":{"k0":0`)
	for i := 1; wide.Len() < MaxPayloadBytes-100; i++ {
		fmt.Fprintf(&wide, `,"k%d":0`, i)
	}
	wide.WriteString("}}")

	tests := []struct {
		name    string
		payload string
		want    string // substring of the error
	}{
		// Both formats.
		{"deep nesting", strings.Repeat("[", MaxPayloadBytes), "element 0"},
		{"deep nesting in a reading", obj(`,"temp_c":` + strings.Repeat(`{"a":`, 100000)), "exceeded max depth"},
		{"nested object with many names", wide.String(), "temp_c"},
		{"empty payload", ``, "empty payload"},
		{"white space only", " \n ", "empty payload"},
		{"empty array", ` [ ] `, "empty array"},
		{"not object or array", `"SHP-0042"`, "not a JSON object or array"},
		{"number", `42`, "not a JSON object or array"},
		{"oversized", big.String(), "exceeds"},
		{"too many readings", many.String(), "more than 10000 readings"},
		{"too many senml readings", manySenML.String(), "more than 10000 readings"},
		// Project JSON.
		{"malformed json", `{"shipper":"SHP-0042","time":`, "unexpected EOF"},
		{"truncated array", `[` + obj(``) + `,`, "element 1"},
		{"trailing data", obj(``) + `{}`, "after the top-level"},
		{"trailing garbage after array", `[` + obj(``) + `]x`, ""},
		{"unknown member", obj(`,"temperature":5`), `unknown member "temperature"`},
		{"wrong type", obj(`,"temp_c":"5"`), "temp_c"},
		{"negative seq", obj(`,"seq":-1`), "seq"},
		{"fractional seq", obj(`,"seq":1.5`), "seq"},
		{"seq beyond 2^53", obj(`,"seq":9007199254740992`), "seq"},
		{"shipper missing", `{"time":"2026-11-22T13:00:00Z"}`, "shipper missing"},
		{"time missing", `{"shipper":"SHP-0042","temp_c":1}`, "time missing"},
		{"time not RFC 3339", `{"shipper":"SHP-0042","time":"22/11/2026 13:00"}`, "not RFC 3339"},
		{"time as number", `{"shipper":"SHP-0042","time":1795352400}`, "time"},
		{"below absolute zero", obj(`,"temp_c":-273.2`), "below absolute zero"},
		{"far-future time", `{"shipper":"SHP-0042","time":"2026-11-22T13:10:01Z"}`, "in the future"},
		{"before 2000", `{"shipper":"SHP-0042","time":"1970-01-01T00:00:00Z"}`, "before 2000"},
		{"tilt out of range", obj(`,"tilt_deg":190`), "tilt_deg"},
		{"number overflow", obj(`,"temp_c":1e400`), "temp_c"},
		{"shipper mismatch", `{"shipper":"SHP-0043","time":"2026-11-22T13:00:00Z"}`, `does not match topic shipper`},
		{"mixed valid and invalid batch", `[` + obj(`,"seq":1`) + `,` + obj(`,"seq":2,"temp_c":-300`) + `,` + obj(`,"seq":3`) + `]`,
			"element 1: validate reading: temp_c -300 below absolute zero"},
		{"mismatch in batch", `[` + obj(`,"seq":1`) + `,{"shipper":"SHP-9","time":"2026-11-22T13:00:00Z"}]`, "element 1: shipper"},
		{"array of non-objects", `[` + obj(``) + `,1]`, "element 1"},
		// SenML.
		{"senml unknown unit", `[{"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"%RH","v":90}]`, `unit "%RH": coid cannot convert it to what temp records (accepted: "Cel" or "K")`},
		{"senml fahrenheit", `[{"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"degF","v":41}]`, "unit"},
		{"senml missing unit", `[{"bn":"SHP-0042/","bt":1795352400,"n":"temp","v":4}]`, `unit none: coid cannot convert`},
		{"senml unit on boolean", `[{"bn":"SHP-0042/","bt":1795352400,"n":"lid","u":"%","vb":true}]`, "unit"},
		{"senml unknown name", `[{"bn":"SHP-0042/","bt":1795352400,"n":"humidity","u":"%RH","v":40}]`, `"humidity" is not a quantity coid records`},
		{"senml name without shipper", `[{"bt":1795352400,"n":"temp","u":"Cel","v":4}]`, "neither"},
		{"senml nested name", `[{"bt":1795352400,"n":"SHP-0042/temp/x","u":"Cel","v":4}]`, `"temp/x" is not a quantity`},
		{"senml unknown label", `[{"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"Cel","v":4,"foo_":1}]`, `senml record 0: label "foo_" must be understood`},
		{"senml string value", `[{"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"Cel","vs":"4"}]`, "no record coid uses; senml record 0 (\"SHP-0042/temp\"): a string or data value"},
		{"senml sum", `[{"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"Cel","s":4}]`, "a sum (s) without a value"},
		{"senml version", `[{"bver":11,"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"Cel","v":4}]`, "version"},
		{"senml no value", `[{"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"Cel"}]`, "no value"},
		{"senml both values", `[{"bn":"SHP-0042/","bt":1795352400,"n":"lid","v":1,"vb":true}]`, "more than one value"},
		{"senml bool for number", `[{"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"Cel","vb":true}]`, "temp takes a number (v)"},
		{"senml number for bool", `[{"bn":"SHP-0042/","bt":1795352400,"n":"lid","v":1}]`, "lid takes a boolean (vb)"},
		{"senml below absolute zero", `[{"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"Cel","v":-280}]`, "below absolute zero"},
		{"senml far-future time", `[{"bn":"SHP-0042/","bt":1795353001,"n":"temp","u":"Cel","v":4}]`, "in the future"},
		{"senml time overflow", `[{"bn":"SHP-0042/","bt":1e300,"n":"temp","u":"Cel","v":4}]`, "out of range"},
		{"senml shipper mismatch", `[{"bn":"urn:dev:shipper:SHP-0043:","bt":1795352400,"n":"temp","u":"Cel","v":4}]`, "does not match topic shipper"},
		{"senml duplicate quantity", `[{"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"Cel","v":4},{"n":"temp","u":"Cel","v":5}]`, "two different temp values"},
		{"senml fractional seq", `[{"bn":"SHP-0042/","bt":1795352400,"n":"seq","v":1.5}]`, "seq"},
		{"senml lat without lon", `[{"bn":"SHP-0042/","bt":1795352400,"n":"lat","u":"lat","v":40}]`, "together"},
		{"senml mixed valid and invalid", `[{"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"Cel","v":4},{"n":"temp","u":"Cel","v":4,"t":60},{"n":"temp","u":"Cel","v":"x","t":120}]`, "senml record 2"},
		{"senml record not object", `[{"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"Cel","v":4},[]]`, "senml record 1"},
		{"senml base fields only", `[{"bn":"SHP-0042/","bt":1795352400}]`, "no record coid uses"},
		{"empty object in array", `[{}]`, "element 0"},
		{"senml malformed", `[{"bn":"SHP-0042/",}]`, "element 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := Decode(shipper, []byte(tt.payload), received)
			if err == nil {
				t.Fatalf("Decode accepted %d readings", len(rs))
			}
			if rs != nil {
				t.Errorf("Decode returned %d readings with its error", len(rs))
			}
			if !errors.Is(err, custody.ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
			if !strings.HasPrefix(err.Error(), "decode telemetry: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want prefix and %q", err, tt.want)
			}
		})
	}
}

// TestDecodeSenMLNeedsAbsoluteTime: a reading without seq is identified by
// its device time, and rules judge readings by device time, so a SenML
// record whose time is missing or relative (RFC 8428 reads both against the
// receiver's clock) is refused rather than stamped with the receive time.
func TestDecodeSenMLNeedsAbsoluteTime(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    string // substring of the error
	}{
		{"no time at all", `[{"bn":"SHP-0042/","n":"temp","u":"Cel","v":-20}]`, "senml record 0: no time (bt or t)"},
		{"no time, with seq", `[{"bn":"SHP-0042/","n":"seq","v":7},{"n":"temp","u":"Cel","v":-20}]`, "senml record 0: no time"},
		{"relative t", `[{"bn":"SHP-0042/","n":"temp","u":"Cel","v":5,"t":-300}]`, "time -300 is relative"},
		{"relative t in the future", `[{"bn":"SHP-0042/","n":"temp","u":"Cel","v":4,"t":301}]`, "time 301 is relative"},
		{"relative bt", `[{"bn":"SHP-0042/","bt":1000,"n":"temp","u":"Cel","v":5}]`, "time 1000 is relative"},
		{"bt of zero", `[{"bn":"SHP-0042/","bt":0,"n":"temp","u":"Cel","v":5}]`, "time 0 is relative"},
		{"just below 2^28", `[{"bn":"SHP-0042/","bt":268435455.5,"n":"temp","u":"Cel","v":5}]`, "is relative"},
		{"huge negative bt", `[{"bn":"SHP-0042/","bt":-1e300,"n":"temp","u":"Cel","v":4}]`, "is relative"},
		{"absolute bt, t taking it below 2^28", `[{"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"Cel","v":5,"t":-1795352400}]`,
			"time 0 is relative"},
		{"second record without time", `[{"n":"SHP-0042/temp","u":"Cel","v":4,"t":1795352400},{"n":"SHP-0042/lid","vb":true}]`,
			"senml record 1: no time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := Decode(shipper, []byte(tt.payload), received)
			if err == nil || rs != nil {
				t.Fatalf("Decode = %d readings, %v; want a refusal", len(rs), err)
			}
			if !errors.Is(err, custody.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %q, want ErrInvalid and %q", err, tt.want)
			}
		})
	}
}

// TestDecodeSameAtAnyReceiveTime: a QoS 1 redelivery, or a backlog
// delivered after an outage, decodes to the same readings (the same
// identities and device times) whenever it arrives.
func TestDecodeSameAtAnyReceiveTime(t *testing.T) {
	payloads := map[string]string{
		"json": `[{"shipper":"SHP-0042","time":"2026-11-22T13:00:00Z","temp_c":-20},{"shipper":"SHP-0042","time":"2026-11-22T13:01:00Z","lid_open":true}]`,
		"senml": `[{"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"Cel","v":-20},
			{"n":"lid","vb":true,"t":60},{"n":"temp","u":"Cel","v":-150,"t":120}]`,
	}
	for name, p := range payloads {
		t.Run(name, func(t *testing.T) {
			first, err := Decode(shipper, []byte(p), received)
			if err != nil {
				t.Fatal(err)
			}
			for _, later := range []time.Duration{90 * time.Second, 6 * time.Hour} {
				again, err := Decode(shipper, []byte(p), received.Add(later))
				if err != nil {
					t.Fatal(err)
				}
				for i := range again {
					again[i].ReceivedTime = received
				}
				sameReadings(t, again, first)
			}
		})
	}
}

// TestDecodeRefusesAmbiguousMembers: a payload must mean one thing. A
// member repeated in one object, or a member name that is only a case
// variant of a documented one, is refused on both decoding paths (the fast
// one declines it and the encoding/json one refuses it), never resolved to
// one of the values.
func TestDecodeRefusesAmbiguousMembers(t *testing.T) {
	obj := `{"shipper":"SHP-0042","time":"2026-11-22T13:00:00Z"`
	rec := `{"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"Cel"`
	tests := []struct {
		name    string
		payload string
		want    string // substring of the error
	}{
		{"repeated member", obj + `,"temp_c":-20,"temp_c":-180}`, `member "temp_c" appears twice`},
		{"repeated member, first null", obj + `,"temp_c":null,"temp_c":-180}`, `member "temp_c" appears twice`},
		{"repeated required member", `{"shipper":"SHP-0042","time":"2026-11-22T13:00:00Z","time":"2026-11-22T12:00:00Z"}`,
			`member "time" appears twice`},
		{"repeat spelt with an escape", obj + `,"temp_c":-20,"temp\u005fc":-180}`, `member "temp_c" appears twice`},
		{"member in upper case beside the real one", obj + `,"temp_c":-20,"TEMP_C":-180}`,
			`member "TEMP_C" is not "temp_c": member names are case-sensitive`},
		{"member only in upper case", obj + `,"TEMP_C":-180}`, `member "TEMP_C" is not "temp_c"`},
		{"Unicode case folding, escaped", obj + `,"\u017feq":1}`, `member "ſeq" is not "seq"`},
		{"required member capitalised", `{"Shipper":"SHP-0042","time":"2026-11-22T13:00:00Z"}`, `member "Shipper" is not "shipper"`},
		{"Unicode case folding (long s)", `{"ſhipper":"SHP-0042","time":"2026-11-22T13:00:00Z"}`, `is not "shipper"`},
		{"repeat in the second element", `[` + obj + `},` + obj + `,"seq":1,"seq":2}]`, `element 1: member "seq" appears twice`},
		{"case variant in the second element", `[` + obj + `},` + obj + `,"Lid_Open":true}]`, `element 1: member "Lid_Open" is not "lid_open"`},
		{"repeat in a nested object", obj + `,"temp_c":{"v":1,"v":2}}`, `member "v" appears twice`},
		{"senml repeated value", `[` + rec + `,"v":-20,"v":-180}]`, `senml record 0: label "v" appears twice`},
		{"senml repeat spelt with an escape", `[` + rec + `,"v":-20,"\u0076":-180}]`, `senml record 0: label "v" appears twice`},
		{"senml repeat in a later record", `[` + rec + `,"v":-180},{"n":"lid","vb":false,"vb":true}]`, `senml record 1: label "vb" appears twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := Decode(shipper, []byte(tt.payload), received)
			if err == nil || rs != nil {
				t.Fatalf("Decode = %d readings, %v; want a refusal", len(rs), err)
			}
			if !errors.Is(err, custody.ErrInvalid) || !strings.HasPrefix(err.Error(), "decode telemetry: ") ||
				!strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %q, want ErrInvalid and %q", err, tt.want)
			}
			if _, _, ok := fastProject([]byte(tt.payload), shipper); ok {
				t.Fatal("the fast path took an ambiguous payload")
			}
		})
	}
}

// TestKnownMembers keeps the names checkMembers accepts in step with the
// struct tags encoding/json decodes into.
func TestKnownMembers(t *testing.T) {
	var tags []string
	for _, v := range []any{wireReading{}, senmlRecord{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			tags = append(tags, tag)
		}
	}
	slices.Sort(tags)
	known := slices.Sorted(slices.Values(knownMembers[:]))
	if !slices.Equal(known, tags) {
		t.Fatalf("knownMembers %v, struct tags %v", known, tags)
	}
	if len(knownMembers) > 32 {
		t.Fatalf("%d known members do not fit checkMembers' uint32 bit set", len(knownMembers))
	}
	for i, n := range knownMembers {
		if got := memberIndex([]byte(n)); got != i {
			t.Errorf("memberIndex(%q) = %d, want %d", n, got, i)
		}
	}
	for _, n := range []string{"", "Temp_c", "temp", "shipper ", "T", "vB"} {
		if got := memberIndex([]byte(n)); got != -1 {
			t.Errorf("memberIndex(%q) = %d, want -1", n, got)
		}
	}
}

func TestDecodeArguments(t *testing.T) {
	p := []byte(`{"shipper":"SHP-0042","time":"2026-11-22T13:00:00Z"}`)
	if _, err := Decode("SHP/0042", p, received); !errors.Is(err, custody.ErrInvalid) {
		t.Errorf("bad topic shipper: err = %v", err)
	}
	if _, err := Decode(shipper, p, time.Time{}); !errors.Is(err, custody.ErrInvalid) {
		t.Errorf("zero receive time: err = %v", err)
	}
	// A receive time in another zone with a monotonic reading is stored in UTC.
	local := time.Now().In(time.FixedZone("X", 7200))
	rs, err := Decode(shipper, []byte(`{"shipper":"SHP-0042","time":"`+local.UTC().Format(time.RFC3339)+`"}`), local)
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].ReceivedTime.Location() != time.UTC || rs[0].ReceivedTime != local.UTC() {
		t.Errorf("received = %v", rs[0].ReceivedTime)
	}
}

func TestTopics(t *testing.T) {
	if got := TelemetryTopic(DefaultTopicPrefix, shipper); got != "shippers/SHP-0042/telemetry" {
		t.Errorf("TelemetryTopic = %s", got)
	}
	if got := SubscriptionFilter("coid/shippers"); got != "coid/shippers/+/telemetry" {
		t.Errorf("SubscriptionFilter = %s", got)
	}
	tests := []struct {
		prefix, topic, want string
	}{
		{"shippers", "shippers/SHP-0042/telemetry", "SHP-0042"},
		{"coid/shippers", "coid/shippers/SHP-0042/telemetry", "SHP-0042"},
		{"shippers", "shippers/SHP-0042/status", ""},
		{"shippers", "other/SHP-0042/telemetry", ""},
		{"shippers", "shippers/a/b/telemetry", ""},
		{"shippers", "shippers//telemetry", ""},
		{"shippers", "shippers/+/telemetry", ""},
	}
	for _, tt := range tests {
		t.Run(tt.topic, func(t *testing.T) {
			got, err := ShipperFromTopic(tt.prefix, tt.topic)
			if tt.want == "" {
				if !errors.Is(err, custody.ErrInvalid) {
					t.Fatalf("ShipperFromTopic = %q, %v; want ErrInvalid", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ShipperFromTopic = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	rs := []custody.Reading{
		{Shipper: shipper, Seq: 1187, HasSeq: true, DeviceTime: t0, ReceivedTime: received,
			TempC: fp(-182.4), TiltDeg: fp(3.5), LidOpen: bp(false), Light: bp(true), BatteryPct: fp(88), LN2Pct: fp(71),
			Lat: fp(40.71), Lon: fp(-74.01)},
		{Shipper: shipper, DeviceTime: t0.Add(1500 * time.Microsecond), ReceivedTime: received, TempC: fp(1e-7)},
		{Shipper: shipper, Seq: custody.MaxSeq, HasSeq: true, DeviceTime: t0.Add(-time.Hour), ReceivedTime: received},
	}
	for name, enc := range map[string]func([]custody.Reading) ([]byte, error){"json": EncodeJSON, "senml": EncodeSenML} {
		t.Run(name, func(t *testing.T) {
			for _, in := range [][]custody.Reading{rs, rs[:1]} {
				b, err := enc(in)
				if err != nil {
					t.Fatal(err)
				}
				got, err := Decode(shipper, b, received)
				if err != nil {
					t.Fatalf("%s: %v", b, err)
				}
				if name == "senml" {
					custody.SortReadings(got) // SenML groups by time
					in = append([]custody.Reading(nil), in...)
					custody.SortReadings(in)
				}
				sameReadings(t, got, in)
			}
			if _, err := enc(nil); !errors.Is(err, custody.ErrInvalid) {
				t.Errorf("no readings: err = %v", err)
			}
		})
	}
	if _, err := EncodeSenML([]custody.Reading{{Shipper: shipper, DeviceTime: t0}}); !errors.Is(err, custody.ErrInvalid) {
		t.Errorf("reading without values: err = %v", err)
	}
}

// TestSharedFilter: the shared subscription's filter, and the group names
// accepted.
func TestSharedFilter(t *testing.T) {
	if got := SharedFilter("", "coid"); got != "coid/+/telemetry" {
		t.Errorf("no group: %q", got)
	}
	if got := SharedFilter("ingest", "coid"); got != "$share/ingest/coid/+/telemetry" {
		t.Errorf("group: %q", got)
	}
	for _, tc := range []struct {
		group string
		ok    bool
	}{
		{"ingest", true}, {"coid-prod_1.eu", true}, {"", false}, {"a/b", false}, {"a+", false}, {"#", false},
		{"a b", false}, {strings.Repeat("g", 64), true}, {strings.Repeat("g", 65), false},
	} {
		if got := ValidShareGroup(tc.group); got != tc.ok {
			t.Errorf("ValidShareGroup(%q) = %v, want %v", tc.group, got, tc.ok)
		}
	}
}
