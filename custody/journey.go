package custody

import (
	"fmt"
	"slices"
	"sync"
)

// Role is what a user is authorised to do.
type Role string

// Roles. Admin manages users and signs no journey step; System is the role
// of records coid writes itself (excursions, mismatches) and is never given
// to a user.
const (
	RoleCoordinator   Role = "coordinator"
	RoleNurse         Role = "nurse"
	RoleCourier       Role = "courier"
	RoleManufacturing Role = "manufacturing"
	RoleQA            Role = "qa"
	RoleAdmin         Role = "admin"
	RoleSystem        Role = "system"
)

// UserRoles lists the roles a user account may have.
var UserRoles = []Role{RoleCoordinator, RoleNurse, RoleCourier, RoleManufacturing, RoleQA, RoleAdmin, RolePhysician, RoleMedicalDirector}

// ValidUserRole reports whether r is a role a user account may have.
func ValidUserRole(r Role) bool { return slices.Contains(UserRoles, r) }

// Meaning is what a signature attests (21 CFR Part 11 11.50(a)(3)).
type Meaning string

// Signature meanings.
const (
	MeaningAuthored   Meaning = "authored"
	MeaningPerformed  Meaning = "performed"
	MeaningVerified   Meaning = "verified"
	MeaningHandedOver Meaning = "handed-over"
	MeaningReceived   Meaning = "received"
	MeaningApproved   Meaning = "approved"
	MeaningDetected   Meaning = "detected"
	// MeaningAcknowledged is a person's acknowledgement of a safety event.
	MeaningAcknowledged Meaning = "acknowledged"
	// MeaningReviewed is QA's attestation that it reviewed a chain's
	// custody record.
	MeaningReviewed Meaning = "reviewed"
)

// Step names a kind of record.
type Step string

// Journey steps and exception records: the handoffs of the vein-to-vein
// journey and the records that note, correct or judge them.
const (
	StepEnroll        Step = "enroll"
	StepCollect       Step = "collect"
	StepShip          Step = "ship"
	StepReceive       Step = "receive"
	StepManufacture   Step = "manufacture"
	StepRelease       Step = "release"
	StepBedsideVerify Step = "bedside-verify"
	StepInfuse        Step = "infuse"
	StepExcursion     Step = "excursion"
	StepDisposition   Step = "disposition"
	StepMismatch      Step = "mismatch"
	StepNote          Step = "note"
	StepCorrection    Step = "correction"
	StepCancel        Step = "cancel"
	// StepAcknowledge records that a person saw a bedside mismatch and set
	// the bag aside; it is written through Service.AcknowledgeMismatch.
	StepAcknowledge Step = "acknowledge"
	// StepReview is QA's signed review of the chain's custody record, the
	// block the custody report ends with.
	StepReview Step = "review"
	// StepSchedule books the chain's plan: an apheresis chair and a
	// manufacturing slot (Service.Book).
	StepSchedule Step = "schedule"
	// StepReschedule moves the chain's booking to another plan, with its
	// reason (Service.Reschedule).
	StepReschedule Step = "reschedule"
	// StepUnschedule frees the chain's booking, with its reason
	// (Service.Unschedule).
	StepUnschedule Step = "unschedule"
	// StepCollectOverride lets cells be collected without a booking,
	// signed by a coordinator and QA with a reason
	// (Service.OverrideCollectGate).
	StepCollectOverride Step = "collect-override"
)

// State is where a chain stands in its journey.
type State string

// Chain states, in journey order, then the two terminal states.
const (
	StateEnrolled        State = "enrolled"
	StateCollected       State = "collected"
	StateToManufacturing State = "in-transit-to-manufacturing"
	StateAtManufacturing State = "at-manufacturing"
	StateManufactured    State = "manufactured"
	StateReleased        State = "released"
	StateToTreatment     State = "in-transit-to-treatment"
	StateAtTreatment     State = "at-treatment"
	StateVerified        State = "bedside-verified"
	StateInfused         State = "infused"
	StateCancelled       State = "cancelled"
)

