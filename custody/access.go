package custody

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Expanded access (compassionate use): a treating physician asks the
// manufacturer for a product for one patient outside a trial. Each
// request is a chain of its own in the ledger, signed record by record
// like a therapy chain and verified with it, with a journey table of its
// own (AccessJourney): submit, request-info and respond, decide, the
// regulatory steps of its jurisdiction, enroll (which starts the therapy
// chain and links the two both ways) and withdraw. A request holds no
// patient identifiers: the patient is named only when the therapy chain
// is enrolled, and then only outside the ledger.

// Access steps.
const (
	StepAccessSubmit       Step = "submit"
	StepAccessRequestInfo  Step = "request-info"
	StepAccessRespond      Step = "respond"
	StepAccessDecide       Step = "decide"
	StepLOAIssued          Step = "loa-issued"
	StepINDAcknowledged    Step = "ind-acknowledged"
	StepIRBApproved        Step = "irb-approved"
	StepIRBWaived          Step = "irb-waived"
	StepEmergencyAuthorise Step = "emergency-authorised"
	StepIRBReported        Step = "irb-reported"
	// StepAccessEnroll is the request's own enroll record: it names the
	// therapy chain the request became (the therapy chain's enroll record
	// names the request).
	StepAccessEnroll   Step = "enroll"
	StepAccessWithdraw Step = "withdraw"
	// StepAccessAssign hands an open request to a named member of the
	// manufacturer's access team, with a reason.
	StepAccessAssign Step = "assign"
)

// RolePhysician is the treating physician, bound to a treatment site: the
// person who asks for expanded access.
const RolePhysician Role = "physician"

// Access request states. They are chain states of request chains only.
// A decided request is kept as AccessDecided in the ledger's journey (the
// decide record's data says which way); a request's view says
// AccessApproved or AccessDeclined instead.
const (
	AccessSubmitted     State = "access-submitted"
	AccessInfoRequested State = "access-info-requested"
	AccessDecided       State = "access-decided"
	AccessApproved      State = "access-approved"
	AccessDeclined      State = "access-declined"
	AccessEnrolled      State = "access-enrolled"
	AccessWithdrawn     State = "access-withdrawn"
)

// AccessStates lists the states a request's view may be in, open ones
// first.
var AccessStates = []State{AccessSubmitted, AccessInfoRequested, AccessApproved, AccessDeclined, AccessEnrolled, AccessWithdrawn}

// Access reports whether s is a state of an expanded-access request's
// chain, not of a therapy chain: chain lists and the folds of therapy
// chains leave such chains out.
func (s State) Access() bool {
	return s == AccessSubmitted || s == AccessInfoRequested || s == AccessDecided || s == AccessEnrolled || s == AccessWithdrawn
}

// journeyState is the state of the request journey that a view state
// stands for.
func journeyState(s State) State {
	if s == AccessApproved || s == AccessDeclined {
		return AccessDecided
	}
	return s
}

// RegulatorySteps are the steps a jurisdiction's requirements name.
var RegulatorySteps = []Step{StepLOAIssued, StepINDAcknowledged, StepIRBApproved, StepIRBWaived, StepEmergencyAuthorise, StepIRBReported}

// ErrRequirementsUnmet means a request may not be enrolled yet: the
// regulatory steps its jurisdiction requires are not all recorded.
// Nothing was written. The error is a *RequirementsError, which names
// what is missing.
var ErrRequirementsUnmet = errors.New("jurisdiction requirements not met")

// RequirementsError is the refusal of an enrollment whose jurisdiction's
// requirements are not met. errors.Is(err, ErrRequirementsUnmet) holds.
type RequirementsError struct {
	Jurisdiction string `json:"jurisdiction"`
	// Missing lists the unmet requirements; each is a set of steps any
	// one of which meets it.
	Missing [][]Step `json:"missing"`
}

func (e *RequirementsError) Error() string {
	parts := make([]string, len(e.Missing))
	for i, m := range e.Missing {
		s := make([]string, len(m))
		for j, x := range m {
			s[j] = string(x)
		}
		parts[i] = strings.Join(s, " or ")
	}
	return fmt.Sprintf("jurisdiction %s still requires %s: %v", e.Jurisdiction, strings.Join(parts, "; "), ErrRequirementsUnmet)
}

// Is makes errors.Is(err, ErrRequirementsUnmet) hold.
func (e *RequirementsError) Is(target error) bool { return target == ErrRequirementsUnmet }

