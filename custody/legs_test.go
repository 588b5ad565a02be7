package custody_test

import (
	"errors"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/passwd"
)

// newTeleEnv is newEnv with the store's readings connected to the service.
func newTeleEnv(t *testing.T) *env {
	e := newEnv(t)
	svc, err := custody.NewService(custody.Config{Store: e.store, Hasher: passwd.Fast(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: e.clock, FIN: "A9999", Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles())),
		Telemetry: custody.TelemetryConfig{Readings: e.store}})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	return e
}

func (e *env) setNow(t time.Time) {
	e.mu.Lock()
	e.now = t
	e.mu.Unlock()
}

func teleReadings(shipper string, from time.Time, n int, temp func(i int) float64) []custody.Reading {
	out := make([]custody.Reading, n)
	for i := range out {
		c := temp(i)
		out[i] = custody.Reading{Shipper: shipper, Seq: uint64(i), HasSeq: true, DeviceTime: from.Add(time.Duration(i) * time.Minute),
			ReceivedTime: from.Add(time.Duration(i) * time.Minute), TempC: &c}
	}
	return out
}

func TestSealAtReceiveAndExcursionsOnce(t *testing.T) {
	e := newTeleEnv(t)
	coi := e.enroll()
	e.advance(coi, custody.StateToManufacturing)
	c, err := e.svc.Chain(e.ctx, coi)
	if err != nil {
		t.Fatal(err)
	}
	leg := c.Legs[0]
	// 40 minutes of readings, warm from minute 10 to 17.
	rs := teleReadings(leg.Shipper, leg.ShippedAt.Add(30*time.Second), 40, func(i int) float64 {
		if i >= 10 && i < 18 {
			return -120
		}
		return -181.5
	})
	if _, err := e.store.AddReadings(e.ctx, rs); err != nil {
		t.Fatal(err)
	}
	e.setNow(leg.ShippedAt.Add(45 * time.Minute))
	warm := custody.Excursion{ID: custody.ExcursionID(custody.ExcursionTemperature, rs[10].DeviceTime), Kind: custody.ExcursionTemperature,
		Start: rs[10].DeviceTime, End: rs[18].DeviceTime, Duration: 8 * time.Minute, Breach: 8 * time.Minute}
	rec, added, err := e.svc.RecordExcursion(e.ctx, coi, 1, warm)
	if err != nil || !added || rec.Step != custody.StepExcursion || rec.Signatures[0].Role != custody.RoleSystem {
		t.Fatalf("first excursion: %v %v %+v", added, err, rec)
	}
	// The same excursion again, and one whose start moved earlier, are
	// not written twice; a later one of the same kind is.
	moved := warm
	moved.Start = warm.Start.Add(-time.Minute)
	moved.ID = custody.ExcursionID(warm.Kind, moved.Start)
	for _, x := range []custody.Excursion{warm, moved} {
		if _, added, err := e.svc.RecordExcursion(e.ctx, coi, 1, x); err != nil || added {
			t.Fatalf("duplicate excursion %s written: %v %v", x.ID, added, err)
		}
	}
	later := warm
	later.Start, later.End = rs[30].DeviceTime, time.Time{}
	later.ID = custody.ExcursionID(later.Kind, later.Start)
	laterRec, added, err := e.svc.RecordExcursion(e.ctx, coi, 1, later)
	if err != nil || !added {
		t.Fatalf("later excursion not written: %v %v", added, err)
	}
	// It was recorded going on, on a leg in transit: QA waits for its
	// final figures.
	_, err = e.step(coi, "qa1", custody.StepDisposition, map[string]any{"excursion": laterRec.Seq, "decision": "accept", "reason": "r"},
		sig("qa1", custody.MeaningApproved))
	if !errors.Is(err, custody.ErrConflict) || !strings.Contains(err.Error(), "still going on") {
		t.Fatalf("disposition of an excursion still going on: %v", err)
	}
	// Receive seals the leg.
	e.must(coi, "mfg1", custody.StepReceive, map[string]any{"seal_intact": true}, sig("mfg1", custody.MeaningReceived))
	legs, err := e.svc.Legs(e.ctx, coi)
	if err != nil {
		t.Fatal(err)
	}
	l := legs[0]
	if l.Seal == nil || l.Seal.Seal.Count != 40 || l.SealVerified == nil || !*l.SealVerified || len(l.Excursions) != 2 {
		t.Fatalf("leg view: %+v", l)
	}
	if *l.Seal.Seal.MaxC != -120 || l.Seal.Seal.TimeOutOfRange != 8*time.Minute {
		t.Fatalf("seal: %+v", l.Seal.Seal)
	}
	// A late reading inside the window, stored after the seal, is not
	// part of it: the seal still verifies.
	late := teleReadings(leg.Shipper, leg.ShippedAt.Add(45*time.Second), 1, func(int) float64 { return -150 })
	late[0].HasSeq, late[0].Seq = false, 0
	if _, err := e.store.AddReadings(e.ctx, late); err != nil {
		t.Fatal(err)
	}
	checks, err := e.svc.VerifySeals(e.ctx, coi)
	if err != nil || len(checks) != 1 || !checks[0].OK {
		t.Fatalf("seal check: %+v %v", checks, err)
	}
	// Manufacturing cannot be released while excursions are open.
	e.must(coi, "mfg1", custody.StepManufacture, map[string]any{"final_bags": 1}, sig("mfg1", custody.MeaningPerformed))
	if _, err := e.step(coi, "qa1", custody.StepRelease, map[string]any{}, sig("qa1", custody.MeaningApproved)); err == nil {
		t.Fatal("release with open excursions")
	}
	open, err := e.svc.Excursions(e.ctx, true)
	if err != nil || len(open) != 2 {
		t.Fatalf("open excursions: %d %v", len(open), err)
	}
	// The monitor records the later one's end at the receipt, where the
	// leg ends.
	received, _ := e.svc.Chain(e.ctx, coi)
	later.End = *received.Legs[0].ReceivedAt
	later.Duration = later.End.Sub(later.Start)
	if _, added, err := e.svc.ReviseExcursion(e.ctx, coi, 1, later); err != nil || !added {
		t.Fatalf("end at receipt: %v %v", added, err)
	}
	for _, x := range open {
		e.must(coi, "qa1", custody.StepDisposition, map[string]any{"excursion": x.Seq, "decision": "accept", "reason": "within stability data"},
			sig("qa1", custody.MeaningApproved))
	}
	e.must(coi, "qa1", custody.StepRelease, map[string]any{}, sig("qa1", custody.MeaningApproved))
	if open, _ := e.svc.Excursions(e.ctx, true); len(open) != 0 {
		t.Fatalf("%d excursions still open", len(open))
	}
	_, got, err := e.svc.LegReadings(e.ctx, coi, 1)
	if err != nil || len(got) != 41 {
		t.Fatalf("leg readings: %d %v", len(got), err)
	}
}