// States lists every chain state in journey order.
var States = []State{StateEnrolled, StateCollected, StateToManufacturing, StateAtManufacturing,
	StateManufactured, StateReleased, StateToTreatment, StateAtTreatment, StateVerified,
	StateInfused, StateCancelled}

// Terminal reports whether a chain in state s takes no new journey steps.
func (s State) Terminal() bool { return s == StateInfused || s == StateCancelled }

// SiteRole names which of the chain's sites a step happens at.
type SiteRole string

// Site roles, matching the sites named at enrollment.
const (
	SiteCollection    SiteRole = "collection"
	SiteManufacturing SiteRole = "manufacturing"
	SiteTreatment     SiteRole = "treatment"
)

// SignatureRule is one signature a step needs: any of Roles, signing with
// Meaning.
type SignatureRule struct {
	Roles   []Role  `json:"roles"`
	Meaning Meaning `json:"meaning"`
}

// Transition is one row of the journey table: in state From, step Step
// moves the chain to To, signed as Signatures says, at site Site.
type Transition struct {
	From       State           `json:"from"`
	Step       Step            `json:"step"`
	To         State           `json:"to"`
	Site       SiteRole        `json:"site"`
	Signatures []SignatureRule `json:"signatures"`
	// Data lists the members a client's data for a step custody has no
	// type for may hold (custody's own steps have their schema in
	// custody, and this is ignored for them).
	Data []string `json:"data,omitempty"`
}

// Exception describes a record that may be written in any open state
// without moving the chain: notes, corrections, dispositions, cancels, and
// the system's excursions and mismatches.
type Exception struct {
	Step Step `json:"step"`
	// Signatures lists the required signatures; nil for system records.
	Signatures []SignatureRule `json:"signatures"`
	// AfterEnd allows the record on a complete (infused) chain too.
	AfterEnd bool `json:"after_end"`
	// To is the state the record moves the chain to; empty to stay.
	To State `json:"to,omitempty"`
	// System marks records that the generic step request cannot write:
	// coid writes them itself, or a dedicated service method does.
	System bool `json:"system,omitempty"`
	// Data lists the members a client's data for a step custody has no
	// type for may hold, as Transition.Data.
	Data []string `json:"data,omitempty"`
}

// Journey is the table of steps that a chain follows: data, not code paths.
type Journey struct {
	Transitions []Transition
	Exceptions  []Exception

	// table is the journey compiled for verification, once: a Journey is
	// not changed after it is first used.
	tableOnce sync.Once
	table     *journeyTable
}

func sig(meaning Meaning, roles ...Role) SignatureRule {
	return SignatureRule{Roles: roles, Meaning: meaning}
}