// AccessJourney returns the request journey table: who signs each step
// (the physician, at the request's treatment site; the manufacturer's
// access team, coordinators or QA at the manufacturing site) and the state
// it leads to. Regulatory steps are recorded once the request is
// approved; which of them a request needs is its jurisdiction's.
func AccessJourney() *Journey {
	phys := []SignatureRule{sig(MeaningAuthored, RolePhysician)}
	physOrCoord := []SignatureRule{sig(MeaningAuthored, RolePhysician, RoleCoordinator)}
	team := []SignatureRule{sig(MeaningAuthored, RoleCoordinator, RoleQA)}
	j := &Journey{Transitions: []Transition{
		{From: "", Step: StepAccessSubmit, To: AccessSubmitted, Site: SiteTreatment, Signatures: phys},
		{From: AccessSubmitted, Step: StepAccessRequestInfo, To: AccessInfoRequested, Site: SiteManufacturing, Signatures: team},
		{From: AccessInfoRequested, Step: StepAccessRespond, To: AccessSubmitted, Site: SiteTreatment, Signatures: phys},
		{From: AccessSubmitted, Step: StepAccessDecide, To: AccessDecided, Site: SiteManufacturing,
			Signatures: []SignatureRule{sig(MeaningApproved, RoleCoordinator, RoleQA)}},
		{From: AccessDecided, Step: StepAccessEnroll, To: AccessEnrolled, Site: SiteTreatment,
			Signatures: []SignatureRule{sig(MeaningAuthored, RoleCoordinator)}},
	}}
	for _, st := range RegulatorySteps {
		signers := physOrCoord
		site := SiteTreatment
		if st == StepLOAIssued {
			signers, site = team, SiteManufacturing
		}
		j.Transitions = append(j.Transitions, Transition{From: AccessDecided, Step: st, To: AccessDecided, Site: site, Signatures: signers})
		// After-the-fact reports follow the enrollment too.
		if st == StepIRBReported || st == StepINDAcknowledged {
			j.Transitions = append(j.Transitions, Transition{From: AccessEnrolled, Step: st, To: AccessEnrolled, Site: site, Signatures: signers})
		}
	}
	for _, from := range []State{AccessSubmitted, AccessInfoRequested} {
		j.Transitions = append(j.Transitions, Transition{From: from, Step: StepAccessAssign, To: from, Site: SiteManufacturing, Signatures: team})
	}
	for _, from := range []State{AccessSubmitted, AccessInfoRequested, AccessDecided} {
		j.Transitions = append(j.Transitions, Transition{From: from, Step: StepAccessWithdraw, To: AccessWithdrawn, Site: SiteTreatment, Signatures: phys})
	}
	return j
}

// accessRule returns the row for step on a request whose view is in
// state from: a declined request takes no more steps, an approved one the
// decided state's rows.
func accessRule(j *Journey, from State, step Step) (Transition, error) {
	if from == AccessDeclined {
		return Transition{}, fmt.Errorf("%s: the request was declined and takes no more records: %w", step, ErrConflict)
	}
	js := journeyState(from)
	var next []Step
	for _, t := range j.Transitions {
		if t.From == js && t.Step == step {
			return t, nil
		}
		if t.From == js && !slices.Contains(next, t.Step) {
			next = append(next, t.Step)
		}
	}
	if from == "" {
		return Transition{}, fmt.Errorf("%s: no such request: %w", step, ErrNotFound)
	}
	return Transition{}, fmt.Errorf("%s is not allowed while the request is %s (allowed: %v): %w", step, from, next, ErrConflict)
}

// viewState is the state a request's view shows after rule t with data d.
func viewState(t Transition, d AccessStepData, prev State) State {
	switch {
	case t.Step == StepAccessDecide && d.Approve != nil && *d.Approve:
		return AccessApproved
	case t.Step == StepAccessDecide:
		return AccessDeclined
	case t.To == AccessDecided:
		return prev
	}
	return t.To
}

// withAccess returns j with the request journey's rows added, for the
// verifier: a ledger holds therapy chains and request chains.
func withAccess(j *Journey) *Journey {
	a := AccessJourney()
	return &Journey{Transitions: append(slices.Clip(j.Transitions), a.Transitions...), Exceptions: j.Exceptions}
}

// Urgency says how fast a request must be decided.
type Urgency string

// Urgencies.
const (
	UrgencyEmergency Urgency = "emergency"
	UrgencyStandard  Urgency = "standard"
)

