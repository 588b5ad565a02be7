package custody_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// TestShipPlannedArrival: a ship record may carry a planned arrival,
// which its leg shows; one in the past is refused, nothing written; a
// ship record without one still gives a leg without one.
func TestShipPlannedArrival(t *testing.T) {
	e := newTeleEnv(t)
	coi := e.enroll()
	e.advance(coi, custody.StateCollected)
	ship := func(pa string) (custody.Record, error) {
		return e.step(coi, "nurse1", custody.StepShip, map[string]any{"shipper": "SHP-0042", "profile": "cryogenic", "planned_arrival": pa},
			sig("nurse1", custody.MeaningHandedOver), sig("courier1", custody.MeaningReceived))
	}
	before, _ := e.svc.Chain(e.ctx, coi)
	for _, bad := range []string{"2020-01-01T00:00:00Z", "tomorrow", "2026-13-01T00:00:00Z", e.svc.Now().Add(90 * 24 * time.Hour).Format(time.RFC3339)} {
		if _, err := ship(bad); !errors.Is(err, custody.ErrInvalid) || !strings.Contains(err.Error(), "planned_arrival") {
			t.Fatalf("planned_arrival %q: %v", bad, err)
		}
	}
	if after, _ := e.svc.Chain(e.ctx, coi); len(after.Records) != len(before.Records) {
		t.Fatal("a refused ship step wrote a record")
	}
	pa := e.svc.Now().Add(30 * time.Hour).In(time.FixedZone("CET", 3600)).Format(time.RFC3339)
	if _, err := ship(pa); err != nil {
		t.Fatal(err)
	}
	c, _ := e.svc.Chain(e.ctx, coi)
	want, _ := time.Parse(time.RFC3339, pa)
	if l := c.Legs[0]; l.PlannedArrival == nil || !l.PlannedArrival.Equal(want) || l.PlannedArrival.Location() != time.UTC {
		t.Fatalf("leg %+v, want planned arrival %v in UTC", l, want)
	}
	// The default journey ships without a plan.
	other := e.enroll()
	e.advance(other, custody.StateToManufacturing)
	if c, _ := e.svc.Chain(e.ctx, other); c.Legs[0].PlannedArrival != nil {
		t.Fatalf("leg %+v", c.Legs[0])
	}
}

// TestRecordHoldWarningOnce: a hold-time warning is a system-signed
// record, written once per leg and cause, blocking nothing; a received
// leg takes none.
func TestRecordHoldWarningOnce(t *testing.T) {
	e := newTeleEnv(t)
	coi := e.enroll()
	e.advance(coi, custody.StateToManufacturing)
	ns := int64(5 * time.Hour)
	w := custody.HoldWarning{Cause: custody.HoldCauseHoldTime, Message: "LN2 projected to reach 10% in 5h",
		Projection: custody.HoldProjection{Method: custody.HoldMethodTheilSen, At: e.svc.Now(), OK: true, RatePctPerHour: 9.5, HoldNS: &ns, Hold: "5h0m0s"}}
	rec, added, err := e.svc.RecordHoldWarning(e.ctx, coi, 1, w)
	if err != nil || !added || rec.Step != custody.StepHoldWarning || rec.Signatures[0].Role != custody.RoleSystem || rec.SubmittedBy != custody.SystemUser {
		t.Fatalf("first warning: %v %v %+v", added, err, rec)
	}
	if _, added, err := e.svc.RecordHoldWarning(e.ctx, coi, 1, w); err != nil || added {
		t.Fatalf("the same cause again: %v %v", added, err)
	}
	late := custody.HoldWarning{Cause: custody.HoldCauseLate, Message: "late", Projection: w.Projection}
	if _, added, err := e.svc.RecordHoldWarning(e.ctx, coi, 1, late); err != nil || !added {
		t.Fatalf("another cause: %v %v", added, err)
	}
	if _, _, err := e.svc.RecordHoldWarning(e.ctx, coi, 1, custody.HoldWarning{Cause: "boredom"}); !errors.Is(err, custody.ErrInvalid) {
		t.Fatalf("unknown cause: %v", err)
	}
	if _, _, err := e.svc.RecordHoldWarning(e.ctx, coi, 2, w); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("no such leg: %v", err)
	}
	c, err := e.svc.Chain(e.ctx, coi)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := custody.ChainHoldWarnings(c)
	if err != nil || len(ws) != 2 || ws[0].Cause != custody.HoldCauseHoldTime || ws[0].Leg != 1 || ws[0].Shipper != "SHP-0042" ||
		ws[0].Projection.RatePctPerHour != 9.5 || ws[0].Message != w.Message {
		t.Fatalf("warnings %+v %v", ws, err)
	}
	if len(c.Issues) != 0 {
		t.Fatalf("a warning opened an issue: %+v", c.Issues)
	}
	// The journey goes on: receipt is not blocked, and a received leg
	// takes no warning.
	e.must(coi, "mfg1", custody.StepReceive, map[string]any{"seal_intact": true}, sig("mfg1", custody.MeaningReceived))
	if _, added, err := e.svc.RecordHoldWarning(e.ctx, coi, 1, custody.HoldWarning{Cause: custody.HoldCauseLate, Message: "x"}); err != nil || added {
		t.Fatalf("warning on a received leg: %v %v", added, err)
	}
	// A person cannot post one.
	if _, err := e.step(coi, "qa1", custody.StepHoldWarning, map[string]any{}); !errors.Is(err, custody.ErrForbidden) {
		t.Fatalf("hold-warning posted by a person: %v", err)
	}
}