// DefaultJourney returns the autologous vein-to-vein journey: enroll,
// collect, ship and receive, manufacture, QA release, ship and receive to
// the treatment site, bedside verification and infusion, with the roles
// that sign each step.
func DefaultJourney() *Journey {
	return &Journey{
		Transitions: []Transition{
			{From: "", Step: StepEnroll, To: StateEnrolled, Site: SiteCollection,
				Signatures: []SignatureRule{sig(MeaningAuthored, RoleCoordinator)}},
			{From: StateEnrolled, Step: StepCollect, To: StateCollected, Site: SiteCollection,
				Signatures: []SignatureRule{sig(MeaningPerformed, RoleNurse), sig(MeaningVerified, RoleNurse)}},
			{From: StateCollected, Step: StepShip, To: StateToManufacturing, Site: SiteCollection,
				Signatures: []SignatureRule{sig(MeaningHandedOver, RoleNurse, RoleManufacturing), sig(MeaningReceived, RoleCourier)}},
			{From: StateToManufacturing, Step: StepReceive, To: StateAtManufacturing, Site: SiteManufacturing,
				Signatures: []SignatureRule{sig(MeaningReceived, RoleManufacturing)}},
			{From: StateAtManufacturing, Step: StepManufacture, To: StateManufactured, Site: SiteManufacturing,
				Signatures: []SignatureRule{sig(MeaningPerformed, RoleManufacturing)}},
			{From: StateManufactured, Step: StepRelease, To: StateReleased, Site: SiteManufacturing,
				Signatures: []SignatureRule{sig(MeaningApproved, RoleQA)}},
			{From: StateReleased, Step: StepShip, To: StateToTreatment, Site: SiteManufacturing,
				Signatures: []SignatureRule{sig(MeaningHandedOver, RoleNurse, RoleManufacturing), sig(MeaningReceived, RoleCourier)}},
			{From: StateToTreatment, Step: StepReceive, To: StateAtTreatment, Site: SiteTreatment,
				Signatures: []SignatureRule{sig(MeaningReceived, RoleNurse)}},
			{From: StateAtTreatment, Step: StepBedsideVerify, To: StateVerified, Site: SiteTreatment,
				Signatures: []SignatureRule{sig(MeaningVerified, RoleNurse), sig(MeaningVerified, RoleNurse)}},
			{From: StateVerified, Step: StepInfuse, To: StateInfused, Site: SiteTreatment,
				Signatures: []SignatureRule{sig(MeaningPerformed, RoleNurse)}},
			{From: StateManufactured, Step: StepOOS, To: StateManufactured, Site: SiteManufacturing,
				Signatures: []SignatureRule{sig(MeaningAuthored, RoleQA)}, Data: []string{"attributes", "reason"}},
			{From: StateManufactured, Step: StepExceptionalReleaseRequest, To: StateManufactured, Site: SiteTreatment,
				Signatures: []SignatureRule{sig(MeaningAuthored, RolePhysician)}, Data: []string{"reason"}},
			{From: StateManufactured, Step: StepConsent, To: StateManufactured, Site: SiteTreatment,
				Signatures: []SignatureRule{sig(MeaningAuthored, RolePhysician)}, Data: []string{"obtained_by", "obtained_at", "document_hash"}},
			{From: StateManufactured, Step: StepExceptionalRelease, To: StateReleased, Site: SiteManufacturing,
				Signatures: []SignatureRule{sig(MeaningApproved, RoleQA), sig(MeaningApproved, RoleMedicalDirector)}, Data: []string{"statement"}},
			{From: StateInfused, Step: StepFollowUp, To: StateInfused, Site: SiteTreatment,
				Signatures: []SignatureRule{sig(MeaningAuthored, RolePhysician, RoleNurse, RoleCoordinator)}},
		},
		Exceptions: []Exception{
			{Step: StepNote, AfterEnd: true, Signatures: []SignatureRule{sig(MeaningAuthored,
				RoleCoordinator, RoleNurse, RoleCourier, RoleManufacturing, RoleQA)}},
			{Step: StepCorrection, AfterEnd: true, Signatures: []SignatureRule{sig(MeaningAuthored,
				RoleCoordinator, RoleNurse, RoleCourier, RoleManufacturing, RoleQA)}},
			{Step: StepDisposition, Signatures: []SignatureRule{sig(MeaningApproved, RoleQA)}},
			{Step: StepReview, AfterEnd: true, Signatures: []SignatureRule{sig(MeaningReviewed, RoleQA)}},
			{Step: StepCancel, To: StateCancelled, Signatures: []SignatureRule{sig(MeaningApproved, RoleCoordinator, RoleQA)}},
			{Step: StepExcursion, System: true},
			{Step: StepHoldWarning, System: true},
			{Step: StepMismatch, System: true},
			{Step: StepAcknowledge, System: true, AfterEnd: true},
			{Step: StepSchedule, System: true, Signatures: []SignatureRule{sig(MeaningAuthored, RoleCoordinator)}},
			{Step: StepReschedule, System: true, Signatures: []SignatureRule{sig(MeaningAuthored, RoleCoordinator)}},
			{Step: StepUnschedule, System: true, Signatures: []SignatureRule{sig(MeaningAuthored, RoleCoordinator)}},
			{Step: StepCollectOverride, System: true, Signatures: []SignatureRule{sig(MeaningApproved, RoleCoordinator),
				sig(MeaningApproved, RoleQA)}},
		},
	}
}

