package custody

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// randomLeg returns n readings of shipper in CompareReadings order, with
// every member kind, seq and no-seq readings (some at the same instant),
// temperatures within and outside 2..8 C.
func randomLeg(rng *rand.Rand, shipper string, n int) []Reading {
	t0 := time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC)
	f := func(x float64) *float64 { return &x }
	b := func(x bool) *bool { return &x }
	var rs []Reading
	for i := range n {
		r := Reading{Shipper: shipper, DeviceTime: t0.Add(time.Duration(rng.IntN(n*2)) * time.Minute)}
		if rng.IntN(5) == 0 {
			r.DeviceTime = r.DeviceTime.Add(time.Duration(rng.IntN(1e9)))
		}
		if rng.IntN(3) > 0 {
			r.Seq, r.HasSeq = uint64(i), true
		} else if rng.IntN(2) == 0 {
			// One reading without seq an instant, as a store holds them.
			r.DeviceTime = r.DeviceTime.Add(time.Duration(1 + i))
		} else {
			r.DeviceTime = r.DeviceTime.Add(time.Duration(i) * time.Hour * 1000)
		}
		if rng.IntN(6) > 0 {
			r.TempC = f(float64(rng.IntN(2000))/100 - 5)
		}
		if rng.IntN(3) == 0 {
			r.TiltDeg, r.BatteryPct, r.LN2Pct = f(rng.Float64()*180), f(float64(rng.IntN(101))), f(52.520008)
			r.Lat, r.Lon, r.LidOpen, r.Light = f(40.71), f(-74.01), b(rng.IntN(2) == 0), b(false)
		}
		rs = append(rs, r)
	}
	SortReadings(rs)
	return rs
}

// TestSealHasherEqualsSealReadings: streaming a leg's canonical encodings
// in seal order gives sealReadings's seal, with and without MKT, either
// MKT method; a reading out of order is refused, not hashed.
func TestSealHasherEqualsSealReadings(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var sh SealHasher
	for i := range 500 {
		rs := randomLeg(rng, "SHP-1", rng.IntN(60))
		p := BuiltinProfiles()["refrigerated"]
		if i%3 == 0 {
			p.MinC, p.MaxC = nil, nil
		}
		for _, method := range []string{MKTTimeWeighted, ""} {
			gap := time.Duration(rng.IntN(4)) * time.Hour
			sh.Reset(p, method, gap)
			for _, r := range rs {
				var temp float64
				if r.TempC != nil {
					temp = *r.TempC
				}
				enc := append(r.AppendCanonical(sh.Scratch()), '\n')
				if !sh.Add(enc, r.DeviceTime.UnixNano(), r.HasSeq, r.Seq, temp, r.TempC != nil) {
					t.Fatalf("leg %d: a reading in order refused", i)
				}
			}
			for _, mkt := range []bool{false, true} {
				q := p
				q.MKT = mkt
				got, ok := sh.Seal(mkt)
				if want := sealReadings(rs, q, method, gap); !ok || !reflect.DeepEqual(got, want) {
					t.Fatalf("leg %d, method %q, mkt %v:\n got %+v\nwant %+v", i, method, mkt, got, want)
				}
			}
		}
		if len(rs) < 2 {
			continue
		}
		// Out of order: the last reading first.
		sh.Reset(p, MKTTimeWeighted, 0)
		refused := false
		for _, r := range append([]Reading{rs[len(rs)-1]}, rs[:len(rs)-1]...) {
			if !sh.Add(r.AppendCanonical(sh.Scratch()), r.DeviceTime.UnixNano(), r.HasSeq, r.Seq, 0, false) {
				refused = true
			}
		}
		if _, ok := sh.Seal(true); refused == ok || (!refused && teleCompare(&rs[len(rs)-1], &rs[0]) > 0) {
			t.Fatalf("leg %d: out of order: refused %v, sealed %v", i, refused, ok)
		}
	}
}

// receiveRecord returns the stored bytes and hash of a receive record
// at log position seq with data.
func receiveRecord(seq uint64, step Step, data string) ([]byte, Hash) {
	r := Record{V: 1, Seq: seq, Chain: "A9999-26-000001", ChainSeq: 3, Step: step,
		Time: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), SubmittedBy: "nurse1", Data: json.RawMessage(data),
		Signatures: []Signature{{Meaning: "performed", Method: "password", Name: "N", Role: RoleNurse, Time: "2026-11-23T08:00:00Z", User: "nurse1"}}}
	stored := r.Seal(nil)
	return stored, r.Hash
}

