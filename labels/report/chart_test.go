package report

import (
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// TestReduceKeepsExtremesAndExcursions: a single-reading spike, the lowest
// reading, and the first, last and worst reading of an excursion survive
// decimation, and the number of points stays bounded.
func TestReduceKeepsExtremesAndExcursions(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	p := custody.BuiltinProfiles()["refrigerated"]
	var rs []custody.Reading
	for i := range 20000 {
		v := 5.0
		switch i {
		case 7777:
			v = 30 // spike
		case 12345:
			v = -3 // dip
		}
		if i >= 15000 && i < 15100 {
			v = 8.5 + float64(i-15000)/100 // excursion, worst at its end
		}
		rs = append(rs, custody.Reading{Shipper: "S", DeviceTime: t0.Add(time.Duration(i) * time.Minute), TempC: &v})
	}
	t1 := rs[len(rs)-1].DeviceTime
	end := rs[15099].DeviceTime
	exc := []excursion{{Kind: "temperature", Start: rs[15000].DeviceTime, End: &end, Limit: &[]float64{8}[0]}}
	const buckets = 100
	s := reduce(rs, t0, t1, buckets, p, exc)
	if len(s.points) > 4*buckets+3 {
		t.Errorf("%d points for %d buckets", len(s.points), buckets)
	}
	has := func(i int) bool {
		for _, pt := range s.points {
			if pt.t.Equal(rs[i].DeviceTime) && pt.v == *rs[i].TempC {
				return true
			}
		}
		return false
	}
	for _, i := range []int{7777, 12345, 15000, 15099, 14999} {
		if !has(i) {
			t.Errorf("reading %d (%v C) was dropped", i, *rs[i].TempC)
		}
	}
	if s.lo != -3 || s.hi != 30 || s.count != 20000 {
		t.Errorf("range %v..%v over %d readings", s.lo, s.hi, s.count)
	}
	for i := 1; i < len(s.points); i++ {
		if !s.points[i].t.After(s.points[i-1].t) {
			t.Fatalf("points out of order at %d", i)
		}
	}
}

// TestTimeTicksOfShortLegs: a leg of a minute or two (a demo, a transfer
// between buildings) still gets labelled ticks on its chart.
func TestTimeTicksOfShortLegs(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 16, 8, 57, 0, time.UTC)
	for _, span := range []time.Duration{40 * time.Second, 2 * time.Minute, 30 * time.Minute, 9 * time.Hour, 5 * 24 * time.Hour} {
		ticks, step := timeTicks(t0, t0.Add(span), 8, time.UTC)
		if len(ticks) < 2 || len(ticks) > 9 {
			t.Errorf("span %v: %d ticks (step %v), want 2-9", span, len(ticks), step)
		}
		for _, tk := range ticks {
			if tk.Before(t0) || tk.After(t0.Add(span)) {
				t.Errorf("span %v: tick %v outside the leg", span, tk)
			}
		}
	}
}

// TestLineBreaksAcrossMissingReadings: the line breaks across a pause of
// a few missed reports even when it is shorter than the silence limit,
// and across a pause of a shipper whose profile gives no interval; it
// does not break between readings that come at their usual pace.
func TestLineBreaksAcrossMissingReadings(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	readings := func(every time.Duration, n int, pauseAt int, pause time.Duration) []custody.Reading {
		var rs []custody.Reading
		at := t0
		for i := range n {
			if i == pauseAt {
				at = at.Add(pause)
			}
			v := 5.0
			rs = append(rs, custody.Reading{DeviceTime: at, TempC: &v})
			at = at.Add(every)
		}
		return rs
	}
	// A report every 5 min, silence after 30 min: the line breaks after
	// three usual intervals (15 min), more than two expected ones.
	fridge := custody.BuiltinProfiles()["refrigerated"]
	unknown := custody.Profile{Name: "elsewhere"}
	cases := []struct {
		name           string
		p              custody.Profile
		rs             []custody.Reading
		breaks, gaps   int
		wantBreakAfter time.Duration
	}{
		{"20 min without a report, below the silence limit", fridge, readings(5*time.Minute, 100, 50, 15*time.Minute), 1, 0, 15 * time.Minute},
		{"50 min: a silence", fridge, readings(5*time.Minute, 100, 50, 45*time.Minute), 1, 1, 15 * time.Minute},
		{"readings at the usual pace", fridge, readings(5*time.Minute, 100, -1, 0), 0, 0, 15 * time.Minute},
		{"a shipper reporting every 8 min", fridge, readings(8*time.Minute, 100, -1, 0), 0, 0, 24 * time.Minute},
		{"no interval known: three typical intervals", unknown, readings(time.Minute, 100, 50, 10*time.Minute), 1, 0, 3 * time.Minute},
	}
	for _, tc := range cases {
		end := tc.rs[len(tc.rs)-1].DeviceTime
		s := reduce(tc.rs, t0, end, 300, tc.p, nil)
		if len(s.breaks) != tc.breaks || len(s.gaps) != tc.gaps || s.breakAfter != tc.wantBreakAfter {
			t.Errorf("%s: %d breaks, %d silences, breaks after %v; want %d, %d, %v", tc.name, len(s.breaks), len(s.gaps), s.breakAfter,
				tc.breaks, tc.gaps, tc.wantBreakAfter)
		}
	}
}
