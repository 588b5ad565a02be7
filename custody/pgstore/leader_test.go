package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/coid-project/coid/custody/pgstore"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/jackc/pgx/v5"
)

// wait is one wait of a store on a steppedClock: it ends when the test
// sends on fire.
type wait struct {
	d    time.Duration
	fire chan time.Time
}

// steppedClock is a Lead clock the test steps: each wait of the store is
// announced on waits, and ends when the test fires it.
func steppedClock(waits chan wait) func(time.Duration) <-chan time.Time {
	return func(d time.Duration) <-chan time.Time {
		w := wait{d, make(chan time.Time, 1)}
		waits <- w
		return w.fire
	}
}

// settleOnly is a Lead clock on which only the settle passes: a store on
// it leads only if it can on its first try, and never checks its hold.
func settleOnly(d time.Duration) <-chan time.Time {
	if d != pgstore.LeaderSettle(pgstore.DefaultLeaderPoll) {
		return nil
	}
	c := make(chan time.Time, 1)
	c <- time.Time{}
	return c
}

// hangBound catches a hang; nothing is asserted about time.
const hangBound = 60 * time.Second

// next returns the store's next wait, failing on a hang.
func next(t *testing.T, waits chan wait, what string) wait {
	t.Helper()
	select {
	case w := <-waits:
		return w
	case <-time.After(hangBound):
		t.Fatalf("hang: %s", what)
		return wait{}
	}
}

// led is what Lead returned.
type led struct {
	held    context.Context
	release func()
	err     error
}

// TestLeadOneAtATime: two stores on one schema, one leads; the other
// keeps trying and takes the lock when the leader's lock connection dies
// (its backend terminated, as when its machine goes), but leads only
// after the settle, by which time the old leader has learnt it lost the
// lead.
func TestLeadOneAtATime(t *testing.T) {
	url := pgtest.Schema(t)
	ctx := context.Background()
	poll, settle := pgstore.DefaultLeaderPoll, pgstore.LeaderSettle(pgstore.DefaultLeaderPoll)
	waitsA, waitsB := make(chan wait), make(chan wait)
	a, err := pgstore.Open(ctx, url, pgstore.Options{After: steppedClock(waitsA)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := pgstore.Open(ctx, url, pgstore.Options{After: steppedClock(waitsB)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	lead := func(s *pgstore.Store) chan led {
		out := make(chan led, 1)
		go func() {
			h, r, err := s.Lead(ctx, "monitor")
			out <- led{h, r, err}
		}()
		return out
	}

	aLed := lead(a)
	if w := next(t, waitsA, "a did not take the free lock"); w.d != settle {
		t.Fatalf("a waited %v with the lock free, want the settle %v", w.d, settle)
	} else {
		w.fire <- time.Time{}
	}
	la := <-aLed
	if la.err != nil {
		t.Fatal(la.err)
	}
	defer la.release()
	aTick := next(t, waitsA, "a does not check its hold")

	bLed := lead(b)
	// b waits a poll only after a try that failed: two are two refusals.
	for range 2 {
		if w := next(t, waitsB, "b neither waited nor led"); w.d != poll {
			t.Fatalf("b waited %v while a led, want a poll (%v): it took the lock", w.d, poll)
		} else {
			w.fire <- time.Time{}
		}
	}
	if la.held.Err() != nil {
		t.Fatal("a lost the lead with its connection intact")
	}

	// a's lock connection dies.
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var killed int
	if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND objid = hashtext(current_schema())::oid`).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("%d backends held the schema's lead, want 1", killed)
	}
	// b takes the lock at one of its next tries, and settles.
	var bSettle wait
	for bSettle.fire == nil {
		w := next(t, waitsB, "b did not take the lock")
		if w.d == settle {
			bSettle = w
		} else {
			w.fire <- time.Time{}
		}
	}
	select {
	case <-bLed:
		t.Fatal("b led before its settle ended")
	default:
	}
	// a checks its hold at its next tick and finds it lost.
	aTick.fire <- time.Time{}
	select {
	case <-la.held.Done():
	case <-time.After(hangBound):
		t.Fatal("hang: a did not notice it lost its lock connection")
	}
	bSettle.fire <- time.Time{}
	lb := <-bLed
	if lb.err != nil {
		t.Fatal(lb.err)
	}
	go func() { // b's hold checks, until it gives up
		for w := range waitsB {
			w.fire <- time.Time{}
		}
	}()
	if lb.held.Err() != nil {
		t.Fatal("b's lead ended at once")
	}
	lb.release()
	if lb.held.Err() == nil {
		t.Fatal("release left b's lead running")
	}
	// Given up, the lead is free at once: a third store takes it on its
	// first try.
	c, err := pgstore.Open(ctx, url, pgstore.Options{After: settleOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tctx, cancel := context.WithTimeout(ctx, hangBound)
	defer cancel()
	_, releaseC, err := c.Lead(tctx, "monitor")
	if err != nil {
		t.Fatalf("the lead was not free after release: %v", err)
	}
	releaseC()
}

// TestLeadPerSchema: stores in different schemas of one database each
// lead their own jobs.
func TestLeadPerSchema(t *testing.T) {
	ctx := context.Background()
	for range 2 {
		s, err := pgstore.Open(ctx, pgtest.Schema(t), pgstore.Options{After: settleOnly})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		tctx, cancel := context.WithTimeout(ctx, hangBound)
		defer cancel()
		_, release, err := s.Lead(tctx, "monitor")
		if err != nil {
			t.Fatalf("a store in another schema had to wait for the lead: %v", err)
		}
		defer release()
	}
}