// checkReceiveSeal fails unless readReceiveSeal, when it reads a seal,
// reads what decoding the whole record does.
func checkReceiveSeal(t *testing.T, stored []byte, h Hash, seq uint64) bool {
	t.Helper()
	coi, rs, ok := readReceiveSeal(stored, h, seq)
	if !ok {
		return false
	}
	r, err := DecodeRecord(stored, h)
	if err != nil || r.Seq != seq {
		t.Fatalf("%s: read a seal, but the record does not decode: %v", stored, err)
	}
	pd, err := r.Parsed()
	d, isReceive := pd.(ReceiveData)
	if err != nil || !isReceive || d.Telemetry == nil {
		t.Fatalf("%s: read a seal, but the record's data is %#v, %v", stored, pd, err)
	}
	if coi != r.Chain || !reflect.DeepEqual(rs, *d.Telemetry) {
		t.Fatalf("%s:\n read %s %+v\n want %s %+v", stored, coi, rs, r.Chain, *d.Telemetry)
	}
	return true
}

// sampleSeal is a receive record's telemetry member as the service writes
// it.
const sampleSeal = `{"from":"2026-11-23T08:00:00Z","leg":1,"seal":{"count":66,"encoding":"coid-reading-v1",` +
	`"first_device_time":"2026-11-23T08:01:00Z","last_device_time":"2026-11-23T09:06:00.5Z","limit_max_c":8,"limit_min_c":2,` +
	`"max_c":5.1,"min_c":4.5,"mkt_c":4.812,"mkt_max_gap_ns":1800000000000,"mkt_method":"time-weighted","profile":"refrigerated",` +
	`"readings_hash":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","time_out_of_range_ns":0},` +
	`"shipper":"SHP-A000001","to":"2026-11-23T09:07:00Z","version":"coid-seal-v1","watermark":12}`

// TestReadReceiveSeal: the seal read from a receive record's stored
// bytes is the seal decoding the whole record gives; anything unusual
// (another step, members decoding would read otherwise, a record that
// is not sound) is left to that decoding.
func TestReadReceiveSeal(t *testing.T) {
	for _, c := range []struct {
		name string
		step Step
		data string
		ok   bool
	}{
		{"as written", StepReceive, `{"seal_intact":true,"telemetry":` + sampleSeal + `}`, true},
		{"no seal_intact", StepReceive, `{"telemetry":` + sampleSeal + `}`, true},
		{"seal_intact null", StepReceive, `{"seal_intact":null,"telemetry":` + sampleSeal + `}`, true},
		{"no telemetry", StepReceive, `{"seal_intact":true}`, false},
		{"telemetry null", StepReceive, `{"seal_intact":true,"telemetry":null}`, false},
		{"telemetry twice", StepReceive, `{"telemetry":` + sampleSeal + `,"telemetry":` + sampleSeal + `}`, false},
		{"another spelling", StepReceive, `{"Telemetry":` + sampleSeal + `}`, false},
		{"another member", StepReceive, `{"note":"x","telemetry":` + sampleSeal + `}`, false},
		{"seal_intact of the wrong type", StepReceive, `{"seal_intact":"yes","telemetry":` + sampleSeal + `}`, false},
		{"a seal member of the wrong type", StepReceive, `{"telemetry":{"leg":"one"}}`, false},
		{"another step", StepShip, `{"telemetry":` + sampleSeal + `}`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			stored, h := receiveRecord(7, c.step, c.data)
			if got := checkReceiveSeal(t, stored, h, 7); got != c.ok {
				t.Fatalf("read: %v, want %v", got, c.ok)
			}
			if c.ok {
				if _, _, ok := readReceiveSeal(stored, h, 8); ok {
					t.Error("read at another position")
				}
				bad := h
				bad[0] ^= 1
				if _, _, ok := readReceiveSeal(stored, bad, 7); ok {
					t.Error("read under another hash")
				}
			}
		})
	}
}

// FuzzReadReceiveSeal: whatever a receive record's data, a seal read
// from its stored bytes is the seal decoding the whole record gives.
func FuzzReadReceiveSeal(f *testing.F) {
	f.Add(`{"seal_intact":true,"telemetry":` + sampleSeal + `}`)
	f.Add(`{"telemetry":{"leg":1,"seal":{"count":1e2}}}`)
	f.Add(`{"telemetry":{"from":"2026-11-23T08:00:00+01:00","LEG":2,"leg":3}}`)
	f.Fuzz(func(t *testing.T, data string) {
		stored, h := receiveRecord(7, StepReceive, data)
		checkReceiveSeal(t, stored, h, 7)
	})
}

