package sensors_test

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/sensors"
)

// TestMonitorWritesEachExcursionOnce runs the monitor over a real service
// and store: a warming and a silence on an open cryogenic leg are written
// once each, however often (and across restarts) the legs are judged.
func TestMonitorWritesEachExcursionOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); now = now.Add(time.Second); return now }
	newSvc := func() *custody.Service {
		svc, err := custody.NewService(custody.Config{Store: st, Hasher: passwd.Fast(), Logger: quiet, Now: clock, FIN: "A9999",
			Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles())), Telemetry: custody.TelemetryConfig{Readings: st}})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	svc := newSvc()
	users := map[string]custody.Role{"coord": custody.RoleCoordinator, "n1": custody.RoleNurse, "n2": custody.RoleNurse, "cour": custody.RoleCourier}
	for id, r := range users {
		if _, err := svc.AddUser(ctx, id, "Printed "+id, r, "pw-"+id+"-secret"); err != nil {
			t.Fatal(err)
		}
	}
	u := func(id string) custody.User { x, _ := st.User(ctx, id); return x }
	s := func(id string, m custody.Meaning) custody.SignatureRequest {
		return custody.SignatureRequest{User: id, Password: "pw-" + id + "-secret", Meaning: m}
	}
	c, err := svc.Enroll(ctx, u("coord"), custody.EnrollRequest{Patient: custody.PHI{Name: "Jane Doe", BirthDate: "1970-01-02", MRN: "MRN-1"},
		Product: "CAR-T", Sites: custody.Sites{Collection: "A", Manufacturing: "B", Treatment: "C"}})
	if err != nil {
		t.Fatal(err)
	}
	step := func(step custody.Step, data any, sigs ...custody.SignatureRequest) {
		b, _ := json.Marshal(data)
		if _, err := svc.Record(ctx, u("n1"), c.COI, custody.StepRequest{Step: step, Data: b, Signatures: sigs}); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	step(custody.StepCollect, map[string]any{"din": "A999926123456", "volume_ml": 200, "bags": 1, "started_at": "2026-11-23T06:00:00Z",
		"ended_at": "2026-11-23T07:00:00Z"}, s("n1", custody.MeaningPerformed), s("n2", custody.MeaningVerified))
	step(custody.StepShip, map[string]any{"shipper": "SHP-0042", "profile": "cryogenic"}, s("n1", custody.MeaningHandedOver), s("cour", custody.MeaningReceived))
	ch, _ := svc.Chain(ctx, c.COI)
	shipped := ch.Legs[0].ShippedAt
	// 30 minutes of readings; warm (-120 C) from minute 5 to 12; then
	// silence (the clock is moved 40 minutes past the last reading).
	var rs []custody.Reading
	for i := 0; i < 30; i++ {
		temp := -182.0
		if i >= 5 && i < 12 {
			temp = -120
		}
		rs = append(rs, custody.Reading{Shipper: "SHP-0042", Seq: uint64(i), HasSeq: true, DeviceTime: shipped.Add(time.Duration(i)*time.Minute + time.Second),
			ReceivedTime: shipped, TempC: &temp})
	}
	// Out of order: the second half first.
	if _, err := st.AddReadings(ctx, rs[15:]); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddReadings(ctx, rs[:15]); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = shipped.Add(70 * time.Minute)
	mu.Unlock()
	var alerts []sensors.Alert
	hub := sensors.NewAlertHub()
	sub, cancel := hub.Subscribe()
	defer cancel()
	mon := sensors.NewMonitor(sensors.MonitorConfig{Service: svc, Readings: st, Logger: quiet, Alert: func(a sensors.Alert) {
		alerts = append(alerts, a)
		hub.Publish(a)
	}})
	if n := mon.Check(ctx, nil); n != 2 {
		t.Fatalf("first check wrote %d excursions, want 2 (temperature, silence)", n)
	}
	if n := mon.Check(ctx, map[string]bool{"SHP-0042": true}); n != 0 {
		t.Fatalf("second check wrote %d", n)
	}
	// A restart: a new service and monitor over the same ledger.
	if n := sensors.NewMonitor(sensors.MonitorConfig{Service: newSvc(), Readings: st, Logger: quiet}).Check(ctx, nil); n != 0 {
		t.Fatalf("after restart wrote %d", n)
	}
	kinds := map[custody.ExcursionKind]bool{}
	for _, a := range alerts {
		kinds[a.Excursion.Kind] = true
		if a.COI != c.COI || a.Excursion.Leg != 1 || a.Excursion.Shipper != "SHP-0042" {
			t.Fatalf("alert %+v", a)
		}
	}
	if !kinds[custody.ExcursionTemperature] || !kinds[custody.ExcursionSilence] {
		t.Fatalf("alerts %+v", alerts)
	}
	if got := <-sub; got.Seq != alerts[0].Seq {
		t.Fatalf("hub delivered %+v", got)
	}
	ch, _ = svc.Chain(ctx, c.COI)
	if len(ch.OpenIssues()) != 2 {
		t.Fatalf("open issues %+v", ch.OpenIssues())
	}
	// The shipper reports again: the silence, recorded while it was going
	// on, is over, and its end is recorded once, as a system correction.
	var back []custody.Reading
	for i := 60; i < 75; i++ {
		temp := -182.0
		back = append(back, custody.Reading{Shipper: "SHP-0042", Seq: uint64(i), HasSeq: true, DeviceTime: shipped.Add(time.Duration(i)*time.Minute + time.Second),
			ReceivedTime: shipped, TempC: &temp})
	}
	if _, err := st.AddReadings(ctx, back); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = shipped.Add(76 * time.Minute)
	mu.Unlock()
	ends := func() []custody.Record {
		ch, _ := svc.Chain(ctx, c.COI)
		var out []custody.Record
		for _, r := range ch.Records {
			if r.Step == custody.StepCorrection && r.SubmittedBy == "system" {
				out = append(out, r)
			}
		}
		return out
	}
	for range 2 {
		if n := mon.Check(ctx, map[string]bool{"SHP-0042": true}); n != 0 {
			t.Fatalf("check after the silence wrote %d excursions", n)
		}
		if got := ends(); len(got) != 1 {
			t.Fatalf("%d excursion ends recorded, want 1", len(got))
		}
	}
	list, err := svc.Excursions(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range list {
		if x.Kind == custody.ExcursionSilence && (x.EndedSeq != ends()[0].Seq || x.End == nil || !x.End.After(x.Start)) {
			t.Fatalf("silence excursion view: %+v", x)
		}
	}
	if rep, err := svc.VerifyLedger(ctx); err != nil || !rep.OK {
		t.Fatalf("ledger: %+v %v", rep, err)
	}
	st.Close()
}
