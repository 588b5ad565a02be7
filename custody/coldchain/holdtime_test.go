package coldchain

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// ln2Series returns one LN2 reading every step minutes from t0 for the
// given number of hours, the level at minute m being level(m).
func ln2Series(hours float64, step float64, level func(m float64) float64) []custody.Reading {
	var rs []custody.Reading
	for m := 0.0; m <= hours*60; m += step {
		rs = append(rs, custody.Reading{Shipper: shipper, Seq: uint64(len(rs)), HasSeq: true, DeviceTime: minute(m),
			ReceivedTime: minute(m), TempC: fp(-185), LN2Pct: fp(math.Max(0, math.Min(100, level(m))))})
	}
	return rs
}

// steady falls from start at rate points per hour.
func steady(start, rate float64) func(float64) float64 {
	return func(m float64) float64 { return start - rate*m/60 }
}

// cryoLeg is an open cryogenic leg shipped at t0, with a planned arrival
// plan hours after t0 (none when plan <= 0), seen at now.
func cryoLeg(plan float64, now time.Time) custody.LegRef {
	l := custody.LegRef{COI: "COI-1", Profile: custody.BuiltinProfiles()["cryogenic"],
		Leg: custody.Leg{N: 1, Shipper: shipper, Profile: "cryogenic", ShippedAt: t0, Open: true}}
	if plan > 0 {
		pa := t0.Add(time.Duration(plan * float64(time.Hour)))
		l.Leg.PlannedArrival = &pa
	}
	return l.At(now)
}

func hoursOf(d time.Duration) float64 { return d.Hours() }

// TestProjectHoldSteady: a steady boil-off is projected within tolerance
// of the truth, with its method and inputs.
func TestProjectHoldSteady(t *testing.T) {
	for _, tc := range []struct {
		name       string
		step, rate float64 // minutes between readings; points per hour
	}{
		{"every minute", 1, 0.5},
		{"every 15 minutes", 15, 0.5},
		{"fast boil-off", 5, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := ln2Series(6, tc.step, steady(80, tc.rate))
			now := minute(6 * 60)
			p := ProjectHold(cryoLeg(48, now), rs, now, HoldConfig{})
			if !p.OK || p.Method != custody.HoldMethodTheilSen {
				t.Fatalf("projection %+v", p)
			}
			if math.Abs(p.RatePctPerHour-tc.rate) > 0.005*tc.rate {
				t.Fatalf("rate %v, want %v", p.RatePctPerHour, tc.rate)
			}
			// Truth: the level at now is 80 - 6*rate, empty at 10%.
			truth := (80 - 6*tc.rate - DefaultEmptyPct) / tc.rate
			hold, ok := p.HoldTime()
			if !ok || math.Abs(hoursOf(hold)-truth) > 0.01*truth {
				t.Fatalf("hold %v (%v), want %.2fh", hold, ok, truth)
			}
			if p.Points != len(ln2Series(3, tc.step, steady(0, 0))) || p.FloorPct != DefaultEmptyPct ||
				p.WindowNS != int64(DefaultHoldWindow) || !p.FitTo.Equal(now) || !p.FitFrom.Equal(now.Add(-DefaultHoldWindow)) ||
				p.LastPct == nil || *p.LastPct != 80-6*tc.rate || p.RefillAt != nil {
				t.Fatalf("inputs %+v", p)
			}
			if p.RemainingNS == nil || time.Duration(*p.RemainingNS) != 42*time.Hour {
				t.Fatalf("remaining %v", p.RemainingNS)
			}
			// The journey has 42h to go, plus the 12h margin.
			if ws := HoldWarnings(cryoLeg(48, now), p); (len(ws) == 1) != (truth < 54) || len(ws) > 1 {
				t.Fatalf("warnings %+v with %.1fh of hold", ws, truth)
			}
		})
	}
}

// TestProjectHoldNoise: noisy readings and a few wild ones do not move
// the fitted rate far from the truth.
func TestProjectHoldNoise(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	rs := ln2Series(6, 1, func(m float64) float64 { return 80 - 0.5*m/60 + (rng.Float64()-0.5)*1.0 })
	for _, i := range []int{250, 300, 330} {
		*rs[i].LN2Pct = 20 // a sensor glitch
	}
	now := minute(6 * 60)
	p := ProjectHold(cryoLeg(48, now), rs, now, HoldConfig{})
	if !p.OK || math.Abs(p.RatePctPerHour-0.5) > 0.05 {
		t.Fatalf("rate %v, want 0.5 +- 0.05: %+v", p.RatePctPerHour, p)
	}
	hold, _ := p.HoldTime()
	if truth := (77 - 10) / 0.5; math.Abs(hoursOf(hold)-truth) > 0.1*truth {
		t.Fatalf("hold %v, want about %vh", hold, truth)
	}
}