// AccessSubmission is what a physician submits: no patient identifiers.
type AccessSubmission struct {
	Urgency         Urgency `json:"urgency"`
	Indication      string  `json:"indication"`
	ClinicalSummary string  `json:"clinical_summary"`
	TreatmentPlan   string  `json:"treatment_plan"`
	Jurisdiction    string  `json:"jurisdiction"`
	Product         string  `json:"product"`
	// TreatmentSite is the registered site of the physician; Manufacturing
	// the manufacturer's site whose access team decides.
	TreatmentSite     string `json:"treatment_site"`
	ManufacturingSite string `json:"manufacturing_site"`
}

// AccessStepData is the data of a request record after its submit: a
// message (request-info, respond, decide's reason), the decision, a
// regulatory reference (the IND acknowledgement number, the IRB's
// reference), documents by content hash, and the therapy chain.
type AccessStepData struct {
	Text      string   `json:"text,omitempty"`
	Approve   *bool    `json:"approve,omitempty"`
	Reference string   `json:"reference,omitempty"`
	Documents []string `json:"documents,omitempty"`
	COI       COI      `json:"coi,omitempty"`
	// Assignee is the access-team member an assign record hands the
	// request to.
	Assignee string `json:"assignee,omitempty"`
}

// AccessStep is a step submitted for a request.
type AccessStep struct {
	Step       Step               `json:"step"`
	Data       AccessStepData     `json:"data"`
	Signatures []SignatureRequest `json:"signatures"`
}

// Limits of a request's free text, in bytes.
const (
	maxAccessText  = 8000
	maxAccessShort = 200
)

// Validate checks a submission's members.
func (a AccessSubmission) Validate() error {
	if a.Urgency != UrgencyEmergency && a.Urgency != UrgencyStandard {
		return fieldErr("urgency", fmt.Errorf("urgency %q: must be emergency or standard: %w", a.Urgency, ErrInvalid))
	}
	for _, f := range []struct {
		n, v string
		max  int
	}{{"indication", a.Indication, maxAccessShort}, {"clinical_summary", a.ClinicalSummary, maxAccessText},
		{"treatment_plan", a.TreatmentPlan, maxAccessText}, {"jurisdiction", a.Jurisdiction, maxRegistryCode},
		{"product", a.Product, maxAccessShort}, {"treatment_site", a.TreatmentSite, maxRegistryCode},
		{"manufacturing_site", a.ManufacturingSite, maxRegistryCode}} {
		check := validText
		if f.max == maxAccessText {
			check = validMultiline
		}
		if err := check(f.n, f.v, true, f.max); err != nil {
			return fieldErr(f.n, err)
		}
	}
	return nil
}

// AccessEvent is one record of a request, as the request page lists it.
type AccessEvent struct {
	Seq        uint64         `json:"seq"`
	Step       Step           `json:"step"`
	Time       time.Time      `json:"time"`
	By         string         `json:"by"`
	Data       AccessStepData `json:"data"`
	Signatures []Signature    `json:"signatures"`
}

// AccessRequest is a request folded from its records.
type AccessRequest struct {
	ID         COI              `json:"id"`
	State      State            `json:"state"`
	Submission AccessSubmission `json:"submission"`
	Submitted  time.Time        `json:"submitted"`
	Updated    time.Time        `json:"updated"`
	// Decided is when the request was approved or declined; zero before.
	Decided time.Time `json:"decided,omitzero"`
	Reason  string    `json:"reason,omitempty"`
	// Done maps each regulatory step recorded to its first record's time.
	Done map[Step]time.Time `json:"done"`
	// COI is the therapy chain the request became.
	COI COI `json:"coi,omitempty"`
	// Assignee is the access-team member the request was last assigned
	// to; empty if never.
	Assignee  string        `json:"assignee,omitempty"`
	Documents []string      `json:"documents"`
	Events    []AccessEvent `json:"events"`
	// Deadlines are the after-the-fact steps the jurisdiction requires,
	// with their due times (set by the service from its clock).
	Deadlines []Deadline `json:"deadlines"`
	// Missing lists what the jurisdiction still requires before
	// enrollment (set by the service).
	Missing [][]Step `json:"missing"`
	Records uint64   `json:"records"`
}

