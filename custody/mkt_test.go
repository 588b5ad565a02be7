package custody_test

import (
	"math"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// classicMKT is USP <1079.2>'s formula for equally spaced readings,
// written out here independently of the code under test:
// MKT = (ΔH/R) / -ln((1/n) Σ exp(-(ΔH/R)/T_i)) in kelvin, ΔH/R = 10000 K.
func classicMKT(tempsC []float64) float64 {
	var sum float64
	for _, c := range tempsC {
		sum += math.Exp(-10000 / (c + 273.15))
	}
	return 10000/-math.Log(sum/float64(len(tempsC))) - 273.15
}

// mktSeries samples a daily cycle between 2 and 8 C every step from start.
func mktSeries(start time.Time, n int, step time.Duration) ([]time.Time, []float64) {
	ts := make([]time.Time, n)
	cs := make([]float64, n)
	for i := range ts {
		ts[i] = start.Add(time.Duration(i) * step)
		cs[i] = mktCurve(ts[i].Sub(start))
	}
	return ts, cs
}

// mktCurve is the temperature d after the start of the series.
func mktCurve(d time.Duration) float64 {
	return 5 + 3*math.Sin(2*math.Pi*d.Hours()/24)
}

func TestTimeWeightedMKTRegularIsClassic(t *testing.T) {
	start := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name string
		n    int
		step time.Duration
		gap  time.Duration
	}{
		{"two readings", 2, time.Minute, 30 * time.Minute},
		{"a day every 5 minutes", 288, 5 * time.Minute, 30 * time.Minute},
		{"a week every 15 minutes, no cap", 672, 15 * time.Minute, 0},
		{"hourly, interval above the cap", 48, time.Hour, 30 * time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts, cs := mktSeries(start, tt.n, tt.step)
			got := custody.TimeWeightedMKT(ts, cs, tt.gap)
			want := classicMKT(cs)
			if math.Abs(got-want) > 1e-9 {
				t.Fatalf("time-weighted MKT of equal intervals = %.12f, classic formula %.12f", got, want)
			}
		})
	}
}

func TestTimeWeightedMKTBurst(t *testing.T) {
	start := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	ts, cs := mktSeries(start, 289, 5*time.Minute) // a day, both ends included
	base := custody.TimeWeightedMKT(ts, cs, 30*time.Minute)
	// A logger at its warmest hour (6 h in) reports every second for two
	// minutes: 120 readings of the same curve between two regular ones.
	var bts []time.Time
	var bcs []float64
	for i := range ts {
		bts, bcs = append(bts, ts[i]), append(bcs, cs[i])
		if ts[i].Sub(start) == 6*time.Hour {
			for k := 1; k <= 120; k++ {
				d := 6*time.Hour + time.Duration(k)*time.Second
				bts, bcs = append(bts, start.Add(d)), append(bcs, mktCurve(d))
			}
		}
	}
	got := custody.TimeWeightedMKT(bts, bcs, 30*time.Minute)
	if math.Abs(got-base) > 0.01 {
		t.Fatalf("a burst moved time-weighted MKT from %.4f to %.4f C", base, got)
	}
	// The same burst weighed reading by reading moves it by far more: the
	// test would catch equal weights.
	if eq := classicMKT(bcs); math.Abs(eq-classicMKT(cs)) < 0.5 {
		t.Fatalf("equal weights moved MKT only from %.4f to %.4f: the burst is too weak to test", classicMKT(cs), eq)
	}
}

func TestTimeWeightedMKTIrregular(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	at := func(m float64) time.Time { return t0.Add(time.Duration(m * float64(time.Minute))) }
	// Hand-computed weights (minutes): a reading represents half the
	// interval to each neighbour, intervals capped at maxGap, the end
	// readings their one interval in full.
	for _, tt := range []struct {
		name    string
		times   []time.Time
		temps   []float64
		gap     time.Duration
		weights []float64
	}{
		{
			// intervals 10, 2, 8: weights 10, 5+1, 1+4, 8
			"uneven", []time.Time{at(0), at(10), at(12), at(20)}, []float64{4, 10, 6, 3}, 30 * time.Minute,
			[]float64{10, 6, 5, 8},
		},
		{
			// intervals 5, 120 (capped to 30), 5: weights 5, 2.5+15, 15+2.5, 5
			"a silence is not filled", []time.Time{at(0), at(5), at(125), at(130)}, []float64{5, 5, 20, 20}, 30 * time.Minute,
			[]float64{5, 17.5, 17.5, 5},
		},
		{
			// intervals 1, 0, 0, 59: weights 1, 0.5, 0, 29.5, 59
			"same-time readings", []time.Time{at(0), at(1), at(1), at(1), at(60)}, []float64{2, 8, 8, 8, 3}, 0,
			[]float64{1, 0.5, 0, 29.5, 59},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var num, den float64
			for i, c := range tt.temps {
				num += tt.weights[i] * math.Exp(-10000/(c+273.15))
				den += tt.weights[i]
			}
			want := 10000/-math.Log(num/den) - 273.15
			got := custody.TimeWeightedMKT(tt.times, tt.temps, tt.gap)
			if math.Abs(got-want) > 1e-9 {
				t.Fatalf("MKT = %.9f, hand-computed %.9f", got, want)
			}
		})
	}
	for _, bad := range []struct {
		name  string
		times []time.Time
		temps []float64
	}{
		{"no readings", nil, nil},
		{"lengths differ", []time.Time{at(0)}, []float64{4, 5}},
		{"out of order", []time.Time{at(1), at(0)}, []float64{4, 5}},
		{"below absolute zero", []time.Time{at(0), at(1)}, []float64{4, -300}},
	} {
		if got := custody.TimeWeightedMKT(bad.times, bad.temps, 0); !math.IsNaN(got) {
			t.Errorf("%s: MKT = %v, want NaN", bad.name, got)
		}
	}
	if got := custody.TimeWeightedMKT([]time.Time{at(0), at(0)}, []float64{2, 8}, 0); math.Abs(got-classicMKT([]float64{2, 8})) > 1e-9 {
		t.Errorf("readings at one time: MKT = %v, want equal weights %v", got, classicMKT([]float64{2, 8}))
	}
}

