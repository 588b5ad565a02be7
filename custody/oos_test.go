package custody_test

import (
	"errors"
	"testing"

	"github.com/coid-project/coid/custody"
)

// oosEnv is accessEnv with a medical director at the manufacturing site
// and a chain enrolled from an approved request, manufactured.
func oosEnv(t *testing.T) (*env, custody.COI) {
	t.Helper()
	e := accessEnv(t)
	if _, err := e.svc.AddUserIn(e.ctx, "md1", "Dr Director", custody.RoleMedicalDirector, password("md1"), "CELLCO", []string{"MFG-1"}); err != nil {
		t.Fatal(err)
	}
	e.users["md1"], _ = e.store.User(e.ctx, "md1")
	r := e.submitAccess(custody.UrgencyStandard)
	e.mustAccess(r.ID, "qa1", custody.StepAccessDecide, custody.AccessStepData{Text: "ok", Approve: &yes})
	e.mustAccess(r.ID, "qa1", custody.StepLOAIssued, custody.AccessStepData{})
	e.mustAccess(r.ID, "doc2", custody.StepINDAcknowledged, custody.AccessStepData{Reference: "IND 1"})
	e.mustAccess(r.ID, "doc2", custody.StepIRBWaived, custody.AccessStepData{})
	_, c, err := e.svc.EnrollAccess(e.ctx, e.users["coord"], r.ID, custody.AccessEnrollment{Patient: patient, CollectionSite: "PAR-1"})
	if err != nil {
		t.Fatal(err)
	}
	e.advance(c.COI, custody.StateManufactured)
	return e, c.COI
}

var (
	oosData      = map[string]any{"attributes": []string{"viability"}, "reason": "Viability 62% against a limit of 70%."}
	erRequest    = map[string]any{"reason": "No alternative therapy; benefit outweighs the risk of lower viability."}
	consentData  = map[string]any{"obtained_by": "treating physician", "obtained_at": "2026-11-22T10:00:00Z"}
	erData       = map[string]any{"statement": "Released out of specification for this patient."}
	erSignatures = []custody.SignatureRequest{sig("qa1", custody.MeaningApproved), sig("md1", custody.MeaningApproved)}
)

// TestOOSRefusesRelease: after QA's oos record the standard release is
// refused with ErrOutOfSpecification and nothing is written.
func TestOOSRefusesRelease(t *testing.T) {
	e, coi := oosEnv(t)
	e.must(coi, "qa1", custody.StepOOS, oosData, sig("qa1", custody.MeaningAuthored))
	before := e.records()
	_, err := e.step(coi, "qa1", custody.StepRelease, map[string]any{}, sig("qa1", custody.MeaningApproved))
	if !errors.Is(err, custody.ErrOutOfSpecification) {
		t.Fatalf("release after oos: %v", err)
	}
	if e.records() != before {
		t.Fatal("a refused release wrote a record")
	}
	c, _ := e.svc.Chain(e.ctx, coi)
	x := custody.OOSOf(c)
	if x == nil || len(x.Attributes) != 1 || x.Attributes[0] != "viability" || x.Released != 0 {
		t.Fatalf("OOSOf: %+v", x)
	}
}