// TestSealsIdentical: identical figures are reported only when the JSON
// encodings are the same.
func TestSealsIdentical(t *testing.T) {
	var a LegSeal
	if err := json.Unmarshal([]byte(sampleSeal), &struct {
		Seal *LegSeal `json:"seal"`
	}{&a}); err != nil {
		t.Fatal(err)
	}
	b := a
	if !sealsIdentical(&a, &b) {
		t.Fatal("a seal is not identical to its copy")
	}
	zero := math.Copysign(0, -1)
	for name, change := range map[string]func(s *LegSeal){
		"count":      func(s *LegSeal) { s.Count++ },
		"hash":       func(s *LegSeal) { s.ReadingsHash = "x" },
		"-0":         func(s *LegSeal) { s.MinC = &zero },
		"no max":     func(s *LegSeal) { s.MaxC = nil },
		"time zone":  func(s *LegSeal) { s.FirstDeviceTime = s.FirstDeviceTime.In(time.FixedZone("X", 3600)) },
		"mkt method": func(s *LegSeal) { s.MKTMethod = "" },
	} {
		c := a
		change(&c)
		ja, _ := json.Marshal(a)
		jc, _ := json.Marshal(c)
		if sealsIdentical(&a, &c) && string(ja) != string(jc) {
			t.Errorf("%s: identical, but encoded %s and %s", name, ja, jc)
		}
		if sealsIdentical(&a, &c) {
			t.Errorf("%s: a changed seal reported identical", name)
		}
	}
}

// checkParseReceiveSeal fails unless parseReceiveSeal, when it reads b,
// reads what json.Unmarshal does.
func checkParseReceiveSeal(t *testing.T, b []byte) bool {
	t.Helper()
	got, ok := parseReceiveSeal(b)
	if !ok {
		return false
	}
	var want ReceiveSeal
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("%s: parsed, but json.Unmarshal says %v", b, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", b, got, want)
	}
	return true
}

// TestParseReceiveSeal: the plain form the service writes is parsed as
// json.Unmarshal reads it; other forms are left to json.Unmarshal.
func TestParseReceiveSeal(t *testing.T) {
	with := func(old, new string) string { return strings.Replace(sampleSeal, old, new, 1) }
	for _, c := range []struct {
		name, json string
		ok         bool
	}{
		{"as written", sampleSeal, true},
		{"no limits, null temperatures", with(`"limit_max_c":8,"limit_min_c":2,"max_c":5.1,"min_c":4.5,"mkt_c":4.812,`, `"max_c":null,"min_c":null,`), true},
		{"numbers in every form", with(`"max_c":5.1,"min_c":4.5,"mkt_c":4.812`, `"max_c":-0,"min_c":-1.5e-7,"mkt_c":1E+300`), true},
		{"time with nanoseconds", with(`09:06:00.5Z`, `09:06:00.123456789Z`), true},
		{"leap day", with(`2026-11-23T08:01:00Z`, `2028-02-29T08:01:00Z`), true},
		{"no such day", with(`2026-11-23T08:01:00Z`, `2026-02-29T08:01:00Z`), false},
		{"time with an offset", with(`2026-11-23T08:01:00Z`, `2026-11-23T09:01:00+01:00`), false},
		{"hour 24", with(`2026-11-23T08:01:00Z`, `2026-11-23T24:01:00Z`), false},
		{"fraction of ten digits", with(`09:06:00.5Z`, `09:06:00.1234567891Z`), false},
		{"empty fraction", with(`09:06:00.5Z`, `09:06:00.Z`), false},
		{"a member spelt otherwise", with(`"leg":1`, `"Leg":1`), false},
		{"an unknown member", with(`"leg":1`, `"leg":1,"note":"x"`), false},
		{"a member twice", with(`"leg":1`, `"leg":1,"leg":2`), false},
		{"an escape", with(`"shipper":"SHP-A000001"`, `"shipper":"SHP-A\u0030"`), false},
		{"a count with a fraction", with(`"count":66`, `"count":66.0`), false},
		{"a count too large", with(`"count":66`, `"count":9223372036854775808`), false},
		{"a negative watermark", with(`"watermark":12`, `"watermark":-12`), false},
		{"a leading zero", with(`"leg":1`, `"leg":01`), false},
		{"a string for a number", with(`"max_c":5.1`, `"max_c":"5.1"`), false},
		{"null for a string", with(`"profile":"refrigerated"`, `"profile":null`), false},
		{"a number out of range", with(`"max_c":5.1`, `"max_c":1e400`), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := checkParseReceiveSeal(t, []byte(c.json)); got != c.ok {
				t.Fatalf("parsed: %v, want %v", got, c.ok)
			}
		})
	}
}

// FuzzParseReceiveSeal: whatever the bytes, a seal parsed is the seal
// json.Unmarshal reads.
func FuzzParseReceiveSeal(f *testing.F) {
	f.Add(sampleSeal)
	f.Add(`{"leg":-0,"seal":{"min_c":1e-7,"count":0},"from":"0000-01-01T00:00:00.000000001Z"}`)
	f.Fuzz(func(t *testing.T, s string) {
		checkParseReceiveSeal(t, []byte(s))
	})
}
