package coldchain

import (
	"slices"
	"time"

	"github.com/coid-project/coid/custody"
)

// LegState is what a monitor carries for one leg between its looks: the
// rules' state (a Series) over the readings judged so far, the readings
// stored ahead of the leg's window end (device time after "now": a device
// clock running fast) to judge once the window reaches them, and the LN2
// readings the hold-time fit needs (those at most the fit window before the
// last one). With it each look judges only the readings stored since the
// last, and Judge gives what EvaluateLeg and ProjectHold give over all the
// leg's readings.
//
// A reading stored late, sorting before one already judged, cannot be
// carried forward: Add refuses the readings, and the caller judges the leg
// again from its stored readings with Reset.
//
// A LegState is not safe for concurrent use.
type LegState struct {
	from    time.Time
	profile custody.Profile
	window  time.Duration // the hold fit's window
	series  *Series
	ahead   []custody.Reading // after the last window end, in CompareReadings order
	ln2     []custody.Reading // judged LN2 readings within window of the last, in order
}

// NewLegState returns the state of leg l (its start and profile are what
// count) with no readings judged yet; hold is the monitor's hold-time
// configuration.
func NewLegState(l custody.LegRef, hold HoldConfig) *LegState {
	x := &LegState{from: l.At(time.Time{}).From, profile: l.Profile, window: hold.withDefaults().Window}
	x.series = NewSeries(x.profile, x.from)
	return x
}

// Add takes readings of the leg's shipper newly stored, in any order, and
// reports true; readings before the leg's start are ignored. It reports
// false, and takes none of them, when one sorts at or before a reading
// already judged: the state must then be rebuilt with Reset.
func (x *LegState) Add(rs []custody.Reading) bool {
	last, judged := x.series.Last()
	for i := range rs {
		if judged && compareReadings(&last, &rs[i]) >= 0 && !rs[i].DeviceTime.Before(x.from) {
			return false
		}
	}
	for _, r := range rs {
		if r.DeviceTime.Before(x.from) {
			continue
		}
		i, found := slices.BinarySearchFunc(x.ahead, r, custody.CompareReadings)
		if !found {
			x.ahead = slices.Insert(x.ahead, i, r)
		}
	}
	return true
}

// Reset judges the leg again from nothing, with rs, all of the leg's
// stored readings from its start (any order; those with device time after
// the window end wait for it, as in Add).
func (x *LegState) Reset(rs []custody.Reading) {
	x.series = NewSeries(x.profile, x.from)
	x.ahead, x.ln2 = x.ahead[:0], x.ln2[:0]
	x.Add(rs)
}

// Judge judges the readings taken so far whose device time is within leg
// l's window at now (l as the leg is now; its start and profile as given
// to NewLegState) and returns what EvaluateLeg(l.At(now), rs) and, for a
// leg not received, ProjectHold(l.At(now), rs, now, hold) return over all
// those readings rs (a received leg has no projection: the zero value).
// Once l is received, readings after its receipt are dropped as they
// arrive; a leg whose receipt changes must be judged again (Reset).
// The window end must not move back: a leg received before a reading
// already judged is judged again from its readings (Reset).
func (x *LegState) Judge(l custody.LegRef, now time.Time, hold HoldConfig) ([]custody.Excursion, custody.HoldProjection) {
	l = l.At(now)
	n := 0
	for ; n < len(x.ahead) && !x.ahead[n].DeviceTime.After(l.To); n++ {
		r := x.ahead[n]
		x.series.Add(r)
		if r.LN2Pct != nil {
			x.ln2 = append(x.ln2, r)
		}
	}
	if l.Leg.ReceivedAt != nil {
		// The window ends at the receipt for good: nothing later counts,
		// and no hold time is projected for a leg received.
		x.ahead, x.ln2 = x.ahead[:0], x.ln2[:0]
		return endAtReceipt(l, x.series.Excursions(l.To)), custody.HoldProjection{}
	}
	x.ahead = slices.Delete(x.ahead, 0, n)
	if k := len(x.ln2); k > 0 {
		cut := x.ln2[k-1].DeviceTime.Add(-x.window)
		i, _ := slices.BinarySearchFunc(x.ln2, cut, func(r custody.Reading, t time.Time) int { return r.DeviceTime.Compare(t) })
		x.ln2 = slices.Delete(x.ln2, 0, i)
	}
	return endAtReceipt(l, x.series.Excursions(l.To)), ProjectHold(l, x.ln2, now, hold)
}

// Behind reports whether leg l's window at now ends before a reading
// already judged (the leg was received, with a receive time before
// readings judged while it was open, or now moved back), so that the state
// must be rebuilt with Reset before Judge.
func (x *LegState) Behind(l custody.LegRef, now time.Time) bool {
	last, ok := x.series.Last()
	return ok && last.DeviceTime.After(l.At(now).To)
}
