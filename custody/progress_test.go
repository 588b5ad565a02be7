package custody_test

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// progressRecords returns a chain's records: a schedule record of plan
// (unless plan is nil) and one record of each step at its time.
func progressRecords(t *testing.T, plan *custody.Plan, steps []stepAt) []custody.Record {
	t.Helper()
	var recs []custody.Record
	if plan != nil {
		body, err := json.Marshal(custody.ScheduleData{Product: "CART-19", Plan: *plan, Claims: plan.Claims("CART-19")})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, custody.Record{Step: custody.StepSchedule, Time: plan.Apheresis.Time.AddDate(0, 0, -10), Data: body})
	}
	for _, s := range steps {
		recs = append(recs, custody.Record{Step: s.step, Time: s.at, Data: json.RawMessage(`{}`)})
	}
	return recs
}

type stepAt struct {
	step custody.Step
	at   time.Time
}

// TestPlanVsActual checks the delay of each milestone, in calendar days
// at its site, and the segment it arose in: the delay less the delay at
// the milestone reached before it.
func TestPlanVsActual(t *testing.T) {
	paris, ny := planSite(t, "PAR-1", "Europe/Paris"), planSite(t, "MFG-1", "America/New_York")
	lt := custody.LeadTimes{ApheresisToStart: 1, Manufacturing: 10, Release: 3, Shipping: 2, InfusionWindow: 14}
	// Apheresis 1 Dec (Paris), start 2 Dec, end 12 Dec, release and
	// shipment 15 Dec (New York), arrival and infusion 17 Dec, window to
	// 31 Dec (Paris).
	plan, err := custody.ComputePlan("2026-12-01", lt, paris, ny, paris)
	if err != nil {
		t.Fatal(err)
	}
	// Across the spring daylight-saving change in Paris (29 March 2026).
	dst, err := custody.ComputePlan("2026-03-20", lt, paris, paris, paris)
	if err != nil {
		t.Fatal(err)
	}
	at := func(loc *time.Location, date, clock string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", date+" "+clock, loc)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	P, N := paris.Loc, ny.Loc
	onPlan := []stepAt{
		{custody.StepCollect, at(P, "2026-12-01", "09:00")},
		{custody.StepShip, at(P, "2026-12-01", "15:00")},
		{custody.StepReceive, at(N, "2026-12-02", "10:00")},
		{custody.StepManufacture, at(N, "2026-12-12", "16:00")},
		{custody.StepRelease, at(N, "2026-12-15", "09:00")},
		{custody.StepShip, at(N, "2026-12-15", "14:00")},
		{custody.StepReceive, at(P, "2026-12-17", "08:00")},
		{custody.StepBedsideVerify, at(P, "2026-12-17", "10:00")},
		{custody.StepInfuse, at(P, "2026-12-17", "11:00")},
	}
	with := func(base []stepAt, i int, v time.Time) []stepAt {
		out := append([]stepAt(nil), base...)
		out[i].at = v
		return out
	}
	shift := func(base []stepAt, from int, days int) []stepAt {
		out := append([]stepAt(nil), base...)
		for i := from; i < len(out); i++ {
			out[i].at = out[i].at.AddDate(0, 0, days)
		}
		return out
	}
	none := -99 // no delay known
	for _, c := range []struct {
		name      string
		plan      *custody.Plan
		steps     []stepAt
		now       time.Time
		delays    [custody.NumMilestones]int // none: not known
		arose     [custody.NumMilestones]int
		total     int
		projected string
		atRisk    bool
	}{
		{name: "on plan", plan: &plan, steps: onPlan, now: at(P, "2026-12-20", "12:00"),
			arose: [7]int{}, delays: [7]int{}},
		{name: "collected two days late, no more delay after", plan: &plan, steps: shift(onPlan, 0, 2), now: at(P, "2026-12-30", "12:00"),
			delays: [7]int{2, 2, 2, 2, 2, 2, 2}, arose: [7]int{2, 0, 0, 0, 0, 0, 0}, total: 2},
		{name: "manufacturing three days late, QA catches up one", plan: &plan,
			steps: with(shift(onPlan, 3, 3), 4, at(N, "2026-12-17", "09:00")), now: at(P, "2027-01-05", "12:00"),
			delays: [7]int{0, 0, 3, 2, 3, 3, 3}, arose: [7]int{0, 0, 3, -1, 1, 0, 0}, total: 3},
		// 23:30 in New York on the planned day is the next day in UTC and
		// in Paris: still on the plant's planned day.
		{name: "late evening at the plant is its own day", plan: &plan,
			steps: with(onPlan, 2, at(N, "2026-12-02", "23:30")), now: at(P, "2026-12-20", "12:00"),
			delays: [7]int{}, arose: [7]int{}},
		{name: "early morning in Paris is the previous day in New York", plan: &plan,
			steps: with(onPlan, 2, at(P, "2026-12-03", "01:00")), now: at(P, "2026-12-20", "12:00"),
			delays: [7]int{}, arose: [7]int{}},
		{name: "receipt at the plant not recorded", plan: &plan,
			steps: append(append([]stepAt(nil), onPlan[:2]...), shift(onPlan[3:], 0, 1)...), now: at(P, "2026-12-30", "12:00"),
			delays: [7]int{0, none, 1, 1, 1, 1, 1}, arose: [7]int{0, none, 1, 0, 0, 0, 0}, total: 1},
		{name: "in manufacturing, on time so far", plan: &plan, steps: onPlan[:3], now: at(N, "2026-12-10", "12:00"),
			delays: [7]int{0, 0, none, none, none, none, none}, arose: [7]int{0, 0, none, none, none, none, none},
			projected: "2026-12-17"},
		{name: "manufacture overdue by 20 days: at risk", plan: &plan, steps: onPlan[:3], now: at(N, "2027-01-01", "12:00"),
			delays: [7]int{0, 0, none, none, none, none, none}, arose: [7]int{0, 0, none, none, none, none, none},
			total: 20, projected: "2027-01-06", atRisk: true},
		{name: "collected 15 days late: at risk", plan: &plan, steps: shift(onPlan[:1], 0, 15), now: at(P, "2026-12-16", "12:00"),
			delays: [7]int{15, none, none, none, none, none, none}, arose: [7]int{15, none, none, none, none, none, none},
			total: 15, projected: "2027-01-01", atRisk: true},
		{name: "not booked: no delays", steps: onPlan, now: at(P, "2026-12-20", "12:00"),
			delays: [7]int{none, none, none, none, none, none, none}, arose: [7]int{none, none, none, none, none, none, none}},
		{name: "across daylight saving: half past midnight after the change", plan: &dst,
			steps: []stepAt{{custody.StepCollect, at(P, "2026-03-20", "10:00")}, {custody.StepShip, at(P, "2026-03-20", "11:00")},
				{custody.StepReceive, at(P, "2026-03-21", "00:30")}, {custody.StepManufacture, at(P, "2026-03-31", "00:30")}},
			now:    at(P, "2026-03-31", "12:00"),
			delays: [7]int{0, 0, 0, none, none, none, none}, arose: [7]int{0, 0, 0, none, none, none, none},
			projected: dst.InfusionFrom.Date},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := custody.ProgressOf(progressRecords(t, c.plan, c.steps))
			got := p.Compare("CHA000126000001", c.now)
			if got.Booked != (c.plan != nil) || len(got.Milestones) != int(custody.NumMilestones) {
				t.Fatalf("booked %v, %d milestones", got.Booked, len(got.Milestones))
			}
			for k, m := range got.Milestones {
				d, a := none, none
				if m.DelayDays != nil {
					d, a = *m.DelayDays, *m.AroseDays
				}
				if d != c.delays[k] || a != c.arose[k] {
					t.Errorf("%s: delay %d arose %d in %s; want %d and %d", m.Milestone, d, a, m.Segment, c.delays[k], c.arose[k])
				}
			}
			if got.DelayDays != c.total || got.ProjectedInfusion != c.projected || got.AtRisk != c.atRisk {
				t.Errorf("delay %d, projected %q, at risk %v; want %d, %q, %v", got.DelayDays, got.ProjectedInfusion, got.AtRisk,
					c.total, c.projected, c.atRisk)
			}
		})
	}
}

