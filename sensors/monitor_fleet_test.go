package sensors_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/sensors"
)

// monitorFleet is a service over a real store with chains shipped on
// their own shippers, each leg holding an hour of in-range readings.
type monitorFleet struct {
	svc   *custody.Service
	st    *boltstore.Store
	chain []custody.COI
	now   func() time.Time
	// set moves the service's clock.
	set func(time.Time)
	// seq numbers the readings temps stores.
	seq uint64
}

// newMonitorFleet enrolls, collects and ships n chains, chain i on shipper
// SHP-M<i>, with readings every minute for the first hour of the leg.
func newMonitorFleet(tb testing.TB, n int) *monitorFleet {
	tb.Helper()
	ctx := context.Background()
	st, err := boltstore.Open(tb.TempDir(), boltstore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	var mu sync.Mutex
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	f := &monitorFleet{st: st,
		now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		set: func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }}
	f.svc, err = custody.NewService(custody.Config{Store: st, Hasher: passwd.Fast(), Logger: quiet, Now: f.now, FIN: "A9999",
		Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles())), Telemetry: custody.TelemetryConfig{Readings: st}})
	if err != nil {
		tb.Fatal(err)
	}
	for id, r := range map[string]custody.Role{"coord": custody.RoleCoordinator, "n1": custody.RoleNurse, "n2": custody.RoleNurse, "cour": custody.RoleCourier, "mfg": custody.RoleManufacturing} {
		if _, err := f.svc.AddUser(ctx, id, "Printed "+id, r, "pw-"+id+"-secret"); err != nil {
			tb.Fatal(err)
		}
	}
	u := func(id string) custody.User { x, _ := st.User(ctx, id); return x }
	sig := func(id string, m custody.Meaning) custody.SignatureRequest {
		return custody.SignatureRequest{User: id, Password: "pw-" + id + "-secret", Meaning: m}
	}
	f.chain = make([]custody.COI, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs <- f.ship(ctx, i, u, sig)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			tb.Fatal(err)
		}
	}
	f.set(now.Add(time.Hour))
	return f
}

func (f *monitorFleet) ship(ctx context.Context, i int, u func(string) custody.User, sig func(string, custody.Meaning) custody.SignatureRequest) error {
	c, err := f.svc.Enroll(ctx, u("coord"), custody.EnrollRequest{Patient: custody.PHI{Name: "Pat Ient", BirthDate: "1970-01-02", MRN: fmt.Sprint("MRN-", i)},
		Product: "CAR-T", Sites: custody.Sites{Collection: "A", Manufacturing: "B", Treatment: "C"}})
	if err != nil {
		return err
	}
	f.chain[i] = c.COI
	rec := func(step custody.Step, data any, sigs ...custody.SignatureRequest) error {
		b, _ := json.Marshal(data)
		_, err := f.svc.Record(ctx, u("n1"), c.COI, custody.StepRequest{Step: step, Data: b, Signatures: sigs})
		return err
	}
	if err := rec(custody.StepCollect, map[string]any{"din": "A999926123456", "volume_ml": 200, "bags": 1, "started_at": "2026-11-23T06:00:00Z",
		"ended_at": "2026-11-23T07:00:00Z"}, sig("n1", custody.MeaningPerformed), sig("n2", custody.MeaningVerified)); err != nil {
		return err
	}
	shipper := fmt.Sprint("SHP-M", i)
	if err := rec(custody.StepShip, map[string]any{"shipper": shipper, "profile": "cryogenic"}, sig("n1", custody.MeaningHandedOver), sig("cour", custody.MeaningReceived)); err != nil {
		return err
	}
	shipped := f.now()
	rs := make([]custody.Reading, 60)
	for k := range rs {
		temp := -182.0
		rs[k] = custody.Reading{Shipper: shipper, Seq: uint64(k), HasSeq: true, DeviceTime: shipped.Add(time.Duration(k)*time.Minute + time.Second),
			ReceivedTime: shipped, TempC: &temp}
	}
	_, err = f.st.AddReadings(ctx, rs)
	return err
}

