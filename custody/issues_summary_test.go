package custody_test

import (
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// TestSummaryKeepsOpenIssues: the chain summary's open issue counts
// follow every record kind that opens or closes an issue (an excursion,
// its corrections, a broken seal, a bedside mismatch, its acknowledgement,
// QA's dispositions, and a correction from readings stored after an
// acceptance, which reopens it), and always match the folded chain's.
func TestSummaryKeepsOpenIssues(t *testing.T) {
	e := newTeleEnv(t)
	a, b := e.enroll(), e.enroll()
	e.advance(a, custody.StateToManufacturing)
	e.advance(b, custody.StateAtTreatment)
	c, err := e.svc.Chain(e.ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	start := c.Legs[0].ShippedAt.Add(10 * time.Minute)
	w1, w2 := -120.0, -60.0
	exc := custody.Excursion{ID: custody.ExcursionID(custody.ExcursionTemperature, start), Kind: custody.ExcursionTemperature,
		Start: start, End: start.Add(10 * time.Minute), Worst: &w1, Duration: 10 * time.Minute, Breach: 10 * time.Minute}
	var excSeq, sealSeq, mismatchSeq uint64
	dispose := func(coi custody.COI, seq *uint64) func(t *testing.T) {
		return func(t *testing.T) {
			e.must(coi, "qa1", custody.StepDisposition, map[string]any{"excursion": *seq, "decision": "accept", "reason": "per stability data"},
				sig("qa1", custody.MeaningApproved))
		}
	}
	revise := func(x custody.Excursion) func(t *testing.T) {
		return func(t *testing.T) {
			if _, added, err := e.svc.ReviseExcursion(e.ctx, a, 1, x); err != nil || !added {
				t.Fatalf("revise: added %v, %v", added, err)
			}
		}
	}
	longer := exc
	longer.End, longer.Duration, longer.Breach = start.Add(40*time.Minute), 40*time.Minute, 40*time.Minute
	worse := longer
	worse.Worst = &w2
	fp := func(coi custody.COI) string {
		return custody.LabelPayload(custody.BagID{COI: coi, Kind: custody.BagFinalProduct, N: 1})
	}
	two := []custody.SignatureRequest{sig("nurse1", custody.MeaningVerified), sig("nurse2", custody.MeaningVerified)}
	steps := []struct {
		name string
		coi  custody.COI
		do   func(t *testing.T)
		want custody.IssueCounts
	}{
		{"enrolled and shipped: none", a, func(t *testing.T) {}, custody.IssueCounts{Kept: true}},
		{"excursion recorded", a, func(t *testing.T) {
			r, added, err := e.svc.RecordExcursion(e.ctx, a, 1, exc)
			if err != nil || !added {
				t.Fatalf("excursion: %v %v", added, err)
			}
			excSeq = r.Seq
		}, custody.IssueCounts{Kept: true, Excursions: 1}},
		{"its figures corrected: still open", a, revise(longer), custody.IssueCounts{Kept: true, Excursions: 1}},
		{"received with its seal broken", a, func(t *testing.T) {
			sealSeq = e.must(a, "mfg1", custody.StepReceive, map[string]any{"seal_intact": false}, sig("mfg1", custody.MeaningReceived)).Seq
		}, custody.IssueCounts{Kept: true, Excursions: 1, SealsBroken: 1}},
		{"a note changes nothing", a, func(t *testing.T) {
			e.must(a, "qa1", custody.StepNote, map[string]any{"text": "looking into the shipment"}, sig("qa1", custody.MeaningAuthored))
		}, custody.IssueCounts{Kept: true, Excursions: 1, SealsBroken: 1}},
		{"excursion accepted", a, dispose(a, &excSeq), custody.IssueCounts{Kept: true, SealsBroken: 1}},
		{"readings stored after the acceptance reopen it", a, revise(worse), custody.IssueCounts{Kept: true, Excursions: 1, SealsBroken: 1}},
		{"accepted again", a, dispose(a, &excSeq), custody.IssueCounts{Kept: true, SealsBroken: 1}},
		{"broken seal accepted", a, dispose(a, &sealSeq), custody.IssueCounts{Kept: true}},
		{"bedside mismatch", b, func(t *testing.T) {
			before := e.records()
			_, err := e.step(b, "nurse1", custody.StepBedsideVerify, map[string]any{"bag_code": fp(b), "wristband_code": "MRN-9999999"}, two...)
			if err == nil || e.records() != before+1 {
				t.Fatalf("bedside check of the wrong wristband: %v", err)
			}
			mismatchSeq = e.records()
		}, custody.IssueCounts{Kept: true, Mismatches: 1}},
		{"mismatch acknowledged: still open for QA", b, func(t *testing.T) {
			if _, err := e.svc.AcknowledgeMismatch(e.ctx, e.users["nurse2"], b, mismatchSeq, custody.ViaToken); err != nil {
				t.Fatal(err)
			}
		}, custody.IssueCounts{Kept: true, Mismatches: 1}},
		{"mismatch accepted", b, dispose(b, &mismatchSeq), custody.IssueCounts{Kept: true}},
		{"bedside check passes", b, func(t *testing.T) {
			e.must(b, "nurse1", custody.StepBedsideVerify, map[string]any{"bag_code": fp(b), "wristband_code": patient.MRN}, two...)
		}, custody.IssueCounts{Kept: true}},
	}
	for _, st := range steps {
		st.do(t)
		ci, err := e.store.Chain(e.ctx, st.coi)
		if err != nil {
			t.Fatal(err)
		}
		if ci.OpenIssues != st.want {
			t.Errorf("%s: summary keeps %+v, want %+v", st.name, ci.OpenIssues, st.want)
		}
		c, err := e.svc.Chain(e.ctx, st.coi)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(c.OpenIssues()); n != ci.OpenIssues.Total() {
			t.Errorf("%s: the folded chain has %d open issue(s), the summary %d", st.name, n, ci.OpenIssues.Total())
		}
		list, err := e.store.Chains(e.ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range list {
			if x.COI == st.coi && x.OpenIssues != st.want {
				t.Errorf("%s: Chains lists %+v, want %+v", st.name, x.OpenIssues, st.want)
			}
		}
	}
}
