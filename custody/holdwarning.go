package custody

// Hold-time warnings: a dry shipper's liquid-nitrogen trend projected to
// the time its charge runs out, against the leg's planned arrival. A
// warning says disruption is coming; unlike an excursion it blocks
// nothing and needs no disposition. It is written into the chain once per
// leg and cause, system-signed like an excursion record.

import (
	"context"
	"fmt"
	"time"
)

// StepHoldWarning is the system record of a hold-time warning on a leg
// (HoldWarningData). It blocks nothing.
const StepHoldWarning Step = "hold-warning"

// MaxPlannedLeg is how far after the ship step a leg's planned arrival
// may lie.
const MaxPlannedLeg = 60 * 24 * time.Hour

// utcPtr returns t in UTC, or nil.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// HoldWarningCause says why a hold-time warning was raised.
type HoldWarningCause string

// The causes of a hold-time warning; each is raised at most once per leg.
const (
	// HoldCauseHoldTime means the projected hold time (until the LN2
	// charge reaches its floor) is shorter than the remaining journey
	// (planned arrival minus now, zero without a plan) plus the margin.
	HoldCauseHoldTime HoldWarningCause = "hold-time"
	// HoldCauseLate means the leg will arrive after its planned arrival:
	// it is still in transit at the plan. (coid has no route model to
	// project an arrival time from positions; the hold-time cause is what
	// looks ahead.)
	HoldCauseLate HoldWarningCause = "late"
)

// HoldMethodTheilSen names the boil-off fit HoldProjection.Method reports:
// the Theil-Sen estimator (the median of the pairwise slopes) over the
// means of equal time bins of the fit window's LN2 readings.
const HoldMethodTheilSen = "theil-sen-binned"

// HoldProjection is a projection of a dry shipper's remaining hold time
// from its LN2 readings, with the inputs and method it came from, so a
// warning can show how it was reached. Durations are in nanoseconds with a
// Go duration string beside them.
type HoldProjection struct {
	// Method is how the boil-off rate was fitted (HoldMethodTheilSen).
	Method string `json:"method"`
	// At is the time the projection was made (the evaluation time).
	At time.Time `json:"at"`
	// OK says whether there was a projection; when false, Reason says why
	// (no LN2 readings, too few points, too short a span).
	OK bool `json:"ok"`
	// Reason says why there is no projection, or why the level does not
	// run out on this trend.
	Reason string `json:"reason,omitempty"`
	// WindowNS is the fit window looked back over from the last reading.
	WindowNS int64  `json:"window_ns"`
	Window   string `json:"window"`
	// FitFrom and FitTo are the device times of the first and last
	// readings fitted; FitFrom is after a refill when there was one.
	FitFrom time.Time `json:"fit_from,omitzero"`
	FitTo   time.Time `json:"fit_to,omitzero"`
	// Points is the number of LN2 readings fitted; Bins the number of bin
	// means the slopes were taken between.
	Points int `json:"points"`
	Bins   int `json:"bins"`
	// RefillAt is the device time of the latest refill (a jump up of the
	// level) on the leg, after which the fit restarted.
	RefillAt *time.Time `json:"refill_at,omitempty"`
	// RatePctPerHour is the boil-off rate in percentage points of charge
	// per hour; positive while the level falls.
	RatePctPerHour float64 `json:"rate_pct_per_h"`
	// LastPct and LastTime are the latest LN2 reading.
	LastPct  *float64  `json:"last_pct,omitempty"`
	LastTime time.Time `json:"last_time,omitzero"`
	// FloorPct is the level taken as empty: the profile's MinLN2Pct, or
	// the configured empty level.
	FloorPct float64 `json:"floor_pct"`
	// HoldNS is the projected time from At until the level reaches
	// FloorPct (zero when already there); absent (with EmptyAt) when the
	// level is not falling.
	HoldNS  *int64     `json:"hold_ns,omitempty"`
	Hold    string     `json:"hold,omitempty"`
	EmptyAt *time.Time `json:"empty_at,omitempty"`
	// PlannedArrival is the leg's planned arrival, when the ship record
	// gave one; RemainingNS is PlannedArrival minus At (negative once
	// past).
	PlannedArrival *time.Time `json:"planned_arrival,omitempty"`
	RemainingNS    *int64     `json:"remaining_ns,omitempty"`
	Remaining      string     `json:"remaining,omitempty"`
	// MarginNS is the margin the hold time must keep beyond the remaining
	// journey.
	MarginNS int64  `json:"margin_ns"`
	Margin   string `json:"margin"`
}