// TestExcursionEndRecordedOnce: an excursion recorded while still going on
// gets, once it is over, one system correction with its final figures,
// which the excursion views show; the record itself stays as written, a
// disposition is still needed, and a person's correction does not count.
func TestExcursionEndRecordedOnce(t *testing.T) {
	e := newTeleEnv(t)
	coi := e.enroll()
	e.advance(coi, custody.StateToManufacturing)
	c, err := e.svc.Chain(e.ctx, coi)
	if err != nil {
		t.Fatal(err)
	}
	leg := c.Legs[0]
	start := leg.ShippedAt.Add(10 * time.Minute)
	worst := -120.0
	open := custody.Excursion{ID: custody.ExcursionID(custody.ExcursionTemperature, start), Kind: custody.ExcursionTemperature,
		Start: start, Worst: &worst, Duration: 5 * time.Minute, Breach: 5 * time.Minute}
	rec, added, err := e.svc.RecordExcursion(e.ctx, coi, 1, open)
	if err != nil || !added {
		t.Fatalf("excursion: %v %v", added, err)
	}
	// Still open: nothing to record.
	if _, added, err := e.svc.ReviseExcursion(e.ctx, coi, 1, open); err != nil || added {
		t.Fatalf("open excursion closed: %v %v", added, err)
	}
	// A person's correction of the record with the same fields is not the
	// system's account of the end.
	e.must(coi, "qa1", custody.StepCorrection, map[string]any{"corrects": rec.Seq, "reason": "typo",
		"excursion_id": open.ID, "end": start.Add(time.Minute)}, sig("qa1", custody.MeaningAuthored))
	worse := -95.5
	ended := open
	ended.End, ended.Worst, ended.Duration, ended.Breach = start.Add(23*time.Minute), &worse, 23*time.Minute, 21*time.Minute
	end, added, err := e.svc.ReviseExcursion(e.ctx, coi, 1, ended)
	if err != nil || !added || end.Step != custody.StepCorrection || end.Signatures[0].Role != custody.RoleSystem {
		t.Fatalf("end: %v %v %+v", added, err, end)
	}
	for range 2 { // again, as after a restart: nothing more
		if _, added, err := e.svc.ReviseExcursion(e.ctx, coi, 1, ended); err != nil || added {
			t.Fatalf("end recorded twice: %v %v", added, err)
		}
		if _, added, err := e.svc.RecordExcursion(e.ctx, coi, 1, ended); err != nil || added {
			t.Fatalf("excursion recorded twice: %v %v", added, err)
		}
	}
	list, err := e.svc.Excursions(e.ctx, true)
	if err != nil || len(list) != 1 {
		t.Fatalf("open excursions: %+v %v", list, err)
	}
	x := list[0]
	if x.Seq != rec.Seq || x.EndedSeq != end.Seq || x.End == nil || !x.End.Equal(ended.End) || *x.Worst != worse ||
		x.DurationNS != int64(23*time.Minute) || x.BreachNS != int64(21*time.Minute) || !x.Open {
		t.Fatalf("excursion view: %+v", x)
	}
	// The excursion record is unchanged in the chain.
	got, err := e.svc.Chain(e.ctx, coi)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got.Records {
		if r.Seq == rec.Seq && string(r.Data) != string(rec.Data) {
			t.Fatalf("excursion record changed: %s", r.Data)
		}
	}
	if rep, err := e.svc.VerifyChain(e.ctx, coi); err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	// A later excursion of the same kind, after this one ended, is new.
	again := custody.Excursion{Kind: custody.ExcursionTemperature, Start: ended.End.Add(10 * time.Minute), Duration: 5 * time.Minute}
	again.ID = custody.ExcursionID(again.Kind, again.Start)
	if _, added, err := e.svc.RecordExcursion(e.ctx, coi, 1, again); err != nil || !added {
		t.Fatalf("later excursion: %v %v", added, err)
	}
}