// TestSealMKTTimeWeighted: the seal records the time-weighted MKT, its
// method and the cap it used.
func TestSealMKTTimeWeighted(t *testing.T) {
	p := custody.BuiltinProfiles()["refrigerated"]
	start := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	mins := []float64{0, 10, 12, 20}
	temps := []float64{4, 10, 6, 3}
	rs := make([]custody.Reading, len(mins))
	for i := range rs {
		c := temps[i]
		rs[i] = custody.Reading{Shipper: "SHP-0042", Seq: uint64(i + 1), HasSeq: true,
			DeviceTime: start.Add(time.Duration(mins[i]) * time.Minute), TempC: &c}
	}
	s := custody.SealReadings(rs, p)
	var num, den float64
	for i, w := range []float64{10, 6, 5, 8} {
		num += w * math.Exp(-10000/(temps[i]+273.15))
		den += w
	}
	want := math.Round((10000/-math.Log(num/den)-273.15)*1000) / 1000
	if s.MKTC == nil || *s.MKTC != want || s.MKTMethod != custody.MKTTimeWeighted || s.MKTMaxGap != p.SilenceAfter() {
		t.Fatalf("seal MKT = %v %q %s, want %v %q %s", s.MKTC, s.MKTMethod, s.MKTMaxGap, want, custody.MKTTimeWeighted, p.SilenceAfter())
	}
}

// integralMKT is MKT from its definition for a continuous temperature
// record, independent of any sampling: the temperature whose Arrhenius
// rate equals the time average of the rate over [0, span),
// (ΔH/R) / -ln((1/span) ∫ exp(-(ΔH/R)/T(t)) dt), integrated here by the
// midpoint rule over one-second steps of curve.
func integralMKT(curve func(time.Duration) float64, span time.Duration) float64 {
	var sum float64
	n := int(span / time.Second)
	for i := 0; i < n; i++ {
		sum += math.Exp(-10000 / (curve(time.Duration(i)*time.Second+time.Second/2) + 273.15))
	}
	return 10000/-math.Log(sum/float64(n)) - 273.15
}

// TestTimeWeightedMKTAgainstIntegral compares MKT of regular and irregular
// samplings of one known temperature curve with MKT computed from the
// curve itself: time weighting makes the irregular sampling (gaps of 1 to
// 20 minutes, bursts at the warm peak) agree with the integral as well as
// the regular one does, where equal weights do not.
func TestTimeWeightedMKTAgainstIntegral(t *testing.T) {
	start := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	const span = 24 * time.Hour
	want := integralMKT(mktCurve, span)
	regular := func() ([]time.Time, []float64) { return mktSeries(start, int(span/(5*time.Minute))+1, 5*time.Minute) }
	irregular := func() ([]time.Time, []float64) {
		var ts []time.Time
		var cs []float64
		steps := []time.Duration{time.Minute, 20 * time.Minute, 7 * time.Minute, 13 * time.Minute, 2 * time.Minute, 17 * time.Minute}
		for d, i := time.Duration(0), 0; d <= span; i++ {
			ts, cs = append(ts, start.Add(d)), append(cs, mktCurve(d))
			step := steps[i%len(steps)]
			if h := d.Hours(); h >= 5 && h < 7 {
				step = 10 * time.Second // a burst over the warmest hours
			}
			d += step
		}
		return ts, cs
	}
	for _, tt := range []struct {
		name   string
		series func() ([]time.Time, []float64)
	}{{"regular, every 5 minutes", regular}, {"irregular, with a burst", irregular}} {
		t.Run(tt.name, func(t *testing.T) {
			ts, cs := tt.series()
			got := custody.TimeWeightedMKT(ts, cs, 30*time.Minute)
			if math.Abs(got-want) > 0.01 {
				t.Fatalf("time-weighted MKT %.4f C, the curve's integral gives %.4f C", got, want)
			}
		})
	}
	// Equal weights would be far off on the irregular series: the test
	// can tell the two methods apart.
	_, cs := irregular()
	if eq := classicMKT(cs); math.Abs(eq-want) < 0.2 {
		t.Fatalf("equal-weight MKT %.4f C is within 0.2 C of the integral %.4f C: the series does not test the weighting", eq, want)
	}
}
