package custody_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// accessEnv is a registered network (registerNetwork) with a physician at
// each treatment site: doc2 at HOSP-2, doc1 at PAR-1.
func accessEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	registerNetwork(t, e)
	for id, site := range map[string]string{"doc1": "PAR-1", "doc2": "HOSP-2"} {
		if _, err := e.svc.AddUserIn(e.ctx, id, "Dr "+id, custody.RolePhysician, password(id), "APHP", []string{site}); err != nil {
			t.Fatal(err)
		}
		e.users[id], _ = e.store.User(e.ctx, id)
	}
	return e
}

func submission(u custody.Urgency) custody.AccessSubmission {
	return custody.AccessSubmission{Urgency: u, Indication: "relapsed DLBCL after two lines",
		ClinicalSummary: "Relapse 3 months after autologous transplant; ECOG 1; organ function adequate.",
		TreatmentPlan:   "Lymphodepletion then a single infusion; follow-up at days 7, 14, 28 and 90.",
		Jurisdiction:    custody.USFDASinglePatient, Product: "CART-19", TreatmentSite: "HOSP-2", ManufacturingSite: "MFG-1"}
}

func (e *env) submitAccess(u custody.Urgency) *custody.AccessRequest {
	e.t.Helper()
	r, err := e.svc.SubmitAccess(e.ctx, e.users["doc2"], submission(u), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) access(id custody.COI, actor string, step custody.Step, d custody.AccessStepData) (*custody.AccessRequest, error) {
	return e.svc.RecordAccess(e.ctx, e.users[actor], id, custody.AccessStep{Step: step, Data: d})
}

func (e *env) mustAccess(id custody.COI, actor string, step custody.Step, d custody.AccessStepData) *custody.AccessRequest {
	e.t.Helper()
	r, err := e.access(id, actor, step, d)
	if err != nil {
		e.t.Fatalf("%s by %s: %v", step, actor, err)
	}
	return r
}

var yes, no = true, false

// TestAccessJourneyTable walks the request journey in order and checks,
// at each step, that the wrong role, a signer of another site and a step
// out of order are refused with nothing written.
func TestAccessJourneyTable(t *testing.T) {
	e := accessEnv(t)
	r := e.submitAccess(custody.UrgencyStandard)
	if r.State != custody.AccessSubmitted || !slices.Equal(r.Missing[0], []custody.Step{custody.StepLOAIssued}) {
		t.Fatalf("after submit: %s, missing %v", r.State, r.Missing)
	}
	steps := []struct {
		step       custody.Step
		by         string
		data       custody.AccessStepData
		wrongRole  string // a role the step refuses
		wrongSite  string // the right role, at another site
		want       custody.State
		outOfOrder custody.Step // a step the state refuses
	}{
		{custody.StepAccessRequestInfo, "qa1", custody.AccessStepData{Text: "Latest CD19 status?"}, "doc2", "", custody.AccessInfoRequested, custody.StepAccessRespond},
		{custody.StepAccessRespond, "doc2", custody.AccessStepData{Text: "CD19 positive on biopsy."}, "qa1", "doc1", custody.AccessSubmitted, custody.StepLOAIssued},
		{custody.StepAccessDecide, "qa1", custody.AccessStepData{Text: "Meets criteria.", Approve: &yes}, "doc2", "coord", custody.AccessApproved, custody.StepAccessRespond},
		{custody.StepLOAIssued, "qa1", custody.AccessStepData{}, "nurse1", "coord", custody.AccessApproved, custody.StepAccessSubmit},
		{custody.StepINDAcknowledged, "doc2", custody.AccessStepData{Reference: "IND 123456"}, "qa1", "doc1", custody.AccessApproved, custody.StepAccessRespond},
		{custody.StepIRBApproved, "coord", custody.AccessStepData{Reference: "IRB-2026-77"}, "mfg1", "doc1", custody.AccessApproved, custody.StepAccessDecide},
	}
	for _, s := range steps {
		before := e.records()
		if _, err := e.access(r.ID, s.wrongRole, s.step, s.data); !errors.Is(err, custody.ErrForbidden) && !errors.Is(err, custody.ErrNotFound) {
			t.Errorf("%s by %s (wrong role): %v, want forbidden", s.step, s.wrongRole, err)
		}
		if s.wrongSite != "" {
			if _, err := e.access(r.ID, s.wrongSite, s.step, s.data); !errors.Is(err, custody.ErrForbidden) && !errors.Is(err, custody.ErrNotFound) {
				t.Errorf("%s by %s (other site): %v, want refused", s.step, s.wrongSite, err)
			}
		}
		if _, err := e.access(r.ID, s.by, s.outOfOrder, custody.AccessStepData{Text: "x", Approve: &yes}); err == nil {
			t.Errorf("%s accepted while the request is before %s", s.outOfOrder, s.step)
		}
		if e.records() != before {
			t.Fatalf("a refused %s wrote a record", s.step)
		}
		got := e.mustAccess(r.ID, s.by, s.step, s.data)
		if got.State != s.want {
			t.Fatalf("after %s: %s, want %s", s.step, got.State, s.want)
		}
		r = got
	}
	if len(r.Missing) != 0 || len(r.Events) != 7 {
		t.Fatalf("missing %v, %d events", r.Missing, len(r.Events))
	}
	// Withdrawal is the physician's; a withdrawn request takes nothing.
	if _, err := e.access(r.ID, "qa1", custody.StepAccessWithdraw, custody.AccessStepData{Text: "no"}); !errors.Is(err, custody.ErrForbidden) {
		t.Errorf("withdraw by QA: %v", err)
	}
	w := e.mustAccess(r.ID, "doc2", custody.StepAccessWithdraw, custody.AccessStepData{Text: "patient deteriorated"})
	if w.State != custody.AccessWithdrawn {
		t.Fatalf("after withdraw: %s", w.State)
	}
	if _, err := e.access(r.ID, "doc2", custody.StepIRBWaived, custody.AccessStepData{}); !errors.Is(err, custody.ErrConflict) {
		t.Errorf("step after withdraw: %v", err)
	}
	// A declined request takes no more records.
	d := e.submitAccess(custody.UrgencyStandard)
	if got := e.mustAccess(d.ID, "qa1", custody.StepAccessDecide, custody.AccessStepData{Text: "Not eligible", Approve: &no}); got.State != custody.AccessDeclined || got.Reason != "Not eligible" {
		t.Fatalf("declined: %+v", got.State)
	}
	if _, err := e.access(d.ID, "qa1", custody.StepLOAIssued, custody.AccessStepData{}); !errors.Is(err, custody.ErrConflict) {
		t.Errorf("loa after decline: %v", err)
	}
	// Other sites' people do not see the request.
	if _, err := e.svc.AccessRequest(e.ctx, e.users["doc1"], d.ID); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("doc1 read another site's request: %v", err)
	}
	page, err := e.svc.AccessRequests(e.ctx, e.users["qa1"], custody.AccessDeclined, "", 10)
	if err != nil || len(page.Requests) != 1 || page.Requests[0].ID != d.ID {
		t.Fatalf("declined list: %+v %v", page, err)
	}
}

