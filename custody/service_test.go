package custody_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/coid-project/coid/custody"
)

func TestWholeJourney(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll()
	wantStates := []custody.State{custody.StateCollected, custody.StateToManufacturing, custody.StateAtManufacturing,
		custody.StateManufactured, custody.StateReleased, custody.StateToTreatment, custody.StateAtTreatment,
		custody.StateVerified, custody.StateInfused}
	for i, js := range journey(coi) {
		r := e.must(coi, "nurse1", js.step, js.data, js.sigs...)
		if r.Seq == 0 || r.Hash.IsZero() || r.ChainSeq != uint64(i+2) {
			t.Fatalf("%s: stored record not linked: %+v", js.step, r)
		}
		if len(r.Signatures) != len(js.sigs) {
			t.Fatalf("%s: %d signatures stored, want %d", js.step, len(r.Signatures), len(js.sigs))
		}
		for _, s := range r.Signatures {
			if s.Name != "Printed "+s.User || s.Method != "password" || s.Time == "" || s.Role == "" {
				t.Fatalf("%s: incomplete signature %+v", js.step, s)
			}
		}
		c, err := e.svc.Chain(e.ctx, coi)
		if err != nil {
			t.Fatal(err)
		}
		if c.State != wantStates[i] {
			t.Fatalf("after %s state = %s, want %s", js.step, c.State, wantStates[i])
		}
	}
	c, _ := e.svc.Chain(e.ctx, coi)
	if !slices.Equal(c.Next, []custody.Step{custody.StepFollowUp, custody.StepNote, custody.StepCorrection, custody.StepReview}) {
		t.Fatalf("next after infuse = %v", c.Next)
	}
	if len(c.Bags) != 4 || len(c.Legs) != 2 || c.Legs[0].Open || c.Legs[1].Open {
		t.Fatalf("bags %v legs %+v", c.Bags, c.Legs)
	}
	if c.Legs[0].From != "St Elsewhere Apheresis" || c.Legs[1].To != "St Elsewhere BMT" {
		t.Fatalf("legs sites %+v", c.Legs)
	}
	rep, err := e.svc.VerifyChain(e.ctx, coi)
	if err != nil || !rep.OK || rep.Records != 10 || rep.Head != c.Head {
		t.Fatalf("verify chain: %+v %v (head %s)", rep, err, c.Head)
	}
	// Notes and corrections may still follow; journey steps may not.
	e.must(coi, "nurse1", custody.StepNote, map[string]any{"text": "patient discharged"}, sig("nurse1", custody.MeaningAuthored))
	if _, err := e.step(coi, "nurse1", custody.StepCollect, journey(coi)[0].data, journey(coi)[0].sigs...); !errors.Is(err, custody.ErrConflict) {
		t.Fatalf("collect after infuse: %v", err)
	}
}

