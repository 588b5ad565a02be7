package sensors

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/coldchain"
)

func benchReadings(n int) []custody.Reading {
	rs := make([]custody.Reading, n)
	for i := range rs {
		rs[i] = custody.Reading{Shipper: shipper, Seq: uint64(i + 1), HasSeq: true,
			DeviceTime: received.Add(time.Duration(i-n) * time.Second),
			TempC:      fp(-182.4 + float64(i%10)/10), TiltDeg: fp(3.5), LidOpen: bp(false), Light: bp(false),
			BatteryPct: fp(88), LN2Pct: fp(71), Lat: fp(40.71), Lon: fp(-74.01)}
	}
	return rs
}

func BenchmarkDecodeJSON(b *testing.B) {
	object := []byte(`{"shipper":"SHP-0042","seq":1187,"time":"2026-11-22T13:00:00Z","temp_c":-182.4,"tilt_deg":3.5,"lid_open":false,"battery_pct":88,"ln2_pct":71,"lat":40.71,"lon":-74.01}`)
	array, err := EncodeJSON(benchReadings(100))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name     string
		payload  []byte
		readings int
	}{{"object", object, 1}, {"array100", array, 100}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.payload)))
			for b.Loop() {
				rs, err := Decode(shipper, bc.payload, received)
				if err != nil || len(rs) != bc.readings {
					b.Fatal(len(rs), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*bc.readings), "ns/reading")
		})
	}
}

func BenchmarkDecodeSenML(b *testing.B) {
	payload, err := EncodeSenML(benchReadings(100))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if rs, err := Decode(shipper, payload, received); err != nil || len(rs) != 100 {
			b.Fatal(len(rs), err)
		}
	}
}

// benchLeg is a 20,000-reading cryogenic leg (a reading a minute, about two
// weeks) with periodic warmings, tilts, lid openings and gaps.
func benchLeg() []custody.Reading {
	rs := make([]custody.Reading, 0, 20000)
	for i := 0; len(rs) < 20000; i++ {
		if i%1000 >= 980 { // a 20-minute gap every 1000 minutes
			continue
		}
		c := -185 + 40*math.Max(0, math.Sin(float64(i)/300))
		rs = append(rs, custody.Reading{Shipper: shipper, Seq: uint64(i), HasSeq: true,
			DeviceTime: t0.Add(time.Duration(i) * time.Minute),
			TempC:      fp(c), TiltDeg: fp(float64(i % 50)), LidOpen: bp(i%400 < 3)})
	}
	return rs
}

func BenchmarkEvaluate(b *testing.B) {
	rs := benchLeg()
	p := custody.BuiltinProfiles()["cryogenic"]
	to := rs[len(rs)-1].DeviceTime.Add(time.Hour)
	shuffled := slices.Clone(rs)
	rand.New(rand.NewPCG(9, 10)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, bc := range []struct {
		name string
		rs   []custody.Reading
	}{{"sorted", rs}, {"shuffled", shuffled}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for b.Loop() {
				n = len(coldchain.Evaluate(p, bc.rs, t0, to))
			}
			b.ReportMetric(float64(n), "excursions")
		})
	}
}