// transition returns the row for step in state from.
func (j *Journey) transition(from State, step Step) (Transition, bool) {
	for _, t := range j.Transitions {
		if t.From == from && t.Step == step {
			return t, true
		}
	}
	return Transition{}, false
}

func (j *Journey) exception(step Step) (Exception, bool) {
	for _, e := range j.Exceptions {
		if e.Step == step {
			return e, true
		}
	}
	return Exception{}, false
}

// Allowed returns the steps a person may record on a chain in state s, in
// table order: the journey step that comes next, then the exceptions that
// apply. Steps gated by other conditions (release while an excursion is
// open) are still listed; NextSteps on a chain view applies those gates.
func (j *Journey) Allowed(s State) []Step {
	var out []Step
	if s == StateCancelled {
		return out
	}
	for _, t := range j.Transitions {
		if t.From == s && t.From != "" {
			out = append(out, t.Step)
		}
	}
	for _, e := range j.Exceptions {
		if e.System || (s.Terminal() && !e.AfterEnd) {
			continue
		}
		out = append(out, e.Step)
	}
	return out
}

// Rule returns the rule for recording step on a chain in state s: the
// signatures it needs, the state it leads to and its site. It returns
// ErrConflict when the step is not allowed in that state and ErrInvalid for
// an unknown step.
func (j *Journey) Rule(s State, step Step) (Transition, error) {
	if t, ok := j.transition(s, step); ok {
		return t, nil
	}
	if e, ok := j.exception(step); ok {
		if s == StateCancelled {
			return Transition{}, fmt.Errorf("%s: chain is cancelled and takes no new records: %w", step, ErrConflict)
		}
		if s.Terminal() && !e.AfterEnd {
			return Transition{}, fmt.Errorf("%s: chain is complete (%s); only notes and corrections may follow: %w", step, s, ErrConflict)
		}
		to := e.To
		if to == "" {
			to = s
		}
		return Transition{From: s, Step: step, To: to, Signatures: e.Signatures}, nil
	}
	known := false
	for _, t := range j.Transitions {
		known = known || t.Step == step
	}
	if !known {
		return Transition{}, fmt.Errorf("unknown step %q: %w", step, ErrInvalid)
	}
	if s.Terminal() {
		return Transition{}, fmt.Errorf("%s: chain is %s and takes no new steps: %w", step, s, ErrConflict)
	}
	var next []Step
	for _, t := range j.Transitions {
		if t.From == s {
			next = append(next, t.Step)
		}
	}
	return Transition{}, fmt.Errorf("%s is not allowed while the chain is %s (the journey's next step is %v): %w", step, s, next, ErrConflict)
}

// IsSystem reports whether step is written only by coid itself.
func (j *Journey) IsSystem(step Step) bool {
	e, ok := j.exception(step)
	return ok && e.System
}

// DataMembers returns the members a client's data for step may hold: the
// step's schema in custody, or, for a step custody has no type for (one a
// journey adds), the members its rows in the table list (Data).
func (j *Journey) DataMembers(step Step) []string {
	if !schemaOf(step).byMember {
		return stepMembers(step)
	}
	var out []string
	for _, t := range j.Transitions {
		if t.Step == step {
			out = append(out, t.Data...)
		}
	}
	if e, ok := j.exception(step); ok {
		out = append(out, e.Data...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
