package custody

import (
	"context"
	"fmt"
	"time"
)

// Planned against actual: a chain's booked plan (its last schedule or
// reschedule record) set beside the times its journey records were
// written, milestone by milestone. The summary of both, Progress, is
// computed by the service for every append and kept by the store in the
// chain's summary, so the dashboard aggregates summaries and never folds
// chains.

// MilestoneKind indexes the milestones a chain's progress keeps.
type MilestoneKind int

// The milestones of the vein-to-vein journey, in order, and how many
// there are.
const (
	// MilestoneApheresis is the collection (collect record).
	MilestoneApheresis MilestoneKind = iota
	// MilestoneManufacturingStart is the receipt of the cells at the plant.
	MilestoneManufacturingStart
	// MilestoneManufacturingEnd is the manufacture record.
	MilestoneManufacturingEnd
	// MilestoneRelease is QA's release.
	MilestoneRelease
	// MilestoneShipment is the return shipment's handover.
	MilestoneShipment
	// MilestoneArrival is the receipt at the treatment site.
	MilestoneArrival
	// MilestoneInfusion is the infusion (planned: the first day of the
	// infusion window).
	MilestoneInfusion
	// NumMilestones counts the milestones.
	NumMilestones
)

var milestoneNames = [NumMilestones]string{"apheresis", "manufacturing_start", "manufacturing_end", "release",
	"shipment", "arrival", "infusion"}

// String returns the milestone's name as the API spells it.
func (k MilestoneKind) String() string {
	if k < 0 || k >= NumMilestones {
		return fmt.Sprintf("milestone(%d)", int(k))
	}
	return milestoneNames[k]
}

// Segment names the part of the journey a delay arises in, or a
// duration covers.
type Segment string

// Segments of the vein-to-vein journey.
const (
	SegmentCollection     Segment = "collection"
	SegmentToPlant        Segment = "transport-to-plant"
	SegmentManufacturing  Segment = "manufacturing"
	SegmentRelease        Segment = "release"
	SegmentReturnShipment Segment = "return-shipment"
	SegmentInfusion       Segment = "infusion"
	// SegmentVeinToVein is the whole journey, apheresis to infusion (a
	// duration, never where a delay arises).
	SegmentVeinToVein Segment = "vein-to-vein"
)

// milestoneSegment is the segment that ends at each milestone: the one a
// delay first seen at the milestone arose in.
var milestoneSegment = [NumMilestones]Segment{SegmentCollection, SegmentToPlant, SegmentManufacturing, SegmentRelease,
	SegmentReturnShipment, SegmentReturnShipment, SegmentInfusion}

// DurationSegments are the segments whose actual durations the dashboard
// reports, in order: the whole journey, then each part of it between two
// milestones.
var DurationSegments = []Segment{SegmentVeinToVein, SegmentToPlant, SegmentManufacturing, SegmentRelease,
	SegmentReturnShipment, SegmentInfusion}

// numDurations counts DurationSegments.
const numDurations = 6

// durationEnds are the milestones each of DurationSegments runs between.
var durationEnds = [numDurations][2]MilestoneKind{
	{MilestoneApheresis, MilestoneInfusion},
	{MilestoneApheresis, MilestoneManufacturingStart},
	{MilestoneManufacturingStart, MilestoneManufacturingEnd},
	{MilestoneManufacturingEnd, MilestoneRelease},
	{MilestoneRelease, MilestoneArrival},
	{MilestoneArrival, MilestoneInfusion},
}

// PlannedTime is a planned milestone as the progress keeps it: its
// instant and the offset east of UTC, in seconds, of the site's zone that
// day, so the site's calendar day of the plan and of the actual can be
// read without the registry.
type PlannedTime struct {
	Time   time.Time
	Offset int
}

// Set reports whether the milestone is planned.
func (p PlannedTime) Set() bool { return !p.Time.IsZero() }

// Date returns the planned calendar day at the site (YYYY-MM-DD).
func (p PlannedTime) Date() string { return p.local(p.Time) }

// local returns t's calendar day at the site, read with the planned
// day's offset.
func (p PlannedTime) local(t time.Time) string {
	return t.In(time.FixedZone("", p.Offset)).Format(DateLayout)
}

