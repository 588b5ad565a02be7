package main

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/custody/pgstore"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/sensors"
)

// TestLeaderWakesOnReadingsElsewhere: a leads the excursion monitor (its
// interval an hour, so it checks every leg only at start); readings
// committed on b, which does not lead, ring the bell, and a's monitor
// makes a check of what was stored since its last one (the Settle
// wake-up), not a check of every leg. The instance leading rings nothing:
// its own monitor hears its readings.
func TestLeaderWakesOnReadingsElsewhere(t *testing.T) {
	url := pgtest.Schema(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)
	const hang = 60 * time.Second
	settleOnly := func(d time.Duration) <-chan time.Time {
		if d != pgstore.LeaderSettle(pgstore.DefaultLeaderPoll) {
			return nil // never: a leads at once and never checks its hold
		}
		c := make(chan time.Time, 1)
		c <- time.Time{}
		return c
	}
	monitorOn := func(st *pgstore.Store, onCheck func(map[string]bool, int)) *sensors.Monitor {
		svc, err := custody.NewService(custody.Config{Store: st, Hasher: passwd.Fast(), Logger: quiet, Now: time.Now, FIN: "A9999",
			Telemetry: custody.TelemetryConfig{Readings: st}})
		if err != nil {
			t.Fatal(err)
		}
		return sensors.NewMonitor(sensors.MonitorConfig{Service: svc, Readings: st, Logger: quiet, Interval: time.Hour,
			Settle: time.Millisecond, OnCheck: onCheck})
	}
	stA, err := pgstore.Open(ctx, url, pgstore.Options{After: settleOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer stA.Close()
	stB, err := pgstore.Open(ctx, url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer stB.Close()

	checks := make(chan map[string]bool, 1024)
	monA := monitorOn(stA, func(sh map[string]bool, _ int) { checks <- sh })
	var runningA, runningB atomic.Bool
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { runLed(ctx, stA, "excursion-monitor", &runningA, quiet, monitorJob(monA, stA)) })
	select {
	case sh := <-checks:
		if sh != nil {
			t.Fatalf("a's first check judged %v, want every leg", sh)
		}
	case <-time.After(hang):
		t.Fatal("hang: a's monitor never checked")
	}

	bellB := &readingsBell{bus: stB, ring: make(chan struct{}, 1), log: quiet}
	hookB := committedHook(monitorOn(stB, nil), bellB, &runningB)
	temp := -185.0
	reading := func(seq uint64) []custody.Reading {
		return []custody.Reading{{Shipper: "SHP-WAKE", Seq: seq, HasSeq: true, DeviceTime: time.Date(2026, 12, 4, 9, 0, 0, int(seq), time.UTC),
			ReceivedTime: time.Date(2026, 12, 4, 9, 0, 1, 0, time.UTC), TempC: &temp}}
	}
	// While b leads it rings nothing.
	runningB.Store(true)
	hookB(reading(0), custody.IngestResult{Stored: 1})
	if len(bellB.ring) != 0 {
		t.Fatal("the leading instance rang for its own readings")
	}
	runningB.Store(false)
	wg.Go(func() { bellB.Run(ctx) })

	// b stores readings and rings until a's listener, up by then, hears.
	deadline := time.After(hang)
	for seq := uint64(1); ; seq++ {
		rs := reading(seq)
		res, err := stB.AddReadings(ctx, rs)
		if err != nil || res.Stored != 1 {
			t.Fatalf("b stores a reading: %+v %v", res, err)
		}
		hookB(rs, res)
		select {
		case sh := <-checks:
			if sh == nil || len(sh) != 0 {
				t.Fatalf("a's check after b's readings judged %v, want what was stored since its last check", sh)
			}
			if runningB.Load() || !runningA.Load() {
				t.Fatal("b leads")
			}
			return
		case <-time.After(50 * time.Millisecond): // not asserted: b rings again
		case <-deadline:
			t.Fatal("hang: a's monitor never woke on b's readings")
		}
	}
}