// foldAccess replays a request's records.
func foldAccess(recs []Record) (*AccessRequest, error) {
	if len(recs) == 0 || recs[0].Step != StepAccessSubmit {
		return nil, fmt.Errorf("not an access request: %w", ErrNotFound)
	}
	r := &AccessRequest{ID: recs[0].Chain, Done: map[Step]time.Time{}, Documents: []string{}}
	if err := json.Unmarshal(recs[0].Data, &r.Submission); err != nil {
		return nil, fmt.Errorf("request %s: submit data: %v: %w", r.ID, err, ErrChainBroken)
	}
	r.State, r.Submitted = AccessSubmitted, recs[0].Time
	j := AccessJourney()
	for i, rec := range recs {
		var d AccessStepData
		if i > 0 {
			if err := json.Unmarshal(rec.Data, &d); err != nil {
				return nil, fmt.Errorf("request %s record %d: %v: %w", r.ID, rec.Seq, err, ErrChainBroken)
			}
			t, err := accessRule(j, r.State, rec.Step)
			if err != nil {
				return nil, fmt.Errorf("request %s record %d: %v: %w", r.ID, rec.Seq, err, ErrChainBroken)
			}
			r.State = viewState(t, d, r.State)
		}
		switch rec.Step {
		case StepAccessDecide:
			r.Decided, r.Reason = rec.Time, d.Text
		case StepAccessEnroll:
			r.COI = d.COI
		case StepAccessAssign:
			r.Assignee = d.Assignee
		}
		if slices.Contains(RegulatorySteps, rec.Step) {
			if _, ok := r.Done[rec.Step]; !ok {
				r.Done[rec.Step] = rec.Time
			}
		}
		for _, h := range d.Documents {
			if !slices.Contains(r.Documents, h) {
				r.Documents = append(r.Documents, h)
			}
		}
		r.Events = append(r.Events, AccessEvent{Seq: rec.Seq, Step: rec.Step, Time: rec.Time, By: rec.SubmittedBy, Data: d, Signatures: rec.Signatures})
		r.Updated = rec.Time
	}
	r.Records = uint64(len(recs))
	return r, nil
}

// accessSites are the sites of a request chain, as signerPlaceFor reads
// them.
func (a AccessSubmission) sites() Sites {
	return Sites{Treatment: a.TreatmentSite, Manufacturing: a.ManufacturingSite}
}

// newAccessID issues a request's identifier: "EA", the service's facility,
// the year and a sequence number, 15 characters like a COI.
func (s *Service) newAccessID(ctx context.Context, now time.Time) (COI, error) {
	seq, err := s.store.NextCOISequence(ctx, "EA"+s.fin, now.Year())
	if err != nil {
		return "", err
	}
	if seq > 999999 {
		return "", fmt.Errorf("request sequence exhausted for %d: %w", now.Year(), ErrConflict)
	}
	return COI(fmt.Sprintf("EA%s%02d%06d", s.fin, now.Year()%100, seq)), nil
}

// ParseAccessID checks a request identifier.
func ParseAccessID(s string) (COI, error) {
	if len(s) != COILen || !strings.HasPrefix(s, "EA") || !isFIN(s[2:7]) || !isDigits(s[7:]) {
		return "", fmt.Errorf("request id %q: want EA, a facility, 2-digit year and 6-digit number: %w", s, ErrInvalid)
	}
	return COI(s), nil
}

// accessSign signs a request record: with the signatures given, checked
// as a journey step's, or, without, attributed to the actor's session,
// whose role and site are checked the same way.
func (s *Service) accessSign(ctx context.Context, actor User, sites Sites, rule Transition, reqs []SignatureRequest, now time.Time) ([]Signature, error) {
	if actor.Role == RoleAdmin {
		return nil, fmt.Errorf("administrators take no part in requests: %w", ErrForbidden)
	}
	place, err := s.signerPlaceFor(ctx, sites, rule, rule.Step, nil)
	if err != nil {
		return nil, err
	}
	if len(reqs) > 0 {
		sigs, err := s.sign(ctx, Caller{User: actor.ID}, rule.Step, rule.Signatures, reqs, place, now)
		if err != nil {
			return nil, err
		}
		return sigs, nil
	}
	if len(rule.Signatures) != 1 || !slices.Contains(rule.Signatures[0].Roles, actor.Role) {
		return nil, fmt.Errorf("%s: role %s may not sign it (needs %s): %w", rule.Step, actor.Role, joinRoles(rule.Signatures[0].Roles), ErrForbidden)
	}
	if err := place.check(ctx, s, actor); err != nil {
		return nil, err
	}
	return []Signature{{User: actor.ID, Name: actor.Name, Role: actor.Role, Meaning: rule.Signatures[0].Meaning,
		Time: FormatTime(now), Method: ViaToken}}, nil
}