// monitorRun feeds rs to the projection one reading at a time, as the
// monitor sees them arriving, and returns the minute of each warning
// cause's first appearance (the monitor records each once) and how many
// passes gave a warning of each cause.
func monitorRun(t *testing.T, plan float64, rs []custody.Reading, cfg HoldConfig) (map[custody.HoldWarningCause]float64, map[custody.HoldWarningCause]int) {
	t.Helper()
	first := map[custody.HoldWarningCause]float64{}
	passes := map[custody.HoldWarningCause]int{}
	for i := range rs {
		now := rs[i].DeviceTime
		l := cryoLeg(plan, now)
		for _, w := range HoldWarnings(l, ProjectHold(l, rs[:i+1], now, cfg)) {
			if w.Message == "" || w.Projection.At != now {
				t.Fatalf("warning %+v", w)
			}
			passes[w.Cause]++
			if _, ok := first[w.Cause]; !ok {
				first[w.Cause] = now.Sub(t0).Minutes()
			}
		}
	}
	return first, passes
}

// TestHoldWarningLidOpen: the lid left open makes the level fall fast; the
// hold-time warning comes within an hour of it, not before.
func TestHoldWarningLidOpen(t *testing.T) {
	const open = 240.0 // minute the lid is left open
	rs := ln2Series(6, 1, func(m float64) float64 {
		if m < open {
			return 80 - 0.5*m/60
		}
		return 78 - 10*(m-open)/60
	})
	first, passes := monitorRun(t, 48, rs, HoldConfig{})
	m, ok := first[custody.HoldCauseHoldTime]
	if !ok || m < open || m > open+60 {
		t.Fatalf("hold-time warning first at minute %v (%v), want within the hour after %v", m, ok, open)
	}
	if passes[custody.HoldCauseHoldTime] < 2 {
		t.Fatalf("the condition held for %d passes; the monitor must record it once", passes[custody.HoldCauseHoldTime])
	}
	if _, late := first[custody.HoldCauseLate]; late {
		t.Fatal("late warning before the planned arrival")
	}
	// The warning shows the projection it rests on.
	now := minute(6 * 60)
	l := cryoLeg(48, now)
	ws := HoldWarnings(l, ProjectHold(l, rs, now, HoldConfig{}))
	if len(ws) != 1 || ws[0].Projection.RatePctPerHour < 5 || !strings.Contains(ws[0].Message, "planned arrival") {
		t.Fatalf("warnings %+v", ws)
	}
}

// TestHoldWarningRefill: a refill (the level jumping up over a few
// minutes) restarts the fit; a low, fast-falling charge before it warns,
// nothing after it does.
func TestHoldWarningRefill(t *testing.T) {
	const refill = 240.0
	rs := ln2Series(6.5, 1, func(m float64) float64 {
		switch {
		case m < refill:
			return 60 - 0.5*m/60
		case m < refill+5: // filling
			return 58.5 + 7*(m-refill)
		}
		return 95 - 0.5*(m-refill-5)/60
	})
	first, _ := monitorRun(t, 30, rs, HoldConfig{})
	if len(first) != 0 {
		t.Fatalf("false warnings around a refill: %v", first)
	}
	now := minute(6.5 * 60) // the refill is in the fit window
	p := ProjectHold(cryoLeg(30, now), rs, now, HoldConfig{})
	if p.RefillAt == nil || p.RefillAt.Before(minute(refill)) || p.RefillAt.After(minute(refill+7)) || p.FitFrom.Before(*p.RefillAt) {
		t.Fatalf("refill %v, fit from %v", p.RefillAt, p.FitFrom)
	}
	if math.Abs(p.RatePctPerHour-0.5) > 0.01 {
		t.Fatalf("rate after refill %v, want 0.5", p.RatePctPerHour)
	}
	// Right after the refill there are too few readings to fit: no
	// projection, and it says why.
	now = minute(refill + 7)
	p = ProjectHold(cryoLeg(30, now), rs[:int(refill)+8], now, HoldConfig{})
	if p.OK || !strings.Contains(p.Reason, "at least") || len(HoldWarnings(cryoLeg(30, now), p)) != 0 {
		t.Fatalf("just after the refill: %+v", p)
	}
}