// TestAccessRequirementsBlockEnroll: an approved request cannot be
// enrolled until its jurisdiction's steps are recorded; then the chain
// and the request name each other, and the ledger verifies.
func TestAccessRequirementsBlockEnroll(t *testing.T) {
	e := accessEnv(t)
	r := e.submitAccess(custody.UrgencyStandard)
	e.mustAccess(r.ID, "qa1", custody.StepAccessDecide, custody.AccessStepData{Text: "ok", Approve: &yes})
	enroll := func() (*custody.AccessRequest, *custody.Chain, error) {
		return e.svc.EnrollAccess(e.ctx, e.users["coord"], r.ID, custody.AccessEnrollment{Patient: patient, CollectionSite: "PAR-1"})
	}
	for _, st := range []struct {
		step custody.Step
		by   string
		ref  string
	}{{custody.StepLOAIssued, "qa1", ""}, {custody.StepINDAcknowledged, "doc2", "IND 1"}, {custody.StepIRBWaived, "doc2", ""}} {
		before := e.records()
		_, _, err := enroll()
		var re *custody.RequirementsError
		if !errors.Is(err, custody.ErrRequirementsUnmet) || !errors.As(err, &re) || !slices.Contains(re.Missing[0], st.step) {
			t.Fatalf("enroll before %s: %v", st.step, err)
		}
		if e.records() != before {
			t.Fatal("a refused enroll wrote a record")
		}
		e.mustAccess(r.ID, st.by, st.step, custody.AccessStepData{Reference: st.ref})
	}
	// A physician may not enroll: coordinators do.
	if _, _, err := e.svc.EnrollAccess(e.ctx, e.users["doc2"], r.ID, custody.AccessEnrollment{Patient: patient, CollectionSite: "PAR-1"}); !errors.Is(err, custody.ErrForbidden) {
		t.Fatalf("enroll by physician: %v", err)
	}
	got, c, err := enroll()
	if err != nil {
		t.Fatal(err)
	}
	if got.State != custody.AccessEnrolled || got.COI != c.COI {
		t.Fatalf("request after enroll: %s %s, chain %s", got.State, got.COI, c.COI)
	}
	var ed custody.EnrollData
	if err := json.Unmarshal(c.Records[0].Data, &ed); err != nil || ed.Request != r.ID {
		t.Fatalf("enroll record names request %q (%v), want %s", ed.Request, err, r.ID)
	}
	if _, _, err := enroll(); !errors.Is(err, custody.ErrConflict) {
		t.Fatalf("second enroll: %v", err)
	}
	rep, err := e.svc.VerifyLedger(e.ctx)
	if err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	ci, _ := e.store.Chain(e.ctx, r.ID)
	if rep, err := custody.VerifyChain(e.ctx, e.store, ci); err != nil || !rep.OK {
		t.Fatalf("verify request chain (default journey): %+v %v", rep, err)
	}
	if rep, err := e.svc.VerifyChain(e.ctx, ci.COI); err != nil || !rep.OK {
		t.Fatalf("verify request chain: %+v %v", rep, err)
	}
}

