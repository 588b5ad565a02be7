package sensors_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/sensors"
)

// BenchmarkMonitorCheckNewReadings is the monitor's check of every leg
// (each Interval) with 1,000 legs open, each holding twelve hours of minute
// readings, after 1,000 new readings were stored (one a shipper, a minute
// later than the last check): the cost the issue bounds at 50 ms. Storing
// the readings is not timed. first-check-ms is the check that builds every
// leg's state, once after a start; cpu-ms/op the CPU time of a check (of
// the whole process, whose other goroutines are idle meanwhile), which a
// shared machine's load does not inflate as it does the time.
func BenchmarkMonitorCheckNewReadings(b *testing.B) {
	const legs, hours = 1000, 12
	f := newMonitorFleet(b, legs)
	ctx := context.Background()
	seq := uint64(1000)
	// Each leg's first hour is stored; add the rest, many legs a batch.
	start := f.now()
	var batch []custody.Reading
	for m := range (hours - 1) * 60 {
		for i := range legs {
			temp := -182.0
			batch = append(batch, custody.Reading{Shipper: fmt.Sprint("SHP-M", i), Seq: seq, HasSeq: true,
				DeviceTime: start.Add(time.Duration(m)*time.Minute + time.Second), ReceivedTime: start, TempC: &temp})
		}
		seq++
		if len(batch) >= 16000 {
			if _, err := f.st.AddReadings(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if _, err := f.st.AddReadings(ctx, batch); err != nil {
		b.Fatal(err)
	}
	now := start.Add(time.Duration(hours-1) * time.Hour)
	f.set(now)
	mon := sensors.NewMonitor(sensors.MonitorConfig{Service: f.svc, Readings: f.st, Logger: quiet})
	// The first check builds every leg's state from the store, as after
	// a restart: reported beside the checks that follow.
	first := time.Now()
	if n := mon.Check(ctx, nil); n != 0 {
		b.Fatalf("in-range fleet: %d excursions", n)
	}
	firstMS := float64(time.Since(first).Milliseconds())
	fresh := make([]custody.Reading, legs)
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		now = now.Add(time.Minute)
		f.set(now)
		for i := range fresh {
			temp := -181.0
			fresh[i] = custody.Reading{Shipper: fmt.Sprint("SHP-M", i), Seq: seq, HasSeq: true, DeviceTime: now.Add(-time.Second),
				ReceivedTime: now, TempC: &temp}
		}
		seq++
		if _, err := f.st.AddReadings(ctx, fresh); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		c := processCPU()
		if n := mon.Check(ctx, nil); n != 0 {
			b.Fatalf("%d excursions", n)
		}
		cpu += processCPU() - c
	}
	// After the loop, which resets the metrics.
	b.ReportMetric(firstMS, "first-check-ms")
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
	}
}

// fullJudging hides the store's reading log from a monitor, which then
// judges every leg from all its readings at each check.
type fullJudging struct{ custody.ReadingStore }

// TestIncrementalMonitorLeavesNothingToFullJudging drives a monitor that
// judges incrementally through seeded random rounds of readings stored in
// order, late (inside and around excursions) and ahead of the clock, and
// after each of its checks runs a monitor that judges every leg from all
// its readings: that one must find nothing to record or correct, so the
// chain holds what judging everything would have written.
func TestIncrementalMonitorLeavesNothingToFullJudging(t *testing.T) {
	ctx := context.Background()
	f := newMonitorFleet(t, 2)
	mon := sensors.NewMonitor(sensors.MonitorConfig{Service: f.svc, Readings: f.st, Logger: quiet})
	at := f.minutesAfterShip(t, 0)
	rng := rand.New(rand.NewPCG(19, 2))
	written, late := 0, 0
	minute := 60.0
	for round := range 40 {
		temp := -182.0
		if rng.IntN(3) == 0 {
			temp = -100
		}
		switch k := float64(1 + rng.IntN(8)); rng.IntN(4) {
		case 0: // late: into the past, at times not stored yet
			from := float64(rng.IntN(int(minute)))
			f.temps(t, from, min(from+k, minute), 0.1+0.1*float64(rng.IntN(8)), temp)
			late++
		case 1: // silence
			minute += k * 3
		default:
			f.temps(t, minute, minute+k, 0.5, temp)
			minute += k
		}
		f.set(at(minute + float64(rng.IntN(3))))
		var dirty map[string]bool
		if rng.IntN(2) == 0 {
			dirty = map[string]bool{"SHP-M0": true}
		}
		written += mon.Check(ctx, dirty)
		head, _ := f.svc.LedgerHead(ctx)
		full := sensors.NewMonitor(sensors.MonitorConfig{Service: f.svc, Readings: fullJudging{f.st}, Logger: quiet})
		if n := full.Check(ctx, nil); n != 0 {
			t.Fatalf("round %d: full judging wrote %d excursions the incremental monitor had not", round, n)
		}
		if again, _ := f.svc.LedgerHead(ctx); again != head {
			t.Fatalf("round %d: full judging appended %d records (corrections) the incremental monitor had not", round, again-head)
		}
	}
	if written == 0 || late == 0 {
		t.Fatalf("rounds too tame to test anything: %d excursions, %d late batches", written, late)
	}
}