// accessNoPHI refuses request data that names a patient identifier
// (member names such as "mrn" or "patient_name", at any depth).
func (s *Service) accessNoPHI(step Step, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if err := checkNoPHI(step, b, nil, s.folder); err != nil {
		return nil, err
	}
	return Canonicalize(b)
}

// SubmitAccess records a physician's new request and returns it.
func (s *Service) SubmitAccess(ctx context.Context, actor User, sub AccessSubmission, sigs []SignatureRequest) (*AccessRequest, error) {
	op := "submit access request"
	sub.Indication, sub.ClinicalSummary, sub.TreatmentPlan = strings.TrimSpace(sub.Indication), strings.TrimSpace(sub.ClinicalSummary), strings.TrimSpace(sub.TreatmentPlan)
	if err := sub.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.checkFreeTextPHI(sub.Indication, sub.ClinicalSummary, sub.TreatmentPlan); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if _, err := s.Jurisdiction(ctx, sub.Jurisdiction); err != nil {
		return nil, fmt.Errorf("%s: %w", op, fieldErr("jurisdiction", err))
	}
	for _, code := range []string{sub.TreatmentSite, sub.ManufacturingSite} {
		if _, ok, err := s.registeredSite(ctx, code); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		} else if !ok {
			return nil, fmt.Errorf("%s: site %s is not registered: %w", op, code, ErrInvalid)
		}
	}
	now := s.now().UTC()
	rule := AccessJourney().Transitions[0]
	signed, err := s.accessSign(ctx, actor, sub.sites(), rule, sigs, now)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	body, err := s.accessNoPHI(StepAccessSubmit, sub)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	id, err := s.newAccessID(ctx, now)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	unlock := s.lock(id)
	defer unlock()
	rec := Record{V: EncodingVersion, Chain: id, Step: StepAccessSubmit, Time: now, Site: sub.TreatmentSite,
		SubmittedBy: actor.ID, Data: body, Signatures: signed}
	row := &AccessRow{ID: id, State: AccessSubmitted, Urgency: sub.Urgency, Treatment: sub.TreatmentSite,
		Manufacturing: sub.ManufacturingSite, Submitted: now}
	if _, err := s.store.Append(ctx, Draft{Record: rec, NewChain: true, State: AccessSubmitted, Product: sub.Product,
		Sites: sub.sites(), OpenIssues: IssueCounts{Kept: true}, Access: row}); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	s.log.Info("access request submitted", "request", string(id), "user", actor.ID, "urgency", string(sub.Urgency))
	return s.accessLocked(ctx, id)
}

// freeTextPHI are the identifier labels the guard's member names know
// (phiKeys) that free text about a patient never needs: "MRN 1234",
// "date of birth ...". "patient" and "name" alone are everyday words.
func freeTextPHI(key string) bool {
	return phiKeys[key] && key != "patient" && key != "name"
}

// checkFreeTextPHI refuses free text that labels a patient identifier
// (one, two or three words that read as one of the guard's identifier
// names, folded as the guard folds them). Without a patient on file this
// is what can be checked; the text is compared with the patient's own
// identifiers at enrollment.
func (s *Service) checkFreeTextPHI(texts ...string) error {
	for _, t := range texts {
		w := phiTokens(s.folder, t)
		for i := range w {
			for n := 1; n <= 3 && i+n <= len(w); n++ {
				if k := strings.Join(w[i:i+n], "_"); freeTextPHI(k) {
					return fmt.Errorf("the text labels a patient identifier (%s); a request holds none: "+
						"describe the patient clinically, the identity is given only at enrollment: %w", k, ErrInvalid)
				}
			}
		}
	}
	return nil
}

// AccessRequest returns a request that actor may read: the physician's
// and coordinators of its treatment site, the access team of its
// manufacturing site (and QA of that site's organisation).
func (s *Service) AccessRequest(ctx context.Context, actor User, id COI) (*AccessRequest, error) {
	unlock := s.lock(id)
	defer unlock()
	r, err := s.accessLocked(ctx, id)
	if err != nil {
		return nil, err
	}
	if ok, err := s.mayReadAccess(ctx, actor, r.Submission); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("request %s: %w", id, ErrNotFound)
	}
	return r, nil
}