func TestRefusalsWriteNothing(t *testing.T) {
	type tc struct {
		name  string
		state custody.State
		step  custody.Step
		data  any
		sigs  []custody.SignatureRequest
		want  error
		msg   string
	}
	collect := journey("")[0]
	tests := []tc{
		{"out of order", custody.StateEnrolled, custody.StepManufacture, map[string]any{"final_bags": 1},
			[]custody.SignatureRequest{sig("mfg1", custody.MeaningPerformed)}, custody.ErrConflict, "not allowed while the chain is enrolled"},
		{"release before manufacture", custody.StateAtManufacturing, custody.StepRelease, map[string]any{},
			[]custody.SignatureRequest{sig("qa1", custody.MeaningApproved)}, custody.ErrConflict, ""},
		{"wrong role", custody.StateEnrolled, custody.StepCollect, collect.data,
			[]custody.SignatureRequest{sig("nurse1", custody.MeaningPerformed), sig("courier1", custody.MeaningVerified)}, custody.ErrForbidden, "needs nurse"},
		{"qa cannot manufacture", custody.StateAtManufacturing, custody.StepManufacture, map[string]any{"final_bags": 1},
			[]custody.SignatureRequest{sig("qa1", custody.MeaningPerformed)}, custody.ErrForbidden, ""},
		{"bad password", custody.StateEnrolled, custody.StepCollect, collect.data,
			[]custody.SignatureRequest{sig("nurse1", custody.MeaningPerformed), {User: "nurse2", Password: "wrong", Meaning: custody.MeaningVerified}},
			custody.ErrUnauthenticated, "not accepted"},
		{"unknown signer", custody.StateEnrolled, custody.StepCollect, collect.data,
			[]custody.SignatureRequest{sig("nurse1", custody.MeaningPerformed), {User: "ghost", Password: "whatever1", Meaning: custody.MeaningVerified}},
			custody.ErrUnauthenticated, "not accepted"},
		{"missing signature", custody.StateEnrolled, custody.StepCollect, collect.data,
			[]custody.SignatureRequest{sig("nurse1", custody.MeaningPerformed)}, custody.ErrInvalid, "needs 2 signature"},
		{"wrong meaning", custody.StateEnrolled, custody.StepCollect, collect.data,
			[]custody.SignatureRequest{sig("nurse1", custody.MeaningPerformed), sig("nurse2", custody.MeaningApproved)}, custody.ErrInvalid, "verified"},
		{"same user twice", custody.StateEnrolled, custody.StepCollect, collect.data,
			[]custody.SignatureRequest{sig("nurse1", custody.MeaningPerformed), sig("nurse1", custody.MeaningVerified)}, custody.ErrForbidden, "different user"},
		{"admin signs", custody.StateManufactured, custody.StepRelease, map[string]any{},
			[]custody.SignatureRequest{sig("admin1", custody.MeaningApproved)}, custody.ErrForbidden, "administrators"},
		{"system step", custody.StateEnrolled, custody.StepExcursion, map[string]any{}, nil, custody.ErrForbidden, "coid itself"},
		{"unknown step", custody.StateEnrolled, "teleport", map[string]any{}, nil, custody.ErrInvalid, "unknown step"},
		{"data not an object", custody.StateEnrolled, custody.StepCollect, []int{1},
			collect.sigs, custody.ErrInvalid, "JSON object"},
		{"DIN wrong K", custody.StateEnrolled, custody.StepCollect, map[string]any{"din": "A9999261234560", "volume_ml": 10, "bags": 1,
			"started_at": "2026-11-23T06:00:00Z", "ended_at": "2026-11-23T07:00:00Z"}, collect.sigs, custody.ErrInvalid, "check character"},
		{"no bags", custody.StateEnrolled, custody.StepCollect, map[string]any{"din": "A999926123456", "volume_ml": 10, "bags": 0,
			"started_at": "2026-11-23T06:00:00Z", "ended_at": "2026-11-23T07:00:00Z"}, collect.sigs, custody.ErrInvalid, "bags"},
		{"ended before started", custody.StateEnrolled, custody.StepCollect, map[string]any{"din": "A999926123456", "volume_ml": 10, "bags": 1,
			"started_at": "2026-11-23T07:00:00Z", "ended_at": "2026-11-23T06:00:00Z"}, collect.sigs, custody.ErrInvalid, "before started_at"},
		{"volume as string", custody.StateEnrolled, custody.StepCollect, map[string]any{"din": "A999926123456", "volume_ml": "ten", "bags": 1,
			"started_at": "2026-11-23T06:00:00Z", "ended_at": "2026-11-23T07:00:00Z"}, collect.sigs, custody.ErrInvalid, "volume_ml"},
		{"unknown profile", custody.StateCollected, custody.StepShip, map[string]any{"shipper": "SHP-1", "profile": "tepid"},
			[]custody.SignatureRequest{sig("nurse1", custody.MeaningHandedOver), sig("courier1", custody.MeaningReceived)}, custody.ErrInvalid, "profile"},
		{"receive without seal", custody.StateToManufacturing, custody.StepReceive, map[string]any{},
			[]custody.SignatureRequest{sig("mfg1", custody.MeaningReceived)}, custody.ErrInvalid, "seal_intact"},
		{"correction of unknown record", custody.StateEnrolled, custody.StepCorrection, map[string]any{"corrects": 999, "reason": "typo"},
			[]custody.SignatureRequest{sig("nurse1", custody.MeaningAuthored)}, custody.ErrInvalid, "not a record of this chain"},
		{"disposition without issue", custody.StateManufactured, custody.StepDisposition, map[string]any{"excursion": 3, "decision": "accept", "reason": "ok"},
			[]custody.SignatureRequest{sig("qa1", custody.MeaningApproved)}, custody.ErrInvalid, "not an excursion"},
		{"note without text", custody.StateEnrolled, custody.StepNote, map[string]any{"text": "  "},
			[]custody.SignatureRequest{sig("nurse1", custody.MeaningAuthored)}, custody.ErrInvalid, "text"},
		{"closed chain", custody.StateInfused, custody.StepCancel, map[string]any{"reason": "too late"},
			[]custody.SignatureRequest{sig("qa1", custody.MeaningApproved)}, custody.ErrConflict, "complete"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			coi := e.enroll()
			e.advance(coi, tt.state)
			before := e.records()
			_, err := e.step(coi, "nurse1", tt.step, tt.data, tt.sigs...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.msg != "" && !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %q, want it to mention %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), "pw-") {
				t.Fatalf("error echoes a password: %v", err)
			}
			if after := e.records(); after != before {
				t.Fatalf("refused step wrote %d record(s)", after-before)
			}
		})
	}
}

func TestUnknownChain(t *testing.T) {
	e := newEnv(t)
	if _, err := e.svc.Chain(e.ctx, "CHA999926999999"); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("Chain: %v", err)
	}
	if _, err := e.step("CHA999926999999", "nurse1", custody.StepNote, map[string]any{"text": "x"}, sig("nurse1", custody.MeaningAuthored)); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("Record: %v", err)
	}
}

