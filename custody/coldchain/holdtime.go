package coldchain

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/coid-project/coid/custody"
)

// Defaults of HoldConfig.
const (
	// DefaultHoldWindow is how far back from the last LN2 reading the
	// boil-off rate is fitted.
	DefaultHoldWindow = 3 * time.Hour
	// DefaultHoldMinPoints is the fewest LN2 readings a fit needs.
	DefaultHoldMinPoints = 6
	// DefaultHoldMinSpan is the shortest time the fitted readings must
	// span.
	DefaultHoldMinSpan = 20 * time.Minute
	// DefaultEmptyPct is the LN2 charge taken as empty when the profile
	// sets no MinLN2Pct.
	DefaultEmptyPct = 10.0
	// DefaultHoldMargin is how much longer than the remaining journey the
	// projected hold time must be.
	DefaultHoldMargin = 12 * time.Hour
	// DefaultRefillJump is how many percentage points the level must rise
	// above its lowest since the last refill to count as a refill.
	DefaultRefillJump = 3.0
)

// holdBins is the number of equal time bins the fit window is divided
// into; the Theil-Sen slopes are taken between the bins' means, which
// bounds the work per projection whatever the reporting rate.
const holdBins = 24

// HoldConfig configures hold-time projection (ProjectHold) and warnings
// (HoldWarnings). A zero field takes its default.
type HoldConfig struct {
	// Window is how far back from the last LN2 reading the boil-off rate
	// is fitted (DefaultHoldWindow). Shorter follows a change of rate (a
	// lid left open) sooner; longer smooths more noise.
	Window time.Duration
	// MinPoints is the fewest LN2 readings a fit needs
	// (DefaultHoldMinPoints).
	MinPoints int
	// MinSpan is the shortest time the fitted readings must span
	// (DefaultHoldMinSpan).
	MinSpan time.Duration
	// EmptyPct is the level taken as empty when the leg's profile sets no
	// MinLN2Pct (DefaultEmptyPct).
	EmptyPct float64
	// Margin is how much longer than the remaining journey the hold time
	// must be before a warning is raised (DefaultHoldMargin).
	Margin time.Duration
	// RefillJump is how many percentage points the level must rise above
	// its lowest since the last refill to count as a refill: the fit then
	// restarts at that reading (DefaultRefillJump).
	RefillJump float64
}

func (c HoldConfig) withDefaults() HoldConfig {
	if c.Window <= 0 {
		c.Window = DefaultHoldWindow
	}
	if c.MinPoints < 2 {
		c.MinPoints = DefaultHoldMinPoints
	}
	if c.MinSpan <= 0 {
		c.MinSpan = DefaultHoldMinSpan
	}
	if c.EmptyPct <= 0 {
		c.EmptyPct = DefaultEmptyPct
	}
	if c.Margin <= 0 {
		c.Margin = DefaultHoldMargin
	}
	if c.RefillJump <= 0 {
		c.RefillJump = DefaultRefillJump
	}
	return c
}

