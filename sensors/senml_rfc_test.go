package sensors

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// rd builds a reading of the test shipper at t0+sec.
func rd(sec float64, set func(r *custody.Reading)) custody.Reading {
	r := custody.Reading{Shipper: shipper, DeviceTime: t0.Add(time.Duration(sec * float64(time.Second))), ReceivedTime: received}
	if set != nil {
		set(&r)
	}
	return r
}

func temp(c float64) func(*custody.Reading) { return func(r *custody.Reading) { r.TempC = fp(c) } }

// senmlExample is one SenML pack and what coid must make of it: the
// readings stored (in payload order), or a refusal naming why; and how many
// records it leaves out as unused.
type senmlExample struct {
	name    string
	payload string
	want    []custody.Reading
	refused string // substring of the error; "" when stored
	skipped int
}

func checkSenMLExamples(t *testing.T, tests []senmlExample) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, skipped, err := DecodeDetail(shipper, []byte(tt.payload), received)
			if tt.refused != "" {
				if err == nil || rs != nil || !errors.Is(err, custody.ErrInvalid) || !strings.Contains(err.Error(), tt.refused) {
					t.Fatalf("got %d readings, err %v; want a refusal with %q", len(rs), err, tt.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sameReadings(t, rs, tt.want)
			if len(skipped) != tt.skipped {
				t.Errorf("skipped %d records (%v), want %d", len(skipped), skipped, tt.skipped)
			}
			for _, s := range skipped {
				if s.Reason == "" || s.Name == "" {
					t.Errorf("skipped record without a name or reason: %+v", s)
				}
			}
		})
	}
}