func (s *Service) mayReadAccess(ctx context.Context, u User, sub AccessSubmission) (bool, error) {
	if u.WorksAt(sub.TreatmentSite) || u.WorksAt(sub.ManufacturingSite) {
		return true, nil
	}
	if u.Role == RoleQA && u.Organisation != "" {
		site, ok, err := s.registeredSite(ctx, sub.ManufacturingSite)
		if err != nil {
			return false, err
		}
		return ok && site.Organisation == u.Organisation, nil
	}
	return false, nil
}

// foldedAccess is a request folded from its records (foldAccess), kept
// in the service's cache while its chain's head is the record it was
// folded up to.
type foldedAccess struct {
	records uint64
	head    Hash
	r       *AccessRequest
}

// foldAccessCached folds request id, whose chain summary is info, or
// returns the fold the cache keeps of the same head record. The result
// is shared with the cache and must not be modified; its slices are
// clipped so that an append copies them. The caller holds the request's
// lock.
func (s *Service) foldAccessCached(ctx context.Context, id COI, info ChainInfo) (*AccessRequest, error) {
	s.cacheMu.Lock()
	f, ok := s.accessCache[id]
	s.cacheMu.Unlock()
	if ok && f.records == info.Records && f.head == info.HeadHash {
		return f.r, nil
	}
	recs, err := s.store.Records(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", id, err)
	}
	r, err := foldAccess(recs)
	if err != nil {
		return nil, err
	}
	r.Documents, r.Events = slices.Clip(r.Documents), slices.Clip(r.Events)
	// Keyed by the records read, not the summary read before them: an
	// append between the two reads leaves an entry the next summary
	// does not match.
	f = foldedAccess{records: uint64(len(recs)), head: recs[len(recs)-1].Hash, r: r}
	s.cacheMu.Lock()
	if s.accessCache == nil || len(s.accessCache) >= maxCachedRequests {
		s.accessCache = map[COI]foldedAccess{}
	}
	s.accessCache[id] = f
	s.cacheMu.Unlock()
	return r, nil
}

// accessLocked folds request id (through the cache) and sets what its
// jurisdiction and the clock add; the caller holds its lock. The
// request returned is the caller's, but its records' parts (Events,
// Done, Documents, Submission's slices) are shared with the cache and
// must not be modified.
func (s *Service) accessLocked(ctx context.Context, id COI) (*AccessRequest, error) {
	info, err := s.store.Chain(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", id, err)
	}
	folded, err := s.foldAccessCached(ctx, id, info)
	if err != nil {
		return nil, err
	}
	r := new(*folded)
	jur, err := s.Jurisdiction(ctx, r.Submission.Jurisdiction)
	if err != nil && !(errors.Is(err, ErrConflict) && jur.Suspended) {
		// A suspended jurisdiction takes no new request; the requests
		// already under it keep their requirements and deadlines.
		return nil, fmt.Errorf("request %s: %w", id, err)
	}
	r.Missing = jur.missing(r)
	r.Deadlines = jur.deadlines(r, s.now().UTC())
	return r, nil
}

