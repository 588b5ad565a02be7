package coldchain

import (
	"cmp"
	"slices"
	"time"

	"github.com/coid-project/coid/custody"
)

// Series is Evaluate carried forward: the rule state of one leg's readings
// judged so far, so that a monitor judges only the readings stored since
// its last look instead of the leg's whole window each time. Readings are
// given with Add in device-time order (custody.CompareReadings); one that
// sorts at or before a reading already judged cannot be carried forward
// and Add refuses it: the caller then judges the leg again from its window
// (NewSeries and Add of every reading in order, or Evaluate).
//
// For readings r1..rn added in order and any to at or after the last one
// added, Excursions(to) returns exactly what Evaluate(p, [r1..rn], from,
// to) returns: the rules' state is the state Evaluate reaches after rn, and
// Excursions finishes it at to without changing it, so the series goes on
// from rn at the next Add.
//
// A Series is not safe for concurrent use.
type Series struct {
	from    time.Time
	rules   []rule
	silence *silenceRule
	last    *custody.Reading
	n       int
}

// NewSeries returns an empty series judging under profile p from from (the
// leg's start; zero: since the first reading).
func NewSeries(p custody.Profile, from time.Time) *Series {
	s := &Series{from: from}
	if p.MinC != nil || p.MaxC != nil {
		s.rules = append(s.rules, rule{kind: custody.ExcursionTemperature, grace: p.Grace, temp: p})
	}
	if p.MaxTiltDeg != nil {
		s.rules = append(s.rules, rule{kind: custody.ExcursionTilt, grace: p.TiltGrace, maxTilt: *p.MaxTiltDeg})
	}
	if p.LidMustBeClosed {
		s.rules = append(s.rules, rule{kind: custody.ExcursionLid, grace: p.LidGrace})
	}
	if limit := p.SilenceAfter(); limit > 0 {
		s.silence = &silenceRule{limit: limit, prev: from}
	}
	return s
}

// Add judges r after the readings already added and reports true, or
// reports false, changing nothing, when r sorts at or before the last
// reading added (a late or repeated reading) or lies before the series'
// start. Its device time must not be after the to of the next Excursions.
func (s *Series) Add(r custody.Reading) bool {
	if r.DeviceTime.Before(s.from) || (s.last != nil && compareReadings(s.last, &r) >= 0) {
		return false
	}
	s.feed(&r)
	return true
}

// feed judges r, the next reading in device-time order.
func (s *Series) feed(r *custody.Reading) {
	for i := range s.rules {
		s.rules[i].step(r)
	}
	if s.silence != nil {
		s.silence.step(r)
	}
	s.last = r
	s.n++
}

// Last returns the last reading added, and false when none was.
func (s *Series) Last() (custody.Reading, bool) {
	if s.last == nil {
		return custody.Reading{}, false
	}
	return *s.last, true
}

// Len returns how many readings were added.
func (s *Series) Len() int { return s.n }

// Excursions returns the excursions as judged at to, as Evaluate does (see
// Series); to must not be before the last reading added. The series is not
// changed.
func (s *Series) Excursions(to time.Time) []custody.Excursion {
	if to.Before(s.from) {
		return nil
	}
	return s.excursions(to)
}

func (s *Series) excursions(to time.Time) []custody.Excursion {
	var out []custody.Excursion
	for i := range s.rules {
		out = s.rules[i].finish(out, to)
	}
	if s.silence != nil {
		out = s.silence.finish(out, to)
	}
	slices.SortStableFunc(out, func(a, b custody.Excursion) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return cmp.Compare(a.Kind, b.Kind)
	})
	return out
}
