package coldchain

import (
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
	s := NewSeries(p, from)
	for _, r := range window(readings, from, to) {
		s.feed(r)
	}
	return s.excursions(to)
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

// lidState holds the lid rule's two measurements, the lid switch and the
// light sensor, each held separately until the next reading that carries
// it: the rule is broken while the last lid_open reported is true or the
// last light reported is true. A reading carrying only one of them
// therefore never ends what the other reports (a light-only reading saying
// dark does not close an open lid). A sensor that has not reported yet
// counts as closed (dark).
type lidState struct{ lidOpen, light bool }

// verdict updates the held measurements with r's and judges them.
func (s *lidState) verdict(r *custody.Reading) verdict {
	if r.LidOpen == nil && r.Light == nil {
		return verdict{}
	}
	if r.LidOpen != nil {
		s.lidOpen = *r.LidOpen
	}
	if r.Light != nil {
		s.light = *r.Light
	}
	return verdict{known: true, broken: s.lidOpen || s.light}
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

// rule is one rule's judgement carried through readings in device-time
// order: the episode going on, whether the held value breaks the rule, and
// the excursions already over (done).
type rule struct {
	kind     custody.ExcursionKind
	grace    time.Duration
	temp     custody.Profile // temperature limits, for kind temperature
	maxTilt  float64         // for kind tilt
	lid      lidState        // for kind lid
	ep       episode
	broken   bool // the held value breaks the rule
	runStart time.Time
	done     []custody.Excursion
}

// verdict is what r says about the rule.
func (u *rule) verdict(r *custody.Reading) verdict {
	switch u.kind {
	case custody.ExcursionTemperature:
		return tempVerdict(u.temp)(r)
	case custody.ExcursionTilt:
		return tiltVerdict(u.maxTilt)(r)
	}
	return u.lid.verdict(r)
}

// excursion returns the excursion episode ep makes, ending at end (zero:
// open at to), and whether it is one (its breach exceeds the grace).
func (u *rule) excursion(ep episode, end, to time.Time) (custody.Excursion, bool) {
	if ep.breach <= u.grace {
		return custody.Excursion{}, false
	}
	e := custody.Excursion{
		ID: custody.ExcursionID(u.kind, ep.start), Kind: u.kind,
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
	return e, true
}

// step judges the next reading in device-time order.
func (u *rule) step(r *custody.Reading) {
	v := u.verdict(r)
	if !v.known {
		return
	}
	t := r.DeviceTime
	switch {
	case v.broken && !u.broken:
		if !u.ep.active || t.Sub(u.ep.lastEnd) >= u.grace {
			if u.ep.active {
				if e, ok := u.excursion(u.ep, u.ep.lastEnd, time.Time{}); ok {
					u.done = append(u.done, e)
				}
			}
			u.ep = episode{active: true, start: t}
		}
		u.broken, u.runStart = true, t
	case !v.broken && u.broken:
		u.ep.breach += t.Sub(u.runStart)
		u.ep.lastEnd = t
		u.broken = false
	}
	if v.broken && v.worst && (!u.ep.worst.worst || v.dev > u.ep.worst.dev) {
		u.ep.worst = v
	}
}

// finish appends the rule's excursions as judged at to (at or after the
// last reading stepped) to out, leaving the rule as it was.
func (u *rule) finish(out []custody.Excursion, to time.Time) []custody.Excursion {
	out = append(out, u.done...)
	ep := u.ep
	var end time.Time
	switch {
	case !ep.active:
		return out
	case u.broken:
		ep.breach += to.Sub(u.runStart)
	case to.Sub(ep.lastEnd) < u.grace:
		// back in range, but not yet for the grace: open
	default:
		end = ep.lastEnd
	}
	if e, ok := u.excursion(ep, end, to); ok {
		out = append(out, e)
	}
	return out
}

// silenceRule is the silence rule carried through readings in device-time
// order: the time of the last reading (or the leg's start) and the gaps
// already over.
type silenceRule struct {
	limit time.Duration
	prev  time.Time
	done  []custody.Excursion
}

// gap returns the silence from start to end, and whether it is one.
func (u *silenceRule) gap(start, end time.Time, open bool) (custody.Excursion, bool) {
	d := end.Sub(start)
	if d <= u.limit {
		return custody.Excursion{}, false
	}
	e := custody.Excursion{
		ID: custody.ExcursionID(custody.ExcursionSilence, start), Kind: custody.ExcursionSilence,
		Start: start, Duration: d, Breach: d,
	}
	if !open {
		e.End = end
	}
	return e, true
}

// step judges the next reading in device-time order.
func (u *silenceRule) step(r *custody.Reading) {
	if u.prev.IsZero() {
		u.prev = r.DeviceTime
	}
	if e, ok := u.gap(u.prev, r.DeviceTime, false); ok {
		u.done = append(u.done, e)
	}
	u.prev = r.DeviceTime
}

// finish appends the silences as judged at to to out.
func (u *silenceRule) finish(out []custody.Excursion, to time.Time) []custody.Excursion {
	out = append(out, u.done...)
	if u.prev.IsZero() {
		return out
	}
	if e, ok := u.gap(u.prev, to, true); ok {
		out = append(out, e)
	}
	return out
}