// TestOOSData: bad oos, request and consent data is refused with nothing
// written; so are the wrong role and a physician of another site.
func TestOOSData(t *testing.T) {
	e, coi := oosEnv(t)
	for _, tc := range []struct {
		name  string
		actor string
		step  custody.Step
		data  map[string]any
		sig   custody.SignatureRequest
		want  error
	}{
		{"no attributes", "qa1", custody.StepOOS, map[string]any{"attributes": []string{}, "reason": "x"}, sig("qa1", custody.MeaningAuthored), custody.ErrInvalid},
		{"unknown attribute", "qa1", custody.StepOOS, map[string]any{"attributes": []string{"colour"}, "reason": "x"}, sig("qa1", custody.MeaningAuthored), custody.ErrInvalid},
		{"PHI in reason", "qa1", custody.StepOOS, map[string]any{"attributes": []string{"potency"}, "reason": "patient MRN 0012345 low"}, sig("qa1", custody.MeaningAuthored), custody.ErrInvalid},
		{"no reason", "qa1", custody.StepOOS, map[string]any{"attributes": []string{"potency"}}, sig("qa1", custody.MeaningAuthored), custody.ErrInvalid},
		{"oos by manufacturing", "mfg1", custody.StepOOS, oosData, sig("mfg1", custody.MeaningAuthored), custody.ErrForbidden},
		{"request before oos", "doc2", custody.StepExceptionalReleaseRequest, erRequest, sig("doc2", custody.MeaningAuthored), custody.ErrConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.records()
			if _, err := e.step(coi, tc.actor, tc.step, tc.data, tc.sig); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if e.records() != before {
				t.Fatal("a refused record was written")
			}
		})
	}
	e.must(coi, "qa1", custody.StepOOS, oosData, sig("qa1", custody.MeaningAuthored))
	for _, tc := range []struct {
		name  string
		actor string
		step  custody.Step
		data  map[string]any
		want  error
	}{
		{"consent by nurse", "nurse1", custody.StepConsent, consentData, custody.ErrForbidden},
		{"consent by physician of another site", "doc1", custody.StepConsent, consentData, custody.ErrForbidden},
		{"request by physician of another site", "doc1", custody.StepExceptionalReleaseRequest, erRequest, custody.ErrForbidden},
		{"consent in the future", "doc2", custody.StepConsent, map[string]any{"obtained_by": "x", "obtained_at": "2030-01-01T00:00:00Z"}, custody.ErrInvalid},
		{"consent bad hash", "doc2", custody.StepConsent, map[string]any{"obtained_by": "x", "obtained_at": "2026-11-22T10:00:00Z", "document_hash": "abc"}, custody.ErrInvalid},
		{"consent names patient", "doc2", custody.StepConsent, map[string]any{"obtained_by": "x", "obtained_at": "2026-11-22T10:00:00Z", "mrn": "MRN-0012345"}, custody.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.records()
			if _, err := e.step(coi, tc.actor, tc.step, tc.data, sig(tc.actor, custody.MeaningAuthored)); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if e.records() != before {
				t.Fatal("a refused record was written")
			}
		})
	}
}

