package report_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/labels/report"
)

const requestID custody.COI = "EAA999926000007"

// exceptionalJourney is a chain enrolled from an expanded-access request,
// manufactured, recorded out of specification and released by an
// exceptional release, and the request's history.
func exceptionalJourney(t testing.TB) (*custody.Chain, *custody.AccessRequest) {
	b := newChainBuilder(t)
	b.people["doc2"] = custody.User{ID: "doc2", Name: "Dr Hana Treat", Role: custody.RolePhysician}
	b.people["md1"] = custody.User{ID: "md1", Name: "Dr Max Director", Role: custody.RoleMedicalDirector}
	s := b.sites
	b.add(custody.StepEnroll, day(20, 8, 0), s.Collection, map[string]any{"product": "Autologous anti-CD19 CAR-T cells",
		"sites": s, "facility": "A9999", "patient_commitment": "5f1e0c4a9d3b2e7f60718293a4b5c6d7e8f90123456789abcdef0123456789ab",
		"request": string(requestID)}, signer{"coord", custody.MeaningAuthored})
	b.add(custody.StepCollect, day(20, 10, 30), s.Collection, map[string]any{"din": "A999926123456", "volume_ml": 212.5, "bags": 1,
		"started_at": "2026-11-20T08:40:00Z", "ended_at": "2026-11-20T10:10:00Z"},
		signer{"nurse1", custody.MeaningPerformed}, signer{"nurse2", custody.MeaningVerified})
	b.add(custody.StepShip, day(20, 11, 0), s.Collection, map[string]any{"shipper": "SHP-0042", "profile": "refrigerated"},
		signer{"nurse1", custody.MeaningHandedOver}, signer{"courier1", custody.MeaningReceived})
	b.add(custody.StepReceive, day(21, 9, 0), s.Manufacturing, map[string]any{"seal_intact": true}, signer{"mfg1", custody.MeaningReceived})
	b.add(custody.StepManufacture, day(28, 15, 0), s.Manufacturing, map[string]any{"final_bags": 1}, signer{"mfg1", custody.MeaningPerformed})
	b.add(custody.StepOOS, day(29, 9, 0), s.Manufacturing, map[string]any{"attributes": []string{"viability", "cell-count"},
		"reason": "Viability 62% against a limit of 70%."}, signer{"qa1", custody.MeaningAuthored})
	b.add(custody.StepExceptionalReleaseRequest, day(29, 12, 0), s.Treatment, map[string]any{
		"reason": "No alternative therapy; benefit outweighs the risk."}, signer{"doc2", custody.MeaningAuthored})
	b.add(custody.StepConsent, day(29, 15, 0), s.Treatment, map[string]any{"obtained_by": "treating physician",
		"obtained_at": "2026-11-29T14:00:00Z", "document_hash": strings.Repeat("ab", 32)}, signer{"doc2", custody.MeaningAuthored})
	b.add(custody.StepExceptionalRelease, day(30, 10, 0), s.Manufacturing, map[string]any{"statement": "Released out of specification for this patient."},
		signer{"qa1", custody.MeaningApproved}, signer{"md1", custody.MeaningApproved})
	c := b.chain()

	yes := true
	at := func(d, h int) time.Time { return day(d, h, 0) }
	sg := func(id string, m custody.Meaning, t time.Time) []custody.Signature {
		u := b.people[id]
		return []custody.Signature{{User: u.ID, Name: u.Name, Role: u.Role, Meaning: m, Time: custody.FormatTime(t), Method: "session"}}
	}
	loa := strings.Repeat("0123456789abcdef", 4)
	a := &custody.AccessRequest{ID: requestID, State: custody.AccessEnrolled, COI: c.COI,
		Submission: custody.AccessSubmission{Urgency: custody.UrgencyEmergency, Indication: "relapsed DLBCL after two lines",
			ClinicalSummary: "Relapse 3 months after autologous transplant; ECOG 1.", TreatmentPlan: "Lymphodepletion then a single infusion.",
			Jurisdiction: custody.USFDASinglePatient, Product: "CART-19", TreatmentSite: s.Treatment, ManufacturingSite: s.Manufacturing},
		Submitted: at(18, 8), Decided: at(18, 20), Reason: "Meets criteria.",
		Events: []custody.AccessEvent{
			{Seq: 40, Step: custody.StepAccessSubmit, Time: at(18, 8), Signatures: sg("doc2", custody.MeaningAuthored, at(18, 8))},
			{Seq: 41, Step: custody.StepAccessRequestInfo, Time: at(18, 10), Data: custody.AccessStepData{Text: "Latest CD19 status?"}, Signatures: sg("qa1", custody.MeaningAuthored, at(18, 10))},
			{Seq: 42, Step: custody.StepAccessRespond, Time: at(18, 12), Data: custody.AccessStepData{Text: "CD19 positive on biopsy."}, Signatures: sg("doc2", custody.MeaningAuthored, at(18, 12))},
			{Seq: 43, Step: custody.StepAccessDecide, Time: at(18, 20), Data: custody.AccessStepData{Text: "Meets criteria.", Approve: &yes}, Signatures: sg("qa1", custody.MeaningApproved, at(18, 20))},
			{Seq: 44, Step: custody.StepLOAIssued, Time: at(18, 21), Data: custody.AccessStepData{Documents: []string{loa}}, Signatures: sg("qa1", custody.MeaningAuthored, at(18, 21))},
			{Seq: 45, Step: custody.StepEmergencyAuthorise, Time: at(18, 22), Data: custody.AccessStepData{Reference: "FDA EA 2026-0042"}, Signatures: sg("doc2", custody.MeaningAuthored, at(18, 22))},
			{Seq: 46, Step: custody.StepAccessEnroll, Time: at(19, 9), Data: custody.AccessStepData{COI: c.COI}, Signatures: sg("coord", custody.MeaningAuthored, at(19, 9))},
		},
		Deadlines: []custody.Deadline{{Step: custody.StepIRBReported, Due: at(25, 22), Status: "overdue"}},
	}
	return c, a
}