// RecordAccess appends a step other than submit and enroll to a request.
func (s *Service) RecordAccess(ctx context.Context, actor User, id COI, st AccessStep) (*AccessRequest, error) {
	op := fmt.Sprintf("record %s on request %s", st.Step, id)
	if st.Step == StepAccessSubmit || st.Step == StepAccessEnroll {
		return nil, fmt.Errorf("%s: use the request's own route: %w", op, ErrInvalid)
	}
	d := st.Data
	d.COI = ""
	d.Text, d.Reference, d.Assignee = strings.TrimSpace(d.Text), strings.TrimSpace(d.Reference), strings.TrimSpace(d.Assignee)
	if (st.Step == StepAccessAssign) != (d.Assignee != "") {
		return nil, fmt.Errorf("%s: assignee is given with an assign, and only then: %w", op, fieldErr("assignee", ErrInvalid))
	}
	if err := validMultiline("text", d.Text, st.Step == StepAccessDecide || st.Step == StepAccessRequestInfo || st.Step == StepAccessRespond || st.Step == StepAccessAssign, maxAccessText); err != nil {
		return nil, fmt.Errorf("%s: %w", op, fieldErr("text", err))
	}
	if err := validText("reference", d.Reference, st.Step == StepINDAcknowledged, maxAccessShort); err != nil {
		return nil, fmt.Errorf("%s: %w", op, fieldErr("reference", err))
	}
	if (st.Step == StepAccessDecide) != (d.Approve != nil) {
		return nil, fmt.Errorf("%s: approve is given with a decide, and only then: %w", op, fieldErr("approve", ErrInvalid))
	}
	for _, h := range d.Documents {
		if _, err := ParseHash(h); err != nil {
			return nil, fmt.Errorf("%s: %w", op, fieldErr("documents", err))
		}
	}
	if err := s.checkFreeTextPHI(d.Text, d.Reference); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	now := s.now().UTC()
	unlock := s.lock(id)
	defer unlock()
	r, err := s.accessLocked(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if ok, err := s.mayReadAccess(ctx, actor, r.Submission); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	} else if !ok && actor.Role != RoleAdmin {
		return nil, fmt.Errorf("%s: request %s: %w", op, id, ErrNotFound)
	}
	if _, err := s.Jurisdiction(ctx, r.Submission.Jurisdiction); err != nil { // suspended: read, not written
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	rule, err := accessRule(AccessJourney(), r.State, st.Step)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if st.Step == StepIRBReported {
		if _, ok := r.Done[StepEmergencyAuthorise]; !ok {
			return nil, fmt.Errorf("%s: an IRB report follows an emergency authorisation, and none is recorded: %w", op, ErrConflict)
		}
	}
	if st.Step == StepAccessAssign {
		if err := s.checkAssignee(ctx, d.Assignee, r.Submission.ManufacturingSite); err != nil {
			return nil, fmt.Errorf("%s: %w", op, fieldErr("assignee", err))
		}
	}
	for _, h := range d.Documents {
		if err := s.documentExists(h); err != nil {
			return nil, fmt.Errorf("%s: %w", op, fieldErr("documents", err))
		}
	}
	signed, err := s.accessSign(ctx, actor, r.Submission.sites(), rule, st.Signatures, now)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	body, err := s.accessNoPHI(st.Step, d)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	rec := Record{V: EncodingVersion, Chain: id, Step: st.Step, Time: now, Site: r.Submission.sites().name(rule.Site),
		SubmittedBy: actor.ID, Data: body, Signatures: signed}
	row := nextAccessRow(r, st.Step, d, viewState(rule, d, r.State), now)
	if _, err := s.store.Append(ctx, Draft{Record: rec, ExpectRecords: r.Records, State: rule.To, OpenIssues: IssueCounts{Kept: true},
		Access: row}); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	s.log.Info("access request record appended", "request", string(id), "step", string(st.Step), "user", actor.ID)
	return s.accessLocked(ctx, id)
}

// AccessEnrollment is what a coordinator of the treatment site submits to
// turn an approved request into a therapy chain: the patient (kept outside
// the ledger), the collection site and the enroll signatures.
type AccessEnrollment struct {
	Patient        PHI                `json:"patient"`
	CollectionSite string             `json:"collection_site"`
	Signatures     []SignatureRequest `json:"signatures"`
}

// EnrollAccess enrolls the therapy chain of an approved request whose
// jurisdiction's requirements are met (a *RequirementsError otherwise,
// nothing written): the chain's enroll record names the request, then the
// request's enroll record names the chain. Both are appended while the
// request is locked, but as two appends: the store contract (Ledger.Append)
// takes one draft, and a batch's drafts succeed or fail each alone, so
// there is no append of two chains' records that commits both or neither.
// If the second append fails the chain exists without its link from the
// request; the error says so and names the chain, and the request stays
// approved (its enroll step can be retried, which enrolls another chain).
// Making it one transaction needs an all-or-nothing multi-draft append in
// the contract, in both stores and in the conformance suite.
func (s *Service) EnrollAccess(ctx context.Context, actor User, id COI, en AccessEnrollment) (*AccessRequest, *Chain, error) {
	op := "enroll request " + string(id)
	unlock := s.lock(id)
	defer unlock()
	r, err := s.accessLocked(ctx, id)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	if ok, err := s.mayReadAccess(ctx, actor, r.Submission); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	} else if !ok {
		return nil, nil, fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	if _, err := s.Jurisdiction(ctx, r.Submission.Jurisdiction); err != nil { // suspended: read, not written
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	rule, err := accessRule(AccessJourney(), r.State, StepAccessEnroll)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	if len(r.Missing) > 0 {
		return nil, nil, fmt.Errorf("%s: %w", op, &RequirementsError{Jurisdiction: r.Submission.Jurisdiction, Missing: r.Missing})
	}
	// The request's text must not name the patient now identified.
	m := newPHIMatcher(PHI{Name: strings.TrimSpace(en.Patient.Name), BirthDate: en.Patient.BirthDate, MRN: strings.TrimSpace(en.Patient.MRN)}, s.folder)
	for _, ev := range r.Events {
		for _, t := range []string{ev.Data.Text, ev.Data.Reference} {
			if what := m.find(t); what != "" {
				return nil, nil, fmt.Errorf("%s: record %d of the request holds the patient's %s: %w", op, ev.Seq, what, ErrConflict)
			}
		}
	}
	for _, t := range []string{r.Submission.Indication, r.Submission.ClinicalSummary, r.Submission.TreatmentPlan} {
		if what := m.find(t); what != "" {
			return nil, nil, fmt.Errorf("%s: the request's text holds the patient's %s: %w", op, what, ErrConflict)
		}
	}
	now := s.now().UTC()
	// The request record is signed by the enrolling coordinator's session
	// (checked here, before the chain exists) at the treatment site.
	signed, err := s.accessSign(ctx, actor, r.Submission.sites(), rule, nil, now)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	c, err := s.enroll(ctx, actor, EnrollRequest{Patient: en.Patient, Product: r.Submission.Product, Signatures: en.Signatures,
		Sites: Sites{Collection: en.CollectionSite, Manufacturing: r.Submission.ManufacturingSite, Treatment: r.Submission.TreatmentSite}}, id)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	body, err := s.accessNoPHI(StepAccessEnroll, AccessStepData{COI: c.COI})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	rec := Record{V: EncodingVersion, Chain: id, Step: StepAccessEnroll, Time: now, Site: r.Submission.TreatmentSite,
		SubmittedBy: actor.ID, Data: body, Signatures: signed}
	row := nextAccessRow(r, StepAccessEnroll, AccessStepData{COI: c.COI}, viewState(rule, AccessStepData{}, r.State), now)
	if _, err := s.store.Append(ctx, Draft{Record: rec, ExpectRecords: r.Records, State: rule.To, OpenIssues: IssueCounts{Kept: true},
		Access: row}); err != nil {
		s.log.Error("access request enrolled but its enroll record failed", "request", string(id), "coi", string(c.COI), "err", err)
		return nil, nil, fmt.Errorf("%s: chain %s was enrolled, its link from the request failed: %w", op, c.COI, err)
	}
	s.log.Info("access request enrolled", "request", string(id), "coi", string(c.COI), "user", actor.ID)
	out, err := s.accessLocked(ctx, id)
	return out, c, err
}

// AccessPage is one page of requests.
type AccessPage struct {
	Requests []*AccessRequest `json:"requests"`
	// Next is the cursor of the next page; empty on the last.
	Next string `json:"next,omitempty"`
}

// AccessRequests lists the requests actor may read, in state (empty:
// all), in identifier order after cursor after, at most limit (1-500).
func (s *Service) AccessRequests(ctx context.Context, actor User, state State, after COI, limit int) (AccessPage, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	states := []State{AccessSubmitted, AccessInfoRequested, AccessDecided, AccessEnrolled, AccessWithdrawn}
	if state != "" {
		if !slices.Contains(AccessStates, state) {
			return AccessPage{}, fmt.Errorf("access requests: unknown state %q (one of %v): %w", state, AccessStates, ErrInvalid)
		}
		states = []State{journeyState(state)}
	}
	var ids []COI
	for _, st := range states {
		infos, err := s.store.Chains(ctx, st)
		if err != nil {
			return AccessPage{}, err
		}
		for _, ci := range infos {
			if ci.COI > after && (actor.WorksAt(ci.Sites.Treatment) || actor.WorksAt(ci.Sites.Manufacturing) || actor.Role == RoleQA) {
				ids = append(ids, ci.COI)
			}
		}
	}
	slices.Sort(ids)
	var page AccessPage
	page.Requests = []*AccessRequest{}
	for _, id := range ids {
		if len(page.Requests) == limit {
			page.Next = string(page.Requests[len(page.Requests)-1].ID)
			break
		}
		r, err := s.AccessRequest(ctx, actor, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return AccessPage{}, err
		}
		if state != "" && r.State != state {
			continue
		}
		page.Requests = append(page.Requests, r)
	}
	return page, nil
}