// TestExceptionalRelease refuses an exceptional release for each missing
// element, naming it, with nothing written, and accepts it with all.
func TestExceptionalRelease(t *testing.T) {
	type setup func(e *env, coi custody.COI)
	oos := func(e *env, coi custody.COI) {
		e.must(coi, "qa1", custody.StepOOS, oosData, sig("qa1", custody.MeaningAuthored))
	}
	req := func(e *env, coi custody.COI) {
		e.must(coi, "doc2", custody.StepExceptionalReleaseRequest, erRequest, sig("doc2", custody.MeaningAuthored))
	}
	consent := func(e *env, coi custody.COI) {
		e.must(coi, "doc2", custody.StepConsent, consentData, sig("doc2", custody.MeaningAuthored))
	}
	for _, tc := range []struct {
		name     string
		noAccess bool
		steps    []setup
		sigs     []custody.SignatureRequest
		missing  custody.ReleaseElement
		want     error
	}{
		{name: "no oos record", steps: nil, sigs: erSignatures, missing: custody.ElementOOS},
		{name: "no expanded-access request", noAccess: true, steps: []setup{oos, req, consent}, sigs: erSignatures, missing: custody.ElementAccessApproved},
		{name: "no physician request", steps: []setup{oos, consent}, sigs: erSignatures, missing: custody.ElementPhysicianRequest},
		{name: "no consent", steps: []setup{oos, req}, sigs: erSignatures, missing: custody.ElementConsent},
		{name: "QA only", steps: []setup{oos, req, consent}, sigs: erSignatures[:1], missing: custody.ElementSignatures},
		{name: "QA twice", steps: []setup{oos, req, consent}, sigs: []custody.SignatureRequest{sig("qa1", custody.MeaningApproved), sig("qa1", custody.MeaningApproved)}, want: custody.ErrForbidden},
		{name: "director replaced by manufacturing", steps: []setup{oos, req, consent}, sigs: []custody.SignatureRequest{sig("qa1", custody.MeaningApproved), sig("mfg1", custody.MeaningApproved)}, want: custody.ErrForbidden},
		{name: "all present", steps: []setup{oos, req, consent}, sigs: erSignatures},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, coi := oosEnv(t)
			if tc.noAccess {
				coi = e.enrollNet()
				e.advance(coi, custody.StateManufactured)
			}
			for _, s := range tc.steps {
				s(e, coi)
			}
			before := e.records()
			_, err := e.step(coi, "qa1", custody.StepExceptionalRelease, erData, tc.sigs...)
			if tc.missing == "" && tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				c, _ := e.svc.Chain(e.ctx, coi)
				x := custody.OOSOf(c)
				if c.State != custody.StateReleased || x == nil || x.Released == 0 || len(x.Signatures) != 2 {
					t.Fatalf("after exceptional release: %s %+v", c.State, x)
				}
				if rep, err := e.svc.VerifyLedger(e.ctx); err != nil || !rep.OK {
					t.Fatalf("verify: %+v %v", rep, err)
				}
				return
			}
			if tc.missing != "" {
				var xe *custody.ExceptionalReleaseError
				if !errors.Is(err, custody.ErrExceptionalReleaseIncomplete) || !errors.As(err, &xe) || xe.Missing != tc.missing {
					t.Fatalf("got %v, want missing %s", err, tc.missing)
				}
			} else if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if e.records() != before {
				t.Fatal("a refused exceptional release wrote a record")
			}
		})
	}
}

// TestExceptionalReleaseLabelNotice: the final-product labels of a product
// released by an exceptional release carry the notice; before that (and
// an apheresis bag's label always) they carry none.
func TestExceptionalReleaseLabelNotice(t *testing.T) {
	e, coi := oosEnv(t)
	fp := custody.BagID{COI: coi, Kind: custody.BagFinalProduct, N: 1}
	aph := custody.BagID{COI: coi, Kind: custody.BagApheresis, N: 1}
	notice := func(bag custody.BagID) string {
		t.Helper()
		l, err := e.svc.LabelContent(e.ctx, e.users["qa1"], bag)
		if err != nil {
			t.Fatal(err)
		}
		return l.Notice
	}
	if n := notice(fp); n != "" {
		t.Fatalf("before oos: notice %q", n)
	}
	e.must(coi, "qa1", custody.StepOOS, oosData, sig("qa1", custody.MeaningAuthored))
	e.must(coi, "doc2", custody.StepExceptionalReleaseRequest, erRequest, sig("doc2", custody.MeaningAuthored))
	e.must(coi, "doc2", custody.StepConsent, consentData, sig("doc2", custody.MeaningAuthored))
	if n := notice(fp); n != "" {
		t.Fatalf("out of specification, not yet released: notice %q", n)
	}
	e.must(coi, "qa1", custody.StepExceptionalRelease, erData, erSignatures...)
	if n := notice(fp); n != custody.LabelExceptionalRelease {
		t.Fatalf("after exceptional release: notice %q, want %q", n, custody.LabelExceptionalRelease)
	}
	if n := notice(aph); n != "" {
		t.Fatalf("apheresis bag: notice %q", n)
	}
	all, err := e.svc.ChainLabelContents(e.ctx, e.users["qa1"], coi)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range all {
		if want := l.Bag.Kind == custody.BagFinalProduct; (l.Notice == custody.LabelExceptionalRelease) != want {
			t.Errorf("%s: notice %q", l.Bag, l.Notice)
		}
	}
}
