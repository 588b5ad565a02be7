package report

import (
	"math"
	"slices"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/coldchain"
)

// A leg's chart is drawn from a bounded number of points whatever the
// number of readings: the time axis is cut into buckets, one per
// bucketMM of chart width, and each bucket keeps its lowest and highest
// temperature and the first and last reading that crosses a limit. The
// readings nearest to each excursion's start and end and its worst value
// are always kept. Tilt, lid and silence marks are kept per bucket too.

// bucketMM is the chart width, in millimetres, that one bucket covers:
// finer than a printer resolves a line's wiggle at normal viewing.
const bucketMM = 0.5

// point is one plotted temperature.
type point struct {
	t time.Time
	v float64
}

// series is a leg's telemetry reduced for drawing.
type series struct {
	points []point
	// gaps are spans with no temperature reading for longer than the
	// profile's silence limit, marked in the silence strip.
	gaps []span
	// breaks are spans with no temperature reading for longer than
	// breakAfter (every gap among them); the line is broken across them,
	// so it never joins two readings across a silence.
	breaks     []span
	breakAfter time.Duration
	// tilt and lid mark the buckets in which a reading broke the tilt
	// limit or showed the lid open or light inside.
	tilt, lid []bool
	lo, hi    float64 // temperature range of all readings
	hasTemp   bool
	count     int // readings with a temperature
}

type span struct{ a, b time.Time }

// reduce buckets readings (in device-time order) over [t0, t1] into at
// most 4 points per bucket plus 3 per excursion.
func reduce(rs []custody.Reading, t0, t1 time.Time, buckets int, p custody.Profile, exc []excursion) series {
	s := series{tilt: make([]bool, buckets), lid: make([]bool, buckets)}
	if buckets <= 0 || !t1.After(t0) {
		return s
	}
	span0 := float64(t1.Sub(t0))
	bucketOf := func(t time.Time) int {
		b := int(float64(t.Sub(t0)) / span0 * float64(buckets))
		return min(max(b, 0), buckets-1)
	}
	const none = -1
	type agg struct{ lo, hi, cross1, cross2 int }
	aggs := make([]agg, buckets)
	for i := range aggs {
		aggs[i] = agg{none, none, none, none}
	}
	silence := p.ExpectedInterval * time.Duration(p.SilenceIntervals)
	s.breakAfter = lineBreakAfter(p, rs)
	prev := none
	var prevOut bool
	for i := range rs {
		r := &rs[i]
		b := bucketOf(r.DeviceTime)
		if p.MaxTiltDeg != nil && r.TiltDeg != nil && *r.TiltDeg > *p.MaxTiltDeg {
			s.tilt[b] = true
		}
		if r.LidOpen != nil && *r.LidOpen || r.Light != nil && *r.Light {
			s.lid[b] = true
		}
		if r.TempC == nil {
			continue
		}
		v := *r.TempC
		if !s.hasTemp || v < s.lo {
			s.lo = v
		}
		if !s.hasTemp || v > s.hi {
			s.hi = v
		}
		s.hasTemp = true
		s.count++
		a := &aggs[b]
		if a.lo == none || v < *rs[a.lo].TempC {
			a.lo = i
		}
		if a.hi == none || v > *rs[a.hi].TempC {
			a.hi = i
		}
		out := !p.TempInRange(v)
		if prev != none {
			if silence > 0 && r.DeviceTime.Sub(rs[prev].DeviceTime) > silence {
				s.gaps = append(s.gaps, span{rs[prev].DeviceTime, r.DeviceTime})
			}
			if s.breakAfter > 0 && r.DeviceTime.Sub(rs[prev].DeviceTime) > s.breakAfter {
				s.breaks = append(s.breaks, span{rs[prev].DeviceTime, r.DeviceTime})
			}
			if out != prevOut {
				// Keep both sides of a limit crossing.
				if a.cross1 == none {
					a.cross1 = i
				} else {
					a.cross2 = i
				}
				pb := &aggs[bucketOf(rs[prev].DeviceTime)]
				if pb.cross1 == none {
					pb.cross1 = prev
				} else if pb.cross1 != prev {
					pb.cross2 = prev
				}
			}
		}
		prev, prevOut = i, out
	}
	keep := make([]int, 0, 4*buckets+3*len(exc))
	for _, a := range aggs {
		for _, i := range [...]int{a.lo, a.hi, a.cross1, a.cross2} {
			if i != none {
				keep = append(keep, i)
			}
		}
	}
	for _, e := range exc {
		keep = append(keep, excursionPoints(rs, e)...)
	}
	slices.Sort(keep)
	keep = slices.Compact(keep)
	s.points = make([]point, len(keep))
	for j, i := range keep {
		s.points[j] = point{rs[i].DeviceTime, *rs[i].TempC}
	}
	return s
}

// lineBreakAfter returns how long two consecutive temperature readings
// may be apart before the chart's line breaks between them
// (coldchain.LineBreak over the readings that carry a temperature).
func lineBreakAfter(p custody.Profile, rs []custody.Reading) time.Duration {
	var ds []time.Duration
	var last time.Time
	for _, r := range rs {
		if r.TempC == nil {
			continue
		}
		if !last.IsZero() {
			ds = append(ds, r.DeviceTime.Sub(last))
		}
		last = r.DeviceTime
	}
	return coldchain.LineBreak(p, ds)
}

// excursionPoints returns the indices of the temperature readings nearest
// an excursion's start and end and of its most extreme value within it.
func excursionPoints(rs []custody.Reading, e excursion) []int {
	var out []int
	start, _ := slices.BinarySearchFunc(rs, e.Start, func(r custody.Reading, t time.Time) int { return r.DeviceTime.Compare(t) })
	end := len(rs)
	if e.End != nil {
		end, _ = slices.BinarySearchFunc(rs, *e.End, func(r custody.Reading, t time.Time) int { return r.DeviceTime.Compare(t.Add(1)) })
	}
	first, last, worst := -1, -1, -1
	for i := start; i < end; i++ {
		if rs[i].TempC == nil {
			continue
		}
		if first < 0 {
			first = i
		}
		last = i
		if worst < 0 || math.Abs(*rs[i].TempC-limitNear(e)) > math.Abs(*rs[worst].TempC-limitNear(e)) {
			worst = i
		}
	}
	for _, i := range []int{first, last, worst} {
		if i >= 0 {
			out = append(out, i)
		}
	}
	return out
}

func limitNear(e excursion) float64 {
	if e.Limit != nil {
		return *e.Limit
	}
	return 0
}

// niceStep returns a step of 1, 2 or 5 times a power of ten that cuts
// span into about n intervals.
func niceStep(span float64, n int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// timeSteps are the time-axis tick intervals a chart may use.
var timeSteps = []time.Duration{
	10 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
	3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour, 7 * 24 * time.Hour,
}

// timeTicks returns tick times within [t0, t1], about n of them, aligned
// to whole steps of local time in zone.
func timeTicks(t0, t1 time.Time, n int, zone *time.Location) ([]time.Time, time.Duration) {
	span := t1.Sub(t0)
	step := timeSteps[len(timeSteps)-1]
	for _, s := range timeSteps {
		if span/s <= time.Duration(n) {
			step = s
			break
		}
	}
	l := t0.In(zone)
	base := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, zone)
	var out []time.Time
	for t := base; !t.After(t1); t = t.Add(step) {
		if !t.Before(t0) {
			out = append(out, t)
		}
		if len(out) > 4*n { // defensive: never loop long
			break
		}
	}
	return out, step
}