// TestExceptionalReleaseAndRequestHistory: the report of a chain enrolled
// from an expanded-access request and released by an exceptional release
// prints the oos record with its failed attributes, who signed the
// release (QA and the medical director), the request it rests on, and the
// request's whole history with its document hashes and deadlines; the
// patient stays initials and year of birth.
func TestExceptionalReleaseAndRequestHistory(t *testing.T) {
	c, a := exceptionalJourney(t)
	in := input(c, nil, berlin(t))
	in.Access = a
	pdf := render(t, in)
	if os.Getenv("COID_KEEP_REPORT") != "" {
		_ = os.WriteFile(os.Getenv("COID_KEEP_REPORT"), pdf, 0o644)
	}
	text := squash(pdfText(t, pdf))
	for _, want := range []string{
		"Out of specification and exceptional release",
		"Failed attributes viability, cell-count",
		"OUT OF SPECIFICATION: failed viability, cell-count. Reason: Viability 62% against a limit of 70%.",
		"Physician's request record",
		"by Dr Hana Treat. Reason: No alternative therapy",
		"Informed consent record",
		"consent document SHA-256 " + strings.Repeat("ab", 32),
		"QA signature Eve Assurance (qa1, qa), approved",
		"Director's signature Dr Max Director (md1, medical-director), approved",
		"Expanded-access request " + string(requestID) + " (its history below)",
		"EXCEPTIONAL RELEASE of the out-of-specification product: Released out of specification for this patient.",
		"Expanded-access request " + string(requestID) + " (7 records)",
		string(requestID) + "; names this chain back (enroll record)",
		"Urgency emergency",
		"Jurisdiction " + custody.USFDASinglePatient,
		"Indication relapsed DLBCL after two lines",
		"request-info", "Latest CD19 status?", "respond", "CD19 positive on biopsy.",
		"APPROVED: Meets criteria.",
		"loa-issued", "Document SHA-256",
		"emergency-authorised", "Reference: FDA EA 2026-0042",
		"Became chain " + string(c.COI),
		"Deadline irb-reported OVERDUE, due",
		"initials JQD, born 1970",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// The document hash is printed whole, perhaps wrapped.
	if !strings.Contains(strings.ReplaceAll(text, " ", ""), strings.Repeat("0123456789abcdef", 4)) {
		t.Error("report lacks the LOA's full document hash")
	}

	// Without the request (a source that does not know it), the history
	// is left out and the oos section says which request it rests on.
	in.Access = nil
	text = squash(pdfText(t, render(t, in)))
	if strings.Contains(text, "(7 records)") || !strings.Contains(text, "Failed attributes viability") {
		t.Error("without the request: history printed, or the oos section missing")
	}
}

// TestOldReportHasNoAccessSections: a chain enrolled without a request and
// never out of specification prints neither section (its bytes are pinned
// by TestGolden).
func TestOldReportHasNoAccessSections(t *testing.T) {
	c, tele := fullJourney(t)
	text := squash(pdfText(t, render(t, input(c, tele, berlin(t)))))
	for _, no := range []string{"Out of specification", "Expanded-access request", "EXCEPTIONAL"} {
		if strings.Contains(text, no) {
			t.Errorf("report of a chain without a request prints %q", no)
		}
	}
}

// accessFake is fakeSource that knows the chain's request.
type accessFake struct {
	*fakeSource
	a *custody.AccessRequest
}

func (f accessFake) ChainAccessRequest(_ context.Context, c *custody.Chain) (*custody.AccessRequest, error) {
	if custody.RequestOf(c) != f.a.ID {
		return nil, nil
	}
	return f.a, nil
}

var _ report.AccessSource = accessFake{}

// TestBuildAccess: Build asks a source that knows requests for the
// chain's, and leaves it out for a chain enrolled without one.
func TestBuildAccess(t *testing.T) {
	c, a := exceptionalJourney(t)
	qa := custody.User{ID: "qa1", Role: custody.RoleQA}
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	src := accessFake{fakeSource: &fakeSource{c: c, tele: []report.Telemetry{{}}, chainOK: true}, a: a}
	in, err := report.Build(context.Background(), src, c.COI, qa, at)
	if err != nil || in.Access != a {
		t.Fatalf("Build: access %v, %v", in.Access, err)
	}
	old, tele := fullJourney(t)
	in, err = report.Build(context.Background(), accessFake{fakeSource: &fakeSource{c: old, tele: tele, chainOK: true}, a: a}, old.COI, qa, at)
	if err != nil || in.Access != nil {
		t.Fatalf("Build of a chain without a request: access %v, %v", in.Access, err)
	}
}
