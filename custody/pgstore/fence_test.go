package pgstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/pgstore"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/custody/storetest"
	"github.com/jackc/pgx/v5"
)

// TestLeaderFencing: a leads (epoch 1) and is frozen (its clock never
// ticks, so it never checks its hold); its lock connection dies and b
// takes the lead (epoch 2). From the moment b takes the lock, before its
// settle, a's appends under its leadership are refused with ErrFenced in
// the append transaction, writing nothing, and a's leadership context
// ends, so its job stops; b's appends under its own go in, as do appends
// under no leadership.
func TestLeaderFencing(t *testing.T) {
	url := pgtest.Schema(t)
	ctx := context.Background()
	settle := pgstore.LeaderSettle(pgstore.DefaultLeaderPoll)
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
	next(t, waitsA, "a did not take the free lock").fire <- time.Time{}
	la := <-aLed
	if la.err != nil {
		t.Fatal(la.err)
	}
	next(t, waitsA, "a does not check its hold") // never fired: a is frozen
	fa := custody.FenceOf(la.held)
	if fa == nil || fa.Job != "monitor" || fa.Epoch != 1 {
		t.Fatalf("a's fence %+v, want monitor epoch 1", fa)
	}
	fenced := func(d custody.Draft, f *custody.Fence) custody.Draft {
		d.Fence = f
		return d
	}
	coi := storetest.COI(1)
	if _, err := a.Append(ctx, fenced(storetest.Draft(coi, 0, true, 0), fa)); err != nil {
		t.Fatalf("the leader's append: %v", err)
	}

	// a's lock connection dies; b takes the lock.
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND objid = hashtext(current_schema())::oid`); err != nil {
		t.Fatal(err)
	}
	bLed := lead(b)
	var bSettle wait
	for bSettle.fire == nil {
		if w := next(t, waitsB, "b did not take the lock"); w.d == settle {
			bSettle = w
		} else {
			w.fire <- time.Time{}
		}
	}
	// b holds the lock and waits out its settle: a, frozen, wakes and
	// appends as the leader it was.
	_, err = a.Append(ctx, fenced(storetest.Draft(coi, 1, false, 1), fa))
	if !errors.Is(err, custody.ErrFenced) {
		t.Fatalf("the old leader's append: %v, want ErrFenced", err)
	}
	select {
	case <-la.held.Done():
	case <-time.After(hangBound):
		t.Fatal("hang: the old leader's context did not end on the refusal")
	}
	if recs, err := a.Records(ctx, coi); err != nil || len(recs) != 1 {
		t.Fatalf("after the refusal the chain holds %d records (%v), want 1", len(recs), err)
	}
	la.release()

	bSettle.fire <- time.Time{}
	lb := <-bLed
	if lb.err != nil {
		t.Fatal(lb.err)
	}
	go func() {
		for w := range waitsB {
			w.fire <- time.Time{}
		}
	}()
	defer lb.release()
	fb := custody.FenceOf(lb.held)
	if fb == nil || fb.Epoch != 2 {
		t.Fatalf("b's fence %+v, want epoch 2", fb)
	}
	if _, err := b.Append(ctx, fenced(storetest.Draft(coi, 1, false, 1), fb)); err != nil {
		t.Fatalf("the new leader's append: %v", err)
	}
	if _, err := a.Append(ctx, storetest.Draft(coi, 2, false, 2)); err != nil {
		t.Fatalf("an append under no leadership on the old leader's store: %v", err)
	}
	// The old fence stays refused, on either store.
	if _, err := b.Append(ctx, fenced(storetest.Draft(coi, 3, false, 3), fa)); !errors.Is(err, custody.ErrFenced) {
		t.Fatalf("an append under the old fence on b: %v, want ErrFenced", err)
	}
	if lb.held.Err() != nil {
		t.Fatal("a refusal of the old fence ended b's leadership")
	}
	if recs, err := b.Records(ctx, coi); err != nil || len(recs) != 3 {
		t.Fatalf("the chain holds %d records (%v), want 3", len(recs), err)
	}
}