// TestReviseExcursionKeepsFiguresTrue: readings stored late can make an
// ended excursion longer or worse, or show it going on again. Each change
// is one system correction with the current figures; a disposition waits
// while the excursion goes on; an acceptance of figures that changed
// reopens the issue; a rejection stands.
func TestReviseExcursionKeepsFiguresTrue(t *testing.T) {
	e := newTeleEnv(t)
	coi := e.enroll()
	e.advance(coi, custody.StateToManufacturing)
	c, _ := e.svc.Chain(e.ctx, coi)
	start := c.Legs[0].ShippedAt.Add(10 * time.Minute)
	w1, w2 := -120.0, -60.0
	ended := custody.Excursion{ID: custody.ExcursionID(custody.ExcursionTemperature, start), Kind: custody.ExcursionTemperature,
		Start: start, End: start.Add(10 * time.Minute), Worst: &w1, Duration: 10 * time.Minute, Breach: 10 * time.Minute}
	rec, added, err := e.svc.RecordExcursion(e.ctx, coi, 1, ended)
	if err != nil || !added {
		t.Fatalf("excursion: %v %v", added, err)
	}
	revise := func(x custody.Excursion, want bool) custody.Record {
		t.Helper()
		r, added, err := e.svc.ReviseExcursion(e.ctx, coi, 1, x)
		if err != nil || added != want {
			t.Fatalf("revise %+v: added %v, want %v (%v)", x, added, err, want)
		}
		return r
	}
	view := func() custody.ExcursionEntry {
		t.Helper()
		list, err := e.svc.Excursions(e.ctx, false)
		if err != nil || len(list) != 1 {
			t.Fatalf("excursions: %+v %v", list, err)
		}
		return list[0]
	}
	disposition := func(decision string) error {
		_, err := e.step(coi, "qa1", custody.StepDisposition, map[string]any{"excursion": rec.Seq, "decision": decision, "reason": "per stability data"},
			sig("qa1", custody.MeaningApproved))
		return err
	}
	revise(ended, false) // recorded ended, same figures

	// Late readings: three hours at -60 C.
	longer := ended
	longer.End, longer.Worst, longer.Duration, longer.Breach = start.Add(190*time.Minute), &w2, 190*time.Minute, 185*time.Minute
	r1 := revise(longer, true)
	revise(longer, false)
	if v := view(); v.FiguresSeq != r1.Seq || v.EndedSeq != r1.Seq || !v.End.Equal(longer.End) || *v.Worst != w2 || v.BreachNS != int64(185*time.Minute) {
		t.Fatalf("after the late readings: %+v", v)
	}

	// Going on again (the newest readings are out of range): no
	// disposition until it ends.
	again := longer
	again.End, again.Duration = time.Time{}, 200*time.Minute
	r2 := revise(again, true)
	revise(again, false)
	if v := view(); v.End != nil || v.EndedSeq != 0 || v.FiguresSeq != r2.Seq {
		t.Fatalf("going on again: %+v", v)
	}
	if err := disposition("accept"); !errors.Is(err, custody.ErrConflict) || !strings.Contains(err.Error(), "still going on") {
		t.Fatalf("disposition while going on: %v", err)
	}
	final := longer
	final.End, final.Duration, final.Breach = start.Add(230*time.Minute), 230*time.Minute, 225*time.Minute
	revise(final, true)
	if err := disposition("accept"); err != nil {
		t.Fatal(err)
	}
	if c, _ := e.svc.Chain(e.ctx, coi); len(c.OpenIssues()) != 0 {
		t.Fatalf("accepted, still open: %+v", c.OpenIssues())
	}

	// Readings stored after the acceptance make it worse: QA must decide
	// again.
	w3 := -20.0
	worse := final
	worse.Worst = &w3
	r3 := revise(worse, true)
	c, _ = e.svc.Chain(e.ctx, coi)
	if is := c.OpenIssues(); len(is) != 1 || is[0].Seq != rec.Seq || is[0].ReopenedBy != r3.Seq || is[0].Decision != "" {
		t.Fatalf("after figures changed past the acceptance: %+v", c.Issues)
	}
	if err := disposition("reject"); err != nil {
		t.Fatal(err)
	}
	// A rejection stands whatever comes later.
	worst := worse
	worst.End, worst.Duration = start.Add(240*time.Minute), 240*time.Minute
	revise(worst, true)
	c, _ = e.svc.Chain(e.ctx, coi)
	if len(c.OpenIssues()) != 0 || c.Issues[0].Decision != custody.DecisionReject {
		t.Fatalf("rejection after a revision: %+v", c.Issues)
	}
	if rep, err := e.svc.VerifyChain(e.ctx, coi); err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