// TestProjectHoldNone: without enough LN2 readings there is no
// projection, and Reason says why.
func TestProjectHoldNone(t *testing.T) {
	now := minute(60)
	noLN2 := temps(0, fill(60, -185)...)
	for _, tc := range []struct {
		name   string
		rs     []custody.Reading
		reason string
	}{
		{"no LN2 readings", noLN2, "no LN2 readings"},
		{"too few points", ln2Series(0.5, 15, steady(80, 1)), "3 LN2 readings to fit"},
		{"too short a span", ln2Series(0.1, 1, steady(80, 1)), "span 6m0s"},
		{"readings before the leg", append(ln2Series(1, 1, steady(80, 1))[:0:0], func() []custody.Reading {
			rs := ln2Series(1, 1, steady(80, 1))
			for i := range rs {
				rs[i].DeviceTime = rs[i].DeviceTime.Add(-2 * time.Hour)
			}
			return rs
		}()...), "no LN2 readings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ProjectHold(cryoLeg(48, now), tc.rs, now, HoldConfig{})
			if p.OK || !strings.Contains(p.Reason, tc.reason) || p.HoldNS != nil {
				t.Fatalf("projection %+v, want no projection because %q", p, tc.reason)
			}
			if ws := HoldWarnings(cryoLeg(48, now), p); len(ws) != 0 {
				t.Fatalf("warnings %+v", ws)
			}
		})
	}
	// A level that does not fall has a projection but no hold time.
	p := ProjectHold(cryoLeg(48, now), ln2Series(1, 1, steady(80, 0)), now, HoldConfig{})
	if !p.OK || p.HoldNS != nil || !strings.Contains(p.Reason, "not falling") {
		t.Fatalf("flat level: %+v", p)
	}
}

// TestHoldWarningsPlan: warnings against a leg's planned arrival, or
// against the margin alone for a leg without one; the floor from the
// profile; nothing for a received leg.
func TestHoldWarningsPlan(t *testing.T) {
	now := minute(6 * 60)
	rs := ln2Series(6, 5, steady(80, 1)) // at now: 74%, 64h to 10%
	floor := 40.0                        // 34h to 40%
	received := now
	for _, tc := range []struct {
		name   string
		plan   float64 // hours after t0; <= 0: none
		floor  *float64
		margin time.Duration
		recv   *time.Time
		want   []custody.HoldWarningCause
		msg    string
	}{
		{"ample hold", 48, nil, 0, nil, nil, ""},
		{"hold shorter than journey plus margin", 60, nil, 0, nil, []custody.HoldWarningCause{custody.HoldCauseHoldTime}, "remaining journey (54h0m0s"},
		{"a smaller margin", 60, nil, time.Hour, nil, nil, ""},
		{"no plan: margin only, healthy", 0, nil, 0, nil, nil, ""},
		{"no plan: within the margin", 0, nil, 70 * time.Hour, nil, []custody.HoldWarningCause{custody.HoldCauseHoldTime}, "no planned arrival"},
		{"without the profile's floor", 30, nil, 0, nil, nil, ""},
		{"the profile's floor", 30, &floor, 0, nil, []custody.HoldWarningCause{custody.HoldCauseHoldTime}, "reach 40%"},
		{"past the planned arrival", 5, nil, 0, nil, []custody.HoldWarningCause{custody.HoldCauseLate}, "1h0m0s after its planned arrival"},
		{"received leg", 5, nil, 100 * time.Hour, &received, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := cryoLeg(tc.plan, now)
			l.Profile.MinLN2Pct = tc.floor
			l.Leg.ReceivedAt = tc.recv
			p := ProjectHold(l, rs, now, HoldConfig{Margin: tc.margin})
			if tc.plan <= 0 && (p.PlannedArrival != nil || p.RemainingNS != nil) {
				t.Fatalf("no plan, but %+v", p)
			}
			ws := HoldWarnings(l, p)
			var got []custody.HoldWarningCause
			for _, w := range ws {
				got = append(got, w.Cause)
			}
			if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
				t.Fatalf("causes %v, want %v: %+v", got, tc.want, ws)
			}
			if tc.msg != "" && !strings.Contains(ws[0].Message, tc.msg) {
				t.Fatalf("message %q lacks %q", ws[0].Message, tc.msg)
			}
		})
	}
}

// TestProjectHoldOrder: readings out of order give the same projection.
func TestProjectHoldOrder(t *testing.T) {
	now := minute(6 * 60)
	rs := ln2Series(6, 1, steady(80, 0.5))
	want := ProjectHold(cryoLeg(48, now), rs, now, HoldConfig{})
	rng := rand.New(rand.NewPCG(5, 6))
	rng.Shuffle(len(rs), func(a, b int) { rs[a], rs[b] = rs[b], rs[a] })
	got := ProjectHold(cryoLeg(48, now), rs, now, HoldConfig{})
	if *got.HoldNS != *want.HoldNS || got.RatePctPerHour != want.RatePctPerHour || got.Points != want.Points {
		t.Fatalf("shuffled %+v, want %+v", got, want)
	}
}

// BenchmarkProjectHold is the projection the monitor makes for a leg
// each time new readings of its shipper arrive: two days of one reading a
// minute.
func BenchmarkProjectHold(b *testing.B) {
	rs := ln2Series(48, 1, steady(95, 0.5))
	now := rs[len(rs)-1].DeviceTime
	l := cryoLeg(72, now)
	b.ReportAllocs()
	for b.Loop() {
		p := ProjectHold(l, rs, now, HoldConfig{})
		_ = HoldWarnings(l, p)
	}
}
