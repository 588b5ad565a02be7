package web

import (
	"fmt"
	"strings"
	"time"

	"github.com/coid-project/coid/custody"
)

// Words: how durations, times, steps and record data read on the screens.
// A person reads "1 min 26 s", not "1m26.400441s" or a member name; every
// time on a screen has one format, with its zone.

// timeLayout is the one format of times on every screen, with its zone.
const timeLayout = "2006-01-02 15:04 MST"

// screenTime formats t in UTC with the zone named.
func screenTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// localScreenTime is t in a site's zone in the screen's format, the zone
// named by its abbreviation (or offset, for a zone without one).
func localScreenTime(t time.Time, zone *time.Location) string { return t.In(zone).Format(timeLayout) }

// shownTime is a time as a screen shows it: T in UTC, and Local, T in the
// zone of the registered site where it happened, zone named; Local is ""
// for a site from before the network (no zone of its own), shown in UTC
// only.
type shownTime struct {
	T     time.Time
	Local string
}

// showTime is t as shown at a site of zone zone; nil: no zone, UTC only.
func showTime(t time.Time, zone *time.Location) shownTime {
	s := shownTime{T: t}
	if zone != nil {
		s.Local = localScreenTime(t, zone)
	}
	return s
}

// String is the time for a sentence: local with UTC in brackets, or UTC.
func (s shownTime) String() string {
	if s.Local == "" {
		return screenTime(s.T)
	}
	return s.Local + " (" + screenTime(s.T) + ")"
}

// signatureTime formats a signature's time (RFC 3339 as recorded) like
// every other time on the screen; a time that does not parse is shown as
// recorded.
func signatureTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return screenTime(t)
}

// humanDuration says d as people read it: "4 s", "1 min 26 s", "2 h 5 min",
// "3 d 4 h". Seconds are rounded; below one second it says "under 1 s".
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	d = d.Round(time.Second)
	if d < time.Second {
		return "under 1 s"
	}
	parts := func(a int64, ua string, b int64, ub string) string {
		if b == 0 {
			return fmt.Sprintf("%d %s", a, ua)
		}
		return fmt.Sprintf("%d %s %d %s", a, ua, b, ub)
	}
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%d s", s)
	case s < 3600:
		return parts(s/60, "min", s%60, "s")
	case s < 86400:
		return parts(s/3600, "h", s%3600/60, "min")
	}
	return parts(s/86400, "d", s%86400/3600, "h")
}

// stepNames name each step in the timeline as what happened.
var stepNames = map[custody.Step]string{
	custody.StepEnroll: "Enrolled", custody.StepCollect: "Collected", custody.StepShip: "Handed over for shipping",
	custody.StepReceive: "Shipment received", custody.StepManufacture: "Manufactured", custody.StepRelease: "Released by QA",
	custody.StepBedsideVerify: "Bedside check passed", custody.StepInfuse: "Infused", custody.StepExcursion: "Excursion detected",
	custody.StepMismatch: "Bedside mismatch", custody.StepAcknowledge: "Mismatch acknowledged",
	custody.StepDisposition: "QA disposition", custody.StepCorrection: "Correction", custody.StepCancel: "Cancelled",
	custody.StepNote: "Note", custody.StepReview: "Custody record reviewed by QA",
	custody.StepSchedule: "Plan booked", custody.StepReschedule: "Plan moved", custody.StepUnschedule: "Booking freed", custody.StepCollectOverride: "Collection allowed without a booking",
	custody.StepHoldWarning: "Hold-time warning",
}

// stepName names step s in words.
func stepName(s custody.Step) string {
	if t, ok := stepNames[s]; ok {
		return t
	}
	if t, ok := accessStepNames[s]; ok {
		return t
	}
	return strings.ReplaceAll(string(s), "-", " ")
}

// celsius says a temperature with its unit.
func celsius(v float64) string { return fmt.Sprintf("%g °C", v) }

// measure says an excursion's worst value or limit with the unit of its
// kind: °C for temperature, degrees from upright for tilt.
func measure(kind custody.ExcursionKind, v float64) string {
	switch kind {
	case custody.ExcursionTemperature:
		return celsius(v)
	case custody.ExcursionTilt:
		return fmt.Sprintf("%g° from upright", v)
	}
	return fmt.Sprintf("%g", v)
}

// excursionSentence says an excursion in one sentence: what, where, since
// when, how long and how bad; times as showTime shows them in zone.
func excursionSentence(d custody.ExcursionData, zone *time.Location) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s on leg %d (shipper %s, %s profile) from %s", capitalise(issueText(custody.IssueExcursionPrefix+string(d.Kind))),
		d.Leg, d.Shipper, d.Profile, showTime(d.Start, zone))
	sb.WriteString(strings.TrimSuffix(excursionFigures(d.End, d.Worst, d.Limit, d.DurationNS, d.BreachNS, d.Kind, zone), "."))
	return sentence(sb.String())
}

// excursionFigures says an excursion's end, duration and worst value as a
// continuation of a sentence (", for 20 min, ..."); the end as showTime
// shows it in zone.
func excursionFigures(end *time.Time, worst, limit *float64, durationNS, breachNS int64, kind custody.ExcursionKind, zone *time.Location) string {
	var sb strings.Builder
	if end != nil {
		fmt.Fprintf(&sb, " to %s", showTime(*end, zone))
	} else {
		sb.WriteString(", still going on")
	}
	fmt.Fprintf(&sb, ", for %s", humanDuration(time.Duration(durationNS)))
	if breachNS > 0 && breachNS != durationNS {
		fmt.Fprintf(&sb, " (%s beyond the limit)", humanDuration(time.Duration(breachNS)))
	}
	if worst != nil {
		fmt.Fprintf(&sb, ", worst %s", measure(kind, *worst))
		if limit != nil {
			fmt.Fprintf(&sb, " (limit %s)", measure(kind, *limit))
		}
	}
	return sb.String() + "."
}

// capitalise upper-cases the first letter of s.
func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// stateNames are the short names of the states, for the console's chips.
var stateNames = map[custody.State]string{
	custody.StateEnrolled: "Enrolled", custody.StateCollected: "Collected", custody.StateToManufacturing: "To manufacturing",
	custody.StateAtManufacturing: "At manufacturing", custody.StateManufactured: "Manufactured", custody.StateReleased: "Released",
	custody.StateToTreatment: "To treatment", custody.StateAtTreatment: "At treatment", custody.StateVerified: "Bedside verified",
	custody.StateInfused: "Infused", custody.StateCancelled: "Cancelled",
}

// stateName names state s in a word or two.
func stateName(s custody.State) string {
	if t, ok := stateNames[s]; ok {
		return t
	}
	return capitalise(strings.ReplaceAll(string(s), "-", " "))
}

// decisionWord says a QA decision as a past participle.
func decisionWord(d string) string {
	switch d {
	case custody.DecisionAccept:
		return "accepted"
	case custody.DecisionReject:
		return "rejected"
	}
	return d
}