// ProjectHold projects the remaining hold time of leg l's dry shipper at
// now from its readings rs (those of the leg; take l from
// custody.LegRef.At(now)). Only readings carrying LN2Pct in [l.From,
// l.To] count. rs should be in device-time order, as the store returns
// them: only the fit window is then read, found by binary search, so the
// work does not grow with the leg (a window found out of order makes it
// sort a copy first, at a cost).
//
// The method (custody.HoldMethodTheilSen): the fit uses the readings at
// most cfg.Window before the last one, and only those from the latest
// refill in that window, a refill being a level (the median of three
// consecutive readings) more than cfg.RefillJump points above the lowest
// level since the window's start or the previous refill. Those readings are
// averaged into equal time bins and the boil-off rate is the median of the
// slopes between every two bin means (Theil-Sen: noise and a few wild
// readings do not move it). The level now is the fitted line's value at
// the last reading, and the hold time runs from now to when that line
// reaches the floor: the profile's MinLN2Pct, else cfg.EmptyPct. With
// fewer than cfg.MinPoints readings, or a span shorter than cfg.MinSpan,
// there is no projection and Reason says why; a level that is not falling
// gives a projection without a hold time.
//
// It is a pure function: no I/O and no clock; it allocates only the
// result's values (and the sorted copy of readings out of order).
func ProjectHold(l custody.LegRef, rs []custody.Reading, now time.Time, cfg HoldConfig) custody.HoldProjection {
	cfg = cfg.withDefaults()
	p := custody.HoldProjection{Method: custody.HoldMethodTheilSen, At: now.UTC(),
		WindowNS: int64(cfg.Window), Window: cfg.Window.String(), FloorPct: cfg.EmptyPct,
		MarginNS: int64(cfg.Margin), Margin: cfg.Margin.String()}
	if l.Profile.MinLN2Pct != nil {
		p.FloorPct = *l.Profile.MinLN2Pct
	}
	if l.Leg.PlannedArrival != nil {
		pa := l.Leg.PlannedArrival.UTC()
		rem := int64(pa.Sub(now))
		p.PlannedArrival, p.RemainingNS, p.Remaining = &pa, &rem, time.Duration(rem).String()
	}
	in := func(r *custody.Reading) bool {
		return r.LN2Pct != nil && !r.DeviceTime.Before(l.From) && (l.To.IsZero() || !r.DeviceTime.After(l.To))
	}
	// The last reading, then one pass over the window before it for the
	// latest refill (restart). The level is the median of the last three
	// readings, so that one wild reading is neither a refill nor the low
	// a refill is measured from.
	last := -1
	for i := len(rs) - 1; i >= 0; i-- {
		if in(&rs[i]) {
			last = i
			break
		}
	}
	if last < 0 {
		p.Reason = "no LN2 readings on this leg"
		return p
	}
	lastT := rs[last].DeviceTime
	from := lastT.Add(-cfg.Window)
	first, _ := slices.BinarySearchFunc(rs[:last], from, func(r custody.Reading, t time.Time) int { return r.DeviceTime.Compare(t) })
	if !sortedByDeviceTime(rs[first : last+1]) {
		// Not in device-time order after all: sort a copy and start again.
		sorted := slices.Clone(rs)
		custody.SortReadings(sorted)
		return ProjectHold(l, sorted, now, cfg)
	}
	start := -1
	var low float64
	var refill time.Time
	var ring [3]float64
	seen := 0
	for i := first; i <= last; i++ {
		r := &rs[i]
		if !in(r) {
			continue
		}
		ring[seen%3] = *r.LN2Pct
		seen++
		v := ring[0]
		if seen >= 3 {
			v = median3(ring[0], ring[1], ring[2])
		} else if seen == 2 {
			v = min(ring[0], ring[1])
		}
		switch {
		case start < 0:
			start, low = i, v
		case v > low+cfg.RefillJump:
			start, low, refill = i, v, r.DeviceTime
		case v < low:
			low = v
		}
	}
	lastV := *rs[last].LN2Pct
	p.LastPct, p.LastTime = &lastV, lastT.UTC()
	if !refill.IsZero() {
		rt := refill.UTC()
		p.RefillAt = &rt
	}
	p.FitFrom, p.FitTo = rs[start].DeviceTime.UTC(), lastT.UTC()
	span := lastT.Sub(rs[start].DeviceTime)
	// Bin the fit's readings by time: x in hours before the last reading.
	var (
		sumX, sumY [holdBins]float64
		cnt        [holdBins]int
	)
	width := span / holdBins
	for i := start; i <= last; i++ {
		r := &rs[i]
		if !in(r) {
			continue
		}
		p.Points++
		d := r.DeviceTime.Sub(rs[start].DeviceTime)
		b := holdBins - 1
		if width > 0 {
			b = min(int(d/width), holdBins-1)
		}
		sumX[b] += -lastT.Sub(r.DeviceTime).Hours()
		sumY[b] += *r.LN2Pct
		cnt[b]++
	}
	if p.Points < cfg.MinPoints {
		p.Reason = fmt.Sprintf("%d LN2 readings to fit since %s; at least %d are needed", p.Points,
			p.FitFrom.Format(time.RFC3339), cfg.MinPoints)
		return p
	}
	if span < cfg.MinSpan {
		p.Reason = fmt.Sprintf("the LN2 readings to fit span %s; at least %s is needed", span, cfg.MinSpan)
		return p
	}
	var xs, ys [holdBins]float64
	n := 0
	for b := range holdBins {
		if cnt[b] > 0 {
			xs[n], ys[n] = sumX[b]/float64(cnt[b]), sumY[b]/float64(cnt[b])
			n++
		}
	}
	p.Bins = n
	var slopes [holdBins * (holdBins - 1) / 2]float64
	k := 0
	for i := range n {
		for j := i + 1; j < n; j++ {
			slopes[k] = (ys[j] - ys[i]) / (xs[j] - xs[i])
			k++
		}
	}
	slope := median(slopes[:k])
	// The line through the medians: level at the last reading (x = 0).
	var icpt [holdBins]float64
	for i := range n {
		icpt[i] = ys[i] - slope*xs[i]
	}
	level := median(icpt[:n])
	p.OK = true
	p.RatePctPerHour = math.Round(-slope*1e4) / 1e4
	if !(p.RatePctPerHour > 0) {
		p.Reason = "the LN2 level is not falling: no hold time on this trend"
		return p
	}
	hours := (level - p.FloorPct) / -slope
	empty := lastT.Add(time.Duration(hours * float64(time.Hour))).Round(time.Second).UTC()
	hold := max(empty.Sub(now), 0)
	ns := int64(hold)
	p.HoldNS, p.Hold, p.EmptyAt = &ns, hold.String(), &empty
	return p
}