func TestCancelledChainTakesNothing(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll()
	e.advance(coi, custody.StateCollected)
	e.must(coi, "coord", custody.StepCancel, map[string]any{"reason": "patient withdrew consent"}, sig("coord", custody.MeaningApproved))
	c, _ := e.svc.Chain(e.ctx, coi)
	if c.State != custody.StateCancelled || len(c.Next) != 0 {
		t.Fatalf("state %s next %v", c.State, c.Next)
	}
	for _, s := range []custody.Step{custody.StepNote, custody.StepShip} {
		if _, err := e.step(coi, "nurse1", s, map[string]any{"text": "x"}, sig("nurse1", custody.MeaningAuthored)); !errors.Is(err, custody.ErrConflict) {
			t.Fatalf("%s on cancelled chain: %v", s, err)
		}
	}
}

func TestFailedSignaturesLockTheUser(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll()
	bad := custody.SignatureRequest{User: "nurse1", Password: "nope-nope", Meaning: custody.MeaningAuthored}
	for i := 1; i <= custody.MaxFailedSignatures; i++ {
		if _, err := e.step(coi, "nurse1", custody.StepNote, map[string]any{"text": "x"}, bad); !errors.Is(err, custody.ErrUnauthenticated) {
			t.Fatalf("attempt %d: %v", i, err)
		}
		u, _ := e.store.User(e.ctx, "nurse1")
		if u.FailedSignatures != i {
			t.Fatalf("attempt %d counted as %d", i, u.FailedSignatures)
		}
	}
	_, err := e.step(coi, "nurse1", custody.StepNote, map[string]any{"text": "x"}, sig("nurse1", custody.MeaningAuthored))
	if !errors.Is(err, custody.ErrUnauthenticated) || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("locked user signed: %v", err)
	}
	if err := e.svc.Unlock(e.ctx, "nurse1"); err != nil {
		t.Fatal(err)
	}
	e.must(coi, "nurse1", custody.StepNote, map[string]any{"text": "x"}, sig("nurse1", custody.MeaningAuthored))
}

func TestBrokenSealBlocksReleaseUntilDisposition(t *testing.T) {
	for _, decision := range []string{"accept", "reject"} {
		t.Run(decision, func(t *testing.T) {
			e := newEnv(t)
			coi := e.enroll()
			e.advance(coi, custody.StateToManufacturing)
			rcv := e.must(coi, "mfg1", custody.StepReceive, map[string]any{"seal_intact": false}, sig("mfg1", custody.MeaningReceived))
			e.must(coi, "mfg1", custody.StepManufacture, map[string]any{"final_bags": 1}, sig("mfg1", custody.MeaningPerformed))
			c, _ := e.svc.Chain(e.ctx, coi)
			if slices.Contains(c.Next, custody.StepRelease) || !slices.Contains(c.Next, custody.StepDisposition) {
				t.Fatalf("next with an open issue: %v", c.Next)
			}
			release := func() error {
				_, err := e.step(coi, "qa1", custody.StepRelease, map[string]any{}, sig("qa1", custody.MeaningApproved))
				return err
			}
			if err := release(); !errors.Is(err, custody.ErrConflict) || !strings.Contains(err.Error(), "disposition") {
				t.Fatalf("release with open issue: %v", err)
			}
			// Only QA may disposition.
			if _, err := e.step(coi, "mfg1", custody.StepDisposition, map[string]any{"excursion": rcv.Seq, "decision": decision, "reason": "x"},
				sig("mfg1", custody.MeaningApproved)); !errors.Is(err, custody.ErrForbidden) {
				t.Fatalf("disposition by manufacturing: %v", err)
			}
			e.must(coi, "qa1", custody.StepDisposition, map[string]any{"excursion": rcv.Seq, "decision": decision, "reason": "tamper tape torn in transit; contents checked"},
				sig("qa1", custody.MeaningApproved))
			if _, err := e.step(coi, "qa1", custody.StepDisposition, map[string]any{"excursion": rcv.Seq, "decision": "accept", "reason": "again"},
				sig("qa1", custody.MeaningApproved)); !errors.Is(err, custody.ErrConflict) {
				t.Fatalf("second disposition: %v", err)
			}
			err := release()
			if decision == "accept" && err != nil {
				t.Fatalf("release after acceptance: %v", err)
			}
			if decision == "reject" && (!errors.Is(err, custody.ErrConflict) || !strings.Contains(err.Error(), "rejected")) {
				t.Fatalf("release after rejection: %v", err)
			}
		})
	}
}

