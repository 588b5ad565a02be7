package custody_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// BenchmarkFold30 measures folding a 30-record chain as read from a store
// (the records' data not yet parsed): a service does it on each chain
// cache miss.
func BenchmarkFold30(b *testing.B) {
	recs := chainRecords(b, 30)
	j := custody.DefaultJourney()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := custody.Fold(j, slices.Clone(recs)); err != nil {
			b.Fatal(err)
		}
	}
}

// chainRecords builds a chain's records as a store returns them, n of
// them at least: enroll to release with an excursion on the first leg, its
// system correction, a person's correction of the collection, then notes.
func chainRecords(tb testing.TB, n int) []custody.Record {
	tb.Helper()
	b := tb
	coi := custody.COI("A999926000001")
	t0 := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	var recs []custody.Record
	add := func(step custody.Step, by string, data any) {
		raw, err := json.Marshal(data)
		if err != nil {
			b.Fatal(err)
		}
		if raw, err = custody.Canonicalize(raw); err != nil {
			b.Fatal(err)
		}
		n := uint64(len(recs) + 1)
		recs = append(recs, custody.Record{V: custody.EncodingVersion, Seq: n, Chain: coi, ChainSeq: n, Step: step,
			Time: t0.Add(time.Duration(n) * time.Hour), SubmittedBy: by, Data: raw,
			Signatures: []custody.Signature{{User: by, Name: "Printed " + by, Role: custody.RoleNurse, Meaning: custody.MeaningPerformed,
				Time: custody.FormatTime(t0), Method: custody.MethodPassword}}})
	}
	worst, limit := 9.5, 8.0
	add(custody.StepEnroll, "coord", map[string]any{"product": "CAR-T", "sites": custody.Sites{Collection: "A", Manufacturing: "B", Treatment: "C"},
		"facility": "A9999", "patient_commitment": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"})
	add(custody.StepCollect, "nurse1", map[string]any{"din": "A999926123456", "volume_ml": 212.5, "bags": 2,
		"started_at": "2026-11-20T08:40:00Z", "ended_at": "2026-11-20T10:10:00Z"})
	add(custody.StepShip, "nurse1", map[string]any{"shipper": "SHP-0042", "profile": "refrigerated"})
	add(custody.StepExcursion, custody.SystemUser, custody.ExcursionData{ID: "temperature-1", Kind: custody.ExcursionTemperature, Leg: 1,
		Shipper: "SHP-0042", Profile: "refrigerated", Start: t0, End: &t0, Worst: &worst, Limit: &limit, DurationNS: 1, Duration: "1ns", BreachNS: 1})
	add(custody.StepReceive, "mfg1", map[string]any{"seal_intact": true, "telemetry": custody.ReceiveSeal{Version: custody.SealVersion, Leg: 1,
		Shipper: "SHP-0042", From: t0, To: t0, Watermark: 7, Seal: custody.LegSeal{Count: 100, ReadingsHash: "ab"}}})
	add(custody.StepManufacture, "mfg1", map[string]any{"final_bags": 2})
	add(custody.StepDisposition, "qa1", map[string]any{"excursion": 4, "decision": "accept", "reason": "within stability data"})
	add(custody.StepCorrection, custody.SystemUser, map[string]any{"corrects": 4, "reason": "excursion figures revised",
		"excursion_id": "temperature-1", "end": t0.Add(time.Hour), "worst": 9.8, "duration_ns": 2, "duration": "2ns", "breach_ns": 2})
	add(custody.StepRelease, "qa1", map[string]any{})
	add(custody.StepCorrection, "nurse1", map[string]any{"corrects": 2, "reason": "volume was 215 mL", "volume_ml": 215})
	for len(recs) < n {
		add(custody.StepNote, "nurse1", map[string]any{"text": "observation: bag temperature and seal checked"})
	}
	return recs
}