// TestAccessEmergencyDeadlines: an emergency request is enrolled on the
// emergency authorisation; its IRB report is due 5 working days later,
// listed as due, then overdue, then gone once recorded.
func TestAccessEmergencyDeadlines(t *testing.T) {
	e := accessEnv(t)
	// 2026-11-23 is a Monday; move to Thursday so the weekend counts.
	e.now = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	r := e.submitAccess(custody.UrgencyEmergency)
	e.mustAccess(r.ID, "qa1", custody.StepAccessDecide, custody.AccessStepData{Text: "emergency", Approve: &yes})
	if _, err := e.access(r.ID, "doc2", custody.StepIRBReported, custody.AccessStepData{}); !errors.Is(err, custody.ErrConflict) {
		t.Fatalf("irb report before authorisation: %v", err)
	}
	e.mustAccess(r.ID, "qa1", custody.StepLOAIssued, custody.AccessStepData{})
	got := e.mustAccess(r.ID, "doc2", custody.StepEmergencyAuthorise, custody.AccessStepData{Reference: "FDA phone auth 42"})
	at := got.Done[custody.StepEmergencyAuthorise]
	if len(got.Missing) != 0 || len(got.Deadlines) != 1 {
		t.Fatalf("missing %v deadlines %v", got.Missing, got.Deadlines)
	}
	dl := got.Deadlines[0]
	// Thursday + 5 working days: Fri, Mon, Tue, Wed, Thu.
	if want := at.AddDate(0, 0, 7); dl.Step != custody.StepIRBReported || !dl.Due.Equal(want) || dl.Status != "due" {
		t.Fatalf("deadline %+v, want irb-reported due %s", dl, want)
	}
	_, _, err := e.svc.EnrollAccess(e.ctx, e.users["coord"], r.ID, custody.AccessEnrollment{Patient: patient, CollectionSite: "PAR-1"})
	if err != nil {
		t.Fatal(err)
	}
	e.now = at.AddDate(0, 0, 8)
	later, err := e.svc.AccessRequest(e.ctx, e.users["doc2"], r.ID)
	if err != nil || len(later.Deadlines) != 1 || later.Deadlines[0].Status != "overdue" {
		t.Fatalf("after 8 days: %+v %v", later.Deadlines, err)
	}
	done := e.mustAccess(r.ID, "doc2", custody.StepIRBReported, custody.AccessStepData{Reference: "IRB told"})
	if len(done.Deadlines) != 0 || done.State != custody.AccessEnrolled {
		t.Fatalf("after the report: %s %+v", done.State, done.Deadlines)
	}
}

