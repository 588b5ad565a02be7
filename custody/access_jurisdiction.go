package custody

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// KindJurisdiction is the registry of expanded-access jurisdictions: the
// regulatory steps each requires before a request may be enrolled.
const KindJurisdiction RegistryKind = "jurisdiction"

// USFDASinglePatient is the code of the built-in jurisdiction: US FDA
// single-patient expanded access (Form FDA 3926).
const USFDASinglePatient = "US-FDA-SP"

// Jurisdiction says which regulatory steps a request needs before its
// therapy chain may be enrolled. Each requirement is a set of steps any
// one of which meets it. An emergency request needs Emergency instead of
// Required when Emergency is not empty, and the After steps follow within
// their deadlines.
type Jurisdiction struct {
	Code      string         `json:"code"`
	Name      string         `json:"name"`
	Required  [][]Step       `json:"required"`
	Emergency [][]Step       `json:"emergency,omitempty"`
	After     []AfterTheFact `json:"after,omitempty"`
	Suspended bool           `json:"suspended"`
}

// AfterTheFact is a step due within Days of another (Trigger): calendar
// days, or working days (Monday to Friday, in UTC, with no holiday
// calendar) when WorkingDays is set.
type AfterTheFact struct {
	Step        Step `json:"step"`
	Trigger     Step `json:"trigger"`
	Days        int  `json:"days"`
	WorkingDays bool `json:"working_days"`
}

// Deadline is an after-the-fact step a request owes: due (Status "due")
// or past its due time ("overdue").
type Deadline struct {
	Step   Step      `json:"step"`
	Due    time.Time `json:"due"`
	Status string    `json:"status"`
}

// BuiltinJurisdictions returns the jurisdictions coid knows without
// configuration: US FDA single-patient expanded access. A non-emergency
// request needs the manufacturer's letter of authorisation, FDA's
// acknowledgement of the IND and the IRB's approval or waiver; an
// emergency one the letter and FDA's emergency authorisation, with the
// IRB told within 5 working days (21 CFR 56.104(c)).
func BuiltinJurisdictions() []Jurisdiction {
	return []Jurisdiction{{
		Code: USFDASinglePatient, Name: "US FDA single-patient expanded access",
		Required:  [][]Step{{StepLOAIssued}, {StepINDAcknowledged}, {StepIRBApproved, StepIRBWaived}},
		Emergency: [][]Step{{StepLOAIssued}, {StepEmergencyAuthorise}},
		After:     []AfterTheFact{{Step: StepIRBReported, Trigger: StepEmergencyAuthorise, Days: 5, WorkingDays: true}},
	}}
}

func (*Jurisdiction) registryKind() RegistryKind { return KindJurisdiction }
func (j *Jurisdiction) registryCode() *string    { return &j.Code }
func (j *Jurisdiction) registrySuspended() *bool { return &j.Suspended }

// Validate checks a jurisdiction: a registry code, a name, requirements
// naming regulatory steps only, deadlines of 1 to 365 days.
func (j Jurisdiction) Validate() error {
	if err := ValidateRegistryCode(j.Code); err != nil {
		return fieldErr("code", err)
	}
	if err := validText("name", j.Name, true, maxRegistryName); err != nil {
		return fieldErr("name", err)
	}
	if len(j.Required) == 0 {
		return fieldErr("required", fmt.Errorf("a jurisdiction requires at least one step: %w", ErrInvalid))
	}
	for _, g := range [][][]Step{j.Required, j.Emergency} {
		for _, any := range g {
			if len(any) == 0 {
				return fieldErr("required", fmt.Errorf("an empty requirement: %w", ErrInvalid))
			}
			for _, st := range any {
				if !slices.Contains(RegulatorySteps, st) {
					return fieldErr("required", fmt.Errorf("step %q is not a regulatory step %v: %w", st, RegulatorySteps, ErrInvalid))
				}
			}
		}
	}
	for _, a := range j.After {
		if !slices.Contains(RegulatorySteps, a.Step) || !slices.Contains(RegulatorySteps, a.Trigger) {
			return fieldErr("after", fmt.Errorf("steps %q after %q: both must be regulatory steps %v: %w", a.Step, a.Trigger, RegulatorySteps, ErrInvalid))
		}
		if a.Days < 1 || a.Days > 365 {
			return fieldErr("after", fmt.Errorf("%s due %d days after %s: 1 to 365: %w", a.Step, a.Days, a.Trigger, ErrInvalid))
		}
	}
	return nil
}

