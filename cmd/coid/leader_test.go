package main

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coid-project/coid/api/metrics"
	"github.com/coid-project/coid/custody/pgstore"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/sensors"
	"github.com/jackc/pgx/v5"
)

// leadWait is one wait of a store on leadClock: it ends when the test
// fires it.
type leadWait struct {
	d    time.Duration
	fire chan time.Time
}

// leadClock is a leadership clock the test steps: each wait is announced
// on waits.
func leadClock(waits chan leadWait) func(time.Duration) <-chan time.Time {
	return func(d time.Duration) <-chan time.Time {
		w := leadWait{d, make(chan time.Time, 1)}
		waits <- w
		return w.fire
	}
}

// TestMonitorOneInstance: two instances on one PostgreSQL schema run the
// excursion monitor's loop (runLed, as serve does); only the one leading
// runs it, and when its lock connection dies the other takes over, never
// both at once. running is what the monitor_leader gauge shows.
func TestMonitorOneInstance(t *testing.T) {
	url := pgtest.Schema(t)
	ctx := context.Background()
	const hang = 60 * time.Second
	poll, settle := pgstore.DefaultLeaderPoll, pgstore.LeaderSettle(pgstore.DefaultLeaderPoll)
	next := func(waits chan leadWait, what string) leadWait {
		t.Helper()
		select {
		case w := <-waits:
			return w
		case <-time.After(hang):
			t.Fatalf("hang: %s", what)
			return leadWait{}
		}
	}
	type instance struct {
		st      *pgstore.Store
		waits   chan leadWait
		running atomic.Bool
		starts  chan struct{}
		checks  atomic.Int64
	}
	var together, most atomic.Int64 // monitors running at once, and the most seen
	var wg sync.WaitGroup
	start := func(cctx context.Context, in *instance) {
		wg.Go(func() {
			runLed(cctx, in.st, "excursion-monitor", &in.running, slog.New(slog.DiscardHandler), func(jctx context.Context) {
				if n := together.Add(1); n > most.Load() {
					most.Store(n)
				}
				defer together.Add(-1)
				in.checks.Add(1) // the check at start
				in.starts <- struct{}{}
				<-jctx.Done()
			})
		})
	}
	var ins [2]*instance
	for i := range ins {
		in := &instance{waits: make(chan leadWait), starts: make(chan struct{}, 4)}
		st, err := pgstore.Open(ctx, url, pgstore.Options{After: leadClock(in.waits)})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		in.st, ins[i] = st, in
	}
	a, b := ins[0], ins[1]
	ctxA, stopA := context.WithCancel(ctx)
	defer stopA()
	ctxB, stopB := context.WithCancel(ctx)
	defer stopB()

	start(ctxA, a)
	next(a.waits, "a did not take the free lead").fire <- time.Time{} // the settle
	<-a.starts
	aTick := next(a.waits, "a does not check its hold")
	start(ctxB, b)
	for range 2 {
		if w := next(b.waits, "b neither waited nor led"); w.d != poll {
			t.Fatalf("b waited %v while a led, want a poll", w.d)
		} else {
			w.fire <- time.Time{}
		}
	}
	if !a.running.Load() || b.running.Load() || b.checks.Load() != 0 {
		t.Fatalf("a running %v, b running %v with %d checks: want only a", a.running.Load(), b.running.Load(), b.checks.Load())
	}

	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND objid = hashtext(current_schema())::oid`); err != nil {
		t.Fatal(err)
	}
	var bSettle leadWait
	for bSettle.fire == nil {
		if w := next(b.waits, "b did not take the lock"); w.d == settle {
			bSettle = w
		} else {
			w.fire <- time.Time{}
		}
	}
	aTick.fire <- time.Time{} // a finds its connection gone, stops, and waits to lead again
	if w := next(a.waits, "a did not go back to waiting"); w.d != poll || a.running.Load() {
		t.Fatalf("a waits %v, running %v: want a poll, stopped", w.d, a.running.Load())
	}
	bSettle.fire <- time.Time{}
	select {
	case <-b.starts:
	case <-time.After(hang):
		t.Fatal("hang: b did not take over")
	}
	if !b.running.Load() || b.checks.Load() != 1 || a.checks.Load() != 1 {
		t.Fatalf("b running %v; checks a %d, b %d: want b running, one each", b.running.Load(), a.checks.Load(), b.checks.Load())
	}
	if most.Load() != 1 {
		t.Fatalf("%d monitors ran at once", most.Load())
	}
	stopA()
	stopB()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case w := <-a.waits:
			w.fire <- time.Time{}
		case w := <-b.waits:
			w.fire <- time.Time{}
		case <-done:
			return
		case <-time.After(hang):
			t.Fatal("hang: the instances did not stop")
		}
	}
}

// TestAlertsAcrossInstances: an alert raised on one instance reaches the
// alert streams (AlertHub subscribers) of another instance on the same
// PostgreSQL schema, and its own, once each.
func TestAlertsAcrossInstances(t *testing.T) {
	url := pgtest.Schema(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var tels [2]*telemetry
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := range tels {
		st, err := pgstore.Open(ctx, url, pgstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		tels[i] = &telemetry{log: slog.New(slog.DiscardHandler), alerts: sensors.NewAlertHub(), metrics: metrics.New(), bus: st}
		wg.Go(func() { tels[i].listenAlerts(ctx) })
	}
	a, b := tels[0], tels[1]
	onA, stopA := a.alerts.Subscribe()
	defer stopA()
	onB, stopB := b.alerts.Subscribe()
	defer stopB()
	// a raises alerts until b's listener, up by then, passes one on.
	deadline := time.After(60 * time.Second)
	var got sensors.Alert
	for seq := uint64(1); got.Seq == 0; seq++ {
		a.alert(sensors.Alert{COI: "W000026000001", Seq: seq})
		select {
		case got = <-onB:
		case <-time.After(50 * time.Millisecond): // not asserted: the next alert
		case <-deadline:
			t.Fatal("hang: b's streams never had a's alert")
		}
	}
	if got.COI != "W000026000001" {
		t.Fatalf("b's stream had %+v", got)
	}
	// a's own streams have the same alert, through the bus, once.
	for {
		select {
		case mine := <-onA:
			if mine.Seq == got.Seq {
				select {
				case again := <-onA:
					if again.Seq == got.Seq {
						t.Fatalf("a's stream had alert %d twice", got.Seq)
					}
				default:
				}
				return
			}
		case <-deadline:
			t.Fatal("hang: a's streams never had its own alert")
		}
	}
}
