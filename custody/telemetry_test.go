package custody_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

func teleF(v float64) *float64 { return &v }
func teleB(v bool) *bool       { return &v }

var teleNow = time.Date(2026, 11, 22, 13, 5, 0, 0, time.UTC)

func teleFull() custody.Reading {
	return custody.Reading{
		Shipper: "SHP-0042", Seq: 1187, HasSeq: true,
		DeviceTime:   time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC),
		ReceivedTime: teleNow,
		TempC:        teleF(-182.4), TiltDeg: teleF(3.5), LidOpen: teleB(false), Light: teleB(false),
		BatteryPct: teleF(88), LN2Pct: teleF(71), Lat: teleF(40.71), Lon: teleF(-74.01),
	}
}

func TestReadingValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(r *custody.Reading)
		wantErr string // substring; "" means valid
	}{
		{"full", func(r *custody.Reading) {}, ""},
		{"minimal", func(r *custody.Reading) {
			*r = custody.Reading{Shipper: "S", DeviceTime: teleNow}
		}, ""},
		{"absolute zero exactly", func(r *custody.Reading) { r.TempC = teleF(-273.15) }, ""},
		{"skew at limit", func(r *custody.Reading) { r.DeviceTime = teleNow.Add(5 * time.Minute) }, ""},
		{"seq max", func(r *custody.Reading) { r.Seq = custody.MaxSeq }, ""},
		{"below absolute zero", func(r *custody.Reading) { r.TempC = teleF(-273.16) }, "below absolute zero"},
		{"too hot", func(r *custody.Reading) { r.TempC = teleF(1000.5) }, "temp_c"},
		{"nan temp", func(r *custody.Reading) { r.TempC = teleF(math.NaN()) }, "temp_c"},
		{"inf tilt", func(r *custody.Reading) { r.TiltDeg = teleF(math.Inf(1)) }, "tilt_deg"},
		{"negative tilt", func(r *custody.Reading) { r.TiltDeg = teleF(-1) }, "tilt_deg"},
		{"tilt over 180", func(r *custody.Reading) { r.TiltDeg = teleF(180.1) }, "tilt_deg"},
		{"battery over 100", func(r *custody.Reading) { r.BatteryPct = teleF(100.1) }, "battery_pct"},
		{"ln2 negative", func(r *custody.Reading) { r.LN2Pct = teleF(-0.1) }, "ln2_pct"},
		{"lat out of range", func(r *custody.Reading) { r.Lat = teleF(90.5) }, "lat"},
		{"lon out of range", func(r *custody.Reading) { r.Lon = teleF(-180.5) }, "lon"},
		{"lat without lon", func(r *custody.Reading) { r.Lon = nil }, "together"},
		{"far future", func(r *custody.Reading) { r.DeviceTime = teleNow.Add(5*time.Minute + time.Second) }, "future"},
		{"before 2000", func(r *custody.Reading) { r.DeviceTime = time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC) }, "before 2000"},
		{"zero time", func(r *custody.Reading) { r.DeviceTime = time.Time{} }, "missing"},
		{"empty shipper", func(r *custody.Reading) { r.Shipper = "" }, "empty"},
		{"long shipper", func(r *custody.Reading) { r.Shipper = strings.Repeat("A", 65) }, "max 64"},
		{"shipper 64", func(r *custody.Reading) { r.Shipper = strings.Repeat("A", 64) }, ""},
		{"shipper slash", func(r *custody.Reading) { r.Shipper = "SHP/1" }, "not in"},
		{"shipper space", func(r *custody.Reading) { r.Shipper = "SHP 1" }, "not in"},
		{"shipper wildcard", func(r *custody.Reading) { r.Shipper = "SHP+" }, "not in"},
		{"shipper leading dash", func(r *custody.Reading) { r.Shipper = "-SHP" }, "start with"},
		{"seq without has_seq", func(r *custody.Reading) { r.HasSeq = false }, "has_seq"},
		{"seq beyond 2^53", func(r *custody.Reading) { r.Seq = custody.MaxSeq + 1 }, "seq"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := teleFull()
			tt.mod(&r)
			err := r.Validate(teleNow)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, custody.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want ErrInvalid mentioning %q", err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "validate reading: ") {
				t.Errorf("error %q lacks the operation prefix", err)
			}
		})
	}
}

