package coldchain

import (
	"cmp"
	"slices"
	"time"

	"github.com/coid-project/coid/custody"
)

// Evaluate judges a leg's readings against profile p and returns the
// excursions, ordered by start time and then kind. from is the start of the
// leg (its ship time; zero means "since the first reading") and to is its
// end, or the evaluation time ("now") while the leg is open. Readings may
// come in any order and the slice is not modified; only readings whose
// device time lies in [from, to] count, judged in device-time order
// (custody.CompareReadings), so late and out-of-order arrivals give the same
// result as in-order ones.
//
// Temperature, tilt and lid rules share one model:
//
//   - Each reading that carries the rule's measurement holds its value until
//     the next reading that carries it (or until to, for the last);
//     readings without the measurement, and silence, do not interrupt the
//     hold. The rule is broken while the held value is out of range
//     (temperature outside [MinC, MaxC], tilt above MaxTiltDeg). The lid
//     rule (when LidMustBeClosed) holds its two measurements separately, the
//     lid switch (LidOpen) and the light sensor (Light), and is broken while
//     either held value says open: the lid open or light inside. A reading
//     with only one of them leaves the other's held value as it was.
//   - Breaks separated by returns into range shorter than the rule's grace
//     belong to one episode: flapping around a limit yields one excursion.
//   - An episode is an excursion when the total time the rule was broken in
//     it (Excursion.Breach) exceeds the grace. Start is when the episode's
//     first break began.
//   - The excursion is closed, with End the time of the last return into
//     range, once the rule has been kept for at least the grace before to;
//     until then it is open (End zero, Duration up to to), because a new
//     break would still extend it. An excursion keeps its ID (kind and
//     Start) while later readings arrive in device-time order; a late
//     reading from before its Start can move the Start (see
//     custody.Excursion.Overlaps).
//   - Worst is the value furthest beyond its limit (temperature) or the
//     largest tilt, with the Limit it broke.
//
// Silence is a gap longer than p.SilenceAfter() between consecutive
// readings of any kind, between from and the first reading, or between the
// last reading and to; the last is open. Its Start is the last reading
// before the gap (or from) and its Breach equals its Duration.
//
// A rule whose limit the profile does not set is not judged. to before from
// yields no excursions.
func Evaluate(p custody.Profile, readings []custody.Reading, from, to time.Time) []custody.Excursion {
	if to.Before(from) {
		return nil
	}
	rs := window(readings, from, to)
	var out []custody.Excursion
	if p.MinC != nil || p.MaxC != nil {
		out = judge(out, custody.ExcursionTemperature, p.Grace, rs, to, tempVerdict(p))
	}
	if p.MaxTiltDeg != nil {
		out = judge(out, custody.ExcursionTilt, p.TiltGrace, rs, to, tiltVerdict(*p.MaxTiltDeg))
	}
	if p.LidMustBeClosed {
		out = judge(out, custody.ExcursionLid, p.LidGrace, rs, to, lidVerdict())
	}
	if limit := p.SilenceAfter(); limit > 0 {
		out = silence(out, limit, rs, from, to)
	}
	slices.SortStableFunc(out, func(a, b custody.Excursion) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return cmp.Compare(a.Kind, b.Kind)
	})
	return out
}

// Judged reports whether Evaluate judges excursions of kind k under
// profile p: a rule whose limit the profile does not set is not judged, so
// its absence from Evaluate's result says nothing about the readings.
func Judged(p custody.Profile, k custody.ExcursionKind) bool {
	switch k {
	case custody.ExcursionTemperature:
		return p.MinC != nil || p.MaxC != nil
	case custody.ExcursionTilt:
		return p.MaxTiltDeg != nil
	case custody.ExcursionLid:
		return p.LidMustBeClosed
	case custody.ExcursionSilence:
		return p.SilenceAfter() > 0
	}
	return false
}

// window returns pointers to the readings in [from, to] in device-time
// order.
func window(readings []custody.Reading, from, to time.Time) []*custody.Reading {
	rs := make([]*custody.Reading, 0, len(readings))
	sorted := true
	for i := range readings {
		r := &readings[i]
		if r.DeviceTime.Before(from) || r.DeviceTime.After(to) {
			continue
		}
		if sorted && len(rs) > 0 && compareReadings(rs[len(rs)-1], r) > 0 {
			sorted = false
		}
		rs = append(rs, r)
	}
	if !sorted {
		slices.SortStableFunc(rs, compareReadings)
	}
	return rs
}

// compareReadings is custody.CompareReadings without copying readings in
// the common case of distinct device times.
func compareReadings(a, b *custody.Reading) int {
	if c := a.DeviceTime.Compare(b.DeviceTime); c != 0 {
		return c
	}
	return custody.CompareReadings(*a, *b)
}

// verdict is what one reading says about one rule.
type verdict struct {
	known  bool    // the reading carries the rule's measurement
	broken bool    // the measurement breaks the rule
	worst  bool    // value and limit are meaningful
	dev    float64 // how far beyond the limit
	value  float64
	limit  float64
}