// requirements are what r must have recorded before enrollment.
func (j Jurisdiction) requirements(r *AccessRequest) [][]Step {
	if r.Submission.Urgency == UrgencyEmergency && len(j.Emergency) > 0 {
		return j.Emergency
	}
	return j.Required
}

// missing lists the requirements r has not met.
func (j Jurisdiction) missing(r *AccessRequest) [][]Step {
	out := [][]Step{}
	for _, any := range j.requirements(r) {
		if !slices.ContainsFunc(any, func(s Step) bool { _, ok := r.Done[s]; return ok }) {
			out = append(out, any)
		}
	}
	return out
}

// deadlines lists the after-the-fact steps r owes at now.
func (j Jurisdiction) deadlines(r *AccessRequest, now time.Time) []Deadline {
	out := []Deadline{}
	if r.State == AccessWithdrawn || r.State == AccessDeclined {
		return out
	}
	for _, a := range j.After {
		at, ok := r.Done[a.Trigger]
		if _, done := r.Done[a.Step]; !ok || done {
			continue
		}
		due := addDays(at, a.Days, a.WorkingDays)
		st := "due"
		if now.After(due) {
			st = "overdue"
		}
		out = append(out, Deadline{Step: a.Step, Due: due, Status: st})
	}
	return out
}

// addDays returns t plus n days, or n working days (Saturdays and Sundays
// in UTC skipped) when working is set.
func addDays(t time.Time, n int, working bool) time.Time {
	t = t.UTC()
	if !working {
		return t.AddDate(0, 0, n)
	}
	for n > 0 {
		t = t.AddDate(0, 0, 1)
		if wd := t.Weekday(); wd != time.Saturday && wd != time.Sunday {
			n--
		}
	}
	return t
}

// Jurisdiction returns the jurisdiction code names: the registered one,
// or the built-in one of that code. A suspended one is ErrConflict.
func (s *Service) Jurisdiction(ctx context.Context, code string) (Jurisdiction, error) {
	j, err := readEntry[Jurisdiction](ctx, s, KindJurisdiction, code)
	if errors.Is(err, ErrNotFound) {
		for _, b := range BuiltinJurisdictions() {
			if b.Code == code {
				return b, nil
			}
		}
	}
	if err != nil {
		return Jurisdiction{}, fmt.Errorf("jurisdiction %s: %w", code, err)
	}
	if j.Suspended {
		return j, fmt.Errorf("jurisdiction %s is suspended: %w", code, ErrConflict)
	}
	return j, nil
}

// RegisterJurisdiction adds a jurisdiction (administrators, with a reason
// for the audit trail). A registered jurisdiction of a built-in's code
// takes its place.
func (s *Service) RegisterJurisdiction(ctx context.Context, actor User, j Jurisdiction, reason string) (Jurisdiction, error) {
	return registerEntry(ctx, s, actor, j, reason)
}

// UpdateJurisdiction changes a registered jurisdiction.
func (s *Service) UpdateJurisdiction(ctx context.Context, actor User, code string, j Jurisdiction, reason string) (Jurisdiction, error) {
	return updateEntry(ctx, s, actor, code, j, reason)
}

// SuspendJurisdiction suspends (or reinstates) a registered jurisdiction:
// no new request may name it.
func (s *Service) SuspendJurisdiction(ctx context.Context, actor User, code string, suspended bool, reason string) (Jurisdiction, error) {
	return suspendEntry[Jurisdiction](ctx, s, actor, code, suspended, reason)
}

// Jurisdictions lists the registered jurisdictions in code order after
// after, at most limit; the built-in ones not registered come first on
// the first page.
func (s *Service) Jurisdictions(ctx context.Context, actor User, after string, limit int) ([]Jurisdiction, error) {
	reg, err := listEntries[Jurisdiction](ctx, s, actor, after, limit)
	if err != nil {
		return nil, err
	}
	if after != "" {
		return reg, nil
	}
	var out []Jurisdiction
	for _, b := range BuiltinJurisdictions() {
		if !slices.ContainsFunc(reg, func(j Jurisdiction) bool { return j.Code == b.Code }) {
			out = append(out, b)
		}
	}
	return append(out, reg...), nil
}

// JurisdictionEntry returns a registered jurisdiction, or a built-in one,
// for a reader of the registries.
func (s *Service) JurisdictionEntry(ctx context.Context, actor User, code string) (Jurisdiction, error) {
	j, err := getEntry[Jurisdiction](ctx, s, actor, code)
	if errors.Is(err, ErrNotFound) {
		for _, b := range BuiltinJurisdictions() {
			if b.Code == code {
				return b, nil
			}
		}
	}
	return j, err
}