func TestReadingKeyOrder(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Listed in the order their keys must sort.
	rs := []custody.Reading{
		{Shipper: "SHP-1", Seq: 0, HasSeq: true, DeviceTime: base.Add(time.Hour)},
		{Shipper: "SHP-1", Seq: 2, HasSeq: true, DeviceTime: base},
		{Shipper: "SHP-1", Seq: 256, HasSeq: true, DeviceTime: base},
		{Shipper: "SHP-1", DeviceTime: base},
		{Shipper: "SHP-1", DeviceTime: base.Add(time.Nanosecond)},
		{Shipper: "SHP-1", DeviceTime: base.Add(time.Hour)},
		{Shipper: "SHP-10", Seq: 1, HasSeq: true, DeviceTime: base},
		{Shipper: "SHP-2", DeviceTime: base},
	}
	for i := 1; i < len(rs); i++ {
		a, b := rs[i-1].Key(), rs[i].Key()
		if bytes.Compare(a, b) >= 0 {
			t.Errorf("key %d %x not below key %d %x", i-1, a, i, b)
		}
	}
	for _, r := range rs {
		if !bytes.HasPrefix(r.Key(), custody.ShipperKeyPrefix(r.Shipper)) {
			t.Errorf("key %x lacks shipper prefix", r.Key())
		}
	}
	// Redelivery: same identity, other values and receive time, same key.
	a := teleFull()
	b := a
	b.TempC, b.ReceivedTime = teleF(1), teleNow.Add(time.Hour)
	if !bytes.Equal(a.Key(), b.Key()) {
		t.Error("same (shipper, seq) gives different keys")
	}
	c := a
	c.HasSeq, c.Seq = false, 0
	d := c
	d.DeviceTime = d.DeviceTime.In(time.FixedZone("EST", -5*3600))
	if !bytes.Equal(c.Key(), d.Key()) {
		t.Error("same instant in another zone gives a different key")
	}
	if bytes.Equal(a.Key(), c.Key()) {
		t.Error("seq and time identities collide")
	}
}