func tempVerdict(p custody.Profile) func(*custody.Reading) verdict {
	return func(r *custody.Reading) verdict {
		if r.TempC == nil {
			return verdict{}
		}
		c := *r.TempC
		switch {
		case p.MaxC != nil && c > *p.MaxC:
			return verdict{known: true, broken: true, worst: true, dev: c - *p.MaxC, value: c, limit: *p.MaxC}
		case p.MinC != nil && c < *p.MinC:
			return verdict{known: true, broken: true, worst: true, dev: *p.MinC - c, value: c, limit: *p.MinC}
		}
		return verdict{known: true}
	}
}

func tiltVerdict(max float64) func(*custody.Reading) verdict {
	return func(r *custody.Reading) verdict {
		if r.TiltDeg == nil {
			return verdict{}
		}
		t := *r.TiltDeg
		if t > max {
			return verdict{known: true, broken: true, worst: true, dev: t - max, value: t, limit: max}
		}
		return verdict{known: true}
	}
}

// lidVerdict returns the lid rule's verdict function, for one pass over the
// readings in device-time order. The lid switch and the light sensor are two
// measurements, each held separately until the next reading that carries it:
// the rule is broken while the last lid_open reported is true or the last
// light reported is true. A reading carrying only one of them therefore
// never ends what the other reports (a light-only reading saying dark does
// not close an open lid). A sensor that has not reported yet counts as
// closed (dark).
func lidVerdict() func(*custody.Reading) verdict {
	var lidOpen, light bool
	return func(r *custody.Reading) verdict {
		if r.LidOpen == nil && r.Light == nil {
			return verdict{}
		}
		if r.LidOpen != nil {
			lidOpen = *r.LidOpen
		}
		if r.Light != nil {
			light = *r.Light
		}
		return verdict{known: true, broken: lidOpen || light}
	}
}

// episode is a run of breaks of one rule separated by returns into range
// shorter than the grace.
type episode struct {
	active  bool
	start   time.Time     // first break
	lastEnd time.Time     // end of the latest finished break
	breach  time.Duration // total broken time
	worst   verdict
}

// judge applies one rule over rs (device-time order) and appends its
// excursions to out. f is called once per reading, in that order, so it may
// hold state from earlier readings (lidVerdict does).
func judge(out []custody.Excursion, kind custody.ExcursionKind, grace time.Duration, rs []*custody.Reading, to time.Time, f func(*custody.Reading) verdict) []custody.Excursion {
	var (
		ep       episode
		broken   bool // the held value breaks the rule
		runStart time.Time
	)
	emit := func(end time.Time) {
		if ep.breach <= grace {
			return
		}
		e := custody.Excursion{
			ID: custody.ExcursionID(kind, ep.start), Kind: kind,
			Start: ep.start, End: end, Breach: ep.breach,
		}
		if end.IsZero() {
			e.Duration = to.Sub(ep.start)
		} else {
			e.Duration = end.Sub(ep.start)
		}
		if ep.worst.worst {
			w, l := ep.worst.value, ep.worst.limit
			e.Worst, e.Limit = &w, &l
		}
		out = append(out, e)
	}
	for _, r := range rs {
		v := f(r)
		if !v.known {
			continue
		}
		t := r.DeviceTime
		switch {
		case v.broken && !broken:
			if !ep.active || t.Sub(ep.lastEnd) >= grace {
				if ep.active {
					emit(ep.lastEnd)
				}
				ep = episode{active: true, start: t}
			}
			broken, runStart = true, t
		case !v.broken && broken:
			ep.breach += t.Sub(runStart)
			ep.lastEnd = t
			broken = false
		}
		if v.broken && v.worst && (!ep.worst.worst || v.dev > ep.worst.dev) {
			ep.worst = v
		}
	}
	switch {
	case !ep.active:
	case broken:
		ep.breach += to.Sub(runStart)
		emit(time.Time{})
	case to.Sub(ep.lastEnd) < grace:
		emit(time.Time{}) // back in range, but not yet for the grace
	default:
		emit(ep.lastEnd)
	}
	return out
}

// silence appends the gaps longer than limit.
func silence(out []custody.Excursion, limit time.Duration, rs []*custody.Reading, from, to time.Time) []custody.Excursion {
	prev := from
	if prev.IsZero() && len(rs) > 0 {
		prev = rs[0].DeviceTime
	}
	gap := func(start, end time.Time, open bool) {
		d := end.Sub(start)
		if d <= limit {
			return
		}
		e := custody.Excursion{
			ID: custody.ExcursionID(custody.ExcursionSilence, start), Kind: custody.ExcursionSilence,
			Start: start, Duration: d, Breach: d,
		}
		if !open {
			e.End = end
		}
		out = append(out, e)
	}
	for _, r := range rs {
		gap(prev, r.DeviceTime, false)
		prev = r.DeviceTime
	}
	if !prev.IsZero() {
		gap(prev, to, true)
	}
	return out
}
