package custody_test

import (
	"errors"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// TestAccessTextParagraphs: a request's long free text keeps its line
// breaks (a form's textarea sends them); other control characters, and
// line breaks in one-line fields, are refused with nothing written.
func TestAccessTextParagraphs(t *testing.T) {
	e := accessEnv(t)
	for _, c := range []struct {
		name  string
		edit  func(*custody.AccessSubmission)
		field string // "" accepted
	}{
		{"paragraphs", func(s *custody.AccessSubmission) {
			s.ClinicalSummary, s.TreatmentPlan = "Relapse after transplant.\n\nECOG 1.", "Lymphodepletion\tday -5.\nInfusion day 0."
		}, ""},
		{"carriage return", func(s *custody.AccessSubmission) { s.ClinicalSummary = "Relapse.\r\nECOG 1." }, "clinical_summary"},
		{"nul", func(s *custody.AccessSubmission) { s.TreatmentPlan = "Infusion\x00" }, "treatment_plan"},
		{"line break in the indication", func(s *custody.AccessSubmission) { s.Indication = "DLBCL\nrelapsed" }, "indication"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sub := submission(custody.UrgencyStandard)
			c.edit(&sub)
			before, _ := e.store.Chains(e.ctx, custody.AccessSubmitted)
			r, err := e.svc.SubmitAccess(e.ctx, e.users["doc2"], sub, nil)
			if c.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if r.Submission.ClinicalSummary != sub.ClinicalSummary || r.Submission.TreatmentPlan != sub.TreatmentPlan {
					t.Errorf("text changed: %q %q", r.Submission.ClinicalSummary, r.Submission.TreatmentPlan)
				}
				return
			}
			if !errors.Is(err, custody.ErrInvalid) || custody.ErrorField(err) != c.field {
				t.Fatalf("got %v (field %q), want invalid %s", err, custody.ErrorField(err), c.field)
			}
			if after, _ := e.store.Chains(e.ctx, custody.AccessSubmitted); len(after) != len(before) {
				t.Errorf("a refused request was written")
			}
		})
	}
	r := e.submitAccess(custody.UrgencyStandard)
	e.mustAccess(r.ID, "qa1", custody.StepAccessRequestInfo, custody.AccessStepData{Text: "CD19 status?\nLast PET?"})
	if _, err := e.access(r.ID, "doc2", custody.StepAccessRespond, custody.AccessStepData{Text: "Positive\x07"}); !errors.Is(err, custody.ErrInvalid) {
		t.Errorf("a bell in an answer: %v", err)
	}
}

// TestRequestClockAndRequirements: the screen helpers say what the
// domain's own rules say: the clock against the configured limits, the
// requirements of the urgency's path and the journey row of a step.
func TestRequestClockAndRequirements(t *testing.T) {
	e := accessEnv(t)
	r := e.submitAccess(custody.UrgencyEmergency)
	e.mu.Lock()
	e.now = e.now.Add(3 * time.Hour)
	e.mu.Unlock()
	if r, _ = e.svc.AccessRequest(e.ctx, e.users["doc2"], r.ID); r == nil {
		t.Fatal("request not read")
	}
	cl := e.svc.RequestClock(r)
	// The test clock moves a minute at each reading.
	if cl.Limit != custody.DefaultAccessSLA.Emergency || cl.Elapsed < 3*time.Hour || cl.Elapsed > 3*time.Hour+10*time.Minute || cl.Breached {
		t.Errorf("clock %+v", cl)
	}
	j, err := e.svc.Jurisdiction(e.ctx, custody.USFDASinglePatient)
	if err != nil {
		t.Fatal(err)
	}
	if got := j.RequirementsOf(r); len(got) != 2 || got[1][0] != custody.StepEmergencyAuthorise {
		t.Errorf("emergency requirements %v", got)
	}
	if _, err := custody.AccessRule(r.State, custody.StepLOAIssued); !errors.Is(err, custody.ErrConflict) {
		t.Errorf("loa-issued before the decision: %v", err)
	}
	if tr, err := custody.AccessRule(custody.AccessApproved, custody.StepLOAIssued); err != nil || !tr.MaySign(custody.RoleQA) || tr.MaySign(custody.RolePhysician) {
		t.Errorf("loa-issued when approved: %+v %v", tr, err)
	}
}

// TestPhysicianReadsRegistryEntries: a physician reads the registries'
// entries (the request form's jurisdictions, products and sites), and
// nothing more of what registry readers see (the waiting list, capacity).
func TestPhysicianReadsRegistryEntries(t *testing.T) {
	e := accessEnv(t)
	doc := e.users["doc2"]
	if js, err := e.svc.Jurisdictions(e.ctx, doc, "", 0); err != nil || len(js) == 0 {
		t.Errorf("jurisdictions: %v %v", js, err)
	}
	if ss, err := e.svc.Sites(e.ctx, doc, "", 0); err != nil || len(ss) == 0 {
		t.Errorf("sites: %v %v", ss, err)
	}
	if _, err := e.svc.Product(e.ctx, doc, "CART-19"); err != nil {
		t.Errorf("product: %v", err)
	}
	if _, _, err := e.svc.Waitlist(e.ctx, doc, "", 0, 10); !errors.Is(err, custody.ErrForbidden) {
		t.Errorf("waiting list: %v, want forbidden", err)
	}
	if _, err := e.svc.Sites(e.ctx, e.users["nurse1"], "", 0); err != nil {
		t.Errorf("a nurse's sites: %v", err)
	}
}