func TestAppendCanonical(t *testing.T) {
	tests := []struct {
		name string
		r    custody.Reading
		want string
	}{
		{"full", teleFull(),
			`{"battery_pct":88,"lat":40.71,"lid_open":false,"light":false,"ln2_pct":71,"lon":-74.01,"seq":1187,"shipper":"SHP-0042","temp_c":-182.4,"tilt_deg":3.5,"time":"2026-11-22T13:00:00Z"}`},
		{"minimal", custody.Reading{Shipper: "S", DeviceTime: time.Date(2026, 1, 2, 3, 4, 5, 250_000_000, time.UTC)},
			`{"shipper":"S","time":"2026-01-02T03:04:05.25Z"}`},
		{"zone normalised and negative zero", custody.Reading{Shipper: "S", Seq: 0, HasSeq: true,
			DeviceTime: time.Date(2026, 1, 2, 4, 4, 5, 1, time.FixedZone("CET", 3600)), TempC: teleF(math.Copysign(0, -1)), Light: teleB(true)},
			`{"light":true,"seq":0,"shipper":"S","temp_c":0,"time":"2026-01-02T03:04:05.000000001Z"}`},
		{"small numbers", custody.Reading{Shipper: "S", DeviceTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			TempC: teleF(1e-7), TiltDeg: teleF(0.000001)},
			`{"shipper":"S","temp_c":1e-7,"tilt_deg":0.000001,"time":"2026-01-02T03:04:05Z"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(tt.r.AppendCanonical(nil))
			if got != tt.want {
				t.Fatalf("AppendCanonical =\n%s\nwant\n%s", got, tt.want)
			}
			// It is its own RFC 8785 canonical form.
			jcs, err := custody.Canonicalize([]byte(got))
			if err != nil {
				t.Fatal(err)
			}
			if string(jcs) != got {
				t.Fatalf("not JCS canonical:\n%s\nJCS:\n%s", got, jcs)
			}
			// Appending keeps the prefix.
			if b := tt.r.AppendCanonical([]byte("x")); string(b) != "x"+got {
				t.Fatalf("append lost prefix: %s", b)
			}
		})
	}
}

func TestAppendJCSNumber(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "0"}, {1, "1"}, {-1, "-1"}, {88, "88"}, {-182.4, "-182.4"},
		{0.30000000000000004, "0.30000000000000004"}, {4.35, "4.35"}, {1e-6, "0.000001"}, {1e-7, "1e-7"},
		{123e-20, "1.23e-18"}, {1e20, "100000000000000000000"}, {1e21, "1e+21"}, {1.5e300, "1.5e+300"},
		{5e-324, "5e-324"}, {math.MaxFloat64, "1.7976931348623157e+308"}, {9007199254740991, "9007199254740991"},
		{333333333.33333329, "333333333.3333333"}, {1763816400.123456, "1763816400.123456"},
		{-1e-6, "-0.000001"}, {999999999999999900000, "999999999999999900000"},
		{-1e21, "-1e+21"}, {1.2345e20, "123450000000000000000"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := string(custody.AppendJCSNumber(nil, tt.in)); got != tt.want {
				t.Fatalf("AppendJCSNumber(%v) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
	// Agrees with the ledger's JCS implementation on the edges of plain
	// notation and on random doubles.
	edges := []float64{math.Nextafter(1e-6, 0), math.Nextafter(1e-6, 1), math.Nextafter(1e21, 0), math.Nextafter(1e21, 2e21)}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 40000 + len(edges) {
		x := math.Float64frombits(rng.Uint64())
		if i >= 40000 {
			x = edges[i-40000]
		}
		if i < 40000 && i%2 == 0 { // plain-notation range
			x = (rng.Float64() - 0.5) * math.Pow10(rng.IntN(30)-8)
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			continue
		}
		got := custody.AppendJCSNumber(nil, x)
		want, err := custody.Canonicalize(got)
		if err != nil {
			t.Fatalf("%v: %s: %v", x, got, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%v: got %s, JCS %s", x, got, want)
		}
	}
}

func TestReadingJSONRoundTrip(t *testing.T) {
	for _, r := range []custody.Reading{
		teleFull(),
		{Shipper: "S", DeviceTime: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)},
	} {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var got custody.Reading
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip of %s:\n got %+v\nwant %+v", b, got, r)
		}
	}
	var r custody.Reading
	if err := json.Unmarshal([]byte(`{"shipper":"S","time":"2026-01-02T03:04:05Z","tmp":1}`), &r); !errors.Is(err, custody.ErrInvalid) {
		t.Fatalf("unknown member: err = %v, want ErrInvalid", err)
	}
}

func TestMeanKineticTemperature(t *testing.T) {
	tests := []struct {
		name  string
		temps []float64
		want  string
	}{
		{"5 constant", []float64{5, 5, 5, 5, 5, 5}, "5.000"},
		{"4,4,4,4,16", []float64{4, 4, 4, 4, 16}, "8.109"},
		{"2,8", []float64{2, 8}, "5.536"},
		{"one reading", []float64{25}, "25.000"},
		{"cryogenic does not underflow", []float64{-196, -196}, "-196.000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fmt.Sprintf("%.3f", custody.MeanKineticTemperature(tt.temps)); got != tt.want {
				t.Fatalf("MKT(%v) = %s, want %s", tt.temps, got, tt.want)
			}
		})
	}
	for _, bad := range [][]float64{nil, {-273.15}, {5, math.Inf(1)}, {math.NaN()}} {
		if got := custody.MeanKineticTemperature(bad); !math.IsNaN(got) {
			t.Errorf("MKT(%v) = %v, want NaN", bad, got)
		}
	}
	// MKT lies between the mean and the maximum.
	temps := []float64{2, 3, 8, 7, 5, 4}
	if m := custody.MeanKineticTemperature(temps); m < 29.0/6 || m > 8 {
		t.Errorf("MKT %v not between mean and max", m)
	}
}

// teleSeries returns n readings a minute apart starting at start with the
// given temperatures (repeating).
func teleSeries(start time.Time, temps ...float64) []custody.Reading {
	rs := make([]custody.Reading, len(temps))
	for i, c := range temps {
		rs[i] = custody.Reading{Shipper: "SHP-0042", Seq: uint64(i + 1), HasSeq: true,
			DeviceTime: start.Add(time.Duration(i) * time.Minute), ReceivedTime: start.Add(time.Duration(i)*time.Minute + time.Second),
			TempC: teleF(c)}
	}
	return rs
}

func TestSealReadings(t *testing.T) {
	profiles := custody.BuiltinProfiles()
	start := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

	t.Run("refrigerated", func(t *testing.T) {
		rs := teleSeries(start, 5, 9, 9, 5, 1, 5)
		rs = append(rs, custody.Reading{Shipper: "SHP-0042", Seq: 7, HasSeq: true, DeviceTime: start.Add(150 * time.Second), LidOpen: teleB(false)})
		s := custody.SealReadings(rs, profiles["refrigerated"])
		if s.Count != 7 || !s.FirstDeviceTime.Equal(start) || !s.LastDeviceTime.Equal(start.Add(5*time.Minute)) {
			t.Errorf("count/first/last = %d %s %s", s.Count, s.FirstDeviceTime, s.LastDeviceTime)
		}
		if *s.MinC != 1 || *s.MaxC != 9 {
			t.Errorf("min/max = %v/%v", *s.MinC, *s.MaxC)
		}
		// 9 at 1m and 2m hold until 3m (2m), 1 at 4m holds until 5m (1m);
		// the lid-only reading at 2m30s does not interrupt the hold.
		if s.TimeOutOfRange != 3*time.Minute {
			t.Errorf("time out of range = %s, want 3m", s.TimeOutOfRange)
		}
		want := math.Round(custody.MeanKineticTemperature([]float64{5, 9, 9, 5, 1, 5})*1000) / 1000
		if s.MKTC == nil || *s.MKTC != want {
			t.Errorf("MKT = %v, want %v", s.MKTC, want)
		}
		if *s.LimitMinC != 2 || *s.LimitMaxC != 8 || s.Profile != "refrigerated" || s.Encoding != custody.ReadingEncoding {
			t.Errorf("limits/profile/encoding = %v %v %q %q", *s.LimitMinC, *s.LimitMaxC, s.Profile, s.Encoding)
		}
	})
	t.Run("cryogenic has no MKT", func(t *testing.T) {
		s := custody.SealReadings(teleSeries(start, -180, -140, -180), profiles["cryogenic"])
		if s.MKTC != nil {
			t.Errorf("MKT = %v for a frozen profile", *s.MKTC)
		}
		if s.TimeOutOfRange != time.Minute || s.LimitMinC != nil || *s.LimitMaxC != -150 {
			t.Errorf("seal = %+v", s)
		}
	})
	t.Run("empty", func(t *testing.T) {
		s := custody.SealReadings(nil, profiles["room"])
		sum := sha256.Sum256(nil)
		if s.Count != 0 || s.MinC != nil || s.MKTC != nil || s.ReadingsHash != hex.EncodeToString(sum[:]) {
			t.Errorf("empty seal = %+v", s)
		}
		b, _ := json.Marshal(s)
		if strings.Contains(string(b), "first_device_time") {
			t.Errorf("empty seal JSON carries times: %s", b)
		}
	})
	t.Run("hash is documented construction", func(t *testing.T) {
		rs := teleSeries(start, -180, -181)
		h := sha256.New()
		for _, r := range rs {
			h.Write(r.AppendCanonical(nil))
			h.Write([]byte{'\n'})
		}
		if got := custody.SealReadings(rs, profiles["cryogenic"]).ReadingsHash; got != hex.EncodeToString(h.Sum(nil)) {
			t.Errorf("hash %s does not follow the documented construction", got)
		}
	})
	t.Run("order independent", func(t *testing.T) {
		rs := teleSeries(start, -180, -140, -175, -150, -149, -190, -185, -185)
		// Two readings at one instant: ties are broken by seq.
		rs[3].DeviceTime = rs[2].DeviceTime
		want := custody.SealReadings(rs, profiles["cryogenic"])
		orig := slices.Clone(rs)
		rng := rand.New(rand.NewPCG(3, 4))
		for i := range 50 {
			sh := slices.Clone(rs)
			rng.Shuffle(len(sh), func(a, b int) { sh[a], sh[b] = sh[b], sh[a] })
			if got := custody.SealReadings(sh, profiles["cryogenic"]); !reflect.DeepEqual(got, want) {
				t.Fatalf("shuffle %d: seal %+v, want %+v", i, got, want)
			}
		}
		if !reflect.DeepEqual(rs, orig) {
			t.Fatal("SealReadings modified its input")
		}
	})
	t.Run("any change changes the hash", func(t *testing.T) {
		rs := teleSeries(start, -180, -181, -182)
		want := custody.SealReadings(rs, profiles["cryogenic"]).ReadingsHash
		mods := map[string]func(rs []custody.Reading) []custody.Reading{
			"temperature": func(rs []custody.Reading) []custody.Reading { rs[1].TempC = teleF(-181.00001); return rs },
			"time":        func(rs []custody.Reading) []custody.Reading { rs[1].DeviceTime = rs[1].DeviceTime.Add(1); return rs },
			"seq":         func(rs []custody.Reading) []custody.Reading { rs[1].Seq++; return rs },
			"field added": func(rs []custody.Reading) []custody.Reading { rs[1].LidOpen = teleB(false); return rs },
			"deleted":     func(rs []custody.Reading) []custody.Reading { return rs[:2] },
			"duplicated":  func(rs []custody.Reading) []custody.Reading { return append(rs, rs[0]) },
		}
		for name, mod := range mods {
			got := custody.SealReadings(mod(slices.Clone(rs)), profiles["cryogenic"]).ReadingsHash
			if got == want {
				t.Errorf("%s: hash unchanged", name)
			}
		}
		// Receive time is metadata and is not sealed.
		rs2 := slices.Clone(rs)
		rs2[0].ReceivedTime = rs2[0].ReceivedTime.Add(time.Hour)
		if got := custody.SealReadings(rs2, profiles["cryogenic"]).ReadingsHash; got != want {
			t.Error("receive time changed the hash")
		}
	})
}

func TestProfiles(t *testing.T) {
	builtin := custody.BuiltinProfiles()
	for _, name := range []string{"cryogenic", "refrigerated", "room"} {
		t.Run(name, func(t *testing.T) {
			p, ok := builtin[name]
			if !ok {
				t.Fatalf("no builtin %q", name)
			}
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			if p.Name != name {
				t.Fatalf("name %q", p.Name)
			}
			b, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			var back custody.Profile
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			if !reflect.DeepEqual(back, p) {
				t.Fatalf("JSON round trip:\n%+v\n%+v", back, p)
			}
		})
	}
	if builtin["cryogenic"].MKT || !builtin["refrigerated"].MKT || !builtin["room"].MKT {
		t.Error("MKT must apply to refrigerated and room only")
	}
	// Fresh values: changing one map does not change the next.
	*builtin["room"].MinC = 99
	if *custody.BuiltinProfiles()["room"].MinC != 15 {
		t.Error("BuiltinProfiles shares state between calls")
	}
}

func TestProfileValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(p *custody.Profile)
		want string
	}{
		{"bad name", func(p *custody.Profile) { p.Name = "cryo genic" }, "name"},
		{"empty name", func(p *custody.Profile) { p.Name = "" }, "name"},
		{"min above max", func(p *custody.Profile) { p.MinC = teleF(9) }, "min_c"},
		{"min equals max", func(p *custody.Profile) { p.MinC = teleF(8) }, "min_c"},
		{"below absolute zero", func(p *custody.Profile) { p.MinC = teleF(-300) }, "min_c"},
		{"nan limit", func(p *custody.Profile) { p.MaxC = teleF(math.NaN()) }, "max_c"},
		{"tilt", func(p *custody.Profile) { p.MaxTiltDeg = teleF(181) }, "max_tilt_deg"},
		{"negative grace", func(p *custody.Profile) { p.Grace = -time.Second }, "grace"},
		{"huge lid grace", func(p *custody.Profile) { p.LidGrace = 8 * 24 * time.Hour }, "lid_grace"},
		{"no interval", func(p *custody.Profile) { p.ExpectedInterval = 0 }, "expected_interval"},
		{"no silence", func(p *custody.Profile) { p.SilenceIntervals = 0 }, "silence_intervals"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := custody.BuiltinProfiles()["refrigerated"]
			tt.mod(&p)
			err := p.Validate()
			if !errors.Is(err, custody.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want ErrInvalid mentioning %q", err, tt.want)
			}
		})
	}
}

func TestParseProfiles(t *testing.T) {
	tests := []struct {
		name, in string
		wantErr  bool
		check    func(t *testing.T, ps map[string]custody.Profile)
	}{
		{"override and add", `[
			{"name":"refrigerated","min_c":2,"max_c":8,"grace":"15m","lid_must_be_closed":true,"lid_grace":"5m","expected_interval":"5m","silence_intervals":6,"mkt":true},
			{"name":"frozen","max_c":-60,"grace":"1h30m","expected_interval":"10m","silence_intervals":3}
		]`, false, func(t *testing.T, ps map[string]custody.Profile) {
			if len(ps) != 4 || ps["refrigerated"].Grace != 15*time.Minute || ps["frozen"].Grace != 90*time.Minute ||
				ps["frozen"].MinC != nil || *ps["frozen"].MaxC != -60 || ps["cryogenic"].Name != "cryogenic" {
				t.Errorf("profiles = %+v", ps)
			}
		}},
		{"empty file keeps builtins", `[]`, false, func(t *testing.T, ps map[string]custody.Profile) {
			if len(ps) != 3 {
				t.Errorf("profiles = %+v", ps)
			}
		}},
		{"misspelt member", `[{"name":"x","max_tilt":30,"expected_interval":"1m","silence_intervals":3}]`, true, nil},
		{"bad duration", `[{"name":"x","grace":"10 minutes","expected_interval":"1m","silence_intervals":3}]`, true, nil},
		{"invalid profile", `[{"name":"x","expected_interval":"1m"}]`, true, nil},
		{"duplicate", `[{"name":"x","expected_interval":"1m","silence_intervals":3},{"name":"x","expected_interval":"1m","silence_intervals":3}]`, true, nil},
		{"not json", `{`, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := custody.ParseProfiles([]byte(tt.in))
			if tt.wantErr {
				if !errors.Is(err, custody.ErrInvalid) || ps != nil {
					t.Fatalf("ParseProfiles = %v, %v; want nil, ErrInvalid", ps, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, ps)
		})
	}
}

func TestExcursionJSON(t *testing.T) {
	start := time.Date(2026, 11, 22, 13, 0, 0, 500_000_000, time.UTC)
	if got := custody.ExcursionID(custody.ExcursionTemperature, start.In(time.FixedZone("X", 3600))); got != "temperature/2026-11-22T13:00:00.5Z" {
		t.Fatalf("ExcursionID = %s", got)
	}
	e := custody.Excursion{ID: "silence/x", Kind: custody.ExcursionSilence, Start: start, Duration: time.Hour, Breach: time.Hour}
	if !e.Open() {
		t.Error("zero End must be open")
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"id":"silence/x","kind":"silence","start":"2026-11-22T13:00:00.5Z","duration_ns":3600000000000,"breach_ns":3600000000000}`
	if string(b) != want {
		t.Fatalf("JSON %s\nwant %s", b, want)
	}
}

func TestExcursionOverlaps(t *testing.T) {
	at := func(m int) time.Time { return teleNow.Add(time.Duration(m) * time.Minute) }
	x := func(k custody.ExcursionKind, start, end int) custody.Excursion {
		e := custody.Excursion{Kind: k, Start: at(start)}
		if end >= 0 {
			e.End = at(end)
		}
		return e
	}
	T := custody.ExcursionTemperature
	tests := []struct {
		name string
		a, b custody.Excursion
		want bool
	}{
		{"same", x(T, 0, 10), x(T, 0, 10), true},
		{"earlier start", x(T, 5, 10), x(T, 0, 10), true},
		{"touching", x(T, 0, 5), x(T, 5, 10), true},
		{"disjoint", x(T, 0, 5), x(T, 6, 10), false},
		{"open covers later", x(T, 0, -1), x(T, 100, 110), true},
		{"open starts after", x(T, 20, -1), x(T, 0, 10), false},
		{"other kind", x(T, 0, 10), x(custody.ExcursionTilt, 0, 10), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Overlaps(tt.b); got != tt.want || tt.b.Overlaps(tt.a) != tt.want {
				t.Fatalf("Overlaps = %v, want %v (both ways)", got, tt.want)
			}
		})
	}
}

func BenchmarkSealReadings(b *testing.B) {
	start := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	rs := make([]custody.Reading, 20000)
	for i := range rs {
		rs[i] = custody.Reading{Shipper: "SHP-0042", Seq: uint64(i), HasSeq: true,
			DeviceTime: start.Add(time.Duration(i) * time.Minute),
			TempC:      teleF(4 + 5*math.Sin(float64(i)/50)), TiltDeg: teleF(2), LidOpen: teleB(false),
			BatteryPct: teleF(80), Lat: teleF(40.7), Lon: teleF(-74)}
	}
	p := custody.BuiltinProfiles()["refrigerated"]
	shuffled := slices.Clone(rs)
	rand.New(rand.NewPCG(5, 6)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, bc := range []struct {
		name string
		rs   []custody.Reading
	}{{"sorted", rs}, {"shuffled", shuffled}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				custody.SealReadings(bc.rs, p)
			}
		})
	}
}