// TestAccessRefusesPHI: labelled identifiers in a request's text are
// refused with nothing written, and enrollment refuses a request whose
// text names the patient being enrolled.
func TestAccessRefusesPHI(t *testing.T) {
	e := accessEnv(t)
	before := e.records()
	for _, text := range []string{"MRN 0012345, relapsed", "Date of birth 1970-01-02", "DOB: 02/01/1970", "ssn 123-45-6789"} {
		s := submission(custody.UrgencyStandard)
		s.ClinicalSummary = text
		if _, err := e.svc.SubmitAccess(e.ctx, e.users["doc2"], s, nil); !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("%q: %v", text, err)
		}
	}
	if e.records() != before {
		t.Fatal("refused submissions wrote records")
	}
	r := e.submitAccess(custody.UrgencyEmergency)
	e.mustAccess(r.ID, "qa1", custody.StepAccessDecide, custody.AccessStepData{Text: "ok", Approve: &yes})
	e.mustAccess(r.ID, "qa1", custody.StepLOAIssued, custody.AccessStepData{})
	e.mustAccess(r.ID, "doc2", custody.StepEmergencyAuthorise, custody.AccessStepData{Reference: "call with Jane Q Doe family"})
	before = e.records()
	if _, _, err := e.svc.EnrollAccess(e.ctx, e.users["coord"], r.ID, custody.AccessEnrollment{Patient: patient, CollectionSite: "PAR-1"}); !errors.Is(err, custody.ErrConflict) {
		t.Fatalf("enroll of a request naming the patient: %v", err)
	}
	if e.records() != before {
		t.Fatal("refused enroll wrote records")
	}
}

// TestJurisdictionRegistry: an administrator adds a jurisdiction, with
// its audit entry; requests name it and follow its requirements.
func TestJurisdictionRegistry(t *testing.T) {
	e := accessEnv(t)
	j := custody.Jurisdiction{Code: "UK-MHRA-NP", Name: "UK named patient", Required: [][]custody.Step{{custody.StepLOAIssued}}}
	if _, err := e.svc.RegisterJurisdiction(e.ctx, e.users["qa1"], j, "programme opens in the UK"); !errors.Is(err, custody.ErrForbidden) {
		t.Fatalf("QA registers: %v", err)
	}
	bad := j
	bad.Required = [][]custody.Step{{custody.StepCollect}}
	if _, err := e.svc.RegisterJurisdiction(e.ctx, e.users["admin1"], bad, "x"); !errors.Is(err, custody.ErrInvalid) {
		t.Fatalf("non-regulatory step: %v", err)
	}
	if _, err := e.svc.RegisterJurisdiction(e.ctx, e.users["admin1"], j, "programme opens in the UK"); err != nil {
		t.Fatal(err)
	}
	list, err := e.svc.Jurisdictions(e.ctx, e.users["admin1"], "", 10)
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %+v %v", list, err)
	}
	trail, err := e.svc.AuditTrail(e.ctx, e.users["admin1"], custody.AuditFilter{})
	if err != nil || !slices.ContainsFunc(trail, func(a custody.AuditEntry) bool { return a.Code == "UK-MHRA-NP" }) {
		t.Fatalf("audit trail lacks the jurisdiction: %v", err)
	}
	s := submission(custody.UrgencyStandard)
	s.Jurisdiction = "UK-MHRA-NP"
	r, err := e.svc.SubmitAccess(e.ctx, e.users["doc2"], s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Missing) != 1 {
		t.Fatalf("missing %v", r.Missing)
	}
	s.Jurisdiction = "NOWHERE"
	if _, err := e.svc.SubmitAccess(e.ctx, e.users["doc2"], s, nil); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("unknown jurisdiction: %v", err)
	}
}