// minutesAfterShip returns a function giving the time the given minutes
// after chain i's first leg shipped.
func (f *monitorFleet) minutesAfterShip(t *testing.T, i int) func(min float64) time.Time {
	t.Helper()
	c, err := f.svc.Chain(context.Background(), f.chain[i])
	if err != nil {
		t.Fatal(err)
	}
	shipped := c.Legs[0].ShippedAt
	return func(min float64) time.Time { return shipped.Add(time.Duration(min * float64(time.Minute))) }
}

// temps stores, in one batch, readings of temp from chain 0's shipper at
// minute from (plus off) after its shipment and every minute after, up to
// minute to, numbered after the fleet's last.
func (f *monitorFleet) temps(t *testing.T, from, to, off, temp float64) {
	t.Helper()
	if f.seq == 0 {
		f.seq = 1000
	}
	at := f.minutesAfterShip(t, 0)
	var rs []custody.Reading
	for m := from; m < to; m++ {
		tc := temp
		rs = append(rs, custody.Reading{Shipper: "SHP-M0", Seq: f.seq, HasSeq: true, DeviceTime: at(m + off), ReceivedTime: f.now(), TempC: &tc})
		f.seq++
	}
	if _, err := f.st.AddReadings(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkMonitorCheckOneShipper is what the monitor does each time new
// readings of one shipper are committed (every Settle, 250 ms, while that
// shipper reports) with 1,000 chains in flight: judge that shipper's legs.
func BenchmarkMonitorCheckOneShipper(b *testing.B) {
	f := newMonitorFleet(b, 1000)
	mon := sensors.NewMonitor(sensors.MonitorConfig{Service: f.svc, Readings: f.st, Logger: quiet})
	ctx := context.Background()
	if n := mon.Check(ctx, nil); n != 0 {
		b.Fatalf("in-range fleet: %d excursions", n)
	}
	dirty := map[string]bool{"SHP-M500": true}
	for b.Loop() {
		if n := mon.Check(ctx, dirty); n != 0 {
			b.Fatalf("%d excursions", n)
		}
	}
}

// TestMonitorKeepsItsLegsCurrent: the monitor keeps the legs it derived
// from the chains between checks; a leg shipped after that, a receive,
// and time passing without any append must each still be judged.
func TestMonitorKeepsItsLegsCurrent(t *testing.T) {
	ctx := context.Background()
	f := newMonitorFleet(t, 3)
	mon := sensors.NewMonitor(sensors.MonitorConfig{Service: f.svc, Readings: f.st, Logger: quiet})
	if n := mon.Check(ctx, nil); n != 0 {
		t.Fatalf("in-range fleet: %d excursions", n)
	}
	// Time passes and nothing is appended: shipper 1 has now been silent
	// longer than the profile allows.
	f.set(f.now().Add(20 * time.Minute))
	if n := mon.Check(ctx, map[string]bool{"SHP-M1": true}); n != 1 {
		t.Fatalf("silence that only time passing reveals: %d excursions, want 1", n)
	}
	u := func(id string) custody.User { x, _ := f.st.User(ctx, id); return x }
	sig := func(id string, m custody.Meaning) custody.SignatureRequest {
		return custody.SignatureRequest{User: id, Password: "pw-" + id + "-secret", Meaning: m}
	}

	// A fourth chain ships after the monitor read the legs; its shipper
	// reports a warming.
	f.chain = append(f.chain, "")
	if err := f.ship(ctx, 3, u, sig); err != nil {
		t.Fatal(err)
	}
	shipped := f.now()
	var warm []custody.Reading
	for k := range 10 {
		temp := -100.0
		warm = append(warm, custody.Reading{Shipper: "SHP-M3", Seq: uint64(100 + k), HasSeq: true,
			DeviceTime: shipped.Add(time.Duration(70+k) * time.Minute), ReceivedTime: shipped, TempC: &temp})
	}
	if _, err := f.st.AddReadings(ctx, warm); err != nil {
		t.Fatal(err)
	}
	f.set(shipped.Add(81 * time.Minute))
	if n := mon.Check(ctx, map[string]bool{"SHP-M3": true}); n != 1 {
		t.Fatalf("warming on a leg shipped after the last read: %d excursions, want 1", n)
	}

	// Chain 0 is received now; readings after the receive are not its
	// leg's, so a warming after it is no excursion of chain 0.
	if _, err := f.svc.Record(ctx, u("mfg"), f.chain[0], custody.StepRequest{Step: custody.StepReceive, Data: json.RawMessage(`{"seal_intact":true}`),
		Signatures: []custody.SignatureRequest{sig("mfg", custody.MeaningReceived)}}); err != nil {
		t.Fatal(err)
	}
	received := f.now()
	late := make([]custody.Reading, 10)
	for k := range late {
		temp := -100.0
		late[k] = custody.Reading{Shipper: "SHP-M0", Seq: uint64(200 + k), HasSeq: true,
			DeviceTime: received.Add(time.Duration(1+k) * time.Minute), ReceivedTime: received, TempC: &temp}
	}
	if _, err := f.st.AddReadings(ctx, late); err != nil {
		t.Fatal(err)
	}
	f.set(received.Add(12 * time.Minute))
	mon.Check(ctx, map[string]bool{"SHP-M0": true}) // finds the leg's silence before the receive
	kinds := func(coi custody.COI) map[custody.ExcursionKind]int {
		list, err := f.svc.Excursions(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		out := map[custody.ExcursionKind]int{}
		for _, x := range list {
			if x.COI == coi {
				out[x.Kind]++
			}
		}
		return out
	}
	if k := kinds(f.chain[0]); k[custody.ExcursionTemperature] != 0 || k[custody.ExcursionSilence] != 1 {
		t.Fatalf("received leg judged on readings after its receive, or its silence missed: %v", k)
	}

	// A check of every leg finds chain 2's silence too, and writes chain
	// 1's again nowhere.
	if n := mon.Check(ctx, nil); n != 1 {
		t.Fatalf("check of every leg: %d excursions, want 1 (chain 2's silence)", n)
	}
	for _, coi := range f.chain[1:3] {
		if k := kinds(coi); k[custody.ExcursionSilence] != 1 || len(k) != 1 {
			t.Fatalf("%s: excursions %v, want its silence", coi, k)
		}
	}
}

// TestMonitorRecordsWhatLateReadingsShow: a logger offline for a while
// flushes its buffer after the monitor recorded an excursion as over. The
// buffer shows the warming went on for three hours: the chain must say so
// (one system correction with the new figures, no second excursion), and
// once QA accepted those figures, readings that make it worse reopen it.
func TestMonitorRecordsWhatLateReadingsShow(t *testing.T) {
	ctx := context.Background()
	f := newMonitorFleet(t, 1)
	mon := sensors.NewMonitor(sensors.MonitorConfig{Service: f.svc, Readings: f.st, Logger: quiet})
	at := f.minutesAfterShip(t, 0)
	// Minutes 60-70 warm, 70-72 back in range; then the logger goes quiet.
	f.temps(t, 60, 70, 0.5, -120)
	f.temps(t, 70, 72, 0.5, -182)
	f.set(at(80))
	if n := mon.Check(ctx, nil); n != 1 {
		t.Fatalf("first check: %d excursions, want 1", n)
	}
	list, _ := f.svc.Excursions(ctx, false)
	if len(list) != 1 || list[0].End == nil || list[0].BreachNS != int64(10*time.Minute) {
		t.Fatalf("recorded: %+v", list)
	}
	// The buffer: it was warm again from minute 73 (within the grace of
	// the return at 70) for three hours.
	f.temps(t, 72, 73, 0.5, -182)
	f.temps(t, 73, 253, 0.5, -60)
	f.temps(t, 253, 262, 0.5, -182)
	f.set(at(265))
	if n := mon.Check(ctx, nil); n != 0 {
		t.Fatalf("the same excursion written again: %d", n)
	}
	list, _ = f.svc.Excursions(ctx, false)
	if len(list) != 1 {
		t.Fatalf("excursions after the flush: %+v", list)
	}
	x := list[0]
	if x.FiguresSeq == 0 || x.End == nil || !x.End.Equal(at(253.5)) || time.Duration(x.BreachNS) < 3*time.Hour || *x.Worst != -60 {
		t.Fatalf("after the flush the chain shows end %v, breach %s, worst %v (figures from record %d)", x.End, time.Duration(x.BreachNS), *x.Worst, x.FiguresSeq)
	}
	mon.Check(ctx, nil)
	if again, _ := f.svc.Excursions(ctx, false); again[0].FiguresSeq != x.FiguresSeq {
		t.Fatalf("figures recorded again without new readings: record %d then %d", x.FiguresSeq, again[0].FiguresSeq)
	}

	// QA accepts; then one more buffered reading, warmer, inside it.
	if _, err := f.svc.AddUser(ctx, "qa1", "Printed qa1", custody.RoleQA, "pw-qa1-secret"); err != nil {
		t.Fatal(err)
	}
	qa, _ := f.st.User(ctx, "qa1")
	if _, err := f.svc.Record(ctx, qa, f.chain[0], custody.StepRequest{Step: custody.StepDisposition,
		Data:       json.RawMessage(fmt.Sprintf(`{"excursion":%d,"decision":"accept","reason":"within stability data"}`, x.Seq)),
		Signatures: []custody.SignatureRequest{{User: "qa1", Password: "pw-qa1-secret", Meaning: custody.MeaningApproved}}}); err != nil {
		t.Fatal(err)
	}
	f.temps(t, 150, 151, 0.7, -10)
	mon.Check(ctx, map[string]bool{"SHP-M0": true})
	c, _ := f.svc.Chain(ctx, f.chain[0])
	if is := c.OpenIssues(); len(is) != 1 || is[0].Seq != x.Seq || is[0].ReopenedBy == 0 {
		t.Fatalf("accepted excursion made worse by late readings: issues %+v", c.Issues)
	}
}

// TestMonitorClosesAnExcursionTheReadingsNoLongerShow: a silence recorded
// while going on is filled by the logger's buffer; the readings no longer
// show it, so the monitor records that it is over (a correction saying
// so), and QA can decide on it rather than find the chain blocked.
func TestMonitorClosesAnExcursionTheReadingsNoLongerShow(t *testing.T) {
	ctx := context.Background()
	f := newMonitorFleet(t, 1)
	mon := sensors.NewMonitor(sensors.MonitorConfig{Service: f.svc, Readings: f.st, Logger: quiet})
	at := f.minutesAfterShip(t, 0)
	f.set(at(80)) // readings end at 59:01: a silence of 21 minutes, going on
	if n := mon.Check(ctx, nil); n != 1 {
		t.Fatalf("first check: %d excursions, want the silence", n)
	}
	var rs []custody.Reading
	for m := 60; m < 80; m++ {
		tc := -182.0
		rs = append(rs, custody.Reading{Shipper: "SHP-M0", Seq: uint64(500 + m), HasSeq: true, DeviceTime: at(float64(m) + 0.5), ReceivedTime: f.now(), TempC: &tc})
	}
	if _, err := f.st.AddReadings(ctx, rs); err != nil {
		t.Fatal(err)
	}
	f.set(at(81))
	for range 3 { // once, however often judged
		mon.Check(ctx, nil)
	}
	list, _ := f.svc.Excursions(ctx, false)
	if len(list) != 1 || list[0].End == nil || list[0].FiguresSeq == 0 {
		t.Fatalf("silence filled by late readings: %+v", list)
	}
	c, _ := f.svc.Chain(ctx, f.chain[0])
	corrections := 0
	for _, r := range c.Records {
		if r.Step == custody.StepCorrection {
			corrections++
			if !strings.Contains(string(r.Data), "no longer show") {
				t.Errorf("correction %s", r.Data)
			}
		}
	}
	if corrections != 1 {
		t.Fatalf("%d corrections, want 1", corrections)
	}
	if _, err := f.svc.AddUser(ctx, "qa1", "Printed qa1", custody.RoleQA, "pw-qa1-secret"); err != nil {
		t.Fatal(err)
	}
	qa, _ := f.st.User(ctx, "qa1")
	if _, err := f.svc.Record(ctx, qa, f.chain[0], custody.StepRequest{Step: custody.StepDisposition,
		Data:       json.RawMessage(fmt.Sprintf(`{"excursion":%d,"decision":"accept","reason":"the buffer shows no gap"}`, list[0].Seq)),
		Signatures: []custody.SignatureRequest{{User: "qa1", Password: "pw-qa1-secret", Meaning: custody.MeaningApproved}}}); err != nil {
		t.Fatalf("QA's disposition: %v", err)
	}
}

// TestMonitorBackToBackSilences: two silences with one reading between
// them are two excursions, written once each; judging them again writes
// nothing (periods that only touch are not one excursion).
func TestMonitorBackToBackSilences(t *testing.T) {
	ctx := context.Background()
	f := newMonitorFleet(t, 1)
	mon := sensors.NewMonitor(sensors.MonitorConfig{Service: f.svc, Readings: f.st, Logger: quiet})
	at := f.minutesAfterShip(t, 0)
	f.set(at(80))
	tc := -182.0
	if _, err := f.st.AddReadings(ctx, []custody.Reading{{Shipper: "SHP-M0", Seq: 900, HasSeq: true, DeviceTime: at(80), ReceivedTime: f.now(), TempC: &tc}}); err != nil {
		t.Fatal(err)
	}
	f.set(at(100))
	mon.Check(ctx, nil)
	head := func() uint64 { h, _ := f.svc.LedgerHead(ctx); return h }
	settled := head()
	for range 4 {
		mon.Check(ctx, nil)
	}
	if h := head(); h != settled {
		t.Fatalf("judging unchanged readings again appended %d records", h-settled)
	}
	c, _ := f.svc.Chain(ctx, f.chain[0])
	n := map[custody.Step]int{}
	for _, r := range c.Records {
		n[r.Step]++
	}
	if n[custody.StepExcursion] != 2 || n[custody.StepCorrection] > 1 {
		t.Fatalf("records by step %v: want 2 silences and at most the first one's end", n)
	}
}

// TestMonitorSettlesAfterALateReadingSplitsASilence: a silence recorded
// while going on; one buffered reading a minute after its start arrives
// and the logger stays silent. The recorded silence is closed (the
// readings no longer show it as recorded), the silence after the reading
// is recorded once, and judging the same readings again writes nothing.
func TestMonitorSettlesAfterALateReadingSplitsASilence(t *testing.T) {
	ctx := context.Background()
	f := newMonitorFleet(t, 1)
	mon := sensors.NewMonitor(sensors.MonitorConfig{Service: f.svc, Readings: f.st, Logger: quiet})
	at := f.minutesAfterShip(t, 0)
	f.set(at(80)) // readings end at 59:01: a silence, going on
	if n := mon.Check(ctx, nil); n != 1 {
		t.Fatalf("first check: %d", n)
	}
	tc := -182.0
	if _, err := f.st.AddReadings(ctx, []custody.Reading{{Shipper: "SHP-M0", Seq: 900, HasSeq: true, DeviceTime: at(60), ReceivedTime: f.now(), TempC: &tc}}); err != nil {
		t.Fatal(err)
	}
	head := func() uint64 { h, _ := f.svc.LedgerHead(ctx); return h }
	f.set(at(81))
	mon.Check(ctx, nil)
	mon.Check(ctx, nil)
	settled := head()
	for i := range 6 {
		f.set(at(82 + float64(i)))
		mon.Check(ctx, nil)
	}
	if h := head(); h != settled {
		t.Fatalf("unchanged readings: six more checks appended %d records", h-settled)
	}
	list, _ := f.svc.Excursions(ctx, false)
	open := 0
	for _, x := range list {
		if x.End == nil {
			open++
			if x.Start.Before(at(60)) {
				t.Errorf("the silence going on starts at %v, before the late reading", x.Start)
			}
		}
	}
	if len(list) != 2 || open != 1 {
		t.Fatalf("excursions %+v: want the first closed and the silence after the late reading going on", list)
	}
}

// TestMonitorLateReadingJoinsTwoExcursions: two warmings recorded apart;
// a late reading shows them one. The first record takes the joined
// figures, the second is closed as no longer shown on its own: the breach
// is counted once, not twice.
func TestMonitorLateReadingJoinsTwoExcursions(t *testing.T) {
	ctx := context.Background()
	f := newMonitorFleet(t, 1)
	mon := sensors.NewMonitor(sensors.MonitorConfig{Service: f.svc, Readings: f.st, Logger: quiet})
	at := f.minutesAfterShip(t, 0)
	f.temps(t, 60, 70, 0, -120)
	f.temps(t, 70, 71, 0, -182)
	f.temps(t, 80, 90, 0, -120)
	f.temps(t, 90, 100, 0, -182)
	f.set(at(100))
	if n := mon.Check(ctx, nil); n != 2 {
		t.Fatalf("first check: %d excursions, want 2", n)
	}
	f.temps(t, 74, 75, 0, -120) // late: within the grace of the return at 70
	f.set(at(101))
	mon.Check(ctx, nil)
	mon.Check(ctx, nil)
	list, _ := f.svc.Excursions(ctx, false)
	var total time.Duration
	for _, x := range list {
		total += time.Duration(x.BreachNS)
	}
	if len(list) != 2 || total > 30*time.Minute || list[0].End == nil || list[1].End == nil || list[1].BreachNS != 0 {
		t.Fatalf("after the join: %+v (breach %v in all)", list, total)
	}
}

// TestMonitorRecordsAnEarlierStart: the logger's buffer shows a warming
// began ten minutes before the recorded start; the chain's figures take
// the earlier start with the longer duration, so they add up.
func TestMonitorRecordsAnEarlierStart(t *testing.T) {
	ctx := context.Background()
	f := newMonitorFleet(t, 1)
	mon := sensors.NewMonitor(sensors.MonitorConfig{Service: f.svc, Readings: f.st, Logger: quiet})
	at := f.minutesAfterShip(t, 0)
	f.temps(t, 60, 65, 0, -182)
	f.temps(t, 75, 90, 0, -120)
	f.temps(t, 90, 100, 0, -182)
	f.set(at(101))
	mon.Check(ctx, nil)
	f.temps(t, 65, 75, 0, -120) // the logger's buffer: warm since minute 65
	f.set(at(102))
	mon.Check(ctx, nil)
	mon.Check(ctx, nil)
	list, _ := f.svc.Excursions(ctx, false)
	var temp []custody.ExcursionEntry
	for _, x := range list {
		if x.Kind == custody.ExcursionTemperature {
			temp = append(temp, x)
		}
	}
	if len(temp) != 1 || !temp[0].Start.Equal(at(65)) || temp[0].End == nil || temp[0].End.Sub(temp[0].Start) != time.Duration(temp[0].DurationNS) {
		t.Fatalf("after the buffer: %+v", temp)
	}
	// A later change (a warmer reading inside it) is another correction;
	// the start it moved stays.
	f.temps(t, 80, 81, 0.5, -90)
	mon.Check(ctx, nil)
	head := func() uint64 { h, _ := f.svc.LedgerHead(ctx); return h }
	settled := head()
	mon.Check(ctx, nil)
	list, _ = f.svc.Excursions(ctx, false)
	for _, x := range list {
		if x.Kind == custody.ExcursionTemperature && (!x.Start.Equal(at(65)) || *x.Worst != -90) {
			t.Fatalf("after a second change: %+v", x)
		}
	}
	if head() != settled {
		t.Fatal("unchanged readings judged again appended records")
	}
}

// BenchmarkMonitorCheckLN2Leg is the monitor judging one leg of two days
// of readings a minute carrying the LN2 charge, as after each batch of
// the shipper's readings: the rules and the hold-time projection
// (coldchain.BenchmarkProjectHold is the projection alone).
func BenchmarkMonitorCheckLN2Leg(b *testing.B) {
	ctx := context.Background()
	f := newMonitorFleet(b, 1)
	at := func(m int) time.Time { return f.now().Add(-time.Hour).Add(time.Duration(m) * time.Minute) }
	var rs []custody.Reading
	for m := range 48 * 60 {
		temp, ln2 := -182.0, 95-0.5*float64(m)/60
		rs = append(rs, custody.Reading{Shipper: "SHP-M0", Seq: uint64(1000 + m), HasSeq: true, DeviceTime: at(m).Add(time.Second),
			ReceivedTime: at(m), TempC: &temp, LN2Pct: &ln2})
	}
	if _, err := f.st.AddReadings(ctx, rs); err != nil {
		b.Fatal(err)
	}
	f.set(at(48 * 60))
	mon := sensors.NewMonitor(sensors.MonitorConfig{Service: f.svc, Readings: f.st, Logger: quiet})
	if n := mon.Check(ctx, nil); n != 0 {
		b.Fatalf("healthy leg: %d records", n)
	}
	dirty := map[string]bool{"SHP-M0": true}
	for b.Loop() {
		if n := mon.Check(ctx, dirty); n != 0 {
			b.Fatalf("%d records", n)
		}
	}
}