func TestBedsideVerification(t *testing.T) {
	fp := func(coi custody.COI) string {
		return custody.LabelPayload(custody.BagID{COI: coi, Kind: custody.BagFinalProduct, N: 1})
	}
	two := []custody.SignatureRequest{sig("nurse1", custody.MeaningVerified), sig("nurse2", custody.MeaningVerified)}
	tests := []struct {
		name      string
		bag       func(coi, other custody.COI) string
		wristband string
		sigs      []custody.SignatureRequest
		reason    string // empty: the check passes
	}{
		{"match", func(c, _ custody.COI) string { return fp(c) }, patient.MRN, two, ""},
		{"match typed bag id", func(c, _ custody.COI) string { return string(c) + "-FP-02" }, patient.MRN, two, ""},
		{"wrong patient", func(c, _ custody.COI) string { return fp(c) }, "MRN-9999999", two, "wristband does not belong"},
		{"apheresis bag", func(c, _ custody.COI) string { return string(c) + "-APH-01" }, patient.MRN, two, "apheresis"},
		{"bag of another chain", func(_, o custody.COI) string { return fp(o) }, patient.MRN, two, "another chain"},
		{"unregistered bag", func(c, _ custody.COI) string { return string(c) + "-FP-07" }, patient.MRN, two, "never registered"},
		{"garbage", func(_, _ custody.COI) string { return "%%%" }, patient.MRN, two, "could not be read"},
		// The data is checked for patient identifiers, but a swapped scan
		// must still reach the mismatch record (which keeps neither).
		{"wristband scanned as the bag", func(_, _ custody.COI) string { return patient.MRN }, patient.MRN, two, "could not be read"},
		{"same nurse twice", func(c, _ custody.COI) string { return fp(c) }, patient.MRN,
			[]custody.SignatureRequest{sig("nurse1", custody.MeaningVerified), sig("nurse1", custody.MeaningVerified)}, "same nurse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			other := e.enroll()
			coi := e.enroll()
			e.advance(coi, custody.StateAtTreatment)
			before := e.records()
			r, err := e.step(coi, "nurse1", custody.StepBedsideVerify, map[string]any{"bag_code": tt.bag(coi, other), "wristband_code": tt.wristband}, tt.sigs...)
			c, _ := e.svc.Chain(e.ctx, coi)
			if tt.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.State != custody.StateVerified || bytes.Contains(r.Data, []byte(patient.MRN)) || !bytes.Contains(r.Data, []byte(`"wristband_match":true`)) {
					t.Fatalf("state %s data %s", c.State, r.Data)
				}
				return
			}
			if !errors.Is(err, custody.ErrConflict) || !strings.Contains(err.Error(), tt.reason) || !strings.Contains(err.Error(), "MISMATCH") {
				t.Fatalf("err = %v, want conflict mentioning %q", err, tt.reason)
			}
			if got := e.records() - before; got != 1 {
				t.Fatalf("refusal wrote %d records, want exactly one mismatch", got)
			}
			last := c.Records[len(c.Records)-1]
			if last.Step != custody.StepMismatch || last.Signatures[0].Role != custody.RoleSystem || c.State != custody.StateAtTreatment {
				t.Fatalf("last record %s by %+v, state %s", last.Step, last.Signatures, c.State)
			}
			if bytes.Contains(last.Data, []byte(tt.wristband)) || bytes.Contains(last.Data, []byte(patient.MRN)) {
				t.Fatalf("mismatch record holds a patient identifier: %s", last.Data)
			}
			if !bytes.Contains(last.Data, []byte("wristband_digest")) {
				t.Fatalf("mismatch record lacks the scanned wristband's digest: %s", last.Data)
			}
			if slices.Contains(c.Next, custody.StepInfuse) || slices.Contains(c.Next, custody.StepBedsideVerify) {
				t.Fatalf("infuse or another bedside check offered over an unacknowledged mismatch: %v", c.Next)
			}
			// The right bag and wristband: still refused, and nothing
			// written, until someone acknowledges the mismatch.
			before = e.records()
			_, err = e.step(coi, "nurse1", custody.StepBedsideVerify, map[string]any{"bag_code": fp(coi), "wristband_code": patient.MRN}, two...)
			if !errors.Is(err, custody.ErrConflict) || !strings.Contains(err.Error(), "not acknowledged") || e.records() != before {
				t.Fatalf("bedside check over an unacknowledged mismatch: %v (%d records written)", err, e.records()-before)
			}
			if _, err := e.svc.AcknowledgeMismatch(e.ctx, e.users["nurse2"], coi, last.Seq, custody.ViaToken); err != nil {
				t.Fatal(err)
			}
			// The bag is set aside for QA: acknowledged, but still no
			// bedside check until QA decides.
			_, err = e.step(coi, "nurse1", custody.StepBedsideVerify, map[string]any{"bag_code": fp(coi), "wristband_code": patient.MRN}, two...)
			if !errors.Is(err, custody.ErrConflict) || !strings.Contains(err.Error(), "await a QA disposition") || e.records() != before+1 {
				t.Fatalf("bedside check before QA's disposition of the mismatch: %v", err)
			}
			e.must(coi, "qa1", custody.StepDisposition, map[string]any{"excursion": last.Seq, "decision": "accept",
				"reason": "wrong wristband scanned; patient identity confirmed"}, sig("qa1", custody.MeaningApproved))
			e.must(coi, "nurse1", custody.StepBedsideVerify, map[string]any{"bag_code": fp(coi), "wristband_code": patient.MRN}, two...)
		})
	}
}