// plannedOf returns what the progress keeps of a plan's milestone.
func plannedOf(m Milestone) PlannedTime {
	if m.Time.IsZero() {
		return PlannedTime{}
	}
	d, err := time.Parse(DateLayout, m.Date)
	if err != nil {
		return PlannedTime{Time: m.Time.UTC()}
	}
	noon := d.Add(plannedHour * time.Hour)
	return PlannedTime{Time: m.Time.UTC(), Offset: int(noon.Sub(m.Time) / time.Second)}
}

// Progress is a chain's plan and actual milestones, as its summary keeps
// them.
type Progress struct {
	// Planned are the booked plan's milestones (none set: not booked).
	Planned [NumMilestones]PlannedTime
	// WindowEnd is the last planned day of the infusion window.
	WindowEnd PlannedTime
	// Actual are the times the milestones' records were written (zero:
	// not reached).
	Actual [NumMilestones]time.Time
	// Cancelled is set once the chain is cancelled.
	Cancelled bool
}

// Booked reports whether the chain holds a plan.
func (p *Progress) Booked() bool { return p.Planned[MilestoneApheresis].Set() }

// ProgressOf folds the chain's records into its progress.
func ProgressOf(recs []Record) Progress {
	var p Progress
	for i := range recs {
		p.apply(&recs[i])
	}
	return p
}

// apply takes one more record of the chain into the progress.
func (p *Progress) apply(r *Record) {
	first := func(k MilestoneKind) {
		if p.Actual[k].IsZero() {
			p.Actual[k] = r.Time.UTC()
		}
	}
	switch r.Step {
	case StepCollect:
		first(MilestoneApheresis)
	case StepReceive:
		if p.Actual[MilestoneShipment].IsZero() {
			first(MilestoneManufacturingStart)
		} else {
			first(MilestoneArrival)
		}
	case StepManufacture:
		first(MilestoneManufacturingEnd)
	case StepRelease:
		first(MilestoneRelease)
	case StepShip:
		if !p.Actual[MilestoneRelease].IsZero() {
			first(MilestoneShipment)
		}
	case StepInfuse:
		first(MilestoneInfusion)
	case StepCancel:
		p.Cancelled = true
	case StepSchedule, StepReschedule:
		var plan Plan
		switch x := r.Body().(type) {
		case ScheduleData:
			plan = x.Plan
		case RescheduleData:
			plan = x.Plan
		default:
			return
		}
		p.Planned = [NumMilestones]PlannedTime{plannedOf(plan.Apheresis), plannedOf(plan.ManufacturingStart),
			plannedOf(plan.ManufacturingEnd), plannedOf(plan.Release), plannedOf(plan.Shipment), plannedOf(plan.Arrival),
			plannedOf(plan.InfusionFrom)}
		p.WindowEnd = plannedOf(plan.InfusionTo)
	case StepUnschedule:
		p.Planned, p.WindowEnd = [NumMilestones]PlannedTime{}, PlannedTime{}
	}
}

// withProgress sets in d the progress of chain c (nil for an enroll)
// once d's record is appended.
func withProgress(c *Chain, d Draft) Draft {
	var p Progress
	if c != nil {
		p = ProgressOf(c.Records)
	}
	r := d.Record
	p.apply(&r)
	d.Progress = &p
	return d
}

// dayDiff returns the calendar days from day a to day b (YYYY-MM-DD).
func dayDiff(a, b string) int {
	ta, err1 := time.Parse(DateLayout, a)
	tb, err2 := time.Parse(DateLayout, b)
	if err1 != nil || err2 != nil {
		return 0
	}
	return int(tb.Sub(ta).Round(24*time.Hour) / (24 * time.Hour))
}