// TestPlanVsActualFollowsTheBooking: a reschedule replaces the plan the
// delays are measured against, an unschedule drops it.
func TestPlanVsActualFollowsTheBooking(t *testing.T) {
	utc := planSite(t, "PAR-1", "UTC")
	lt := custody.LeadTimes{ApheresisToStart: 1, Manufacturing: 10, Release: 3, Shipping: 2, InfusionWindow: 14}
	first, _ := custody.ComputePlan("2026-12-01", lt, utc, utc, utc)
	second, _ := custody.ComputePlan("2026-12-04", lt, utc, utc, utc)
	recs := progressRecords(t, &first, nil)
	body, _ := json.Marshal(custody.RescheduleData{ScheduleData: custody.ScheduleData{Product: "CART-19", Plan: second}, Reason: "platelets low"})
	recs = append(recs, custody.Record{Step: custody.StepReschedule, Data: body},
		custody.Record{Step: custody.StepCollect, Time: second.Apheresis.Time})
	p := custody.ProgressOf(recs)
	if got := p.Compare("X", second.Apheresis.Time).Milestones[0]; got.DelayDays == nil || *got.DelayDays != 0 || got.PlannedDate != "2026-12-04" {
		t.Errorf("after the reschedule: %+v", got)
	}
	recs = append(recs, custody.Record{Step: custody.StepUnschedule, Data: json.RawMessage(`{"claims":[],"reason":"withdrawn"}`)})
	p = custody.ProgressOf(recs)
	if got := p.Compare("X", second.Apheresis.Time); got.Booked || got.Milestones[0].DelayDays != nil || got.Milestones[0].Actual == nil {
		t.Errorf("after the unschedule: %+v", got)
	}
}

// TestQuantile checks median and 90th percentile against values worked
// out by hand (linear interpolation between closest ranks).
func TestQuantile(t *testing.T) {
	for _, c := range []struct {
		v         []float64
		q, expect float64
	}{
		{nil, 0.5, 0},
		{[]float64{7}, 0.5, 7},
		{[]float64{7}, 0.9, 7},
		{[]float64{1, 2}, 0.5, 1.5},
		{[]float64{1, 2, 3, 4}, 0.5, 2.5},
		// 10 values: h = 9*0.9 = 8.1, between 90 (index 8) and 100: 91.
		{[]float64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, 0.9, 91},
		{[]float64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, 0.5, 55},
		// 5 values: h = 4*0.9 = 3.6: 30 + 0.6*(45-30) = 39.
		{[]float64{28, 29, 29.5, 30, 45}, 0.9, 39},
		{[]float64{28, 29, 29.5, 30, 45}, 0.5, 29.5},
	} {
		if got := custody.Quantile(c.v, c.q); math.Abs(got-c.expect) > 1e-9 {
			t.Errorf("Quantile(%v, %v) = %v, want %v", c.v, c.q, got, c.expect)
		}
	}
}