// TestSenMLRFC8428Examples: the examples of RFC 8428 sections 5.1.1 to
// 5.1.7, with a shipper's base name (and, where the RFC's device measures
// something coid does not, with one of coid's quantities beside it), each
// stored or refused as the RFC and coid's rules require. The RFC reads a
// pack without a time as "now"; coid refuses it, since a reading must carry
// its own device time.
func TestSenMLRFC8428Examples(t *testing.T) {
	const bt = "1795352400" // t0
	resolved512 := []custody.Reading{
		rd(0, func(r *custody.Reading) { r.TiltDeg = fp(12.1); r.TempC = fp(-181.7) }),
		rd(-5, temp(-181.2)), rd(-4, temp(-181.3)), rd(-3, temp(-181.4)), rd(-2, temp(-181.5)), rd(-1, temp(-181.6)),
	}
	checkSenMLExamples(t, []senmlExample{
		{name: "5.1.1 single datapoint, no time", payload: `[{"n":"SHP-0042/temp","u":"Cel","v":23.1}]`,
			refused: "no time (bt or t)"},
		{name: "5.1.1 single datapoint with its time", payload: `[{"n":"urn:dev:shipper:SHP-0042:temp","u":"Cel","v":23.1,"t":` + bt + `}]`,
			want: []custody.Reading{rd(0, temp(23.1))}},
		{name: "5.1.2 multiple datapoints coid does not record", payload: `[{"bn":"SHP-0042/","n":"voltage","u":"V","v":120.1},{"n":"current","u":"A","v":1.2}]`,
			refused: `no record coid uses; senml record 0 ("SHP-0042/voltage"): "voltage" is not a quantity coid records; senml record 1`},
		{name: "5.1.2 multiple datapoints, base time, unit and version", payload: `[
			{"bn":"SHP-0042/","bt":` + bt + `,"bu":"Cel","bver":5,"n":"voltage","u":"V","v":120.1},
			{"n":"tilt","u":"deg","v":12.1},
			{"n":"temp","t":-5,"v":-181.2},{"n":"temp","t":-4,"v":-181.3},{"n":"temp","t":-3,"v":-181.4},
			{"n":"temp","t":-2,"v":-181.5},{"n":"temp","t":-1,"v":-181.6},{"n":"temp","v":-181.7}]`,
			want: resolved512, skipped: 1},
		{name: "5.1.3 multiple measurements", payload: `[
			{"bn":"SHP-0042/","bt":1795352220,"bu":"%RH","n":"humidity","v":20},
			{"n":"lon","u":"lon","v":24.30621},{"n":"lat","u":"lat","v":60.07965},
			{"n":"humidity","t":60,"v":20.3},{"n":"lon","u":"lon","t":60,"v":24.30622},{"n":"lat","u":"lat","t":60,"v":60.07965},
			{"n":"humidity","t":120,"v":20.7},{"n":"lon","u":"lon","t":120,"v":24.30623},{"n":"lat","u":"lat","t":120,"v":60.07966},
			{"n":"battery","u":"%EL","t":150,"v":98},
			{"n":"humidity","t":180,"v":21.2},{"n":"lon","u":"lon","t":180,"v":24.30628},{"n":"lat","u":"lat","t":180,"v":60.07967}]`,
			want: []custody.Reading{
				rd(-180, func(r *custody.Reading) { r.Lon, r.Lat = fp(24.30621), fp(60.07965) }),
				rd(-120, func(r *custody.Reading) { r.Lon, r.Lat = fp(24.30622), fp(60.07965) }),
				rd(-60, func(r *custody.Reading) { r.Lon, r.Lat = fp(24.30623), fp(60.07966) }),
				rd(-30, func(r *custody.Reading) { r.BatteryPct = fp(98) }),
				rd(0, func(r *custody.Reading) { r.Lon, r.Lat = fp(24.30628), fp(60.07967) }),
			}, skipped: 4},
		{name: "5.1.4 resolved data", payload: `[
			{"n":"SHP-0042/voltage","u":"V","v":120.1,"t":1795352400,"bver":5},
			{"n":"SHP-0042/tilt","u":"deg","v":12.1,"t":1795352400},
			{"n":"SHP-0042/temp","u":"Cel","v":-181.2,"t":1795352395},{"n":"SHP-0042/temp","u":"Cel","v":-181.3,"t":1795352396},
			{"n":"SHP-0042/temp","u":"Cel","v":-181.4,"t":1795352397},{"n":"SHP-0042/temp","u":"Cel","v":-181.5,"t":1795352398},
			{"n":"SHP-0042/temp","u":"Cel","v":-181.6,"t":1795352399},{"n":"SHP-0042/temp","u":"Cel","v":-181.7,"t":1795352400}]`,
			want: resolved512, skipped: 1},
		{name: "5.1.5 multiple data types", payload: `[
			{"bn":"SHP-0042/","bt":` + bt + `,"n":"temp","u":"Cel","v":23.1},
			{"n":"label","vs":"Machine Room"},{"n":"lid","vb":false},{"n":"nfc-reader","vd":"aGkgCg"}]`,
			want: []custody.Reading{rd(0, func(r *custody.Reading) { r.TempC, r.LidOpen = fp(23.1), bp(false) })}, skipped: 2},
		{name: "5.1.6 collection of resources", payload: `[
			{"bn":"SHP-0042/","bt":` + bt + `,"n":"temp","v":27.2,"u":"Cel"},{"n":"humidity","v":80,"u":"%RH"}]`,
			want: []custody.Reading{rd(0, temp(27.2))}, skipped: 1},
		{name: "5.1.7 setting an actuator, no time", payload: `[{"bn":"SHP-0042/"},{"n":"temp","u":"Cel","v":23.1},{"n":"ln2","u":"/","v":1},{"n":"battery","u":"/","v":0}]`,
			refused: "senml record 1: no time"},
		{name: "5.1.7 ratios with a time", payload: `[{"bn":"SHP-0042/","bt":` + bt + `},{"n":"temp","u":"Cel","v":23.1},{"n":"ln2","u":"/","v":1},{"n":"battery","u":"/","v":0}]`,
			want: []custody.Reading{rd(0, func(r *custody.Reading) { r.TempC, r.LN2Pct, r.BatteryPct = fp(23.1), fp(100), fp(0) })}},
	})
}