// HoldWarnings returns the warnings projection p (ProjectHold's for leg l)
// gives, at most one per cause; a received leg gives none.
//
//   - custody.HoldCauseHoldTime: the projected hold time is shorter than
//     the remaining journey (planned arrival minus now; zero without a
//     planned arrival, or past it) plus p's margin.
//   - custody.HoldCauseLate: the leg has a planned arrival and is still in
//     transit at or after it, so it arrives after its plan.
func HoldWarnings(l custody.LegRef, p custody.HoldProjection) []custody.HoldWarning {
	if l.Leg.ReceivedAt != nil {
		return nil
	}
	var out []custody.HoldWarning
	margin := time.Duration(p.MarginNS)
	if hold, ok := p.HoldTime(); p.OK && ok {
		var remaining time.Duration
		if p.RemainingNS != nil {
			remaining = max(time.Duration(*p.RemainingNS), 0)
		}
		if hold < remaining+margin {
			msg := fmt.Sprintf("LN2 projected to reach %s%% in %s (at %s, falling %s%%/h)", fmtPct(p.FloorPct), hold,
				p.EmptyAt.Format(time.RFC3339), fmtPct(p.RatePctPerHour))
			if p.PlannedArrival != nil {
				msg += fmt.Sprintf(": less than the remaining journey (%s, planned arrival %s) plus the %s margin",
					remaining, p.PlannedArrival.Format(time.RFC3339), margin)
			} else {
				msg += fmt.Sprintf(": within the %s margin (the leg has no planned arrival)", margin)
			}
			out = append(out, custody.HoldWarning{Cause: custody.HoldCauseHoldTime, Message: msg, Projection: p})
		}
	}
	if p.PlannedArrival != nil && !p.At.Before(*p.PlannedArrival) {
		msg := fmt.Sprintf("still in transit %s after its planned arrival %s: the leg arrives late",
			p.At.Sub(*p.PlannedArrival), p.PlannedArrival.Format(time.RFC3339))
		out = append(out, custody.HoldWarning{Cause: custody.HoldCauseLate, Message: msg, Projection: p})
	}
	return out
}

func fmtPct(v float64) string { return fmt.Sprint(math.Round(v*100) / 100) }

// median3 returns the median of three values.
func median3(a, b, c float64) float64 {
	return max(min(a, b), min(max(a, b), c))
}

// median returns the median of xs, reordering xs.
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// sortedByDeviceTime reports whether rs is in non-decreasing device-time
// order.
func sortedByDeviceTime(rs []custody.Reading) bool {
	for i := 1; i < len(rs); i++ {
		if rs[i].DeviceTime.Before(rs[i-1].DeviceTime) {
			return false
		}
	}
	return true
}