// MilestoneRow is one milestone of a chain planned against actual.
type MilestoneRow struct {
	Milestone string `json:"milestone"`
	// Segment is the part of the journey that ends at the milestone.
	Segment Segment `json:"segment"`
	// Planned and PlannedDate: when it was planned (the site's calendar
	// day); absent when the chain holds no plan.
	Planned     *time.Time `json:"planned,omitempty"`
	PlannedDate string     `json:"planned_date,omitempty"`
	// Actual and ActualDate: when its record was written (the day at the
	// site, read in the plan's zone, or UTC without a plan); absent
	// until it is reached.
	Actual     *time.Time `json:"actual,omitempty"`
	ActualDate string     `json:"actual_date,omitempty"`
	// DelayDays is the actual day less the planned day, in calendar days
	// at the site; set when both are known.
	DelayDays *int `json:"delay_days,omitempty"`
	// AroseDays is the part of DelayDays that arose in Segment: the delay
	// less the delay at the milestone reached before it (0 at the first).
	AroseDays *int `json:"arose_days,omitempty"`
}

// PlanVsActual is a chain's plan set beside its actual milestones, with
// the delays, where they arose, and the projection of the infusion from
// the delay so far.
type PlanVsActual struct {
	COI    COI  `json:"coi"`
	Booked bool `json:"booked"`
	// Milestones are in journey order.
	Milestones []MilestoneRow `json:"milestones"`
	// WindowEnd is the last planned day of the infusion window.
	WindowEnd string `json:"window_end,omitempty"`
	// DelayDays is the delay so far: at the last milestone reached, or,
	// when the next one is overdue today, today less its planned day if
	// that is more.
	DelayDays int `json:"delay_days"`
	// ProjectedInfusion is the planned infusion day moved by the delay so
	// far; absent once infused or without a plan.
	ProjectedInfusion string `json:"projected_infusion,omitempty"`
	// AtRisk is set when the projected infusion falls after the window.
	AtRisk bool `json:"at_risk"`
	// Infused and Cancelled say whether the journey is over.
	Infused   bool `json:"infused"`
	Cancelled bool `json:"cancelled"`
}

// Compare sets the chain's plan beside its actual milestones as of now.
func (p *Progress) Compare(coi COI, now time.Time) PlanVsActual {
	out := PlanVsActual{COI: coi, Booked: p.Booked(), Milestones: make([]MilestoneRow, 0, NumMilestones),
		Infused: !p.Actual[MilestoneInfusion].IsZero(), Cancelled: p.Cancelled}
	prevDelay := 0
	for k := range NumMilestones {
		row := MilestoneRow{Milestone: k.String(), Segment: milestoneSegment[k]}
		pl, act := p.Planned[k], p.Actual[k]
		if pl.Set() {
			t := pl.Time
			row.Planned, row.PlannedDate = &t, pl.Date()
		}
		if !act.IsZero() {
			t := act
			row.Actual, row.ActualDate = &t, pl.local(act)
		}
		if pl.Set() && !act.IsZero() {
			d := dayDiff(row.PlannedDate, row.ActualDate)
			arose := d - prevDelay
			row.DelayDays, row.AroseDays = &d, &arose
			prevDelay = d
			out.DelayDays = d
		}
		out.Milestones = append(out.Milestones, row)
	}
	if !out.Booked {
		return out
	}
	out.WindowEnd = p.WindowEnd.Date()
	if out.Infused || out.Cancelled {
		return out
	}
	// The next milestone not reached: overdue today means at least that
	// much delay.
	for k := range NumMilestones {
		if pl := p.Planned[k]; p.Actual[k].IsZero() && pl.Set() {
			if late := dayDiff(pl.Date(), pl.local(now)); late > out.DelayDays {
				out.DelayDays = late
			}
			break
		}
	}
	inf := p.Planned[MilestoneInfusion]
	out.ProjectedInfusion = inf.Time.AddDate(0, 0, out.DelayDays).In(time.FixedZone("", inf.Offset)).Format(DateLayout)
	out.AtRisk = out.ProjectedInfusion > out.WindowEnd
	return out
}

// PlanVsActual returns chain coi's plan against its actual milestones, to
// a user who may read the chain (ErrNotFound otherwise).
func (s *Service) PlanVsActual(ctx context.Context, u User, coi COI) (PlanVsActual, error) {
	c, err := s.ReadChain(ctx, u, coi)
	if err != nil {
		return PlanVsActual{}, err
	}
	p := ProgressOf(c.Records)
	return p.Compare(coi, s.now()), nil
}