func TestEnrollment(t *testing.T) {
	e := newEnv(t)
	a, b := e.enroll(), e.enroll()
	if a != "CHA999926000001" || b != "CHA999926000002" {
		t.Fatalf("COIs %s %s", a, b)
	}
	phi, err := e.store.PHI(e.ctx, a)
	if err != nil || phi.MRN != patient.MRN || len(phi.Salt) != 32 {
		t.Fatalf("phi %+v %v", phi, err)
	}
	c, _ := e.svc.Chain(e.ctx, a)
	if !bytes.Contains(c.Records[0].Data, []byte(phi.Commitment())) {
		t.Fatal("enroll record lacks the patient commitment")
	}
	// No patient identifier is anywhere in the ledger.
	err = e.store.ScanLog(e.ctx, func(_ uint64, _ custody.Hash, body []byte) error {
		for _, s := range []string{patient.Name, patient.MRN, patient.BirthDate, "Jane"} {
			if bytes.Contains(body, []byte(s)) {
				t.Errorf("ledger record holds %q: %s", s, body)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name  string
		actor string
		req   custody.EnrollRequest
		want  error
	}{
		{"nurse", "nurse1", custody.EnrollRequest{Patient: patient, Product: "p", Sites: custody.Sites{Collection: "a", Manufacturing: "b", Treatment: "c"}}, custody.ErrForbidden},
		{"no name", "coord", custody.EnrollRequest{Patient: custody.PHI{BirthDate: "1970-01-01", MRN: "1"}, Product: "p", Sites: custody.Sites{Collection: "a", Manufacturing: "b", Treatment: "c"}}, custody.ErrInvalid},
		{"bad birth date", "coord", custody.EnrollRequest{Patient: custody.PHI{Name: "x", BirthDate: "01/02/1970", MRN: "1"}, Product: "p", Sites: custody.Sites{Collection: "a", Manufacturing: "b", Treatment: "c"}}, custody.ErrInvalid},
		{"future birth", "coord", custody.EnrollRequest{Patient: custody.PHI{Name: "x", BirthDate: "2999-01-01", MRN: "1"}, Product: "p", Sites: custody.Sites{Collection: "a", Manufacturing: "b", Treatment: "c"}}, custody.ErrInvalid},
		{"no site", "coord", custody.EnrollRequest{Patient: patient, Product: "p", Sites: custody.Sites{Collection: "a", Treatment: "c"}}, custody.ErrInvalid},
		{"no product", "coord", custody.EnrollRequest{Patient: patient, Sites: custody.Sites{Collection: "a", Manufacturing: "b", Treatment: "c"}}, custody.ErrInvalid},
		{"control char", "coord", custody.EnrollRequest{Patient: patient, Product: "p\x00", Sites: custody.Sites{Collection: "a", Manufacturing: "b", Treatment: "c"}}, custody.ErrInvalid},
		{"wrong signer", "coord", custody.EnrollRequest{Patient: patient, Product: "p", Sites: custody.Sites{Collection: "a", Manufacturing: "b", Treatment: "c"},
			Signatures: []custody.SignatureRequest{sig("nurse1", custody.MeaningAuthored)}}, custody.ErrForbidden},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			before := e.records()
			_, err := e.svc.Enroll(e.ctx, e.users[tt.actor], tt.req)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if e.records() != before {
				t.Fatal("refused enrollment wrote a record")
			}
		})
	}
	// A signed enrollment records the coordinator's password signature.
	c2, err := e.svc.Enroll(e.ctx, e.users["coord"], custody.EnrollRequest{Patient: patient, Product: "p",
		Sites: custody.Sites{Collection: "a", Manufacturing: "b", Treatment: "c"}, Signatures: []custody.SignatureRequest{sig("coord", custody.MeaningAuthored)}})
	if err != nil || c2.Records[0].Signatures[0].Method != "password" {
		t.Fatalf("signed enroll: %v", err)
	}
}

func TestConcurrentStepsOnOneChain(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll()
	e.advance(coi, custody.StateCollected)
	// Ten couriers race to ship: exactly one ship may win.
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Go(func() {
			_, err := e.step(coi, "nurse1", custody.StepShip, map[string]any{"shipper": "SHP-1", "profile": "cryogenic"},
				sig("nurse1", custody.MeaningHandedOver), sig("courier1", custody.MeaningReceived))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		if err == nil {
			ok++
		} else if !errors.Is(err, custody.ErrConflict) {
			t.Fatal(err)
		}
	}
	c, _ := e.svc.Chain(e.ctx, coi)
	if ok != 1 || len(c.Legs) != 1 {
		t.Fatalf("%d ships succeeded, %d legs", ok, len(c.Legs))
	}
}

func TestAcknowledgeMismatch(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll()
	e.advance(coi, custody.StateAtTreatment)
	_, err := e.step(coi, "nurse1", custody.StepBedsideVerify, map[string]any{"bag_code": string(coi) + "-APH-01", "wristband_code": patient.MRN},
		sig("nurse1", custody.MeaningVerified), sig("nurse2", custody.MeaningVerified))
	if !errors.Is(err, custody.ErrConflict) {
		t.Fatalf("bedside with an apheresis bag: %v", err)
	}
	c, _ := e.svc.Chain(e.ctx, coi)
	mm := c.Mismatches[0]
	if mm.Acknowledged {
		t.Fatal("new mismatch already acknowledged")
	}
	before := e.records()
	for _, tt := range []struct {
		actor string
		seq   uint64
		want  error
	}{
		{"courier1", mm.Seq, custody.ErrForbidden},
		{"mfg1", mm.Seq, custody.ErrForbidden},
		{"nurse2", mm.Seq - 1, custody.ErrInvalid},
	} {
		if _, err := e.svc.AcknowledgeMismatch(e.ctx, e.users[tt.actor], coi, tt.seq, custody.ViaSession); !errors.Is(err, tt.want) {
			t.Fatalf("%s acknowledges %d: %v, want %v", tt.actor, tt.seq, err, tt.want)
		}
	}
	if e.records() != before {
		t.Fatal("refused acknowledgement wrote a record")
	}
	r, err := e.svc.AcknowledgeMismatch(e.ctx, e.users["nurse2"], coi, mm.Seq, custody.ViaSession)
	if err != nil || r.Step != custody.StepAcknowledge || r.Signatures[0].User != "nurse2" || r.Signatures[0].Method != "session" {
		t.Fatalf("acknowledge: %+v %v", r, err)
	}
	if _, err := e.svc.AcknowledgeMismatch(e.ctx, e.users["nurse1"], coi, mm.Seq, custody.ViaSession); !errors.Is(err, custody.ErrConflict) {
		t.Fatalf("second acknowledgement: %v", err)
	}
	c, _ = e.svc.Chain(e.ctx, coi)
	if !c.Mismatches[0].Acknowledged || c.Mismatches[0].AcknowledgedBy != "nurse2" || c.State != custody.StateAtTreatment {
		t.Fatalf("after acknowledgement: %+v state %s", c.Mismatches, c.State)
	}
	// The acknowledge step cannot be posted as a generic step.
	if _, err := e.step(coi, "nurse1", custody.StepAcknowledge, map[string]any{"mismatch": mm.Seq}); !errors.Is(err, custody.ErrForbidden) {
		t.Fatalf("acknowledge as a step: %v", err)
	}
}

// TestSignInsBackOffAndNeverLock: nobody is authenticated at a sign-in,
// so wrong passwords there must not lock the account (a stranger could
// lock anyone out); they make that address wait, doubling, and raise a
// security alert. An administrator's ID is no exception. (Before the fix
// five wrong sign-ins locked the account: this test replaces
// TestAdministratorSignInsAreCountedAndLocked.)
func TestSignInsBackOffAndNeverLock(t *testing.T) {
	e := newEnv(t)
	const from = "192.0.2.7"
	for i := 1; i <= custody.MaxFailedSignatures+1; i++ {
		if _, err := e.svc.Login(e.ctx, from, "admin1", "guess-"+strconv.Itoa(i)); !errors.Is(err, custody.ErrUnauthenticated) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if u, _ := e.store.User(e.ctx, "admin1"); u.Locked || u.FailedSignatures != 0 {
		t.Fatalf("sign-ins locked or counted against the account: %+v", u.Public())
	}
	// The clock reads a minute later each time; the wait is now 2 minutes.
	_, err := e.svc.Login(e.ctx, from, "admin1", password("admin1"))
	if d, ok := custody.RetryAfter(err); !errors.Is(err, custody.ErrThrottled) || !ok || d <= 0 {
		t.Fatalf("right password while backing off: %v", err)
	}
	if !strings.Contains(e.logs.String(), `level=ERROR msg="security alert: repeated wrong passwords" remote_ip=192.0.2.7 reason="wrong password" user=admin1`) {
		t.Fatalf("no security alert:\n%s", e.logs.String())
	}
	if _, err := e.svc.Login(e.ctx, "192.0.2.8", "admin1", password("admin1")); err != nil {
		t.Fatalf("another address with the right password: %v", err)
	}
	if strings.Contains(e.logs.String(), "guess-") {
		t.Fatal("a password in the log")
	}
}

// TestSigningDoesNotRevealAdministrators: an administrator's ID with a
// wrong password is refused like any wrong password (and counted); only
// with the right one does the service say administrators do not sign.
func TestSigningDoesNotRevealAdministrators(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll()
	_, err := e.step(coi, "nurse1", custody.StepNote, map[string]any{"text": "x"},
		custody.SignatureRequest{User: "admin1", Password: "wrong-guess", Meaning: custody.MeaningAuthored})
	if !errors.Is(err, custody.ErrUnauthenticated) || strings.Contains(err.Error(), "administrator") {
		t.Fatalf("wrong password on an administrator's ID: %v", err)
	}
	_, err = e.step(coi, "nurse1", custody.StepNote, map[string]any{"text": "x"}, sig("admin1", custody.MeaningAuthored))
	if !errors.Is(err, custody.ErrForbidden) {
		t.Fatalf("administrator's signature: %v", err)
	}
}

// TestUnknownSignerIDIsNotLogged: people type passwords and patient
// numbers into the ID box; an ID that names no user is never logged.
func TestUnknownSignerIDIsNotLogged(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll()
	for _, typed := range []string{"pw-nurse1-secret", "MRN-778812"} {
		if _, err := e.step(coi, "nurse1", custody.StepNote, map[string]any{"text": "x"},
			custody.SignatureRequest{User: typed, Password: "whatever", Meaning: custody.MeaningAuthored}); !errors.Is(err, custody.ErrUnauthenticated) {
			t.Fatalf("%q: %v", typed, err)
		}
		if _, err := e.svc.Login(e.ctx, "192.0.2.1", typed, "whatever"); !errors.Is(err, custody.ErrUnauthenticated) {
			t.Fatalf("login %q: %v", typed, err)
		}
		if logs := e.logs.String(); strings.Contains(logs, typed) || !strings.Contains(logs, `reason="unknown user"`) {
			t.Fatalf("typed ID %q in the log, or the failure not logged:\n%s", typed, logs)
		}
	}
}

// TestPatientIdentifiersStayOutOfTheLedger: the ledger can never be
// erased, so step data naming the chain's patient, or a field named for a
// patient identifier, is refused with a clear error and nothing written.
func TestPatientIdentifiersStayOutOfTheLedger(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll()
	e.advance(coi, custody.StateAtTreatment)
	note := func(data map[string]any) error {
		_, err := e.step(coi, "nurse1", custody.StepNote, data, sig("nurse1", custody.MeaningAuthored))
		return err
	}
	before := e.records()
	for _, data := range []map[string]any{
		{"text": "Bag shown to Jane Doe before infusion"},
		{"text": "wristband reads 0012345"},
		{"text": "born 02/01/1970 per chart"},
		{"text": "ok", "patient_name": "anyone"},
		{"text": "ok", "ehr": map[string]any{"mrn": "x"}},
	} {
		err := note(data)
		if !errors.Is(err, custody.ErrInvalid) || !strings.Contains(err.Error(), "ledger") {
			t.Errorf("%v: %v", data, err)
		}
		if err != nil && (strings.Contains(err.Error(), "0012345") || strings.Contains(err.Error(), "Jane")) {
			t.Errorf("the refusal repeats the identifier: %v", err)
		}
	}
	// Other steps' extra fields too; the bedside check itself still passes.
	if _, err := e.step(coi, "nurse1", custody.StepBedsideVerify, map[string]any{"bag_code": string(coi) + "-FP-01",
		"wristband_code": patient.MRN, "comment": "Jane Q Doe"}, sig("nurse1", custody.MeaningVerified), sig("nurse2", custody.MeaningVerified)); !errors.Is(err, custody.ErrInvalid) {
		t.Errorf("bedside with the name in a comment: %v", err)
	}
	if got := e.records(); got != before {
		t.Fatalf("refused requests wrote %d records", got-before)
	}
	if err := note(map[string]any{"text": "bag inspected, no leaks"}); err != nil {
		t.Fatal(err)
	}
	e.must(coi, "nurse1", custody.StepBedsideVerify, map[string]any{"bag_code": string(coi) + "-FP-01", "wristband_code": patient.MRN},
		sig("nurse1", custody.MeaningVerified), sig("nurse2", custody.MeaningVerified))

	// At enrollment, the product and site names go into the ledger too.
	_, err := e.svc.Enroll(e.ctx, e.users["coord"], custody.EnrollRequest{Patient: patient, Product: "CAR-T for MRN-0012345",
		Sites: custody.Sites{Collection: "A", Manufacturing: "B", Treatment: "C"}})
	if !errors.Is(err, custody.ErrInvalid) || !strings.Contains(err.Error(), "product holds the patient's medical record number") {
		t.Fatalf("enroll with the MRN in the product: %v", err)
	}
}

// TestUserIDsDifferInMoreThanCase: two signatures must come from two
// people, so an ID that differs from another only in case is refused.
func TestUserIDsDifferInMoreThanCase(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"NURSE1", "Nurse1", "nUrSe1"} {
		if _, err := e.svc.AddUser(e.ctx, id, "Someone Else", custody.RoleNurse, "another-password"); !errors.Is(err, custody.ErrConflict) {
			t.Fatalf("add %s beside nurse1: %v", id, err)
		}
	}
	if _, err := e.svc.AddUser(e.ctx, "nurse1", "Again", custody.RoleNurse, "another-password"); !errors.Is(err, custody.ErrConflict) {
		t.Fatalf("the same ID again: %v", err)
	}
	if _, err := e.svc.AddUser(e.ctx, "nurse3", "Third Nurse", custody.RoleNurse, "another-password"); err != nil {
		t.Fatal(err)
	}
}

// TestRejectedMismatchStopsTheInfusion: QA rejecting a bedside mismatch
// means the product is not infused: no bedside check or infusion follows.
func TestRejectedMismatchStopsTheInfusion(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll()
	e.advance(coi, custody.StateAtTreatment)
	two := []custody.SignatureRequest{sig("nurse1", custody.MeaningVerified), sig("nurse2", custody.MeaningVerified)}
	bag := custody.LabelPayload(custody.BagID{COI: coi, Kind: custody.BagFinalProduct, N: 1})
	if _, err := e.step(coi, "nurse1", custody.StepBedsideVerify, map[string]any{"bag_code": bag, "wristband_code": "MRN-9"}, two...); !errors.Is(err, custody.ErrConflict) {
		t.Fatal(err)
	}
	c, _ := e.svc.Chain(e.ctx, coi)
	mm := c.Mismatches[0].Seq
	if is := c.OpenIssues(); len(is) != 1 || is[0].Kind != "mismatch" || is[0].Seq != mm {
		t.Fatalf("open issues after a mismatch: %+v", is)
	}
	if _, err := e.svc.AcknowledgeMismatch(e.ctx, e.users["nurse1"], coi, mm, custody.ViaToken); err != nil {
		t.Fatal(err)
	}
	e.must(coi, "qa1", custody.StepDisposition, map[string]any{"excursion": mm, "decision": "reject", "reason": "identity not confirmed"},
		sig("qa1", custody.MeaningApproved))
	before := e.records()
	_, err := e.step(coi, "nurse1", custody.StepBedsideVerify, map[string]any{"bag_code": bag, "wristband_code": patient.MRN}, two...)
	if !errors.Is(err, custody.ErrConflict) || !strings.Contains(err.Error(), "rejected") {
		t.Fatalf("bedside check after QA rejected the mismatch: %v", err)
	}
	if c, _ := e.svc.Chain(e.ctx, coi); slices.Contains(c.Next, custody.StepBedsideVerify) || slices.Contains(c.Next, custody.StepInfuse) {
		t.Fatalf("next steps after the rejection: %v", c.Next)
	}
	if e.records() != before {
		t.Fatal("refused steps wrote records")
	}
}

// TestInfuseNamesTheVerifiedBag: the infuse record names the bag the
// passing bedside check verified (two were made), so which bag went in is
// in the ledger; naming another bag is refused.
func TestInfuseNamesTheVerifiedBag(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll()
	e.advance(coi, custody.StateVerified)
	fp := func(n int) string { return custody.BagID{COI: coi, Kind: custody.BagFinalProduct, N: n}.String() }
	before := e.records()
	_, err := e.step(coi, "nurse2", custody.StepInfuse, map[string]any{"bag": fp(2)}, sig("nurse2", custody.MeaningPerformed))
	if !errors.Is(err, custody.ErrConflict) || !strings.Contains(err.Error(), "not the bag the bedside check verified") || e.records() != before {
		t.Fatalf("infuse of a bag other than the verified one: %v", err)
	}
	r := e.must(coi, "nurse2", custody.StepInfuse, map[string]any{}, sig("nurse2", custody.MeaningPerformed))
	var d struct {
		Bag string `json:"bag"`
	}
	if err := json.Unmarshal(r.Data, &d); err != nil || d.Bag != fp(1) {
		t.Fatalf("infuse record data %s, want bag %s", r.Data, fp(1))
	}
}

// TestWristbandMatches: a bedside screen learns at the scan whether the
// wristband is the patient's, by the rule the signed check applies
// (surrounding blanks ignored); a chain with no identity on file is
// ErrNotFound.
func TestWristbandMatches(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll()
	for _, tc := range []struct {
		code string
		want bool
	}{{patient.MRN, true}, {" " + patient.MRN + "\n", true}, {patient.MRN + "0", false}, {"", false}} {
		got, err := e.svc.WristbandMatches(e.ctx, coi, tc.code)
		if err != nil || got != tc.want {
			t.Errorf("WristbandMatches(%q) = %v, %v; want %v", tc.code, got, err, tc.want)
		}
	}
	other := custody.COI("CHA999926999999")
	if _, err := e.svc.WristbandMatches(e.ctx, other, patient.MRN); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("unknown chain: %v, want ErrNotFound", err)
	}
}

// TestQAReview: QA signs its review of a chain's custody record, on a
// chain in progress or complete, with a statement; no other role may, and
// a review without a statement is refused with nothing written.
func TestQAReview(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll()
	for _, js := range journey(coi) {
		e.must(coi, "nurse1", js.step, js.data, js.sigs...)
	}
	stmt := map[string]any{"statement": "Custody record reviewed: chain of identity intact, no open issues."}
	if _, err := e.step(coi, "nurse1", custody.StepReview, stmt, sig("nurse1", custody.MeaningReviewed)); !errors.Is(err, custody.ErrForbidden) {
		t.Fatalf("a nurse's review: %v, want ErrForbidden", err)
	}
	if _, err := e.step(coi, "qa1", custody.StepReview, map[string]any{"statement": ""}, sig("qa1", custody.MeaningReviewed)); !errors.Is(err, custody.ErrInvalid) {
		t.Fatalf("empty statement: %v, want ErrInvalid", err)
	}
	r := e.must(coi, "qa1", custody.StepReview, stmt, sig("qa1", custody.MeaningReviewed))
	if len(r.Signatures) != 1 || r.Signatures[0].Meaning != custody.MeaningReviewed || r.Signatures[0].Role != custody.RoleQA {
		t.Fatalf("review signatures: %+v", r.Signatures)
	}
	if d, ok := r.Body().(custody.ReviewData); !ok || d.Statement != stmt["statement"] {
		t.Fatalf("review data: %#v", r.Body())
	}
	c, err := e.svc.Chain(e.ctx, coi)
	if err != nil || c.State != custody.StateInfused || uint64(len(c.Records)) != r.ChainSeq {
		t.Fatalf("chain after review: %+v, %v", c, err)
	}
}