// TestSenMLAsRFC8428Says: units, unknown labels, unused records and base
// fields as RFC 8428 defines them.
func TestSenMLAsRFC8428Says(t *testing.T) {
	const head = `[{"bn":"SHP-0042/","bt":1795352400,`
	checkSenMLExamples(t, []senmlExample{
		// Units: "%" and "/" are ratios 0..1 (section 12.1, note 2); "%EL"
		// is the battery's percentage.
		{name: "ln2 as the ratio /", payload: head + `"n":"ln2","u":"/","v":0.71}]`, want: []custody.Reading{rd(0, func(r *custody.Reading) { r.LN2Pct = fp(71) })}},
		{name: "ln2 as the ratio %", payload: head + `"n":"ln2","u":"%","v":0.071}]`, want: []custody.Reading{rd(0, func(r *custody.Reading) { r.LN2Pct = fp(7.1) })}},
		{name: "ratio with an exponent", payload: head + `"n":"ln2","u":"/","v":7.1e-1}]`, want: []custody.Reading{rd(0, func(r *custody.Reading) { r.LN2Pct = fp(71) })}},
		{name: "battery %EL is a percentage", payload: head + `"n":"battery","u":"%EL","v":88}]`, want: []custody.Reading{rd(0, func(r *custody.Reading) { r.BatteryPct = fp(88) })}},
		{name: "battery % is a ratio", payload: head + `"n":"battery","u":"%","v":0.88}]`, want: []custody.Reading{rd(0, func(r *custody.Reading) { r.BatteryPct = fp(88) })}},
		{name: "ratio with a base value", payload: head + `"bv":0.5,"n":"ln2","u":"/","v":0.21}]`, want: []custody.Reading{rd(0, func(r *custody.Reading) { r.LN2Pct = fp(71) })}},
		{name: "a percentage sent as % is not a ratio: that record is skipped, the temperature kept",
			payload: head + `"n":"temp","u":"Cel","v":-185},{"n":"ln2","u":"%","v":71}]`, want: []custody.Reading{rd(0, temp(-185))}, skipped: 1},
		{name: "only a mistaken ratio: refused with the reason", payload: head + `"n":"ln2","u":"%","v":71}]`, refused: `ratio 71 outside 0..1`},
		{name: "kelvin converted", payload: head + `"n":"temp","u":"K","v":90}]`, want: []custody.Reading{rd(0, temp(-183.15))}},
		{name: "kelvin as base unit", payload: head + `"bu":"K","n":"temp","v":278.15}]`, want: []custody.Reading{rd(0, temp(5))}},
		{name: "radians converted", payload: head + `"n":"tilt","u":"rad","v":0.5235987755982988}]`, want: []custody.Reading{rd(0, func(r *custody.Reading) { r.TiltDeg = fp(30) })}},
		{name: "a unit coid cannot convert is refused for its record", payload: head + `"n":"temp","u":"Cel","v":4},{"n":"temp","u":"degF","v":40,"t":60}]`,
			want: []custody.Reading{rd(0, temp(4))}, skipped: 1},
		// Unknown labels are ignored (section 4.4), even case variants of
		// known ones; one ending in "_" refuses the pack.
		{name: "unknown labels ignored", payload: head + `"n":"temp","u":"Cel","v":4,"foo":{"a":[1,"]}"],"a":2},"V":-180,"seq":1,"BN":"x"}]`,
			want: []custody.Reading{rd(0, temp(4))}},
		{name: "must-understand label refused", payload: head + `"n":"temp","u":"Cel","v":4},{"n":"temp","u":"Cel","v":5,"t":60,"ttl_":3}]`,
			refused: `senml record 1: label "ttl_" must be understood`},
		{name: "must-understand base label refused", payload: `[{"bn":"SHP-0042/","bt":1795352400,"bct_":"60"},{"n":"temp","u":"Cel","v":4}]`,
			refused: `label "bct_" must be understood`},
		// A record coid does not use is skipped, not the message.
		{name: "string, data and unknown records beside readings", payload: head + `"n":"temp","u":"Cel","v":4},{"n":"note","vs":"door"},{"n":"lid","vb":true},{"n":"fw","vd":"AAE"},{"n":"humidity","u":"%RH","v":40}]`,
			want: []custody.Reading{rd(0, func(r *custody.Reading) { r.TempC, r.LidOpen = fp(4), bp(true) })}, skipped: 3},
		{name: "a sum beside a value is ignored, a sum alone skipped", payload: head + `"n":"temp","u":"Cel","v":4,"s":100},{"n":"tilt","u":"deg","s":7}]`,
			want: []custody.Reading{rd(0, temp(4))}, skipped: 1},
		{name: "another device's name in the same pack", payload: head + `"n":"temp","u":"Cel","v":4},{"bn":"urn:dev:ow:10e2073a01080063","u":"Cel","v":23.1}]`,
			want: []custody.Reading{rd(0, temp(4))}, skipped: 1},
		// Base fields and grouping.
		{name: "base value and base unit apply to later records", payload: head + `"bu":"Cel","bv":-180,"n":"temp","v":-1},{"n":"temp","v":-2,"t":60},{"n":"tilt","u":"deg","v":183,"t":60}]`,
			want: []custody.Reading{rd(0, temp(-181)), rd(60, func(r *custody.Reading) { r.TempC, r.TiltDeg = fp(-182), fp(3) })}},
		{name: "a later bt replaces the earlier", payload: head + `"n":"temp","u":"Cel","v":4},{"bt":1795352460,"n":"temp","u":"Cel","v":5}]`,
			want: []custody.Reading{rd(0, temp(4)), rd(60, temp(5))}},
		{name: "same name and time repeated: one reading", payload: head + `"n":"temp","u":"Cel","v":4},{"n":"temp","u":"Cel","v":4},{"n":"seq","v":3},{"n":"seq","v":3}]`,
			want: []custody.Reading{rd(0, func(r *custody.Reading) { r.TempC, r.Seq, r.HasSeq = fp(4), 3, true })}},
		{name: "same name and time, different values", payload: head + `"n":"temp","u":"Cel","v":4},{"n":"temp","u":"Cel","v":5}]`,
			refused: "two different temp values"},
		{name: "bver changing within the pack", payload: `[{"bver":5,"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"Cel","v":4},{"bver":10,"n":"temp","u":"Cel","v":5,"t":60}]`,
			refused: "senml version 10 differs"},
		{name: "bver above 10", payload: `[{"bver":11,"bn":"SHP-0042/","bt":1795352400,"n":"temp","u":"Cel","v":4}]`, refused: "version 11 not supported"},
	})
}

// TestEncodeSenMLUnits: coid's own SenML writes the units RFC 8428
// registers, never "%" for a percentage, and reads back the same figures.
func TestEncodeSenMLUnits(t *testing.T) {
	for _, pct := range []float64{71, 0, 100, 7.1, 0.5, 33.333333333333336, 99.99999999999999, 1e-7, 12.345678901234567} {
		r := rd(0, func(r *custody.Reading) { r.LN2Pct, r.BatteryPct = fp(pct), fp(pct) })
		b, err := EncodeSenML([]custody.Reading{r})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), `"u":"%"`) || !strings.Contains(string(b), `"n":"ln2","u":"/"`) || !strings.Contains(string(b), `"n":"battery","u":"%EL"`) {
			t.Fatalf("units of %s", b)
		}
		back, err := Decode(shipper, b, received)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		sameReadings(t, back, []custody.Reading{r})
	}
	b, _ := EncodeSenML([]custody.Reading{rd(0, func(r *custody.Reading) { r.LN2Pct = fp(71) })})
	if !strings.Contains(string(b), `"n":"ln2","u":"/","v":0.71}`) {
		t.Fatalf("71 %% of LN2 written as %s, want the ratio 0.71", b)
	}
}