// HoldTime returns the projected hold time and whether there is one.
func (p HoldProjection) HoldTime() (time.Duration, bool) {
	if p.HoldNS == nil {
		return 0, false
	}
	return time.Duration(*p.HoldNS), true
}

// HoldWarning is a warning to raise on a leg: its cause, a sentence
// saying what is coming, and the projection it rests on.
type HoldWarning struct {
	Cause      HoldWarningCause
	Message    string
	Projection HoldProjection
}

// HoldWarningData is the data of a system-signed hold-warning record.
type HoldWarningData struct {
	Cause      HoldWarningCause `json:"cause"`
	Leg        int              `json:"leg"`
	Shipper    string           `json:"shipper"`
	Profile    string           `json:"profile"`
	Message    string           `json:"message"`
	Projection HoldProjection   `json:"projection"`
}

// Step implements StepData.
func (HoldWarningData) Step() Step { return StepHoldWarning }

// HoldWarningEntry is a hold-warning record of a chain: its position and
// time, and its data.
type HoldWarningEntry struct {
	COI  COI       `json:"coi"`
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	HoldWarningData
}

// ChainHoldWarnings returns the hold-warning records of c in ledger order.
func ChainHoldWarnings(c *Chain) ([]HoldWarningEntry, error) {
	out := []HoldWarningEntry{}
	for _, r := range c.Records {
		if r.Step != StepHoldWarning {
			continue
		}
		v, err := r.Parsed()
		if err != nil {
			return nil, err
		}
		d, _ := v.(HoldWarningData)
		out = append(out, HoldWarningEntry{COI: c.COI, Seq: r.Seq, Time: r.Time, HoldWarningData: d})
	}
	return out, nil
}

// RecordHoldWarning appends a system-signed hold-warning record for w on
// leg n of the chain, unless the chain already has one for that leg and
// cause: each cause is raised once per leg, however many readings renew
// it. It returns the record and true when it appended one. A received leg
// or a closed chain takes no warning (false, no error): what it warned of
// is over. Safe to call again after a restart.
func (s *Service) RecordHoldWarning(ctx context.Context, coi COI, n int, w HoldWarning) (Record, bool, error) {
	op := fmt.Sprintf("record %s warning on %s leg %d", w.Cause, coi, n)
	if w.Cause != HoldCauseHoldTime && w.Cause != HoldCauseLate {
		return Record{}, false, fmt.Errorf("%s: unknown cause: %w", op, ErrInvalid)
	}
	unlock := s.lock(coi)
	defer unlock()
	c, err := s.chainLocked(ctx, coi)
	if err != nil {
		return Record{}, false, fmt.Errorf("%s: %w", op, err)
	}
	if n < 1 || n > len(c.Legs) {
		return Record{}, false, fmt.Errorf("%s: no such leg: %w", op, ErrNotFound)
	}
	l := c.Legs[n-1]
	if c.State.Terminal() || !l.Open {
		return Record{}, false, nil
	}
	ws, err := ChainHoldWarnings(c)
	if err != nil {
		return Record{}, false, fmt.Errorf("%s: %w", op, err)
	}
	for _, x := range ws {
		if x.Leg == n && x.Cause == w.Cause {
			return Record{}, false, nil
		}
	}
	d := HoldWarningData{Cause: w.Cause, Leg: n, Shipper: l.Shipper, Profile: l.Profile, Message: w.Message, Projection: w.Projection}
	stored, err := s.appendSystemRecord(ctx, c, StepHoldWarning, l.InTransit(), d)
	if err != nil {
		return Record{}, false, fmt.Errorf("%s: %w", op, err)
	}
	s.log.Warn("hold warning recorded", "coi", string(coi), "seq", stored.Seq, "leg", n, "cause", string(w.Cause), "shipper", l.Shipper)
	return stored, true, nil
}
